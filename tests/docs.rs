//! The docs agree with the code: docs/tools.md describes every tool, parameter and `health`
//! field the server publishes; docs/cli.md every command and flag with its default, and the
//! README every setting, as the binary's own `--help` states them; those defaults are what
//! the commands do; and what `health` says about libsql is what Cargo.lock builds.

mod common;

use common::{Scratch, Server, help, markdown};
use serde_json::{Value, json};

#[test]
fn tools_doc_covers_every_published_tool_and_parameter() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tools.md")).unwrap();
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[("MEMORY_TOOL_PROFILE", "extended")]);
    let listed = server.request("tools/list", json!({}));
    for tool in listed["result"]["tools"].as_array().unwrap() {
        let name = tool["name"].as_str().unwrap();
        let heading = format!("### `{name}`");
        let start = doc
            .find(&heading)
            .unwrap_or_else(|| panic!("docs/tools.md has no section for {name}"));
        let section = &doc[start + heading.len()..];
        let section = &section[..section.find("\n### ").unwrap_or(section.len())];
        for param in tool["inputSchema"]["properties"]
            .as_object()
            .unwrap()
            .keys()
        {
            assert!(
                section.contains(&format!("`{param}`")),
                "docs/tools.md: {name} does not describe `{param}`"
            );
        }
    }
}

/// Every property name in a JSON schema, following `$ref`s into `$defs`.
fn property_names(schema: &Value, root: &Value, out: &mut std::collections::BTreeSet<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/$defs/");
        property_names(&root["$defs"][name], root, out);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for branch in schema[key].as_array().into_iter().flatten() {
            property_names(branch, root, out);
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, sub) in properties {
            out.insert(name.clone());
            property_names(sub, root, out);
        }
    }
    if schema.get("items").is_some() {
        property_names(&schema["items"], root, out);
    }
}

#[test]
fn tools_doc_lists_every_health_field() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tools.md")).unwrap();
    let heading = "### `health`";
    let section = &doc[doc.find(heading).unwrap() + heading.len()..];
    let section = &section[..section.find("\n### ").unwrap_or(section.len())];
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let listed = server.request("tools/list", json!({}));
    let health = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "health")
        .unwrap();
    let schema = &health["outputSchema"];
    let mut names = std::collections::BTreeSet::new();
    property_names(schema, schema, &mut names);
    for field in ["sync", "queue", "queued_writes", "last_success_at"] {
        assert!(names.contains(field), "health publishes {field}: {names:?}");
    }
    for name in &names {
        assert!(
            section.contains(&format!("`{name}`")),
            "docs/tools.md: health does not describe `{name}`"
        );
    }
}

#[test]
fn health_reports_the_libsql_of_cargo_lock() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let entry = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"libsql\"\n"))
        .expect("libsql in Cargo.lock");
    let version = entry
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .unwrap()
        .trim_matches('"');
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let health = server.ok("health", json!({}));
    assert_eq!(health["libsql_crate_version"], version, "{health}");
}

/// A cell that names nothing: no default, or no flag (`—`, `unset`, …).
fn is_no_value(cell: &str) -> bool {
    matches!(
        markdown::plain(cell).to_ascii_lowercase().as_str(),
        "" | "—" | "–" | "-" | "none" | "unset" | "no flag" | "(none)" | "n/a"
    )
}

