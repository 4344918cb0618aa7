//! What a request must pass before MCP sees it: an allowed `Origin`, the bearer token, a
//! bounded body, and room for one more session. Each refusal is a plain status with a
//! sentence saying why; none of them names the token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};

/// Largest request body: the stdio server's line limit.
pub const MAX_BODY: usize = crate::mcp::transport::MAX_LINE_BYTES;

pub type Body = BoxBody<Bytes, std::convert::Infallible>;

/// A refusal: status, sentence, and for 401 the challenge.
pub fn refuse(status: StatusCode, why: &str) -> Response<Body> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": null,
        "error": {"code": -32001, "message": why}
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                "Bearer realm=\"memorygraph\", error=\"invalid_token\", error_description=\"see `memorygraph token show`\"",
            ),
        );
    }
    response
}

/// Whether a browser origin may call: origins of this server itself on loopback, and
/// those allowed by `--allow-origin`. A request without `Origin` (not from a browser)
/// passes; the token still applies.
pub fn origin_allowed(origin: Option<&HeaderValue>, port: u16, allowed: &[String]) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    if allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    ["localhost", "127.0.0.1", "[::1]"].iter().any(|host| {
        ["http", "https"]
            .iter()
            .any(|scheme| origin.eq_ignore_ascii_case(&format!("{scheme}://{host}:{port}")))
    })
}

/// Failed token checks by client address: each failure in a row doubles the wait before
/// the next answer (from 50 ms up to 5 s), so guessing is slow; a success clears it.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

const FORGET_AFTER: Duration = Duration::from_secs(600);

impl Throttle {
    /// How long to wait before answering this address's failed attempt.
    pub fn failed(&self, from: IpAddr) -> Duration {
        let mut failures = self.failures.lock().unwrap();
        failures.retain(|_, (_, at)| at.elapsed() < FORGET_AFTER);
        let entry = failures.entry(from).or_insert((0, Instant::now()));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = Instant::now();
        let doubling = entry.0.saturating_sub(1).min(7);
        Duration::from_millis(50 << doubling).min(Duration::from_secs(5))
    }

    pub fn succeeded(&self, from: IpAddr) {
        self.failures.lock().unwrap().remove(&from);
    }
}

/// Whether the request carries the token: `Authorization: Bearer <token>`.
pub fn bearer_matches<B>(request: &Request<B>, token: &str) -> bool {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let Some(presented) = value
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
        .map(|_| value[7..].trim_ascii())
    else {
        return false;
    };
    super::token::matches(presented, token.as_bytes())
}

/// Reads the body up to [`MAX_BODY`]; `None` when it is larger (or broken).
pub async fn bounded_body(
    request: Request<hyper1::body::Incoming>,
) -> Result<Request<Full<Bytes>>, Response<Body>> {
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request body is larger than the {MAX_BODY}-byte limit"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let (parts, body) = request.into_parts();
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(Request::from_parts(parts, Full::new(collected.to_bytes()))),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(e) => Err(refuse(
            StatusCode::BAD_REQUEST,
            &format!("reading the request body failed: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert!(origin_allowed(None, 7373, &[]));
        assert!(origin_allowed(Some(&v("http://127.0.0.1:7373")), 7373, &[]));
        assert!(origin_allowed(Some(&v("http://localhost:7373")), 7373, &[]));
        assert!(!origin_allowed(
            Some(&v("http://localhost:8000")),
            7373,
            &[]
        ));
        assert!(!origin_allowed(Some(&v("https://evil.example")), 7373, &[]));
        assert!(!origin_allowed(Some(&v("null")), 7373, &[]));
        let allowed = vec!["https://app.example".to_string()];
        assert!(origin_allowed(
            Some(&v("https://app.example")),
            7373,
            &allowed
        ));
    }

    #[test]
    fn failures_slow_down_and_a_success_clears_them() {
        let throttle = Throttle::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let waits: Vec<_> = (0..10).map(|_| throttle.failed(ip)).collect();
        assert_eq!(waits[0], Duration::from_millis(50));
        assert_eq!(waits[1], Duration::from_millis(100));
        assert!(waits[9] >= Duration::from_secs(5));
        throttle.succeeded(ip);
        assert_eq!(throttle.failed(ip), Duration::from_millis(50));
    }
}
