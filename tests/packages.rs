//! The packages users install, built from this tree and run the way MCP clients run them:
//!
//! - the PyPI wheel (maturin, `bin` bindings), installed into a fresh venv, and run through
//!   `uvx` and `pipx run`;
//! - the npm launcher with this platform's binary package, packed with `npm pack`, installed
//!   from the tarballs into a fresh folder and run through `npx`, exactly as
//!   mcp-config.example.json says;
//! - every workflow, checked with actionlint (and the scripts of its steps with shellcheck).
//!
//! Nothing here downloads packages: maturin builds the wheel from this tree (a dev build, in a
//! target folder of its own), the npm package carries the binary the tests built, and uv,
//! pipx and npm run offline.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Scratch, Server};
use serde_json::{Value, json};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A command with none of the server's settings from the caller's environment, HOME in
/// `home`, and a scratch database there.
fn clean(program: impl AsRef<std::ffi::OsStr>, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    for var in common::SERVER_VARS {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .env("MEMORY_LOG_LEVEL", "warn")
        .env("MEMORY_TURSO_PATH", home.join("memory.db"))
        .current_dir(common::existing_folder(home));
    cmd
}

/// A short MCP session: the handshake, a store, a search that finds it, `health`.
fn mcp_session(cmd: Command, how: &str) {
    let mut server = Server::spawn(cmd);
    let init = server.initialize("2025-06-18");
    assert_eq!(
        init["result"]["serverInfo"]["name"], "memorygraph",
        "{how}: {init}"
    );
    let stored = server.ok(
        "store_memory",
        json!({"type": "fix", "title": format!("Installed with {how}"), "content": "It starts and answers."}),
    );
    assert!(stored["memory_id"].is_string(), "{how}: {stored}");
    let found = server.ok("search_memories", json!({"query": "installed"}));
    assert!(
        found["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == stored["memory_id"]),
        "{how}: {found}"
    );
    let health = server.ok("health", json!({}));
    assert_eq!(health["mode"], "local", "{how}: {health}");
    assert!(
        server.stop().success(),
        "{how}: the server did not exit cleanly"
    );
}

/// Builds the wheel with maturin into `out` and returns its path.
///
/// maturin compiles the binaries itself, as `cargo build` does, whose dependencies are built
/// with other features than `cargo test`'s: it gets a target folder of its own beside the
/// installed tools (kept between runs, also by CI), so it never replaces a binary the other
/// tests are running, and a dev build without debug info, the cheapest there is.
fn build_wheel(tools: &Path, out: &Path) -> PathBuf {
    let mut maturin = Command::new(tools.join("maturin"));
    maturin
        .current_dir(repo())
        .args(["build", "--profile", "dev", "--locked", "--target-dir"])
        .arg(common::tools::cache_dir().join("wheel-build"))
        .arg("--out")
        .arg(out)
        .env("CARGO_PROFILE_DEV_DEBUG", "false");
    run(&mut maturin);
    let wheels: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    assert_eq!(wheels.len(), 1, "one wheel: {wheels:?}");
    wheels[0].clone()
}

fn wheel_files(python: &Path, wheel: &Path) -> Vec<String> {
    let out = run(Command::new(python)
        .args([
            "-c",
            "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
        ])
        .arg(wheel));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs maturin, uv and pipx from PyPI; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_wheel_runs_the_server_from_a_venv_uvx_and_pipx() {
    let tools = common::tools::packaging_bin();
    let scratch = Scratch::new();
    let home = scratch.dir.path();
    let wheel = build_wheel(&tools, &home.join("wheels"));
    let name = wheel.file_name().unwrap().to_string_lossy().to_string();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        name.starts_with(&format!("memorygraph_rs-{version}-")),
        "wheel name: {name}"
    );

    let files = wheel_files(&tools.join("python"), &wheel);
    let data = format!("memorygraph_rs-{version}.data/scripts/");
    for script in ["memorygraph", "memorygraph-rs"] {
        assert!(
            files.contains(&format!("{data}{script}")),
            "{script} is in the wheel: {files:?}"
        );
    }
    assert!(
        !files.iter().any(|f| f.contains("memorygraph-bench")),
        "the benchmark stays out of the wheel: {files:?}"
    );

    // A fresh venv, as `pip install memorygraph-rs` makes it.
    let venv = home.join("venv");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    let bin = venv.join("bin");
    run(Command::new(bin.join("pip"))
        .args([
            "install",
            "--quiet",
            "--no-index",
            "--disable-pip-version-check",
        ])
        .arg(&wheel));
    mcp_session(clean(bin.join("memorygraph"), home), "pip install");
    mcp_session(clean(bin.join("memorygraph-rs"), home), "memorygraph-rs");

    // `uvx memorygraph-rs`, offline, from the wheel instead of PyPI.
    let mut uvx = clean(tools.join("uv"), home);
    uvx.args(["tool", "run", "--offline", "--from"])
        .arg(&wheel)
        .arg("memorygraph-rs")
        .env("UV_CACHE_DIR", home.join("uv-cache"))
        .env("UV_TOOL_DIR", home.join("uv-tools"))
        .env("UV_PYTHON_DOWNLOADS", "never");
    mcp_session(uvx, "uvx");

    // `pipx run memorygraph-rs`, offline, from the wheel.
    let mut pipx = clean(tools.join("pipx"), home);
    pipx.args(["run", "--pip-args=--no-index", "--spec"])
        .arg(&wheel)
        .arg("memorygraph-rs")
        .env("PIPX_HOME", home.join("pipx"))
        .env("PIPX_BIN_DIR", home.join("pipx-bin"));
    mcp_session(pipx, "pipx run");
}

/// Packs a package folder with `npm pack` into `out` and returns the tarball.
fn npm_pack(folder: &Path, out: &Path, npm_env: &[(&str, PathBuf)]) -> PathBuf {
    let mut pack = Command::new("npm");
    pack.args(["pack", "--silent", "--pack-destination"])
        .arg(out)
        .arg(folder);
    for (k, v) in npm_env {
        pack.env(k, v);
    }
    let out_text = String::from_utf8(run(&mut pack).stdout).unwrap();
    out.join(out_text.trim().lines().last().unwrap().trim())
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_npm_packages_run_the_server_through_npx_as_the_example_config_says() {
    let scratch = Scratch::new();
    let home = scratch.dir.path();
    let npm_env = [
        ("npm_config_cache", home.join("npm-cache")),
        ("npm_config_update_notifier", PathBuf::from("false")),
        ("npm_config_offline", PathBuf::from("true")),
    ];
    let platform = common::tools::npm_platform();
    let tarballs = home.join("tarballs");
    std::fs::create_dir_all(&tarballs).unwrap();

    // This platform's package, around the binary under test.
    let platform_dir = home.join(format!("memorygraph-rs-{platform}"));
    run(Command::new("node")
        .arg(repo().join("packaging/npm/make-platform-package.mjs"))
        .arg(&platform)
        .arg(common::binary())
        .arg(&platform_dir));
    let platform_tgz = npm_pack(&platform_dir, &tarballs, &npm_env);
    let launcher_tgz = npm_pack(
        &repo().join("packaging/npm/memorygraph-rs"),
        &tarballs,
        &npm_env,
    );

    // A fresh folder, both installed from the tarballs.
    let project = home.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let mut install = Command::new("npm");
    install
        .current_dir(&project)
        .args(["install", "--no-audit", "--no-fund", "--no-save"])
        .arg(&platform_tgz)
        .arg(&launcher_tgz);
    for (k, v) in &npm_env {
        install.env(k, v);
    }
    run(&mut install);

    // The client configuration of the docs for after a release: npx and the package name.
    let mut cmd = clean("npx", home);
    cmd.current_dir(&project).args(["-y", "memorygraph-rs"]);
    for (k, v) in &npm_env {
        cmd.env(k, v);
    }
    mcp_session(cmd, "npx -y memorygraph-rs");

    // mcp-config.example.json as it is, but for the absolute path it asks the user to put
    // there: this build's binary.
    let example: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("mcp-config.example.json")).unwrap(),
    )
    .unwrap();
    let servers = example["mcpServers"].as_object().unwrap();
    assert!(!servers.is_empty());
    for (name, entry) in servers {
        let command = entry["command"].as_str().unwrap();
        assert!(
            std::path::Path::new(command).is_absolute() && command.ends_with("/memorygraph"),
            "{name}: the example's command is an absolute path to the binary: {entry}"
        );
        let mut cmd = clean(env!("CARGO_BIN_EXE_memorygraph"), home);
        for arg in entry["args"].as_array().into_iter().flatten() {
            cmd.arg(arg.as_str().unwrap());
        }
        for (k, v) in entry["env"].as_object().into_iter().flatten() {
            cmd.env(k, v.as_str().unwrap());
        }
        mcp_session(cmd, &format!("{name} of mcp-config.example.json"));
    }
}

#[test]
fn the_package_versions_follow_the_crate() {
    let version = env!("CARGO_PKG_VERSION");
    let launcher: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("packaging/npm/memorygraph-rs/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(launcher["version"], version);
    let platforms = launcher["optionalDependencies"].as_object().unwrap();
    let mut names: Vec<&String> = platforms.keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "memorygraph-rs-darwin-arm64",
            "memorygraph-rs-darwin-x64",
            "memorygraph-rs-linux-arm64",
            "memorygraph-rs-linux-x64",
            "memorygraph-rs-win32-x64",
        ]
    );
    for (name, wanted) in platforms {
        assert_eq!(wanted, version, "{name}");
    }
    // Every platform of the launcher is built by the release workflow.
    let workflow = std::fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    for name in names {
        let platform = name.trim_start_matches("memorygraph-rs-");
        assert!(
            workflow.contains(&format!("platform: {platform}\n")),
            "release.yml builds {platform}"
        );
    }
    let pyproject = std::fs::read_to_string(repo().join("pyproject.toml")).unwrap();
    assert!(pyproject.contains("name = \"memorygraph-rs\""));
    assert!(pyproject.contains("bindings = \"bin\""));
}