/// Whether a documented default agrees with the one `--help` states. The docs may say more
/// than the help (`~/.memorygraph/memory.db` and where it is on Windows, say), so the first
/// value the cell names must be where the help's default begins, up to a word's end.
fn same_default(cell: &str, help: &str) -> bool {
    let first = cell
        .split('`')
        .nth(1)
        .filter(|_| cell.contains('`'))
        .unwrap_or(cell)
        .trim();
    let help = help.trim();
    if first == help {
        return true;
    }
    help.starts_with(first)
        && !first.is_empty()
        && !help[first.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.')
}

#[test]
fn help_parser_reads_both_layouts_of_clap() {
    let short = "About\n\nUsage: memorygraph search [OPTIONS] [QUERY]\n\nArguments:\n  [QUERY]  Words\n\n\
                 Options:\n      --limit <N>  Results per page, 1–1000 [default: 50]\n  \
                 -o, --output <PATH>  The file\n      --turso-path <FILE>  Database file [default: ~/.m/memory.db] [env: MEMORY_TURSO_PATH=/x]\n      \
                 --auth-token <TOKEN>  Token [env: TURSO_AUTH_TOKEN]\n  -h, --help  Print help\n";
    let h = help::parse(&["search"], short);
    assert_eq!(h.positionals(), vec!["[QUERY]"]);
    assert_eq!(h.flag("limit").unwrap().default.as_deref(), Some("50"));
    assert_eq!(h.flag("output").unwrap().short, Some('o'));
    let path = h.flag("turso-path").unwrap();
    assert_eq!(path.env.as_deref(), Some("MEMORY_TURSO_PATH"));
    assert_eq!(path.default.as_deref(), Some("~/.m/memory.db"));
    assert_eq!(
        h.flag("auth-token").unwrap().env.as_deref(),
        Some("TURSO_AUTH_TOKEN")
    );
    let long = "About\n\nUsage: memorygraph import [OPTIONS] --input <FILE>\n\nOptions:\n  -i, --input <FILE>\n          The file\n\n      \
                --format <FORMAT>\n          What to write\n\n          Possible values:\n          - json: JSON\n          \n          [default: json]\n\n  \
                -h, --help\n          Print help\n";
    let h = help::parse(&["import"], long);
    assert_eq!(h.required(), vec!["input"]);
    assert_eq!(h.flag("format").unwrap().default.as_deref(), Some("json"));
    assert!(h.flag("json").is_none(), "a possible value is not a flag");
    assert!(same_default(
        "`~/.m/memory.db` (Windows: elsewhere)",
        "~/.m/memory.db"
    ));
    assert!(same_default("`300`", "300"));
    assert!(!same_default("`300`", "3000"));
    assert!(!same_default("`~/.m/memory.db`", "~/.m/memory.dbx"));
}

/// The heading words of a command's reference section: `memorygraph get ID` gives the
/// command path `["get"]` and the arguments `["ID"]`.
fn command_of(heading: &str) -> (Vec<String>, Vec<String>) {
    let words: Vec<&str> = heading.split_whitespace().skip(1).collect();
    let path = words
        .iter()
        .take_while(|w| {
            !w.starts_with('-') && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        })
        .map(|w| w.to_string())
        .collect::<Vec<_>>();
    let args = words[path.len()..].iter().map(|w| w.to_string()).collect();
    (path, args)
}

/// docs/cli.md against `memorygraph … --help`: every command has its section with the same
/// arguments, every flag a command shows is in its table (the settings every command takes in
/// their own table) with the same default, variable and "required", and every flag the page
/// names anywhere exists.
#[test]
fn cli_doc_matches_the_help_of_every_command() {
    let doc = markdown::page("docs/cli.md");
    let helps = help::every_command();
    let top = &helps[0];
    assert!(top.path.is_empty());
    let global: Vec<&str> = top.flags.iter().map(|f| f.long.as_str()).collect();

    // The settings and flags every command takes.
    let rows = markdown::table(
        markdown::section(&doc, "## Options every command takes"),
        "| flag | variable | default |",
    );
    for flag in &top.flags {
        let row = rows
            .iter()
            .find(|r| markdown::long_flags(&r[0]).first() == Some(&flag.long))
            .unwrap_or_else(|| {
                panic!(
                    "docs/cli.md: `--{}` is not under \"Options every command takes\"",
                    flag.long
                )
            });
        let variable = markdown::plain(&row[1]);
        assert_eq!(
            flag.env.clone().unwrap_or_default(),
            variable,
            "docs/cli.md: the variable of --{}; the help says: {}",
            flag.long,
            flag.text
        );
        match &flag.default {
            Some(default) => assert!(
                same_default(&row[2], default),
                "docs/cli.md: --{} defaults to {default:?} by its help, the page says {}",
                flag.long,
                row[2]
            ),
            None => assert!(
                is_no_value(&row[2]),
                "docs/cli.md: --{} has no default in its help, the page says {}",
                flag.long,
                row[2]
            ),
        }
    }
    for row in &rows {
        let named = markdown::long_flags(&row[0]);
        assert!(
            named.iter().all(|f| global.contains(&f.as_str())),
            "docs/cli.md: {} is not a flag of every command",
            row[0]
        );
    }

    // Each command's own flags.
    let reference = markdown::section(&doc, "## Reference");
    let headings: Vec<&str> = reference
        .lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .map(|l| l.trim_end_matches('`'))
        .collect();
    for h in &helps[1..] {
        let own: Vec<&help::Flag> = h
            .flags
            .iter()
            .filter(|f| !global.contains(&f.long.as_str()))
            .collect();
        if !h.commands.is_empty() && own.is_empty() {
            // A group such as `model`: its commands have the sections.
            continue;
        }
        let heading = headings
            .iter()
            .find(|heading| command_of(heading).0 == h.path)
            .unwrap_or_else(|| panic!("docs/cli.md has no reference section for `{}`", h.name()));
        assert_eq!(
            command_of(heading).1,
            h.positionals(),
            "docs/cli.md: the arguments of `{}`; its help says: {}",
            h.name(),
            h.usage
        );
        let section = markdown::section(reference, &format!("### `{heading}`"));
        if own.is_empty() {
            assert!(
                section.contains("No flags of its own"),
                "docs/cli.md: `{}` has no flags of its own; its section should say so",
                h.name()
            );
            continue;
        }
        let rows = markdown::table(section, "| flag | default |");
        let required = h.required();
        for flag in &own {
            let row = rows
                .iter()
                .find(|r| markdown::long_flags(&r[0]).first() == Some(&flag.long))
                .unwrap_or_else(|| {
                    panic!(
                        "docs/cli.md: `{}` does not list --{} ({})",
                        h.name(),
                        flag.long,
                        flag.text
                    )
                });
            let cell = markdown::plain(&row[1]);
            let what = format!("docs/cli.md: the default of `{} --{}`", h.name(), flag.long);
            if required.contains(&flag.long) {
                assert_eq!(cell, "required", "{what}: its help requires it");
            } else if let Some(default) = &flag.default {
                assert_eq!(&cell, default, "{what}; its help says: {}", flag.text);
            } else {
                assert!(
                    is_no_value(&cell),
                    "{what} is {cell:?}, but its help states none: {}",
                    flag.text
                );
            }
            if let Some(short) = flag.short {
                assert!(
                    row[0].contains(&format!("`-{short}`")),
                    "docs/cli.md: `{} --{}` is also -{short}",
                    h.name(),
                    flag.long
                );
            }
        }
        for row in &rows {
            for named in markdown::long_flags(&row[0]) {
                assert!(
                    h.flag(&named).is_some(),
                    "docs/cli.md: `{}` has no --{named}",
                    h.name()
                );
            }
        }
    }
    for heading in &headings {
        let (path, _) = command_of(heading);
        assert!(
            helps.iter().any(|h| h.path == path),
            "docs/cli.md documents `{heading}`, which is not a command"
        );
    }

    // The overview names every command, and only commands.
    let overview = markdown::table(&doc, "| command | what it does |");
    let named: Vec<Vec<String>> = overview
        .iter()
        .map(|r| command_of(&format!("memorygraph {}", markdown::plain(&r[0]))).0)
        .collect();
    for h in &helps[1..] {
        if h.commands.is_empty() {
            assert!(
                named.contains(&h.path),
                "docs/cli.md: the table of commands has no `{}`",
                h.name()
            );
        }
    }
    for path in &named {
        assert!(
            helps.iter().any(|h| &h.path == path),
            "docs/cli.md: the table of commands names `{}`, which is not a command",
            path.join(" ")
        );
    }

    // Every flag named in the prose, the tables, or a `memorygraph` line of an example.
    let mut in_block = false;
    for (n, line) in doc.lines().enumerate() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block && !line.starts_with("memorygraph ") {
            continue;
        }
        for flag in markdown::long_flags(line) {
            assert!(
                helps.iter().any(|h| h.flag(&flag).is_some()),
                "docs/cli.md:{}: no command has --{flag}",
                n + 1
            );
        }
    }
}

