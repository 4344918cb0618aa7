//! The first line on an owner's socket. The connecting process says how it was configured:
//! settings of the database as a whole must match the owner's (the same file in another
//! mode would be another database), and settings of a session (tool profile, answer size,
//! cycles) apply to that process's calls, so each window keeps the behaviour its own
//! environment asks for.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::mcp::ServerSettings;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseSettings {
    primary: Option<String>,
    durability: String,
    auto_sync: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionSettings {
    profile: crate::config::ToolProfile,
    max_response_chars: usize,
    allow_cycles: bool,
    /// Absent from the hello of an older version: the default.
    #[serde(default)]
    near_duplicates: crate::config::NearDuplicates,
    /// The repository holding this process's working directory: the session's project
    /// when its client lists no roots. Absent from an older version's hello.
    #[serde(default)]
    project: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    #[serde(rename = "memorygraph/hello")]
    pub version: String,
    pub database: DatabaseSettings,
    pub session: SessionSettings,
}

impl Hello {
    pub fn of(config: &Config) -> Hello {
        Hello {
            version: env!("CARGO_PKG_VERSION").to_string(),
            database: database_settings(config),
            session: SessionSettings {
                profile: config.profile,
                max_response_chars: config.max_response_chars,
                allow_cycles: config.allow_cycles,
                near_duplicates: config.near_duplicates,
                project: crate::model::project::of_working_directory(),
            },
        }
    }
}

pub fn database_settings(config: &Config) -> DatabaseSettings {
    DatabaseSettings {
        primary: config.database_url.clone(),
        durability: format!("{:?}", config.durability),
        auto_sync: config.auto_sync,
    }
}

/// The owner's answer: the settings for this session, or why it cannot serve it.
pub fn admit(
    own: &DatabaseSettings,
    settings: &ServerSettings,
    hello: &Hello,
) -> Result<ServerSettings, String> {
    if hello.database != *own {
        let mode = |d: &DatabaseSettings| match &d.primary {
            Some(url) => format!("replica mode with {}", crate::backend::redact_url(url)),
            None => "local mode".to_string(),
        };
        return Err(format!(
            "the memorygraph process that holds this database (pid {}) runs it in {} (durability {}, auto sync {}), \
             but this one is configured for {} (durability {}, auto sync {}); give every window the same \
             TURSO_DATABASE_URL, MEMORY_DURABILITY and MEMORY_TURSO_AUTO_SYNC",
            std::process::id(),
            mode(own),
            own.durability,
            own.auto_sync,
            mode(&hello.database),
            hello.database.durability,
            hello.database.auto_sync
        ));
    }
    let mut session = settings.clone();
    session.profile = hello.session.profile;
    session.max_response_chars = hello.session.max_response_chars;
    session.allow_cycles = hello.session.allow_cycles;
    session.near_duplicates = hello.session.near_duplicates;
    session.project = hello.session.project.clone();
    Ok(session)
}
