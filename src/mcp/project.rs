//! The project a session works in ([`crate::model::project`]): the first `file:` root its
//! client lists (MCP roots) when the client offers roots, else the repository holding the
//! working directory of the process the client started. Roots are asked for once the
//! client is initialized and again when it says they changed; a call that needs the project
//! while they are being asked waits for the answer, at most [`ROOTS_WAIT`].

#![allow(deprecated)] // MCP roots are deprecated for protocols after 2025-11-25; older ones use them.

use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use rmcp::{Peer, RoleServer};
use tokio::sync::watch;

use crate::model::project::{Project, ProjectSource, normalise, path_of_uri};

/// The longest a call waits for the client's roots before going on with the working
/// directory's project.
pub const ROOTS_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq)]
enum Roots {
    /// Not asked yet.
    Unasked,
    /// Asked; the answer has not come.
    Asking,
    /// The client's first `file:` root, if it listed one.
    Answered(Option<String>),
    /// The client refused, or did not answer within [`ROOTS_WAIT`]: calls go on without
    /// waiting until it answers or says its roots changed.
    Failed,
}

/// The client of a tool call, when there is one: a call made in-process (the command line
/// without a server) has none, and its project is the working directory's.
pub struct Client(pub Option<Peer<RoleServer>>);

impl<C: AsRequestContext> FromContextPart<C> for Client {
    fn from_context_part(context: &mut C) -> Result<Self, rmcp::ErrorData> {
        Ok(Client(Some(context.as_request_context().peer.clone())))
    }
}

/// One session's project. Clones share it.
#[derive(Clone)]
pub struct SessionProject {
    /// The repository holding the working directory of the process the client started.
    working_directory: Option<String>,
    roots: Arc<watch::Sender<Roots>>,
}

impl SessionProject {
    pub fn new(working_directory: Option<String>) -> Self {
        SessionProject {
            working_directory,
            roots: Arc::new(watch::channel(Roots::Unasked).0),
        }
    }

    /// The session's project for a call from `client`.
    pub async fn current(&self, client: &Client) -> Option<Project> {
        if let Some(peer) = client.0.as_ref().filter(|peer| offers_roots(peer)) {
            self.ask(peer, false);
            let mut seen = self.roots.subscribe();
            let answered = tokio::time::timeout(
                ROOTS_WAIT,
                seen.wait_for(|r| matches!(r, Roots::Answered(_) | Roots::Failed)),
            )
            .await;
            match answered {
                Ok(Ok(r)) => {
                    if let Roots::Answered(Some(path)) = &*r {
                        return Some(Project {
                            path: path.clone(),
                            source: ProjectSource::Roots,
                        });
                    }
                }
                _ => {
                    // Later calls do not wait again; a late answer still counts.
                    self.roots.send_if_modified(|r| {
                        let late = *r == Roots::Asking;
                        if late {
                            *r = Roots::Failed;
                        }
                        late
                    });
                    tracing::warn!(
                        "the client offers roots but did not list them within {} s; using the working directory's project",
                        ROOTS_WAIT.as_secs()
                    )
                }
            }
        }
        self.working_directory.as_ref().map(|path| Project {
            path: normalise(path),
            source: ProjectSource::WorkingDirectory,
        })
    }

    /// Asks the client for its roots, unless an answer is there or coming (`again`: the
    /// client said they changed, ask anyway).
    pub fn ask(&self, peer: &Peer<RoleServer>, again: bool) {
        if !offers_roots(peer) {
            return;
        }
        let start = self.roots.send_if_modified(|r| {
            let due = again || *r == Roots::Unasked;
            if due {
                *r = Roots::Asking;
            }
            due
        });
        if !start {
            return;
        }
        let roots = self.roots.clone();
        let peer = peer.clone();
        tokio::spawn(async move {
            let answer = match peer.list_roots().await {
                Ok(list) => Roots::Answered(list.roots.iter().find_map(|r| path_of_uri(&r.uri))),
                Err(e) => {
                    tracing::warn!("the client did not list its roots: {e}");
                    Roots::Failed
                }
            };
            roots.send_replace(answer);
        });
    }
}

/// Whether the client said, in `initialize`, that it lists roots.
fn offers_roots(peer: &Peer<RoleServer>) -> bool {
    peer.peer_info()
        .is_some_and(|info| info.capabilities.roots.is_some())
}