/// Every workflow passes actionlint, with shellcheck on the scripts of their steps, and
/// every action a workflow uses from elsewhere is pinned to a commit, its tag in a comment:
/// a tag can be moved to other code, a commit cannot.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs actionlint from PyPI; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn every_workflow_passes_actionlint_and_pins_its_actions() {
    let tools = common::tools::packaging_bin();
    let exe = if cfg!(windows) { ".exe" } else { "" };
    let shellcheck = tools.join(format!("shellcheck{exe}"));
    assert!(shellcheck.is_file(), "no {}", shellcheck.display());
    let folder = repo().join(".github/workflows");
    let mut workflows: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    workflows.sort();
    let names: Vec<String> = workflows
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert!(
        names.contains(&"ci.yml".to_string()) && names.contains(&"release.yml".to_string()),
        "{names:?}"
    );
    let out = Command::new(tools.join(format!("actionlint{exe}")))
        .current_dir(repo())
        .arg(format!("-shellcheck={}", shellcheck.display()))
        .args(&workflows)
        .output()
        .expect("run actionlint");
    assert!(
        out.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let mut pinned = 0;
    for (path, name) in workflows.iter().zip(&names) {
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let Some(action) = line.trim().trim_start_matches("- ").strip_prefix("uses: ") else {
                continue;
            };
            if action.starts_with("./") {
                // A workflow of this repository, at the same commit.
                continue;
            }
            let (reference, tag) = action.split_once(" # ").unwrap_or((action, ""));
            let commit = reference.split_once('@').map_or("", |(_, at)| at);
            assert!(
                commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
                "{name}: {reference} is not pinned to a commit"
            );
            assert!(
                tag.starts_with('v'),
                "{name}: {reference} does not say which tag its commit is"
            );
            pinned += 1;
        }
    }
    assert!(pinned >= 10, "only {pinned} actions found");
}
