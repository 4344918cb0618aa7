//! Running one command-line command of the real binary against a database, the way a
//! person or a script does.

use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;

/// What a command did.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Fails the test unless the command succeeded.
    pub fn ok(self) -> Ran {
        assert_eq!(
            self.code, 0,
            "command failed; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Standard output parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

pub fn ran(out: Output) -> Ran {
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `memorygraph ARGS` on the database `db`, stdin closed, output piped.
pub fn run(db: &Path, args: &[&str]) -> Ran {
    let mut cmd = super::command(db.parent().unwrap());
    cmd.env("MEMORY_TURSO_PATH", db)
        .args(args)
        .stdin(Stdio::null());
    ran(cmd.output().expect("run memorygraph"))
}

/// Runs `memorygraph ARGS` on `db` with `input` on stdin.
pub fn run_with_input(db: &Path, args: &[&str], input: &str) -> Ran {
    use std::io::Write;
    let mut cmd = super::command(db.parent().unwrap());
    cmd.env("MEMORY_TURSO_PATH", db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run memorygraph");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    ran(child.wait_with_output().unwrap())
}