/// The README's settings table against `memorygraph --help`: every variable the help lists
/// is a row with its flag and default, and every row's flag exists (at the top or on the
/// command that has it) and reads the row's variable. A row without a flag says so (`—`):
/// its variable must then be one no global flag reads, and one the program's sources read.
#[test]
fn readme_settings_table_matches_the_help() {
    let readme = markdown::page("README.md");
    let rows = markdown::table(&readme, "| variable | flag | default |");
    let helps = help::every_command();
    let top = &helps[0];
    for flag in top.flags.iter().filter(|f| f.env.is_some()) {
        let env = flag.env.as_deref().unwrap();
        let row = rows
            .iter()
            .find(|r| markdown::plain(&r[0]) == env)
            .unwrap_or_else(|| panic!("README.md: the settings table has no {env}"));
        assert_eq!(
            markdown::long_flags(&row[1]),
            vec![flag.long.clone()],
            "README.md: the flag of {env}"
        );
        if let Some(default) = &flag.default {
            assert!(
                same_default(&row[2], default),
                "README.md: {env} defaults to {default:?} by the help, the table says {}",
                row[2]
            );
        }
    }
    for row in &rows {
        let env = markdown::plain(&row[0]);
        match markdown::long_flags(&row[1]).first() {
            Some(long) => {
                let owner = helps
                    .iter()
                    .find_map(|h| h.flag(long))
                    .unwrap_or_else(|| panic!("README.md: {env}'s flag --{long} does not exist"));
                assert_eq!(
                    owner.env.as_deref(),
                    Some(env.as_str()),
                    "README.md: --{long} reads another variable: {}",
                    owner.text
                );
            }
            None => {
                assert!(
                    is_no_value(&row[1]),
                    "README.md: {env}'s flag cell names no flag and is no `—`: {}",
                    row[1]
                );
                assert!(
                    !top.flags.iter().any(|f| f.env.as_deref() == Some(&env)),
                    "README.md: {env} has a flag, the table says none"
                );
                assert!(
                    source_reads(&env),
                    "README.md: nothing in src/ or packaging/ reads {env}"
                );
            }
        }
    }
}

