//! Linux: a systemd user unit, `$XDG_CONFIG_HOME/systemd/user/memorygraph.service` (else
//! `~/.config/…`), and beside it the environment file with the settings, mode 0600 because
//! it may hold the primary's token. The unit itself holds no setting, so it can be read,
//! listed and verified by anyone without showing one.

#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{Installed, Manager, Plan, home, manager_command, remove, write_file};

pub const UNIT: &str = "memorygraph.service";
const ENV_FILE: &str = "memorygraph.env";

/// The unit's folder: the user units folder systemd reads first.
fn folder() -> Result<PathBuf> {
    let config = match std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from) {
        // The XDG rule: a relative value is ignored.
        Some(dir) if dir.is_absolute() => dir,
        _ => home()?.join(".config"),
    };
    Ok(config.join("systemd").join("user"))
}

/// The link `enable` makes, so the unit starts with the user's session.
fn wants_link(folder: &Path) -> PathBuf {
    folder.join("default.target.wants").join(UNIT)
}

pub fn install(plan: &Plan) -> Result<()> {
    let folder = folder()?;
    let (unit, env) = (folder.join(UNIT), folder.join(ENV_FILE));
    let unit_text = unit_file(&plan.program, &env)?;
    let env_text = environment_file(&plan.settings)?;
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("creating the folder {}", folder.display()))?;
    write_file(&env, &env_text, true)?;
    write_file(&unit, &unit_text, false)?;
    println!(
        "Wrote {} (runs {})",
        unit.display(),
        plan.program[1..].join(" ")
    );
    let names: Vec<&str> = plan.settings.iter().map(|(name, _)| *name).collect();
    println!("Wrote {} (mode 0600: {})", env.display(), names.join(", "));
    if let Err(why) = systemctl(&["daemon-reload"]) {
        println!(
            "systemctl --user is not reachable here ({why}), so the service was not started.\n\
             To start it now and at every login, run in your session:\n  \
             systemctl --user daemon-reload && systemctl --user enable --now {UNIT}"
        );
        return Ok(());
    }
    systemctl(&["enable", UNIT])
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("systemctl --user enable {UNIT}"))?;
    // A restart, not a start: a service already running takes the new settings.
    systemctl(&["restart", UNIT])
        .map_err(anyhow::Error::msg)
        .with_context(|| {
            format!("systemctl --user restart {UNIT}; see journalctl --user -u {UNIT}")
        })?;
    println!(
        "Started {UNIT}; it starts with every session of this user. `memorygraph service status` shows it."
    );
    Ok(())
}

pub fn uninstall() -> Result<()> {
    let folder = folder()?;
    let (unit, env, wants) = (
        folder.join(UNIT),
        folder.join(ENV_FILE),
        wants_link(&folder),
    );
    let link_there = std::fs::symlink_metadata(&wants).is_ok_and(|m| m.file_type().is_symlink());
    if !unit.exists() && !env.exists() && !link_there {
        println!("Nothing to remove: no {UNIT} in {}.", folder.display());
        return Ok(());
    }
    let reachable = match systemctl(&["disable", "--now", UNIT]) {
        Ok(_) => {
            println!("Stopped and disabled {UNIT}.");
            true
        }
        Err(why) => {
            println!(
                "systemctl --user could not stop {UNIT} ({why}); if it runs in a session, stop it there:\n  \
                 systemctl --user stop {UNIT}"
            );
            false
        }
    };
    if link_there {
        remove(&wants)?;
    }
    for file in [&unit, &env] {
        if remove(file)? {
            println!("Removed {}", file.display());
        }
    }
    if reachable {
        let _ = systemctl(&["daemon-reload"]);
    }
    Ok(())
}

