//! The report in words, numbered as `--group` counts.

use crate::backend::Consolidation;
use crate::backend::consolidate::Named;

/// One memory on a line: title, type, day, id.
pub fn line(m: &Named) -> String {
    format!(
        "  {} ({}, {}) {}\n",
        m.title,
        m.memory_type,
        m.created_at.get(..10).unwrap_or(&m.created_at),
        m.id
    )
}

pub fn text(r: &Consolidation, days: u32, max_importance: f64) -> String {
    let mut out = String::new();
    let lists = |out: &mut String, heading: String, label: &str, lists: &[Vec<Named>]| {
        out.push_str(&heading);
        for (i, list) in lists.iter().enumerate() {
            out.push_str(&format!(" {label} {}:\n", i + 1));
            list.iter().for_each(|m| out.push_str(&line(m)));
        }
    };
    lists(
        &mut out,
        format!(
            "Near-duplicates: {} group(s) of memories that say nearly the same (--apply near-duplicates merges each into one memory)\n",
            r.near_duplicates.len()
        ),
        "group",
        &r.near_duplicates,
    );
    lists(
        &mut out,
        format!(
            "Versions: {} chain(s) of memories replaced one after another, newest first\n",
            r.version_chains.len()
        ),
        "chain",
        &r.version_chains,
    );
    out.push_str(&format!(
        "Unused: {} memory(ies) older than {} days, never read or recalled, importance at most {} (--apply unused archives them)\n",
        r.unused.len(),
        days,
        max_importance
    ));
    r.unused.iter().for_each(|m| out.push_str(&line(m)));
    out.push_str(&format!(
        "Dangling: {} relationship(s) with an end that is not a memory (--apply dangling removes them)\n",
        r.dangling_relationships.len()
    ));
    for d in &r.dangling_relationships {
        out.push_str(&format!(
            "  {} {} -[{}]-> {} (missing: {})\n",
            d.id,
            d.from_id,
            d.rel_type,
            d.to_id,
            d.missing.join(", ")
        ));
    }
    out
}
