//! `serve --http` for the benchmark: the server started on a free loopback port, and one
//! kept-alive connection to it, the way an HTTP client or a browser holds one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `serve --http`, stopped (SIGTERM) when dropped.
pub struct Served {
    child: Child,
    /// host:port
    pub address: String,
}

impl Served {
    pub fn start(server: &Path, db: &Path, env: &[(&str, String)]) -> Served {
        let mut cmd = Command::new(server);
        // Outside any repository: the benchmark's memories belong to no project.
        cmd.current_dir(db.parent().unwrap_or(Path::new("/")))
            .env("MEMORY_TURSO_PATH", db)
            .env("MEMORY_LOG_LEVEL", "error")
            .env("MEMORY_TOOL_PROFILE", "extended")
            .args(["serve", "--http", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let address = loop {
            line.clear();
            assert!(err.read_line(&mut line).unwrap() > 0, "serve --http ended");
            if let Some(rest) = line.split("MCP over HTTP at http://").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches("/mcp")
                    .to_string();
            }
        };
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        Served { child, address }
    }

    /// A new kept-alive connection.
    pub fn connect(&self) -> Connection {
        let stream = TcpStream::connect(&self.address).unwrap();
        stream.set_nodelay(true).unwrap();
        Connection {
            stream: BufReader::new(stream),
            address: self.address.clone(),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// What the server answered.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One kept-alive connection: one request at a time.
pub struct Connection {
    stream: BufReader<TcpStream>,
    address: String,
}

impl Connection {
    /// One request, and its whole answer (with `Content-Length`, or chunked).
    pub fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(body);
        self.stream.get_mut().write_all(head.as_bytes()).unwrap();
        let mut status = String::new();
        self.stream.read_line(&mut status).unwrap();
        let status = status
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut answer = Answer {
            status,
            headers: Vec::new(),
            body: String::new(),
        };
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                answer
                    .headers
                    .push((n.trim().to_string(), v.trim().to_string()));
            }
        }
        let mut out = Vec::new();
        if let Some(length) = answer.header("content-length") {
            out = vec![0; length.parse().unwrap()];
            self.stream.read_exact(&mut out).unwrap();
        } else if answer
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            loop {
                let mut size = String::new();
                self.stream.read_line(&mut size).unwrap();
                let size = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                self.stream.read_exact(&mut chunk).unwrap();
                if size == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..size]);
            }
        }
        answer.body = String::from_utf8_lossy(&out).into_owned();
        answer
    }
}
