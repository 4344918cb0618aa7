//! The web view: pages to find, read, mend and see the memory, served by `serve --http` at
//! `/` and opened by `memorygraph ui`. The pages are plain HTML, CSS and JavaScript compiled
//! into the binary ([`assets`]); they call the same tools an assistant does, through one
//! endpoint, plus the owner's few requests that are not tools (settling conflicts, ending a
//! relationship, the change count), and every answer comes from the database's owner.
//!
//! Who may use it ([`session`]): a browser logs in once through a one-time link and holds an
//! HttpOnly, SameSite=Strict cookie. Every data request must also carry a header a page of
//! another site cannot send without this server's consent (which it never gives), come
//! from this server's own origin, and name a loopback host (DNS rebinding). Every answer
//! carries a Content-Security-Policy that allows this server's own files and nothing else.

pub mod assets;
pub mod session;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper1::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::guard::Body;
use crate::config::{Config, ToolProfile};
use crate::owner::client::OwnerCalls;
use crate::owner::link::Takeover;
use session::{COOKIE, SESSION_IDLE, Sessions};

/// Where a browser trades its one-time code for a session.
pub const LOGIN_PATH: &str = "/ui/login";
/// Where `memorygraph ui` asks a running server for a one-time link (bearer token needed).
pub const LINK_PATH: &str = "/ui/link";
/// The header every data request of the pages carries.
pub const PAGE_HEADER: &str = "x-memorygraph-ui";
/// Largest request body of a page's call.
const MAX_CALL_BODY: usize = 1024 * 1024;
/// Largest file a page may import.
const MAX_IMPORT_BODY: usize = 256 * 1024 * 1024;

/// Only this server's files, no inline script or style, no frames, no other origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The web view's state in one HTTP server.
pub struct Ui {
    pub sessions: Sessions,
    /// The server's settings with every tool offered: the pages use all of them.
    config: Config,
    /// The pages' own session with the owner, opened at the first call.
    calls: OnceCell<Arc<OwnerCalls>>,
    /// Served over HTTPS: the cookie is marked Secure.
    secure: bool,
    port: u16,
    /// Bound to loopback: the Host must name this machine.
    loopback: bool,
}

/// Whether a path belongs to the web view.
pub fn is_ui_path(path: &str) -> bool {
    path == "/" || path.starts_with("/ui/")
}

impl Ui {
    pub fn new(config: &Config, secure: bool, port: u16, loopback: bool) -> Ui {
        let mut config = config.clone();
        config.profile = ToolProfile::Extended;
        Ui {
            sessions: Sessions::default(),
            config,
            calls: OnceCell::new(),
            secure,
            port,
            loopback,
        }
    }

    /// A new one-time login path (`/ui/login?code=…`).
    pub fn new_login_path(&self) -> String {
        format!("{LOGIN_PATH}?code={}", self.sessions.new_code())
    }

    /// The answer to `memorygraph ui` asking a running server for a link.
    pub fn link_answer(&self) -> Response<Body> {
        json_answer(StatusCode::OK, &json!({"path": self.new_login_path()}))
    }

