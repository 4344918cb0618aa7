//! macOS: a launchd agent, `~/Library/LaunchAgents/memorygraph.plist`, loaded into the
//! user's GUI domain. launchd has no environment file, so the settings are in the property
//! list itself, which is therefore written with mode 0600.

#![cfg_attr(not(target_os = "macos"), allow(dead_code))]

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::{Installed, Manager, Plan, home, manager_command, remove, write_file};

pub const LABEL: &str = "memorygraph";

fn plist() -> Result<PathBuf> {
    Ok(home()?
        .join("Library")
        .join("LaunchAgents")
        .join(format!("{LABEL}.plist")))
}

fn log() -> Result<PathBuf> {
    Ok(home()?
        .join("Library")
        .join("Logs")
        .join(format!("{LABEL}.log")))
}

/// The user's GUI domain, where agents of a logged-in user run.
fn domain() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    format!("gui/{}", unsafe { libc::getuid() })
}

fn launchctl(args: &[&str]) -> Result<String, String> {
    manager_command("launchctl", args)
}

pub fn install(plan: &Plan) -> Result<()> {
    let (path, log) = (plist()?, log()?);
    let text = property_list(plan, &log)?;
    for folder in [path.parent(), log.parent()].into_iter().flatten() {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating the folder {}", folder.display()))?;
    }
    write_file(&path, &text, true)?;
    let names: Vec<&str> = plan.settings.iter().map(|(name, _)| *name).collect();
    println!(
        "Wrote {} (mode 0600; runs {}; settings: {}; log: {})",
        path.display(),
        plan.program[1..].join(" "),
        names.join(", "),
        log.display()
    );
    let (domain, path_text) = (domain(), path.display().to_string());
    // An agent already loaded is unloaded first, so the new file takes effect.
    let _ = launchctl(&["bootout", &format!("{domain}/{LABEL}")]);
    let _ = launchctl(&["enable", &format!("{domain}/{LABEL}")]);
    if let Err(why) = launchctl(&["bootstrap", &domain, &path_text]) {
        println!(
            "launchctl could not load the agent here ({why}), so the service was not started.\n\
             It starts at the next login; to start it now, run in your session:\n  \
             launchctl bootstrap {domain} {path_text}"
        );
        return Ok(());
    }
    println!(
        "Loaded the agent {LABEL}; it starts at every login. `memorygraph service status` shows it."
    );
    Ok(())
}

pub fn uninstall() -> Result<()> {
    let path = plist()?;
    if !path.exists() {
        println!("Nothing to remove: no {}.", path.display());
        return Ok(());
    }
    let target = format!("{}/{LABEL}", domain());
    match launchctl(&["bootout", &target]) {
        Ok(_) => println!("Stopped and unloaded the agent {LABEL}."),
        Err(why) => {
            println!("launchctl bootout {target}: {why} (not loaded, or not reachable here)")
        }
    }
    if remove(&path)? {
        println!("Removed {}", path.display());
    }
    if let Ok(log) = log()
        && log.exists()
    {
        println!("Kept the log {}", log.display());
    }
    Ok(())
}

pub fn installed() -> Result<Installed> {
    let path = plist()?;
    let manager = match launchctl(&["print", &format!("{}/{LABEL}", domain())]) {
        Ok(text) => {
            let value = |key: &str| {
                text.lines()
                    .filter(|l| l.starts_with('\t') && !l.starts_with("\t\t"))
                    .find_map(|l| l.trim().strip_prefix(key)?.trim().strip_prefix('='))
                    .map(|v| v.trim().to_string())
            };
            let state = value("state").unwrap_or_else(|| "loaded".into());
            Manager::Reports {
                active: state == "running",
                main_pid: value("pid").and_then(|p| p.parse().ok()),
                state,
            }
        }
        Err(why) if why.contains("Could not find service") => Manager::Reports {
            state: "not loaded".into(),
            active: false,
            main_pid: None,
        },
        Err(why) => Manager::Unreachable(format!("launchctl: {why}")),
    };
    Ok(Installed {
        installed: path.exists(),
        file: path,
        manager,
    })
}

/// The agent: the server without stdio, started at login and again if it fails.
fn property_list(plan: &Plan, log: &std::path::Path) -> Result<String> {
    let log = log.to_str().context("the log's folder is not UTF-8")?;
    let mut text = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <!-- Written by `memorygraph service install`; `memorygraph service uninstall` removes it. -->\n\
         <plist version=\"1.0\">\n<dict>\n",
    );
    text.push_str(&format!(
        "\t<key>Label</key>\n\t<string>{}</string>\n",
        xml(LABEL)?
    ));
    text.push_str("\t<key>ProgramArguments</key>\n\t<array>\n");
    for word in &plan.program {
        text.push_str(&format!("\t\t<string>{}</string>\n", xml(word)?));
    }
    text.push_str("\t</array>\n\t<key>EnvironmentVariables</key>\n\t<dict>\n");
    for (name, value) in &plan.settings {
        text.push_str(&format!(
            "\t\t<key>{}</key>\n\t\t<string>{}</string>\n",
            xml(name)?,
            xml(value)?
        ));
    }
    text.push_str(
        "\t</dict>\n\
         \t<key>RunAtLoad</key>\n\t<true/>\n\
         \t<key>KeepAlive</key>\n\t<dict>\n\t\t<key>SuccessfulExit</key>\n\t\t<false/>\n\t</dict>\n\
         \t<key>ProcessType</key>\n\t<string>Background</string>\n",
    );
    text.push_str(&format!(
        "\t<key>StandardErrorPath</key>\n\t<string>{}</string>\n</dict>\n</plist>\n",
        xml(log)?
    ));
    Ok(text)
}

/// Text escaped for an XML element; characters XML cannot hold are refused.
fn xml(text: &str) -> Result<String> {
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        bail!("{text:?} holds a control character a property list cannot hold");
    }
    Ok(text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_property_list_holds_the_command_and_settings_escaped() {
        let plan = Plan {
            program: vec![
                "/Applications/a&b/memorygraph".into(),
                "serve".into(),
                "--no-stdio".into(),
            ],
            settings: vec![("TURSO_AUTH_TOKEN", "<tok&en>".into())],
        };
        let text =
            property_list(&plan, std::path::Path::new("/Users/u/Library/Logs/m.log")).unwrap();
        assert!(text.contains("<string>/Applications/a&amp;b/memorygraph</string>"));
        assert!(
            text.contains("<key>TURSO_AUTH_TOKEN</key>\n\t\t<string>&lt;tok&amp;en&gt;</string>")
        );
        assert!(text.contains("<key>RunAtLoad</key>\n\t<true/>"));
        assert!(xml("a\u{1}b").is_err());
    }
}
