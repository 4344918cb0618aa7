//! A small TCP proxy on 127.0.0.1 in front of the primary, for network faults a killed
//! process cannot make: it forwards, black-holes (accepts and reads, never answers), or
//! cuts every open connection mid-stream. Stops with the test.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FORWARD: u8 = 0;
const BLACK_HOLE: u8 = 1;

pub struct Proxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    stopped: Arc<AtomicBool>,
}

impl Proxy {
    /// Starts forwarding 127.0.0.1:<new port> to 127.0.0.1:`upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            mode: Arc::new(AtomicU8::new(FORWARD)),
            open: Arc::default(),
            stopped: Arc::default(),
        };
        let (mode, open, stopped) = (
            proxy.mode.clone(),
            proxy.open.clone(),
            proxy.stopped.clone(),
        );
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        connect(client, upstream, &mode, &open, &stopped);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        proxy
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// New and open connections are swallowed: bytes in, nothing out, nothing closed.
    pub fn black_hole(&self) {
        self.mode.store(BLACK_HOLE, Ordering::SeqCst);
    }

    /// Back to forwarding (connections opened meanwhile stay black holes until cut).
    pub fn forward(&self) {
        self.mode.store(FORWARD, Ordering::SeqCst);
    }

    /// Closes every open connection at once, as a dropped network does.
    pub fn cut(&self) {
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.cut();
    }
}

fn connect(
    client: TcpStream,
    upstream: u16,
    mode: &Arc<AtomicU8>,
    open: &Arc<Mutex<Vec<TcpStream>>>,
    stopped: &Arc<AtomicBool>,
) {
    open.lock().unwrap().push(client.try_clone().unwrap());
    if mode.load(Ordering::SeqCst) == BLACK_HOLE {
        swallow(client, stopped.clone());
        return;
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    open.lock().unwrap().push(server.try_clone().unwrap());
    for (from, to) in [
        (client.try_clone().unwrap(), server.try_clone().unwrap()),
        (server, client),
    ] {
        let mode = mode.clone();
        std::thread::spawn(move || pipe(from, to, mode));
    }
}

/// Copies bytes until either side closes; in black-hole mode drops them instead.
fn pipe(mut from: TcpStream, mut to: TcpStream, mode: Arc<AtomicU8>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if mode.load(Ordering::SeqCst) == BLACK_HOLE {
            continue;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn swallow(mut client: TcpStream, stopped: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let _ = client.set_read_timeout(Some(Duration::from_millis(200)));
        let mut buf = [0u8; 16 * 1024];
        while !stopped.load(Ordering::SeqCst) {
            match client.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
    });
}
