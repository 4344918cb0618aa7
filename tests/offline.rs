//! `MEMORYGRAPH_TEST_OFFLINE=1` must turn every test that needs a program from outside into a
//! skipped one. libtest decides that at compile time, from the attribute
//! `#[cfg_attr(memorygraph_test_offline, ignore = "...")]`; this checks that no such test
//! lacks it (it would fail offline instead of being counted as skipped).

use std::path::Path;

/// What a test calls when it needs sqld, MemoryGraph, the Inspector or the packaging tools.
const NEEDS_A_TOOL: [&str; 9] = [
    "Sqld::start(",
    "sqld::binary(",
    "external_tool(",
    "tools::sqld(",
    "tools::memorygraph_py(",
    "tools::inspector(",
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
