//! The web view's files, compiled into the binary: nothing is fetched from anywhere else,
//! so the pages work offline and the Content-Security-Policy can forbid every other origin.

/// A file of the web view: its name under `/ui/assets/`, its type and its bytes.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_str!(concat!("../../../web/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the pages load.
pub const ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("find.js", JS),
    asset!("memory.js", JS),
    asset!("graph.js", JS),
    asset!("timeline.js", JS),
    asset!("health.js", JS),
    asset!("relationships.js", JS),
    asset!("files.js", JS),
];

/// The page shell, served at `/` to a logged-in browser.
pub const INDEX: &str = include_str!("../../../web/index.html");
/// Served at `/` without a session: how to get in.
pub const LOGIN: &str = include_str!("../../../web/login.html");

pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}
