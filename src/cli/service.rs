//! `memorygraph service`: the owner of the database as a service of the user's session (a
//! systemd user unit on Linux, a launchd agent on macOS), so one process holds the database
//! from login on and every window and command started later forwards to it.
//!
//! The service runs the binary that installed it (`serve --no-stdio`, or `serve --http`)
//! with the settings of the shell that installed it, so it opens the same database as the
//! user's windows. Without a service nothing changes: the first window owns the database.

#[cfg(unix)]
mod launchd;
#[cfg(unix)]
mod systemd;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::ServiceCommand;
use crate::config::{Config, Settings};

/// How `service install` starts the server.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Serve MCP over Streamable HTTP too, on this loopback address (IP:PORT); without ADDR,
    /// on the default address of `serve --http`.
    #[arg(long, value_name = "ADDR", value_parser = loopback)]
    http: Option<Option<SocketAddr>>,
}

/// An `--http` address: a loopback one. A service listens unattended from every login on,
/// so opening the memory to other machines is not one flag of `install` away.
fn loopback(raw: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = raw.trim().parse().map_err(|_| {
        format!("{raw:?} is not an address and port, such as 127.0.0.1:8765 or [::1]:8765")
    })?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address; the service serves this machine only \
             (127.0.0.1 or [::1])"
        ));
    }
    Ok(addr)
}

