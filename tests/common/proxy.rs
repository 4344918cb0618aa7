//! A small TCP proxy on 127.0.0.1 in front of the primary, for network faults a killed
//! process cannot make: it forwards, black-holes (accepts and reads, never answers), cuts
//! every open connection mid-stream, adds latency to every request, plays a gateway that
//! answers requests holding some bytes with an HTTP error and a web page, or passes a request
//! on and loses its answer (the primary did it; the client never hears). Stops with the
//! test.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FORWARD: u8 = 0;
const BLACK_HOLE: u8 = 1;

/// A gateway's refusal: requests whose bytes contain `pattern` get `status` and a page.
#[derive(Clone)]
struct Refusal {
    pattern: Vec<u8>,
    status: u16,
}

/// What the proxy does besides forwarding, shared with its threads.
#[derive(Default)]
struct Faults {
    refusal: Mutex<Option<Refusal>>,
    delay: Mutex<Duration>,
    /// The next request holding these bytes reaches the primary; its answer does not.
    lose: Mutex<Option<Vec<u8>>>,
    lost: AtomicUsize,
}

pub struct Proxy {
    pub port: u16,
    faults: Arc<Faults>,
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
            faults: Arc::default(),
            mode: Arc::new(AtomicU8::new(FORWARD)),
            open: Arc::default(),
            stopped: Arc::default(),
        };
        let (mode, open, stopped, faults) = (
            proxy.mode.clone(),
            proxy.open.clone(),
            proxy.stopped.clone(),
            proxy.faults.clone(),
        );
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        connect(client, upstream, &mode, &open, &stopped, &faults);
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

    /// Plays a gateway: a request whose bytes contain `pattern` is answered with `status`
    /// and an HTML page, and its connection closed; the primary never sees it.
    pub fn refuse(&self, pattern: &str, status: u16) {
        *self.faults.refusal.lock().unwrap() = Some(Refusal {
            pattern: pattern.as_bytes().to_vec(),
            status,
        });
    }

    /// The gateway stops refusing.
    pub fn relent(&self) {
        *self.faults.refusal.lock().unwrap() = None;
    }

    /// Every request waits this long before it is passed on.
    pub fn delay(&self, by: Duration) {
        *self.faults.delay.lock().unwrap() = by;
    }

    /// The next request holding `pattern` is passed on, and the primary's answer dropped;
    /// from then on the proxy is a black hole, as if the network went at that moment.
    pub fn lose_answer(&self, pattern: &str) {
        *self.faults.lose.lock().unwrap() = Some(pattern.as_bytes().to_vec());
    }

    /// How many answers were lost.
    pub fn answers_lost(&self) -> usize {
        self.faults.lost.load(Ordering::SeqCst)
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
    faults: &Arc<Faults>,
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
    let losing = Arc::new(AtomicBool::new(false));
    for (from, to, upward) in [
        (
            client.try_clone().unwrap(),
            server.try_clone().unwrap(),
            true,
        ),
        (server, client, false),
    ] {
        let link = Link {
            mode: mode.clone(),
            faults: faults.clone(),
            losing: losing.clone(),
            upward,
        };
        std::thread::spawn(move || pipe(from, to, link));
    }
}

/// One direction of one connection, and what it shares.
struct Link {
    mode: Arc<AtomicU8>,
    faults: Arc<Faults>,
    /// This connection passed on a request whose answer is to be lost.
    losing: Arc<AtomicBool>,
    /// Towards the primary.
    upward: bool,
}

/// Copies bytes until either side closes; in black-hole mode drops them instead. Upward
/// (towards the primary), each read waits the delay, one that holds the refusal's pattern
/// is answered by the gateway instead, and one that holds the lost answer's pattern marks
/// the connection; downward, a marked connection's answer is dropped.
fn pipe(mut from: TcpStream, mut to: TcpStream, link: Link) {
    let Link {
        mode,
        faults,
        losing,
        upward,
    } = link;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if mode.load(Ordering::SeqCst) == BLACK_HOLE {
            continue;
        }
        if !upward && losing.load(Ordering::SeqCst) {
            mode.store(BLACK_HOLE, Ordering::SeqCst);
            faults.lost.fetch_add(1, Ordering::SeqCst);
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
        if upward {
            {
                let mut lose = faults.lose.lock().unwrap();
                if lose
                    .as_ref()
                    .is_some_and(|p| buf[..n].windows(p.len()).any(|w| w == p.as_slice()))
                {
                    *lose = None;
                    losing.store(true, Ordering::SeqCst);
                }
            }
            let delay = *faults.delay.lock().unwrap();
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            let refusal = faults.refusal.lock().unwrap().clone();
            if let Some(r) = refusal
                && buf[..n].windows(r.pattern.len()).any(|w| w == r.pattern)
            {
                let page = format!(
                    "<!DOCTYPE html><html><head><title>{0} Forbidden</title></head><body><h1>Access denied</h1><p>This request was blocked by the network policy.</p></body></html>",
                    r.status
                );
                let answer = format!(
                    "HTTP/1.1 {} Forbidden\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    r.status,
                    page.len()
                );
                let _ = from.write_all(answer.as_bytes());
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
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