    /// Answers a request for `/` or `/ui/…`.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        if self.loopback && !self.host_is_loopback(request.headers().get(header::HOST)) {
            return text(
                StatusCode::MISDIRECTED_REQUEST,
                "this server answers to 127.0.0.1, localhost and [::1] only",
            );
        }
        let path = request.uri().path().to_string();
        let method = request.method().clone();
        // What anyone may fetch: the page shell, the login, the files (no data in them).
        match (&method, path.as_str()) {
            (&Method::GET, "/") => {
                let shell = if self.sessions.valid(request.headers().get(header::COOKIE)) {
                    assets::INDEX
                } else {
                    assets::LOGIN
                };
                return page(StatusCode::OK, "text/html; charset=utf-8", shell);
            }
            (&Method::GET, LOGIN_PATH) => return self.login(&request),
            (&Method::GET, p) if p.starts_with("/ui/assets/") => {
                return match assets::find(&p["/ui/assets/".len()..]) {
                    Some(a) => page(StatusCode::OK, a.content_type, a.body),
                    None => text(StatusCode::NOT_FOUND, "no such file"),
                };
            }
            _ => {}
        }
        // Everything else is data: a logged-in page of this server only.
        if let Some(refusal) = self.refusal(&request) {
            return refusal;
        }
        let owner_method = match (&method, path.as_str()) {
            (&Method::POST, "/ui/api/call") => return self.call(request).await,
            (&Method::GET, "/ui/api/vocabulary") => {
                return json_answer(StatusCode::OK, &vocabulary());
            }
            (&Method::GET, "/ui/api/changes") => {
                return self
                    .forward(
                        crate::mcp::CHANGES_METHOD,
                        json!({}),
                        StatusCode::BAD_GATEWAY,
                    )
                    .await;
            }
            (&Method::POST, "/ui/api/export") => return self.export(request).await,
            (&Method::POST, "/ui/api/import") => return self.import(request).await,
            (&Method::POST, "/ui/api/overview") => crate::mcp::OVERVIEW_METHOD,
            (&Method::POST, "/ui/api/conflicts") => crate::mcp::CONFLICTS_METHOD,
            (&Method::POST, "/ui/api/end-relationship") => crate::mcp::END_RELATIONSHIP_METHOD,
            _ => return text(StatusCode::NOT_FOUND, "nothing here"),
        };
        match read_object(request).await {
            Ok(params) => {
                self.forward(owner_method, params, StatusCode::BAD_REQUEST)
                    .await
            }
            Err(refusal) => refusal,
        }
    }

    fn host_is_loopback(&self, host: Option<&HeaderValue>) -> bool {
        let Some(host) = host.and_then(|h| h.to_str().ok()) else {
            return false;
        };
        ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|name| host.eq_ignore_ascii_case(&format!("{name}:{}", self.port)))
    }

    /// Trades the link's code for a session cookie, and sends the browser to `/` so the
    /// code does not stay in the address bar.
    fn login(&self, request: &Request<Incoming>) -> Response<Body> {
        let code = query_pairs(request)
            .find_map(|(name, value)| (name == "code").then_some(value))
            .unwrap_or("");
        let Some(id) = self.sessions.redeem(code) else {
            return text(
                StatusCode::FORBIDDEN,
                "this link was used already or has expired (links last 5 minutes and open one session); run `memorygraph ui` again",
            );
        };
        let mut answer = page(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
        answer
            .headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/"));
        self.set_cookie(&mut answer, &id, SESSION_IDLE.as_secs());
        answer
    }

    fn set_cookie(&self, answer: &mut Response<Body>, value: &str, max_age: u64) {
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = format!(
            "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
        );
        answer.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).expect("a cookie of hex digits"),
        );
    }

    /// A data request must hold a session, carry the pages' header, and come from this
    /// server's own origin; the answer refusing one that does not.
    fn refusal(&self, request: &Request<Incoming>) -> Option<Response<Body>> {
        let headers = request.headers();
        if !self.sessions.valid(headers.get(header::COOKIE)) {
            return Some(json_answer(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "not logged in: open the link `memorygraph ui` prints"}),
            ));
        }
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v != "same-origin" && v != "none");
        let foreign_origin =
            !super::guard::origin_allowed(headers.get(header::ORIGIN), self.port, &[]);
        (!headers.contains_key(PAGE_HEADER) || cross_site || foreign_origin).then(|| {
            json_answer(
                StatusCode::FORBIDDEN,
                &json!({"error": "requests from other sites are refused"}),
            )
        })
    }

    async fn owner(&self) -> Result<&Arc<OwnerCalls>, String> {
        self.calls
            .get_or_try_init(|| async {
                let place = crate::owner::Place::of(&self.config.database_path)
                    .map_err(|e| format!("{e:#}"))?;
                OwnerCalls::open(&self.config, place, Takeover::Allowed, "memorygraph-ui")
                    .await
                    .map(Arc::new)
                    .map_err(|e| format!("{e:#}"))
            })
            .await
    }

    /// One tool call: `{"name": tool, "arguments": {...}}` in, the tool's result out (a
    /// tool's refusal is a result too, with `isError`).
    async fn call(&self, request: Request<Incoming>) -> Response<Body> {
        let asked = match read_object(request).await {
            Ok(asked) if asked.get("name").is_some_and(Value::is_string) => asked,
            Ok(_) => {
                return json_answer(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": "a call is {\"name\": tool, \"arguments\": {...}}"}),
                );
            }
            Err(refusal) => return refusal,
        };
        let params = json!({
            "name": asked["name"],
            "arguments": asked.get("arguments").cloned().unwrap_or_else(|| json!({})),
        });
        self.forward("tools/call", params, StatusCode::BAD_GATEWAY)
            .await
    }

    /// A whole export as a file to save: the owner writes it next to the database (its
    /// answers over the channel are bounded, an export is not), this server sends it and
    /// removes it.
    async fn export(&self, request: Request<Incoming>) -> Response<Body> {
        let params = match read_object(request).await {
            Ok(params) => params,
            Err(refusal) => return refusal,
        };
        let written = match self
            .ask_owner(crate::mcp::EXPORT_METHOD, params, StatusCode::BAD_REQUEST)
            .await
        {
            Ok(written) => written,
            Err(refusal) => return refusal,
        };
        let path = std::path::PathBuf::from(written["path"].as_str().unwrap_or_default());
        let read = std::fs::read(&path);
        let _ = std::fs::remove_file(&path);
        let Ok(bytes) = read else {
            return json_answer(
                StatusCode::BAD_GATEWAY,
                &json!({"error": "the export file could not be read"}),
            );
        };
        let name = written["file_name"].as_str().unwrap_or("memories.txt");
        let mut response = answer(
            StatusCode::OK,
            "application/octet-stream",
            Bytes::from(bytes),
        );
        if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, value);
        }
        for (name, key) in [
            ("x-memorygraph-memories", "memories"),
            ("x-memorygraph-relationships", "relationships"),
        ] {
            if let Ok(value) = HeaderValue::from_str(&written[key].to_string()) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }

    /// Imports the file in the body (its choices in the query: `format`,
    /// `skip_duplicates`, `dry_run`, `allow_secrets`): put in a private file next to the
    /// database for the owner to read, removed afterwards.
    async fn import(&self, request: Request<Incoming>) -> Response<Body> {
        let mut params = json!({});
        for (name, value) in query_pairs(&request) {
            match name {
                "format" => params["format"] = json!(value),
                "skip_duplicates" | "dry_run" | "allow_secrets" => {
                    params[name] = json!(value == "1" || value == "true");
                }
                _ => {}
            }
        }
        let body = match Limited::new(request.into_body(), MAX_IMPORT_BODY)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                return json_answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &json!({"error": format!("a file to import may hold at most {} MB", MAX_IMPORT_BODY >> 20)}),
                );
            }
        };
        let Ok(text) = std::str::from_utf8(&body) else {
            return json_answer(
                StatusCode::BAD_REQUEST,
                &json!({"error": "the file is not UTF-8 text: import reads MemoryGraph's JSON export or the reference server's JSON Lines"}),
            );
        };
        let path =
            match crate::exchange::files::hand_over_path(&self.config.database_path, "import")
                .and_then(|path| crate::exchange::files::write_private(&path, text).map(|()| path))
            {
                Ok(path) => path,
                Err(e) => {
                    return json_answer(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &json!({"error": format!("{e:#}")}),
                    );
                }
            };
        params["path"] = json!(path);
        let report = self
            .ask_owner(crate::mcp::IMPORT_METHOD, params, StatusCode::BAD_REQUEST)
            .await;
        let _ = std::fs::remove_file(&path);
        match report {
            Ok(report) => json_answer(StatusCode::OK, &report),
            Err(refusal) => refusal,
        }
    }

    /// One request to the owner: its result, or the answer refusing it (a JSON-RPC error
    /// gets `refused` and its message, an owner that cannot be reached 502).
    async fn ask_owner(
        &self,
        method: &str,
        params: Value,
        refused: StatusCode,
    ) -> Result<Value, Response<Body>> {
        let owner = self
            .owner()
            .await
            .map_err(|e| json_answer(StatusCode::BAD_GATEWAY, &json!({"error": e})))?;
        owner
            .request(method, params)
            .await
            .map_err(|e| json_answer(refused, &json!({"error": e.message})))
    }

    /// Sends one request to the owner and answers with its result (see [`Ui::ask_owner`]).
    async fn forward(&self, method: &str, params: Value, refused: StatusCode) -> Response<Body> {
        match self.ask_owner(method, params, refused).await {
            Ok(answer) => json_answer(StatusCode::OK, &answer),
            Err(refusal) => refusal,
        }
    }
}

