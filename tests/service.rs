//! `memorygraph service` on Linux: the systemd user unit and its private environment file,
//! checked by systemd's own verifier; `status` naming the process that owns the database;
//! `uninstall` removing what `install` wrote; bad input writing nothing.
//!
//! Every command runs with HOME and XDG_CONFIG_HOME in a temporary folder and without a
//! session bus, so `systemctl --user` cannot reach a real user manager: the tests never touch
//! the services of the user running them.

#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::Server;
use common::run::{Ran, ran};
use serde_json::json;

/// A home folder of its own, its config folder beside it, and a database path with a space.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> PathBuf {
        self.path().join("config")
    }

    fn units(&self) -> PathBuf {
        self.config().join("systemd/user")
    }

    fn unit(&self) -> PathBuf {
        self.units().join("memorygraph.service")
    }

    fn env_file(&self) -> PathBuf {
        self.units().join("memorygraph.env")
    }

    /// Given relative to the home folder, where the commands run: the service must get it
    /// absolute.
    const DB: &str = "my data/memory.db";

    fn db(&self) -> PathBuf {
        self.path().join(Self::DB)
    }

    /// The binary with this home, no session bus and the database set.
    fn command(&self) -> Command {
        let mut cmd = common::command(self.path());
        cmd.env("XDG_CONFIG_HOME", self.config())
            .env("MEMORY_TURSO_PATH", Self::DB)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .current_dir(self.path());
        cmd
    }

    fn run(&self, args: &[&str]) -> Ran {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let mut cmd = self.command();
        cmd.envs(env.iter().copied())
            .args(args)
            .stdin(Stdio::null());
        ran(cmd.output().expect("run memorygraph"))
    }

    /// Every path under the home folder.
    fn contents(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![self.path().to_path_buf()];
        while let Some(dir) = todo.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    todo.push(path.clone());
                }
                out.push(path);
            }
        }
        out
    }
}

fn binary() -> String {
    std::fs::canonicalize(common::binary())
        .unwrap()
        .display()
        .to_string()
}

/// `systemd-analyze --user verify` on the unit: it must load it with no complaint about it
/// (unknown keys, bad values, a command that is not executable are printed, not failed on).
/// Where systemd is not installed the test fails, unless MEMORYGRAPH_SKIP_SYSTEMD=1 says to
/// skip this check.
fn systemd_accepts(home: &Home) {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert_eq!(
            std::env::var("MEMORYGRAPH_SKIP_SYSTEMD").as_deref(),
            Ok("1"),
            "systemd-analyze is not installed (Debian: apt-get install systemd); \
             MEMORYGRAPH_SKIP_SYSTEMD=1 skips this check"
        );
        eprintln!(
            "SKIPPED: systemd-analyze verify (MEMORYGRAPH_SKIP_SYSTEMD=1, systemd-analyze not installed)"
        );
        return;
    }
    // The user manager's verifier needs a runtime folder; a private one of our own.
    let runtime = tempfile::tempdir().unwrap();
    std::fs::set_permissions(runtime.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["--user", "verify"])
        .arg(home.unit())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.config())
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{said}"
    );
    let about_the_unit: Vec<&str> = said.lines().filter(|l| l.contains("memorygraph")).collect();
    assert!(
        about_the_unit.is_empty(),
        "systemd-analyze verify complained:\n{said}\n{}",
        std::fs::read_to_string(home.unit()).unwrap()
    );
}

#[test]
fn install_writes_a_unit_systemd_accepts_and_a_private_environment_file() {
    let home = Home::new();
    let settings = [
        ("TURSO_DATABASE_URL", "http://127.0.0.1:9"),
        ("TURSO_AUTH_TOKEN", "token-that-stays-private"),
        ("MEMORY_TOOL_PROFILE", "extended"),
        ("MEMORY_TURSO_SYNC_INTERVAL", "60"),
    ];
    let out = home.run_with(&["service", "install"], &settings).ok();
    assert!(
        out.stdout.contains("systemctl --user is not reachable here")
            && out.stdout.contains(
                "systemctl --user daemon-reload && systemctl --user enable --now memorygraph.service"
            ),
        "install says how to start the service where systemctl cannot: {}",
        out.stdout
    );

    let unit = std::fs::read_to_string(home.unit()).expect("the unit is written");
    let exec = format!("ExecStart={} serve --no-stdio\n", binary());
    assert!(unit.contains(&exec), "{exec} in:\n{unit}");
    assert!(unit.contains(&format!("EnvironmentFile={}\n", home.env_file().display())));
    assert!(unit.contains("Restart=on-failure\n") && unit.contains("WantedBy=default.target\n"));
    assert!(!unit.contains("token-that-stays-private"), "{unit}");
    assert!(
        !home.path().join(".config").exists(),
        "XDG_CONFIG_HOME is the folder, not ~/.config"
    );

    let mode = std::fs::metadata(home.env_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the environment file is the user's alone"
    );
    let env = std::fs::read_to_string(home.env_file()).unwrap();
    let lines: Vec<&str> = env.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        vec![
            format!("MEMORY_TURSO_PATH='{}'", home.db().display()),
            "TURSO_DATABASE_URL='http://127.0.0.1:9'".to_string(),
            "TURSO_AUTH_TOKEN='token-that-stays-private'".to_string(),
            "MEMORY_TURSO_SYNC_INTERVAL='60'".to_string(),
            "MEMORY_TOOL_PROFILE='extended'".to_string(),
            "MEMORY_LOG_LEVEL='warn'".to_string(),
        ],
        "the settings in effect, the database path absolute:\n{env}"
    );
    assert!(!out.stdout.contains("token-that-stays-private"));
    systemd_accepts(&home);

    // Installing again replaces the files: here with HTTP on a loopback address.
    home.run(&["service", "install", "--http", "127.0.0.1:8765"])
        .ok();
    let unit = std::fs::read_to_string(home.unit()).unwrap();
    let exec = format!("ExecStart={} serve --http 127.0.0.1:8765\n", binary());
    assert!(unit.contains(&exec), "{exec} in:\n{unit}");
    let env = std::fs::read_to_string(home.env_file()).unwrap();
    assert!(
        !env.contains("TURSO_AUTH_TOKEN"),
        "the settings of this install only: {env}"
    );
    systemd_accepts(&home);
}