/// Whether a file under src/ or packaging/ names the variable (in quotes: read, not only
/// mentioned in a comment).
fn source_reads(variable: &str) -> bool {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let quoted = [format!("\"{variable}\""), format!("'{variable}'")];
    let mut todo = vec![root.join("src"), root.join("packaging")];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path)
                && (quoted.iter().any(|q| text.contains(q.as_str()))
                    || text.contains(&format!("env.{variable}")))
            {
                return true;
            }
        }
    }
    false
}

/// Runs a command with `--json` on `db`, answers as large as they come, and returns its JSON.
fn cli_json(db: &std::path::Path, args: &[&str]) -> Value {
    let out = common::command(db.parent().unwrap())
        .env("MEMORY_TURSO_PATH", db)
        .env("MEMORY_MAX_RESPONSE_CHARS", "1000000")
        .arg("--json")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let ran = common::run::ran(out).ok();
    ran.json()
}

/// The default each command's help states is the one it applies: more memories than any
/// page and a longer chain than any depth are stored, and each command run without the flag
/// must stop exactly at the stated default.
#[test]
fn the_defaults_the_help_states_are_what_the_commands_do() {
    let number = |path: &[&str], flag: &str| -> usize {
        let h = help::help(path);
        let f = h
            .flag(flag)
            .unwrap_or_else(|| panic!("{} has no --{flag}", h.name()));
        f.default
            .as_deref()
            .unwrap_or_else(|| panic!("{} --{flag} states no default: {}", h.name(), f.text))
            .parse()
            .unwrap_or_else(|e| panic!("{} --{flag}: {e}: {}", h.name(), f.text))
    };
    let search_limit = number(&["search"], "limit");
    let recall_limit = number(&["recall"], "limit");
    let related_depth = number(&["related"], "depth");
    let picture_depth = number(&["export"], "depth");
    let chain_length = related_depth.max(picture_depth) + 2;

    let scratch = Scratch::new();
    let db = scratch.db();
    let mut server = Server::started(&db, &[]);
    let many = search_limit.max(recall_limit) + 5;
    for i in 0..many {
        common::store(
            &mut server,
            "general",
            &format!("Alpha note {i}"),
            "alpha",
            json!({}),
        );
    }
    let chain: Vec<String> = (0..=chain_length)
        .map(|i| {
            common::store(
                &mut server,
                "task",
                &format!("Link {i}"),
                "a step",
                json!({}),
            )
        })
        .collect();
    for pair in chain.windows(2) {
        server.ok(
            "create_relationship",
            json!({"from_memory_id": pair[0], "to_memory_id": pair[1], "relationship_type": "FOLLOWS"}),
        );
    }
    server.stop();

    let found = cli_json(&db, &["search", "alpha"]);
    assert_eq!(found["total"], json!(many), "{found}");
    assert_eq!(
        found["results"].as_array().unwrap().len(),
        search_limit,
        "search without --limit"
    );
    let recalled = cli_json(&db, &["recall", "alpha"]);
    assert_eq!(
        recalled["results"].as_array().unwrap().len(),
        recall_limit,
        "recall without --limit"
    );
    let related = cli_json(&db, &["related", &chain[0]]);
    assert_eq!(
        related["total"],
        json!(related_depth),
        "related without --depth: {related}"
    );
    let picture = scratch.dir.path().join("around.dot");
    let drawn = cli_json(
        &db,
        &[
            "export",
            "--format",
            "dot",
            "--around",
            &chain[0],
            "--output",
            picture.to_str().unwrap(),
        ],
    );
    assert_eq!(
        drawn["memories"],
        json!(picture_depth + 1),
        "export --around without --depth: {drawn}"
    );

    // export without --format writes the format its help names.
    let format = help::help(&["export"])
        .flag("format")
        .unwrap()
        .default
        .clone();
    assert_eq!(format.as_deref(), Some("json"));
    let whole = common::run::run(&db, &["export"]).ok();
    let whole: Value = serde_json::from_str(&whole.stdout).expect("export writes JSON");
    assert_eq!(whole["format_version"], "2.0");

    // store without --importance stores the importance its help names.
    let importance: f64 = help::help(&["store"])
        .flag("importance")
        .unwrap()
        .default
        .as_deref()
        .expect("store --importance states its default")
        .parse()
        .unwrap();
    let stored = cli_json(
        &db,
        &[
            "store",
            "--type",
            "fix",
            "--title",
            "Plain",
            "--content",
            "c",
        ],
    );
    let id = stored["memory_id"].as_str().unwrap();
    let got = cli_json(&db, &["get", id]);
    assert_eq!(got["memory"]["importance"], json!(importance), "{got}");
}
