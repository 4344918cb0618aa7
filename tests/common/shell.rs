//! A bash session for running the shell examples of a page as a reader does: HOME and the
//! working folder are a temporary folder, `memorygraph` on the PATH is the binary under test,
//! and no setting of the caller's environment leaks in. Each block runs with `set -e`: with
//! `run` in a subshell, so a block's `export` stays in it while its files stay for the next
//! block; with `run_in_session` in the session itself, so its `export` stays too.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const DONE: &str = "__doc_block_done__";

pub struct Shell {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    pub home: PathBuf,
}

impl Shell {
    /// A shell in `home` (also its working folder) with `memorygraph` first on the PATH and
    /// the variables `env` set.
    pub fn start(home: &Path, env: &[(&str, &str)]) -> Shell {
        let bin_dir = home.join(".bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(super::binary(), bin_dir.join("memorygraph")).unwrap();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin_dir];
        paths.extend(std::env::split_paths(&path));
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc"])
            .env("HOME", home)
            .env("PATH", std::env::join_paths(paths).unwrap())
            .current_dir(home);
        for (var, _) in std::env::vars_os() {
            let var = var.to_string_lossy().to_string();
            if var.starts_with("MEMORY_")
                || var.starts_with("TURSO_")
                || var.starts_with("MEMORYGRAPH_")
            {
                cmd.env_remove(var);
            }
        }
        cmd.envs(env.iter().copied());
        // Its own process group, so that dropping it also stops a command still running.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bash");
        let lines = super::lines_of(child.stdout.take().unwrap());
        Shell {
            stdin: child.stdin.take().unwrap(),
            child,
            lines,
            home: home.to_path_buf(),
        }
    }

    /// Runs `code` in a subshell that stops at its first failing command (stdin empty,
    /// stderr with stdout) and returns what it printed, or `Err` with that and the exit
    /// status when it failed.
    pub fn run(&mut self, code: &str) -> Result<String, String> {
        self.script(&format!(
            "( set -e\n{code}\n) < /dev/null 2>&1\necho \"{DONE} $?\"\n"
        ))
    }

    /// Runs `code` in the session itself, as a reader types it into one terminal: its
    /// `export`s, functions and `cd` stay for the next block. Otherwise as [`Shell::run`],
    /// except that a failing command ends the session, so every later block fails too.
    pub fn run_in_session(&mut self, code: &str) -> Result<String, String> {
        self.script(&format!(
            "{{ set -e\n{code}\n}} < /dev/null 2>&1\necho \"{DONE} $?\"\n"
        ))
    }

    fn script(&mut self, script: &str) -> Result<String, String> {
        let sent = self.stdin.write_all(script.as_bytes());
        if sent.and_then(|()| self.stdin.flush()).is_err() {
            return Err("(the shell had stopped: an earlier command failed)".to_string());
        }
        let mut output = String::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(180)) {
                Ok(line) => match line.strip_prefix(DONE) {
                    Some(status) if status.trim() == "0" => return Ok(output),
                    Some(status) => {
                        return Err(format!("{output}(exit status {})", status.trim()));
                    }
                    None => {
                        output.push_str(&line);
                        output.push('\n');
                    }
                },
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("{output}(no end within 180 s)"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("{output}(the shell stopped: a command failed)"));
                }
            }
        }
    }
}

impl Drop for Shell {
    /// Stops the shell and whatever it still runs (its process group, which it leads).
    fn drop(&mut self) {
        #[cfg(unix)]
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