/// The `name=value` pairs of a request's query (values as sent: the pages send only
/// plain words and digits).
fn query_pairs<B>(request: &Request<B>) -> impl Iterator<Item = (&str, &str)> {
    request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
}

/// A page's request body: a JSON object of at most [`MAX_CALL_BODY`] bytes.
async fn read_object(request: Request<Incoming>) -> Result<Value, Response<Body>> {
    let body = Limited::new(request.into_body(), MAX_CALL_BODY)
        .collect()
        .await
        .map_err(|_| {
            json_answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"error": format!("a call may hold at most {MAX_CALL_BODY} bytes")}),
            )
        })?
        .to_bytes();
    match serde_json::from_slice::<Value>(&body) {
        Ok(object @ Value::Object(_)) => Ok(object),
        _ => Err(json_answer(
            StatusCode::BAD_REQUEST,
            &json!({"error": "send a JSON object"}),
        )),
    }
}

/// The memory types and the relationship types with their categories, for the pages'
/// choices: read from the model, so the pages never list a type the tools refuse.
fn vocabulary() -> Value {
    use crate::model::{MemoryType, RelationshipType};
    json!({
        "memory_types": MemoryType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "relationship_types": RelationshipType::ALL
            .iter()
            .map(|t| json!({"type": t.as_str(), "category": t.category().as_str()}))
            .collect::<Vec<_>>(),
    })
}

/// An answer with the headers every web-view answer carries.
fn page(status: StatusCode, content_type: &'static str, body: &'static str) -> Response<Body> {
    answer(status, content_type, Bytes::from_static(body.as_bytes()))
}

fn text(status: StatusCode, why: &'static str) -> Response<Body> {
    page(status, "text/plain; charset=utf-8", why)
}

fn json_answer(status: StatusCode, value: &Value) -> Response<Body> {
    answer(status, "application/json", Bytes::from(value.to_string()))
}

fn answer(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body).boxed());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