pub fn installed() -> Result<Installed> {
    let unit = folder()?.join(UNIT);
    let manager = match systemctl(&[
        "show",
        UNIT,
        "--property=LoadState,ActiveState,SubState,MainPID",
    ]) {
        Err(why) => Manager::Unreachable(format!("systemctl --user: {why}")),
        Ok(text) => {
            let value = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                    .unwrap_or("")
                    .trim()
                    .to_string()
            };
            let (load, active, sub) = (value("LoadState"), value("ActiveState"), value("SubState"));
            Manager::Reports {
                state: if load == "not-found" {
                    "not loaded".to_string()
                } else {
                    format!("{active} ({sub})")
                },
                active: active == "active",
                main_pid: value("MainPID").parse().ok().filter(|pid| *pid != 0),
            }
        }
    };
    Ok(Installed {
        installed: unit.exists(),
        file: unit,
        manager,
    })
}

fn systemctl(args: &[&str]) -> Result<String, String> {
    let mut all = vec!["--user"];
    all.extend_from_slice(args);
    manager_command("systemctl", &all)
}

/// The unit: the server without stdio, restarted if it fails, started with the session.
fn unit_file(program: &[String], env: &Path) -> Result<String> {
    let exec: Vec<String> = program
        .iter()
        .map(|word| exec_word(word))
        .collect::<Result<_>>()?;
    let env = env.to_str().context("the unit's folder is not UTF-8")?;
    if env.chars().any(char::is_control) {
        bail!("the unit's folder {env:?} holds a control character");
    }
    Ok(format!(
        "# Written by `memorygraph service install`; `memorygraph service uninstall` removes it.\n\
         # The settings are in the environment file (mode 0600), not here.\n\
         [Unit]\n\
         Description=memorygraph: the owner of the memory database for every window of this user\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={}\n\
         EnvironmentFile={}\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        exec.join(" "),
        env.replace('%', "%%"),
    ))
}

/// One word of `ExecStart=`: `%` and `$` doubled (systemd expands both), quoted when it holds
/// anything but plain path characters.
fn exec_word(word: &str) -> Result<String> {
    if word.is_empty() || word.chars().any(char::is_control) {
        bail!("{word:?} cannot be written on a unit's command line");
    }
    let escaped = word.replace('%', "%%").replace('$', "$$");
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@=[]".contains(c));
    if plain {
        return Ok(escaped);
    }
    Ok(format!(
        "\"{}\"",
        escaped.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// The environment file: one `NAME=value` a line, each value quoted so systemd reads it back
/// exactly (single quotes take everything but a single quote as it is).
fn environment_file(settings: &[(&'static str, String)]) -> Result<String> {
    let mut text = String::from(
        "# memorygraph settings for memorygraph.service, written by `memorygraph service install`\n",
    );
    for (name, value) in settings {
        if value.contains('\0') {
            bail!("{name} holds a NUL character");
        }
        let quoted = if value.contains('\'') {
            let mut q = String::from("\"");
            for c in value.chars() {
                if matches!(c, '"' | '\\' | '`' | '$') {
                    q.push('\\');
                }
                q.push(c);
            }
            q.push('"');
            q
        } else {
            format!("'{value}'")
        };
        text.push_str(&format!("{name}={quoted}\n"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_words_survive_systemd_parsing() {
        assert_eq!(
            exec_word("/usr/bin/memorygraph").unwrap(),
            "/usr/bin/memorygraph"
        );
        assert_eq!(exec_word("127.0.0.1:8765").unwrap(), "127.0.0.1:8765");
        assert_eq!(
            exec_word("/home/a b/100%/$x/\"q\"").unwrap(),
            r#""/home/a b/100%%/$$x/\"q\"""#
        );
        assert!(exec_word("a\nb").is_err());
    }

    #[test]
    fn environment_values_are_quoted_for_systemd() {
        let text = environment_file(&[
            ("MEMORY_TURSO_PATH", "/home/a b/$HOME/m.db".into()),
            ("TURSO_AUTH_TOKEN", "it's \"x\" \\ `y` $z".into()),
        ])
        .unwrap();
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(lines[0], "MEMORY_TURSO_PATH='/home/a b/$HOME/m.db'");
        assert_eq!(lines[1], r#"TURSO_AUTH_TOKEN="it's \"x\" \\ \`y\` \$z""#);
    }
}