#[test]
fn status_reports_the_running_owner_and_none_after_it_stops() {
    let home = Home::new();
    std::fs::create_dir_all(home.db().parent().unwrap()).unwrap();
    let mut cmd = home.command();
    cmd.arg("serve");
    let mut server = Server::spawn(cmd);
    server.initialize("2025-06-18");
    let pid = server.pid();

    let status = home.run(&["--json", "service", "status"]).ok().json();
    assert_eq!(status["installed"], json!(false), "{status}");
    assert_eq!(status["file"], json!(home.unit().display().to_string()));
    assert_eq!(status["manager"]["reachable"], json!(false), "{status}");
    assert_eq!(
        status["database"],
        json!(home.db().canonicalize().unwrap().display().to_string())
    );
    let owner = &status["owner"];
    assert_eq!(owner["pid"], json!(pid), "{status}");
    assert_eq!(owner["version"], json!(env!("CARGO_PKG_VERSION")));
    assert!(owner["since"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(owner["http"], json!(null));
    assert_eq!(
        owner["is_service"],
        json!(null),
        "unknown without the service manager"
    );
    let text = home.run(&["service", "status"]).ok().stdout;
    assert!(
        text.contains("service: not installed")
            && text.contains("manager: not reachable")
            && text.contains(&format!("owner: pid {pid}, memorygraph ")),
        "{text}"
    );

    assert!(server.stop().success());
    let status = home.run(&["--json", "service", "status"]).ok().json();
    assert_eq!(status["owner"], json!(null), "{status}");
    let text = home.run(&["service", "status"]).ok().stdout;
    assert!(
        text.contains(&format!(
            "owner: no process holds {}",
            home.db().canonicalize().unwrap().display()
        )),
        "{text}"
    );
}

#[test]
fn uninstall_removes_the_files_and_says_when_there_is_nothing_to_remove() {
    let home = Home::new();
    home.run(&["service", "install"]).ok();
    // What `systemctl --user enable` links, left as it would be by an earlier enable.
    let wants = home.units().join("default.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(home.unit(), wants.join("memorygraph.service")).unwrap();
    let status = home.run(&["--json", "service", "status"]).ok().json();
    assert_eq!(status["installed"], json!(true), "{status}");

    let out = home.run(&["service", "uninstall"]).ok();
    for file in [home.unit(), home.env_file()] {
        assert!(!file.exists(), "{} is removed", file.display());
        assert!(
            out.stdout.contains(&format!("Removed {}", file.display())),
            "{}",
            out.stdout
        );
    }
    assert!(
        std::fs::symlink_metadata(wants.join("memorygraph.service")).is_err(),
        "the enable link goes too"
    );
    let status = home.run(&["--json", "service", "status"]).ok().json();
    assert_eq!(status["installed"], json!(false), "{status}");

    let again = home.run(&["service", "uninstall"]).ok();
    assert_eq!(
        again.stdout.trim(),
        format!(
            "Nothing to remove: no memorygraph.service in {}.",
            home.units().display()
        )
    );
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let home = Home::new();
    // The command line, the environment, and what the error must name.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 6] = [
        (&["service", "install", "--bogus"], &[], "--bogus"),
        (
            &["service", "install", "--http", "not-an-address"],
            &[],
            "not an address and port",
        ),
        (
            &["service", "install", "--http", "127.0.0.1"],
            &[],
            "not an address and port",
        ),
        (
            &["service", "install", "--http", "0.0.0.0:8765"],
            &[],
            "not a loopback address",
        ),
        (
            &["service", "install"],
            &[("MEMORY_TOOL_PROFILE", "huge")],
            "MEMORY_TOOL_PROFILE",
        ),
        (&["service"], &[], "Usage"),
    ];
    for (args, env, said) in cases {
        let out = home.run_with(args, env);
        assert_eq!(out.code, 2, "{args:?} {env:?}: {}", out.stderr);
        assert!(out.stderr.contains(said), "{args:?}: {}", out.stderr);
        assert!(
            home.contents().is_empty(),
            "{args:?} wrote {:?}",
            home.contents()
        );
    }
}
