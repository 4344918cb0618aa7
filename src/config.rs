//! The server's settings, resolved once at start: command-line flag, else environment
//! variable, else default. Every value is checked here so a wrong setting stops the program
//! before it serves, with one line naming the variable and what it allows.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

pub use crate::backend::Durability;

/// Settings as given on the command line or in the environment, before checking.
#[derive(Debug, Clone, Default, Args)]
pub struct Settings {
    /// Storage engine: `turso` (libsql, the default) or `sqlite` (the same engine, reading
    /// MEMORY_SQLITE_PATH, for MemoryGraph configurations).
    #[arg(
        long = "backend",
        env = "MEMORY_BACKEND",
        global = true,
        value_name = "NAME"
    )]
    pub backend: Option<String>,

    /// Database file [default: ~/.memorygraph/memory.db; on Windows %USERPROFILE%\.memorygraph\memory.db].
    #[arg(
        long = "turso-path",
        env = "MEMORY_TURSO_PATH",
        global = true,
        value_name = "FILE"
    )]
    pub turso_path: Option<PathBuf>,

    /// Database file when the backend is `sqlite`, or when it is set and MEMORY_BACKEND and
    /// MEMORY_TURSO_PATH are not (MemoryGraph's own setting) [default: ~/.memorygraph/memory.db].
    #[arg(
        long = "sqlite-path",
        env = "MEMORY_SQLITE_PATH",
        global = true,
        value_name = "FILE"
    )]
    pub sqlite_path: Option<PathBuf>,

    /// URL of a libsql/Turso primary; setting it selects replica mode.
    #[arg(
        long = "database-url",
        env = "TURSO_DATABASE_URL",
        global = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// Auth token for the primary (prefer the environment variable: flags are visible to
    /// other users of the machine).
    #[arg(
        long = "auth-token",
        env = "TURSO_AUTH_TOKEN",
        global = true,
        value_name = "TOKEN",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    pub auth_token: Option<Secret>,

    /// Sync with the primary automatically: true or false [default: true].
    #[arg(
        long = "auto-sync",
        env = "MEMORY_TURSO_AUTO_SYNC",
        global = true,
        value_name = "BOOL"
    )]
    pub auto_sync: Option<String>,

    /// Seconds between background syncs [default: 300].
    #[arg(
        long = "sync-interval",
        env = "MEMORY_TURSO_SYNC_INTERVAL",
        global = true,
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    pub sync_interval: Option<String>,

    /// Tool set: core (lite) or extended (standard, full) [default: core].
    #[arg(
        long = "tool-profile",
        env = "MEMORY_TOOL_PROFILE",
        global = true,
        value_name = "PROFILE"
    )]
    pub tool_profile: Option<String>,

    /// Log level on stderr: error, warn, info, debug, trace or off [default: info].
    #[arg(
        long = "log-level",
        env = "MEMORY_LOG_LEVEL",
        global = true,
        value_name = "LEVEL"
    )]
    pub log_level: Option<String>,

    /// Allow relationships that close a cycle among links of one type [default: false].
    #[arg(
        long = "allow-cycles",
        env = "MEMORY_ALLOW_CYCLES",
        global = true,
        value_name = "BOOL"
    )]
    pub allow_cycles: Option<String>,

    /// Largest tool answer in characters, at least 2000 [default: 16000].
    #[arg(
        long = "max-response-chars",
        env = "MEMORY_MAX_RESPONSE_CHARS",
        global = true,
        value_name = "CHARS",
        allow_hyphen_values = true
    )]
    pub max_response_chars: Option<String>,

    /// What a stored memory survives: `normal` (a crash of the program or of the editor) or
    /// `full` (also a power cut or an OS crash, at the cost of one fsync per write)
    /// [default: normal].
    #[arg(
        long = "durability",
        env = "MEMORY_DURABILITY",
        global = true,
        value_name = "normal|full"
    )]
    pub durability: Option<String>,

    /// What a store does when the new memory says nearly the same as one stored already:
    /// `list` the close ones in its answer, also `link` them with SIMILAR_TO, or stay
    /// silent (`off`) [default: list].
    #[arg(
        long = "near-duplicates",
        env = "MEMORY_NEAR_DUPLICATES",
        global = true,
        value_name = "list|link|off"
    )]
    pub near_duplicates: Option<String>,
}

