//! Projects: which project a memory belongs to, and which one a session works in. A project
//! is named by its root folder's path, the form MemoryGraph's `project_path` context already
//! holds; a memory stored in a sub-folder of a root belongs to that root's project, and a
//! memory without a project is shared by every project.

use std::path::{Path, PathBuf};

/// Where a session's project came from, as answers report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProjectSource {
    /// The first `file:` root the client listed (MCP roots).
    Roots,
    /// The repository holding the server's working directory.
    WorkingDirectory,
    /// The call named it.
    Argument,
}

/// A session's project and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub path: String,
    pub source: ProjectSource,
}

/// How a search treats the session's project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFocus {
    /// The project's root, normalised ([`normalise`]).
    pub path: String,
    /// Only this project's memories and the shared ones; otherwise every memory, with
    /// other projects' matches after them.
    pub only: bool,
}

/// One spelling per folder: no trailing separator (the root itself keeps its one), and a
/// Windows drive path with forward slashes as a `file:` URI gives it.
pub fn normalise(path: &str) -> String {
    let path = path.trim();
    let trimmed = path.trim_end_matches(['/', '\\']);
    if trimmed.is_empty() {
        return path.chars().take(1).collect();
    }
    trimmed.to_string()
}

/// The folder a `file:` URI names; `None` for another scheme or a malformed escape.
pub fn path_of_uri(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("file://")?;
    // `file:///x` has an empty authority; `file://localhost/x` names this machine.
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') {
        return None;
    }
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(out).ok()?;
    // `file:///C:/work` is the Windows folder `C:/work`.
    let path = match path.as_bytes() {
        [b'/', drive, b':', ..] if drive.is_ascii_alphabetic() => path[1..].to_string(),
        _ => path,
    };
    Some(normalise(&path))
}

/// The repository root holding `dir`: the nearest folder, from `dir` up, that holds a
/// `.git` folder or file (a worktree or submodule has a file).
pub fn repository_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|folder| folder.join(".git").exists())
        .map(Path::to_path_buf)
}

/// The project of this process's working directory, if it lies in a repository.
pub fn of_working_directory() -> Option<String> {
    let dir = std::env::current_dir().ok()?;
    let root = repository_root(&dir)?;
    Some(normalise(&root.to_string_lossy()))
}

/// Whether a memory's project (`None` or empty: shared) counts as `project`'s: the same
/// folder or one inside it.
pub fn belongs(memory_project: Option<&str>, project: &str) -> bool {
    match memory_project.map(normalise) {
        None => true,
        Some(p) if p.is_empty() => true,
        Some(p) => {
            p == project
                || p.strip_prefix(project)
                    .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('\\'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_become_folders() {
        assert_eq!(
            path_of_uri("file:///home/a/proj").as_deref(),
            Some("/home/a/proj")
        );
        assert_eq!(
            path_of_uri("file:///home/a/proj/").as_deref(),
            Some("/home/a/proj")
        );
        assert_eq!(
            path_of_uri("file://localhost/home/my%20proj").as_deref(),
            Some("/home/my proj")
        );
        assert_eq!(
            path_of_uri("file:///C:/work/x").as_deref(),
            Some("C:/work/x")
        );
        assert_eq!(path_of_uri("file:///").as_deref(), Some("/"));
        assert_eq!(path_of_uri("https://example/x"), None);
        assert_eq!(path_of_uri("file://server/share"), None);
        assert_eq!(path_of_uri("file:///bad%2"), None);
        assert_eq!(path_of_uri("file:///bad%zz"), None);
    }

    #[test]
    fn a_memory_belongs_to_its_root_and_the_folders_inside_it() {
        assert!(belongs(None, "/w/a"));
        assert!(belongs(Some(""), "/w/a"));
        assert!(belongs(Some("/w/a"), "/w/a"));
        assert!(belongs(Some("/w/a/"), "/w/a"));
        assert!(belongs(Some("/w/a/src"), "/w/a"));
        assert!(!belongs(Some("/w/ab"), "/w/a"));
        assert!(!belongs(Some("/w/a-2"), "/w/a"));
        assert!(!belongs(Some("/w/b"), "/w/a"));
        assert!(!belongs(Some("/w"), "/w/a"));
    }

    #[test]
    fn a_repository_root_is_found_from_inside_it() {
        let dir = std::env::temp_dir().join(format!("mg-project-{}", std::process::id()));
        let inner = dir.join("repo/src/deep");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::create_dir_all(dir.join("repo/.git")).unwrap();
        assert_eq!(repository_root(&inner), Some(dir.join("repo")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
