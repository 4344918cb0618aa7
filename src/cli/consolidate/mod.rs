//! `consolidate`: what could be merged, retired or mended, without an LLM (see
//! `backend::consolidate`). It reads only.

use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use crate::backend::Consolidation;
use crate::backend::consolidate::Named;
use crate::config::Config;
use crate::open::{close, open_backend};

#[derive(Debug, Args)]
pub struct ConsolidateArgs {
    /// A memory counts as unused when it is older than this many days, has never been read
    /// or recalled, and its importance is at most --max-importance.
    #[arg(long, value_name = "N", default_value_t = 90)]
    days: u32,
    /// The highest importance an unused memory may have, 0–1.
    #[arg(long, value_name = "X", default_value_t = 0.3, value_parser = unit_interval)]
    max_importance: f64,
}

fn unit_interval(raw: &str) -> std::result::Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("{raw:?} is not a number from 0 to 1")),
    }
}

pub async fn run(config: Config, a: ConsolidateArgs, json: bool) -> Result<()> {
    let backend = Arc::new(open_backend(&config).await?);
    let report = backend.consolidation(a.days, a.max_importance).await;
    close(backend).await?;
    let report = report.context("reading the database")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report, &a));
    }
    Ok(())
}

fn text(r: &Consolidation, a: &ConsolidateArgs) -> String {
    let mut out = String::new();
    let line = |m: &Named| {
        format!(
            "  {} ({}, {}) {}\n",
            m.title,
            m.memory_type,
            m.created_at.get(..10).unwrap_or(&m.created_at),
            m.id
        )
    };
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
            "Near-duplicates: {} group(s) of memories that say nearly the same (keep one: update it, or supersede the others)\n",
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
        "Unused: {} memory(ies) older than {} days, never read or recalled, importance at most {}\n",
        r.unused.len(),
        a.days,
        a.max_importance
    ));
    r.unused.iter().for_each(|m| out.push_str(&line(m)));
    out.push_str(&format!(
        "Dangling: {} relationship(s) with an end that is not a memory\n",
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