/// Which tools are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolProfile {
    /// The nine everyday tools plus `health` and `sync`.
    Core,
    /// Core plus statistics, relationship search and contextual search.
    Extended,
}

impl ToolProfile {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolProfile::Core => "core",
            ToolProfile::Extended => "extended",
        }
    }
}

/// What a store does about a near-duplicate (see `backend::near`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NearDuplicates {
    /// Name the close memories in the answer.
    #[default]
    List,
    /// Name them and link the new memory to each with SIMILAR_TO.
    Link,
    /// Say nothing.
    Off,
}

impl std::str::FromStr for NearDuplicates {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "list" => Ok(NearDuplicates::List),
            "link" => Ok(NearDuplicates::Link),
            "off" => Ok(NearDuplicates::Off),
            other => Err(format!("{other:?} is not list, link or off")),
        }
    }
}

/// An auth token: kept out of every `Debug` and `Display` print.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

/// Reads a token from the command line or the environment straight into a `Secret`, so
/// not even the parsed arguments can print it.
fn parse_secret(raw: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::from(raw))
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The checked configuration the program runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_path: PathBuf,
    /// Which setting chose the path, for messages ("MEMORY_TURSO_PATH", "default", ...).
    pub path_source: &'static str,
    pub database_url: Option<String>,
    /// `MEMORY_BACKEND=sqlite` chose local mode, whatever `TURSO_DATABASE_URL` says.
    pub sqlite_backend: bool,
    pub auth_token: Option<Secret>,
    /// Whether the server syncs on its own (at start, after writes, every interval and at
    /// shutdown); when off, only the `sync` tool and command sync.
    pub auto_sync: bool,
    pub sync_interval: Duration,
    pub profile: ToolProfile,
    pub log_level: String,
    pub allow_cycles: bool,
    pub max_response_chars: usize,
    pub durability: Durability,
    pub near_duplicates: NearDuplicates,
}

/// A setting that cannot be used; the message is the one line printed before exiting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable} (--{flag}): {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub flag: &'static str,
    pub problem: String,
}

fn bad(variable: &'static str, flag: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        flag,
        problem: problem.into(),
    }
}

/// Where `serve --http` and `ui` listen without an address given.
pub const DEFAULT_HTTP_ADDRESS: &str = "127.0.0.1:7373";

const DEFAULT_SYNC_INTERVAL_SECS: u64 = 300;
const DEFAULT_MAX_RESPONSE_CHARS: usize = 16_000;
/// The smallest answer limit: every answer must fit with its fields still readable, and
/// the longest fixed one, `health` in replica mode, takes ≈1,100 characters of JSON even
/// with every value cut short.
const MIN_RESPONSE_CHARS: usize = 2_000;

