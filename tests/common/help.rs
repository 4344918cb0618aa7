//! What the binary's own `--help` says, read the way a person reads it: the usage line, the
//! commands, and each flag with its value, `[default: …]` and `[env: …]`. The docs tests
//! compare the docs with this, so nothing about the flags is written twice in the tests.

use std::process::Stdio;

/// One flag as `--help` shows it.
#[derive(Debug, Clone)]
pub struct Flag {
    /// Without the dashes: `limit` for `--limit`.
    pub long: String,
    pub short: Option<char>,
    /// The environment variable clap reads it from (`[env: NAME=…]`).
    pub env: Option<String>,
    /// The default as the help states it (`[default: …]`), whitespace collapsed.
    pub default: Option<String>,
    /// The whole entry on one line, for messages.
    pub text: String,
}

/// One command's `--help`.
#[derive(Debug, Clone)]
pub struct Help {
    /// The command's words after `memorygraph` (empty for the top level).
    pub path: Vec<String>,
    /// The usage line without `Usage: `.
    pub usage: String,
    /// Subcommands, `help` left out.
    pub commands: Vec<String>,
    pub flags: Vec<Flag>,
}

impl Help {
    pub fn flag(&self, long: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.long == long)
    }

    /// The flags the usage line names outside brackets: those the command cannot go without.
    pub fn required(&self) -> Vec<String> {
        let mut depth = 0i32;
        let mut out = Vec::new();
        for token in self.usage.split_whitespace() {
            if depth == 0
                && let Some(name) = token.strip_prefix("--")
            {
                out.push(name.to_string());
            }
            depth += token.matches('[').count() as i32 - token.matches(']').count() as i32;
        }
        out
    }

    /// The positional arguments of the usage line, as `ID` or `[QUERY]`.
    pub fn positionals(&self) -> Vec<String> {
        let tokens: Vec<&str> = self.usage.split_whitespace().collect();
        let mut out = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            let after_flag = i > 0 && tokens[i - 1].starts_with('-');
            let placeholder = token.starts_with('<') || token.starts_with('[');
            if !placeholder || after_flag || token.contains("OPTIONS") || token.contains("COMMAND")
            {
                continue;
            }
            out.push(token.replace(['<', '>'], ""));
        }
        out
    }

    pub fn name(&self) -> String {
        let mut words = vec!["memorygraph".to_string()];
        words.extend(self.path.iter().cloned());
        words.join(" ")
    }
}

/// Runs `memorygraph PATH… --help` with a clean environment and parses what it prints.
pub fn help(path: &[&str]) -> Help {
    let home = tempfile::tempdir().unwrap();
    let out = super::command(home.path())
        .args(path)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .expect("run memorygraph --help");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "memorygraph {} --help failed: {}",
        path.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    parse(path, &text)
}

/// The help of the top level and of every command under it, depth first.
pub fn every_command() -> Vec<Help> {
    let mut out = Vec::new();
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let words: Vec<&str> = path.iter().map(String::as_str).collect();
        let h = help(&words);
        for command in h.commands.iter().rev() {
            let mut sub = path.clone();
            sub.push(command.clone());
            todo.push(sub);
        }
        out.push(h);
    }
    out
}

/// Parses clap's help text: the short layout (a flag and its text on one line) and the long
/// one (the text indented below the flag) alike.
pub fn parse(path: &[&str], text: &str) -> Help {
    let mut usage = String::new();
    let mut commands = Vec::new();
    let mut entries: Vec<Vec<String>> = Vec::new();
    let mut section = "";
    for line in text.lines() {
        if let Some(u) = line.strip_prefix("Usage: ") {
            usage = u.trim().to_string();
            continue;
        }
        if !line.starts_with(' ') && !line.trim().is_empty() {
            section = match line.trim_end() {
                "Commands:" => "commands",
                "Options:" => "options",
                "Arguments:" => "arguments",
                _ => "",
            };
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        match section {
            "commands" if indent == 2 => {
                let name = line.split_whitespace().next().unwrap_or("");
                if name != "help" {
                    commands.push(name.to_string());
                }
            }
            "options" => {
                if indent <= 6 && line.trim_start().starts_with('-') {
                    entries.push(vec![line.trim().to_string()]);
                } else if let Some(entry) = entries.last_mut() {
                    entry.push(line.trim().to_string());
                }
            }
            _ => {}
        }
    }
    let flags = entries
        .into_iter()
        .filter_map(|lines| flag_of(&lines.join(" ")))
        .collect();
    Help {
        path: path.iter().map(|s| s.to_string()).collect(),
        usage,
        commands,
        flags,
    }
}

fn flag_of(entry: &str) -> Option<Flag> {
    let text = entry.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short = None;
    let mut rest = text.as_str();
    if let Some(after) = rest.strip_prefix('-')
        && !after.starts_with('-')
    {
        short = after.chars().next();
        rest = after[1..].trim_start_matches(", ");
    }
    let long = rest.strip_prefix("--")?;
    let long: String = long
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let env = bracketed(&text, "[env: ")
        .map(|e| e.split('=').next().unwrap_or_default().trim().to_string());
    Some(Flag {
        long,
        short,
        env,
        default: bracketed(&text, "[default: "),
        text: text.clone(),
    })
}

/// The text between `open` and the next `]`.
fn bracketed(text: &str, open: &str) -> Option<String> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(']')? + start;
    Some(text[start..end].trim().to_string())
}
