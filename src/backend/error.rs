//! What can go wrong in the backend, split by who must act: the caller (bad input, unknown
//! id, refused link) or the operator (database, file system, a file from a newer version).

use crate::model::InvalidInput;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),

    #[error("{what} not found: {}", crate::model::shorten(.id))]
    NotFound { what: &'static str, id: String },

    #[error("{0}")]
    Refused(String),

    /// The primary's history no longer matches the replica (replica mode): syncing is
    /// stopped until the user chooses what to keep.
    #[error("{0}")]
    Diverged(String),

    /// The primary could not be reached (replica mode).
    #[error("the primary is unreachable: {0}")]
    Unreachable(String),

    /// SQLite could not write for want of space: a fault of this machine, not of the
    /// primary or the request.
    #[error(
        "this machine's disk is full (while {doing}): nothing was written; reads still answer, and writes work again once space is freed"
    )]
    DiskFull { doing: &'static str },

    #[error("database error while {doing}: {source}")]
    Database {
        doing: &'static str,
        #[source]
        source: libsql::Error,
    },

    #[error("Stored {what} {id} is not valid JSON: {source}")]
    CorruptRow {
        what: &'static str,
        id: String,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "the database was written by a newer memorygraph (schema version {found}, this build knows up to {supported}); upgrade memorygraph"
    )]
    NewerSchema { found: i64, supported: i64 },

    #[error("{doing}: {source}")]
    Io {
        doing: String,
        #[source]
        source: std::io::Error,
    },
}

impl BackendError {
    /// True when the caller can fix the problem by changing the request.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            BackendError::Invalid(_) | BackendError::NotFound { .. } | BackendError::Refused(_)
        )
    }
}

pub type Result<T, E = BackendError> = std::result::Result<T, E>;

/// Attaches what the backend was doing to a libsql error.
pub(crate) trait DbContext<T> {
    fn doing(self, doing: &'static str) -> Result<T>;
}

impl<T> DbContext<T> for std::result::Result<T, libsql::Error> {
    fn doing(self, doing: &'static str) -> Result<T> {
        self.map_err(|source| match source {
            // SQLITE_FULL, with any extended code.
            libsql::Error::SqliteFailure(code, _) if code & 0xff == 13 => {
                BackendError::DiskFull { doing }
            }
            source => BackendError::Database { doing, source },
        })
    }
}