impl Config {
    /// Checks settings; `home` is the user's home folder for the default path.
    pub fn from_settings(s: &Settings, home: Option<&Path>) -> Result<Config, ConfigError> {
        let backend = s
            .backend
            .as_deref()
            .map(str::trim)
            .map(str::to_ascii_lowercase);
        let use_sqlite_path = match backend.as_deref() {
            None | Some("") | Some("turso") | Some("libsql") => false,
            Some("sqlite") => true,
            Some(other) => {
                return Err(bad(
                    "MEMORY_BACKEND",
                    "backend",
                    format!(
                        "{other:?} is not supported; allowed: turso (default) or sqlite (the same libsql engine). \
                         Graph-database backends of MemoryGraph (neo4j, memgraph, falkordb, ...) are not available"
                    ),
                ));
            }
        };
        let given = |p: &Option<PathBuf>| p.as_ref().filter(|p| !p.as_os_str().is_empty()).cloned();
        let database_url_given = s
            .database_url
            .as_deref()
            .is_some_and(|u| !u.trim().is_empty());
        // MemoryGraph's default backend is `sqlite`, so its users set MEMORY_SQLITE_PATH
        // alone: that file is theirs, and opening another one would show an empty memory.
        let sqlite_path_alone = backend.as_deref().is_none_or(str::is_empty)
            && given(&s.sqlite_path).is_some()
            && given(&s.turso_path).is_none();
        if sqlite_path_alone && database_url_given {
            return Err(bad(
                "MEMORY_BACKEND",
                "backend",
                "MEMORY_SQLITE_PATH and TURSO_DATABASE_URL are both set: set MEMORY_BACKEND=sqlite to use that local file, \
                 or MEMORY_TURSO_PATH for the replica file",
            ));
        }
        let use_sqlite_path = use_sqlite_path || sqlite_path_alone;
        let (chosen, path_source) = if use_sqlite_path {
            (given(&s.sqlite_path), "MEMORY_SQLITE_PATH")
        } else {
            (given(&s.turso_path), "MEMORY_TURSO_PATH")
        };
        let (database_path, path_source) = match chosen {
            Some(p) => (expand_home(&p, home), path_source),
            None => {
                let home = home.ok_or_else(|| {
                    bad(
                        "MEMORY_TURSO_PATH",
                        "turso-path",
                        "no home folder is known (neither HOME nor USERPROFILE is set), so set the database file explicitly",
                    )
                })?;
                (home.join(".memorygraph").join("memory.db"), "default")
            }
        };
        // `sqlite` is MemoryGraph's way to say "this local file": local mode, even when a
        // TURSO_DATABASE_URL is still exported for other programs.
        let database_url = s
            .database_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty() && !use_sqlite_path)
            .map(str::to_string);
        let auth_token = s
            .auth_token
            .as_ref()
            .map(|t| t.expose().trim())
            .filter(|t| !t.is_empty())
            .map(|t| Secret(t.to_string()));
        if let Some(url) = &database_url {
            check_primary_url(url, auth_token.is_some())?;
        }
        let auto_sync = parse_bool(s.auto_sync.as_deref(), true)
            .map_err(|p| bad("MEMORY_TURSO_AUTO_SYNC", "auto-sync", p))?;
        let sync_interval = match s.sync_interval.as_deref().map(str::trim) {
            None | Some("") => Duration::from_secs(DEFAULT_SYNC_INTERVAL_SECS),
            Some(raw) => match raw.parse::<f64>() {
                Ok(secs) if (1.0..=86_400.0).contains(&secs) => Duration::from_secs_f64(secs),
                _ => {
                    return Err(bad(
                        "MEMORY_TURSO_SYNC_INTERVAL",
                        "sync-interval",
                        format!("{raw:?} is not a number of seconds from 1 to 86400"),
                    ));
                }
            },
        };
        let profile = match s
            .tool_profile
            .as_deref()
            .map(|p| p.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("core") | Some("lite") => ToolProfile::Core,
            Some("extended") | Some("standard") | Some("full") => ToolProfile::Extended,
            Some(other) => {
                return Err(bad(
                    "MEMORY_TOOL_PROFILE",
                    "tool-profile",
                    format!(
                        "{other:?} is not a profile; allowed: core, extended (lite = core; standard, full = extended)"
                    ),
                ));
            }
        };
        let log_level = match s
            .log_level
            .as_deref()
            .map(|l| l.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") => "info".to_string(),
            Some(l @ ("error" | "warn" | "info" | "debug" | "trace" | "off")) => l.to_string(),
            Some("warning") => "warn".into(),
            Some("critical") | Some("fatal") => "error".into(),
            Some(other) => {
                return Err(bad(
                    "MEMORY_LOG_LEVEL",
                    "log-level",
                    format!(
                        "{other:?} is not a level; allowed: error, warn, info, debug, trace, off"
                    ),
                ));
            }
        };
        let allow_cycles = parse_bool(s.allow_cycles.as_deref(), false)
            .map_err(|p| bad("MEMORY_ALLOW_CYCLES", "allow-cycles", p))?;
        let max_response_chars = match s.max_response_chars.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_MAX_RESPONSE_CHARS,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if n >= MIN_RESPONSE_CHARS => n,
                _ => {
                    return Err(bad(
                        "MEMORY_MAX_RESPONSE_CHARS",
                        "max-response-chars",
                        format!("{raw:?} is not a whole number of at least {MIN_RESPONSE_CHARS}"),
                    ));
                }
            },
        };
        let durability = match s.durability.as_deref().map(str::trim) {
            None | Some("") => Durability::Normal,
            Some(raw) => raw
                .parse()
                .map_err(|p| bad("MEMORY_DURABILITY", "durability", p))?,
        };
        let near_duplicates = match s.near_duplicates.as_deref().map(str::trim) {
            None | Some("") => NearDuplicates::default(),
            Some(raw) => raw
                .parse()
                .map_err(|p| bad("MEMORY_NEAR_DUPLICATES", "near-duplicates", p))?,
        };
        Ok(Config {
            database_path,
            path_source,
            database_url,
            sqlite_backend: use_sqlite_path,
            auth_token,
            auto_sync,
            sync_interval,
            profile,
            log_level,
            allow_cycles,
            max_response_chars,
            durability,
            near_duplicates,
        })
    }

    /// Creates the database's folder if needed, so an unusable path fails at start with the
    /// variable that chose it.
    pub fn prepare_database_folder(&self) -> Result<(), ConfigError> {
        let variable = if self.path_source == "MEMORY_SQLITE_PATH" {
            "MEMORY_SQLITE_PATH"
        } else {
            "MEMORY_TURSO_PATH"
        };
        let flag = if variable == "MEMORY_SQLITE_PATH" {
            "sqlite-path"
        } else {
            "turso-path"
        };
        if self.database_path.is_dir() {
            return Err(bad(
                variable,
                flag,
                format!(
                    "{} is a folder, not a database file",
                    self.database_path.display()
                ),
            ));
        }
        let Some(dir) = self
            .database_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        else {
            return Ok(());
        };
        if dir.is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(dir).map_err(|e| {
            bad(
                variable,
                flag,
                format!("cannot create the folder {}: {e}", dir.display()),
            )
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        Ok(())
    }
}

/// A primary URL must be one libsql can reach, and a token is required wherever the
/// connection leaves this machine over TLS (Turso always needs one); plain `http://` to
/// a local sqld may go without.
fn check_primary_url(url: &str, has_token: bool) -> Result<(), ConfigError> {
    let shown = crate::backend::redact_url(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad(
            "TURSO_DATABASE_URL",
            "database-url",
            format!("{shown:?} is not a URL; expected libsql://, https:// or http://"),
        ));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    if host.is_empty() {
        return Err(bad(
            "TURSO_DATABASE_URL",
            "database-url",
            format!("{shown:?} names no host"),
        ));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "libsql" | "https" if !has_token => Err(bad(
            "TURSO_AUTH_TOKEN",
            "auth-token",
            format!(
                "a token is required for {shown}; create one with `turso db tokens create <db>`"
            ),
        )),
        "libsql" | "https" | "http" => Ok(()),
        other => Err(bad(
            "TURSO_DATABASE_URL",
            "database-url",
            format!("scheme {other:?} is not supported; use libsql://, https:// or http://"),
        )),
    }
}

fn parse_bool(raw: Option<&str>, default: bool) -> Result<bool, String> {
    match raw.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(format!(
            "{other:?} is not a boolean; allowed: true or false"
        )),
    }
}

