//! Who may see the web view: a one-time link (made for `memorygraph ui` by someone holding
//! the bearer token) is traded once for a session cookie. The cookie is HttpOnly and
//! SameSite=Strict, so page scripts cannot read it and other sites' pages cannot send it;
//! the bearer token itself never reaches the browser.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "memorygraph_session";
/// How long a one-time link may wait before it is used.
pub const LINK_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// How long a browser session lasts without being used.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 60 * 60);
/// Most links and sessions kept; the oldest go first.
const MOST_KEPT: usize = 256;

/// One-time codes and open sessions, in memory: a restart logs every browser out.
#[derive(Default)]
pub struct Sessions {
    codes: Mutex<HashMap<String, Instant>>,
    open: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    /// A new one-time code for a login link.
    pub fn new_code(&self) -> String {
        let code = secret();
        let mut codes = self.codes.lock().expect("sessions");
        keep_room(&mut codes, LINK_LIFETIME);
        codes.insert(code.clone(), Instant::now());
        code
    }

    /// Trades a code for a session id; `None` when the code is unknown, used or expired.
    pub fn redeem(&self, code: &str) -> Option<String> {
        let made = self.codes.lock().expect("sessions").remove(code)?;
        if made.elapsed() > LINK_LIFETIME {
            return None;
        }
        let session = secret();
        let mut open = self.open.lock().expect("sessions");
        keep_room(&mut open, SESSION_IDLE);
        open.insert(session.clone(), Instant::now());
        Some(session)
    }

    /// Whether the request's cookie names an open session (and keeps it open).
    pub fn valid(&self, cookie_header: Option<&http::HeaderValue>) -> bool {
        let Some(id) = cookie_header
            .and_then(|v| v.to_str().ok())
            .and_then(session_cookie)
        else {
            return false;
        };
        let mut open = self.open.lock().expect("sessions");
        match open.get_mut(id) {
            Some(used) if used.elapsed() <= SESSION_IDLE => {
                *used = Instant::now();
                true
            }
            Some(_) => {
                open.remove(id);
                false
            }
            None => false,
        }
    }
}

/// The value of our cookie in a `Cookie` header.
fn session_cookie(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// Drops expired entries, then the oldest while there are too many.
fn keep_room(map: &mut HashMap<String, Instant>, lifetime: Duration) {
    map.retain(|_, at| at.elapsed() <= lifetime);
    while map.len() >= MOST_KEPT {
        let oldest = map
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(k, _)| k.clone())
            .expect("not empty");
        map.remove(&oldest);
    }
}

/// 244 random bits from the system's generator (two v4 uuids), as hex.
fn secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_opens_one_session_once() {
        let sessions = Sessions::default();
        let code = sessions.new_code();
        let id = sessions.redeem(&code).expect("a fresh code");
        assert!(sessions.redeem(&code).is_none(), "used twice");
        let header = http::HeaderValue::from_str(&format!("other=1; {COOKIE}={id}")).unwrap();
        assert!(sessions.valid(Some(&header)));
        let wrong = http::HeaderValue::from_str(&format!("{COOKIE}={code}")).unwrap();
        assert!(!sessions.valid(Some(&wrong)));
        assert!(!sessions.valid(None));
    }
}
