//! `memorygraph-rs`: the PyPI package's name as a command. `uvx memorygraph-rs` and
//! `pipx run memorygraph-rs` run the command named like the package, so the wheel carries
//! this small program beside `memorygraph`; it becomes the `memorygraph` of its own folder,
//! with the same arguments, pipes and environment.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

fn server() -> std::io::Result<PathBuf> {
    let me = std::env::current_exe()?;
    Ok(me.with_file_name(format!("memorygraph{}", std::env::consts::EXE_SUFFIX)))
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let path = match server() {
        Ok(path) => path,
        Err(e) => {
            eprintln!("memorygraph-rs: cannot find where it is installed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut command = Command::new(&path);
    command.args(&args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Replaces this process: the client's pipes and signals reach the server itself.
        let e = command.exec();
        eprintln!("memorygraph-rs: cannot start {}: {e}", path.display());
        ExitCode::FAILURE
    }
    #[cfg(not(unix))]
    {
        match command.status() {
            Ok(status) => ExitCode::from(status.code().unwrap_or(1) as u8),
            Err(e) => {
                eprintln!("memorygraph-rs: cannot start {}: {e}", path.display());
                ExitCode::FAILURE
            }
        }
    }
}