/// The user's home folder: `HOME` (Unix, and Windows shells that set it), else Windows'
/// `USERPROFILE`, else `HOMEDRIVE` + `HOMEPATH`.
pub fn home_folder(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(home) = set("HOME").or_else(|| set("USERPROFILE")) {
        return Some(PathBuf::from(home));
    }
    let (drive, path) = (set("HOMEDRIVE")?, set("HOMEPATH")?);
    let mut joined = drive;
    joined.push(path);
    Some(PathBuf::from(joined))
}

fn expand_home(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::default()
    }

    #[test]
    fn defaults() {
        let c = Config::from_settings(&settings(), Some(Path::new("/home/u"))).unwrap();
        assert_eq!(c.database_path, Path::new("/home/u/.memorygraph/memory.db"));
        assert_eq!(c.profile, ToolProfile::Core);
        assert_eq!(c.sync_interval, Duration::from_secs(300));
        assert!(!c.allow_cycles);
    }

    #[test]
    fn sqlite_backend_reads_its_own_path() {
        let s = Settings {
            backend: Some("SQLite".into()),
            sqlite_path: Some("~/x.db".into()),
            turso_path: Some("/ignored.db".into()),
            ..settings()
        };
        let c = Config::from_settings(&s, Some(Path::new("/h"))).unwrap();
        assert_eq!(c.database_path, Path::new("/h/x.db"));
    }

    #[test]
    fn memorygraph_sqlite_path_alone_is_the_file() {
        let s = Settings {
            sqlite_path: Some("/data/custom.db".into()),
            ..settings()
        };
        let c = Config::from_settings(&s, Some(Path::new("/h"))).unwrap();
        assert_eq!(c.database_path, Path::new("/data/custom.db"));
        assert_eq!(c.path_source, "MEMORY_SQLITE_PATH");
        assert!(c.sqlite_backend);
        // Our own path setting still wins over MemoryGraph's.
        let s = Settings {
            turso_path: Some("/data/ours.db".into()),
            ..s
        };
        let c = Config::from_settings(&s, Some(Path::new("/h"))).unwrap();
        assert_eq!(c.database_path, Path::new("/data/ours.db"));
        assert!(!c.sqlite_backend);
    }

    #[test]
    fn sqlite_path_alone_with_a_primary_url_is_refused() {
        let s = Settings {
            sqlite_path: Some("/data/custom.db".into()),
            database_url: Some("http://127.0.0.1:8080".into()),
            ..settings()
        };
        let err = Config::from_settings(&s, Some(Path::new("/h"))).unwrap_err();
        assert_eq!(err.variable, "MEMORY_BACKEND");
        assert!(err.problem.contains("MEMORY_BACKEND=sqlite"), "{err}");
    }

    #[test]
    fn home_folder_on_unix_and_windows() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert_eq!(
            home_folder(env(&[("HOME", "/home/u"), ("USERPROFILE", "C:\\Users\\u")])),
            Some(PathBuf::from("/home/u"))
        );
        assert_eq!(
            home_folder(env(&[("HOME", ""), ("USERPROFILE", "C:\\Users\\u")])),
            Some(PathBuf::from("C:\\Users\\u"))
        );
        assert_eq!(
            home_folder(env(&[("HOMEDRIVE", "D:"), ("HOMEPATH", "\\Users\\u")])),
            Some(PathBuf::from("D:\\Users\\u"))
        );
        assert_eq!(home_folder(env(&[("HOMEDRIVE", "D:")])), None);
    }

    #[test]
    fn sqlite_backend_is_local_even_with_a_primary_url_exported() {
        let s = Settings {
            backend: Some("sqlite".into()),
            sqlite_path: Some("/data/memory.db".into()),
            database_url: Some("libsql://db.turso.io".into()),
            auth_token: Some("t".into()),
            ..settings()
        };
        let c = Config::from_settings(&s, Some(Path::new("/h"))).unwrap();
        assert_eq!(c.database_path, Path::new("/data/memory.db"));
        assert!(c.database_url.is_none());
        assert!(c.sqlite_backend);
    }

    #[test]
    fn errors_name_the_variable() {
        let cases = [
            Settings {
                backend: Some("neo4j".into()),
                ..settings()
            },
            Settings {
                tool_profile: Some("everything".into()),
                ..settings()
            },
            Settings {
                sync_interval: Some("-5".into()),
                ..settings()
            },
            Settings {
                allow_cycles: Some("maybe".into()),
                ..settings()
            },
            Settings {
                log_level: Some("loud".into()),
                ..settings()
            },
        ];
        let vars = [
            "MEMORY_BACKEND",
            "MEMORY_TOOL_PROFILE",
            "MEMORY_TURSO_SYNC_INTERVAL",
            "MEMORY_ALLOW_CYCLES",
            "MEMORY_LOG_LEVEL",
        ];
        for (s, var) in cases.iter().zip(vars) {
            let err = Config::from_settings(s, Some(Path::new("/h"))).unwrap_err();
            assert_eq!(err.variable, var);
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn primary_urls_and_tokens() {
        let with = |url: &str, token: Option<&str>| {
            let s = Settings {
                database_url: Some(url.into()),
                auth_token: token.map(Into::into),
                ..settings()
            };
            Config::from_settings(&s, Some(Path::new("/h")))
        };
        assert!(with("http://127.0.0.1:8080", None).is_ok());
        assert_eq!(
            with("libsql://db.turso.io", None).unwrap_err().variable,
            "TURSO_AUTH_TOKEN"
        );
        assert_eq!(
            with("https://db.example", None).unwrap_err().variable,
            "TURSO_AUTH_TOKEN"
        );
        assert!(with("libsql://db.turso.io", Some("t")).is_ok());
        assert_eq!(
            with("ftp://x", Some("t")).unwrap_err().variable,
            "TURSO_DATABASE_URL"
        );
        assert_eq!(
            with("db.turso.io", Some("t")).unwrap_err().variable,
            "TURSO_DATABASE_URL"
        );
    }

    #[test]
    fn token_is_never_printed() {
        let s = Settings {
            auth_token: Some("sekrit-token".into()),
            ..settings()
        };
        assert!(!format!("{s:?}").contains("sekrit"));
        let c = Config::from_settings(&s, Some(Path::new("/h"))).unwrap();
        assert!(!format!("{c:?}").contains("sekrit"));
    }
}