/// What the service runs: the program with its arguments, and the settings it is given.
#[cfg_attr(not(any(target_os = "linux", target_os = "macos")), allow(dead_code))]
pub struct Plan {
    pub program: Vec<String>,
    pub settings: Vec<(&'static str, String)>,
}

/// The settings of this shell or command line that decide what the server opens and how it
/// behaves, as variables, the database path made absolute (the service starts elsewhere).
/// Only those set: the service follows the defaults of the binary it runs.
#[cfg_attr(not(any(target_os = "linux", target_os = "macos")), allow(dead_code))]
fn settings_for_service(
    settings: &Settings,
    config: &Config,
) -> Result<Vec<(&'static str, String)>> {
    let raw = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let database = std::path::absolute(&config.database_path).with_context(|| {
        format!(
            "resolving the database path {}",
            config.database_path.display()
        )
    })?;
    let mut out = Vec::new();
    if let Some(backend) = raw(&settings.backend) {
        out.push(("MEMORY_BACKEND", backend));
    }
    let path_variable = if config.sqlite_backend {
        "MEMORY_SQLITE_PATH"
    } else {
        "MEMORY_TURSO_PATH"
    };
    let database = database
        .to_str()
        .with_context(|| format!("the database path {} is not UTF-8", database.display()))?;
    out.push((path_variable, database.to_string()));
    if let Some(url) = &config.database_url {
        out.push(("TURSO_DATABASE_URL", url.clone()));
        if let Some(token) = &config.auth_token {
            out.push(("TURSO_AUTH_TOKEN", token.expose().to_string()));
        }
    }
    for (name, value) in [
        ("MEMORY_TURSO_AUTO_SYNC", &settings.auto_sync),
        ("MEMORY_TURSO_SYNC_INTERVAL", &settings.sync_interval),
        ("MEMORY_TOOL_PROFILE", &settings.tool_profile),
        ("MEMORY_LOG_LEVEL", &settings.log_level),
        ("MEMORY_ALLOW_CYCLES", &settings.allow_cycles),
        ("MEMORY_MAX_RESPONSE_CHARS", &settings.max_response_chars),
        ("MEMORY_DURABILITY", &settings.durability),
    ] {
        if let Some(value) = raw(value) {
            out.push((name, value));
        }
    }
    let precision = std::env::var("MEMORYGRAPH_EMBED_PRECISION").ok();
    if let Some(value) = raw(&precision) {
        out.push(("MEMORYGRAPH_EMBED_PRECISION", value));
    }
    Ok(out)
}

/// The service's command line: this binary, by its absolute path.
#[cfg_attr(not(any(target_os = "linux", target_os = "macos")), allow(dead_code))]
fn plan(args: &InstallArgs, settings: &Settings, config: &Config) -> Result<Plan> {
    let exe = std::env::current_exe().context("finding the path of this binary")?;
    if !exe.is_file() {
        anyhow::bail!(
            "this binary is no longer at {} (replaced while running?): run the installed one",
            exe.display()
        );
    }
    let exe = exe
        .to_str()
        .with_context(|| format!("the binary's path {} is not UTF-8", exe.display()))?
        .to_string();
    let mut program = vec![exe, "serve".to_string()];
    match args.http {
        None => program.push("--no-stdio".into()),
        Some(None) => program.push("--http".into()),
        Some(Some(addr)) => program.extend(["--http".into(), addr.to_string()]),
    }
    Ok(Plan {
        program,
        settings: settings_for_service(settings, config)?,
    })
}

/// What the service manager says about the service.
#[cfg_attr(not(any(target_os = "linux", target_os = "macos")), allow(dead_code))]
pub enum Manager {
    /// It could not be asked (no user session bus, no launchd domain): why.
    Unreachable(String),
    /// Its state in its own words, whether that is running, and the process it started.
    Reports {
        state: String,
        active: bool,
        main_pid: Option<u32>,
    },
}

/// Where the service's files are, and what its manager says.
#[cfg_attr(not(any(target_os = "linux", target_os = "macos")), allow(dead_code))]
pub struct Installed {
    pub file: PathBuf,
    pub installed: bool,
    pub manager: Manager,
}

pub async fn run(
    command: ServiceCommand,
    settings: &Settings,
    config: Config,
    json: bool,
) -> Result<()> {
    #[cfg(target_os = "macos")]
    use launchd as platform;
    #[cfg(target_os = "linux")]
    use systemd as platform;
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    match command {
        ServiceCommand::Install(args) => platform::install(&plan(&args, settings, &config)?),
        ServiceCommand::Uninstall => platform::uninstall(),
        ServiceCommand::Status => status(platform::installed()?, &config, json),
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = (command, settings, config, json);
        anyhow::bail!(
            "services are not supported on this system yet (Linux: a systemd user unit; macOS: a launchd agent); \
             without one, the first memorygraph a window starts owns the database and the others forward to it"
        )
    }
}

/// Prints the service's state and the database's running owner.
#[cfg(any(target_os = "linux", target_os = "macos"))]
fn status(service: Installed, config: &Config, json: bool) -> Result<()> {
    let place = crate::owner::Place::of(&config.database_path)?;
    let owner = crate::owner::running_owner(&place);
    // Whether the owner is the process the manager started: unknown when it cannot be asked.
    let is_service = |pid: u32| match &service.manager {
        Manager::Reports {
            main_pid: Some(main),
            ..
        } => Some(*main == pid),
        Manager::Reports { active: false, .. } => Some(false),
        _ => None,
    };
    if json {
        let manager = match &service.manager {
            Manager::Unreachable(why) => serde_json::json!({"reachable": false, "error": why}),
            Manager::Reports {
                state,
                active,
                main_pid,
            } => serde_json::json!({
                "reachable": true, "state": state, "active": active, "main_pid": main_pid
            }),
        };
        let owner = owner.as_ref().map(|o| {
            serde_json::json!({
                "pid": o.pid, "version": o.version, "since": o.since, "socket": o.socket,
                "http": o.http, "is_service": is_service(o.pid),
            })
        });
        println!(
            "{}",
            serde_json::json!({
                "installed": service.installed,
                "file": service.file.display().to_string(),
                "manager": manager,
                "database": place.database.display().to_string(),
                "owner": owner,
            })
        );
        return Ok(());
    }
    if service.installed {
        println!("service: installed, {}", service.file.display());
    } else {
        println!("service: not installed (no {})", service.file.display());
    }
    match &service.manager {
        Manager::Unreachable(why) => println!("manager: not reachable: {why}"),
        Manager::Reports {
            state,
            main_pid: Some(pid),
            ..
        } => println!("manager: {state}, main pid {pid}"),
        Manager::Reports { state, .. } => println!("manager: {state}"),
    }
    println!("database: {}", place.database.display());
    match owner {
        None => println!("owner: no process holds {}", place.database.display()),
        Some(o) => {
            let whose = match is_service(o.pid) {
                Some(true) => " (the service)",
                Some(false) => " (not the service)",
                None => "",
            };
            let http = o
                .http
                .as_deref()
                .map(|a| format!(", MCP over HTTP on {a}"))
                .unwrap_or_default();
            println!(
                "owner: pid {}{whose}, memorygraph {}, since {}{http}",
                o.pid, o.version, o.since
            );
        }
    }
    Ok(())
}

/// Writes a file whole, or leaves the old one: written beside it, then renamed over it.
/// `private` files are made with mode 0600 from the start (they may hold a token).
#[cfg(unix)]
fn write_file(path: &std::path::Path, text: &str, private: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&temporary)
        .with_context(|| format!("creating {}", temporary.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("moving {} into place", path.display()))
}

/// The user's home folder, which the service's files go under.
#[cfg(unix)]
fn home() -> Result<PathBuf> {
    crate::config::home_folder(|name| std::env::var_os(name)).context(
        "no home folder is known (HOME is not set), so there is no place for the service's files",
    )
}

/// Removes a file if it is there; whether it was.
#[cfg(unix)]
fn remove(path: &std::path::Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Runs a service manager's command; its output, or the first line it complained with.
#[cfg(unix)]
fn manager_command(program: &str, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let said = said.lines().find(|l| !l.trim().is_empty()).map(str::trim);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let said = said.or_else(|| stdout.lines().find(|l| !l.trim().is_empty()).map(str::trim));
    Err(match said {
        Some(line) => line.to_string(),
        None => format!("{program} {} exited with {}", args.join(" "), out.status),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_takes_a_loopback_address_only() {
        assert_eq!(
            loopback("127.0.0.1:8765").unwrap(),
            "127.0.0.1:8765".parse().unwrap()
        );
        assert!(loopback("[::1]:8765").is_ok());
        assert!(loopback("0.0.0.0:8765").unwrap_err().contains("loopback"));
        assert!(
            loopback("localhost")
                .unwrap_err()
                .contains("address and port")
        );
        assert!(loopback("127.0.0.1").is_err());
    }
}
