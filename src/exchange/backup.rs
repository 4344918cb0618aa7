//! The backup `consolidate --apply` writes before it changes anything: the JSON export
//! (`json`) of every memory and relationship it is about to change or remove, plus one key
//! of its own, `consolidation`, saying what the apply made and removed. `import` reads the
//! file like any export and ignores that key; `consolidate --undo` needs it.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use super::json;
use crate::backend::ImportBatch;
use crate::backend::consolidate::{Applied, Record};

/// The key of the record in the document.
const KEY: &str = "consolidation";

/// The backup's text.
pub fn render(applied: &Applied) -> Result<String> {
    let mut doc = json::export(&applied.before, &applied.record.applied_at);
    doc.as_object_mut()
        .expect("an export is an object")
        .insert(KEY.into(), serde_json::to_value(&applied.record)?);
    let mut text = serde_json::to_string_pretty(&doc)?;
    text.push('\n');
    Ok(text)
}

/// A backup read for `undo`: what to put back, and the record of what the apply did.
#[derive(Debug, Clone)]
pub struct Backup {
    pub batch: ImportBatch,
    pub record: Record,
}

/// Reads a backup; any other file (an export without the record, a file that is not an
/// export) is refused with the reason.
pub fn parse(text: &str) -> Result<Backup> {
    let doc: Value = serde_json::from_str(text).context("the file is not valid JSON")?;
    let record = doc.get(KEY).ok_or_else(|| {
        anyhow!("it has no `{KEY}` record, so it was not written by consolidate --apply")
    })?;
    let record: Record = serde_json::from_value(record.clone())
        .with_context(|| format!("its `{KEY}` record is not one consolidate --apply writes"))?;
    let batch = json::parse(text)?.batch;
    if let Some(i) = batch.relationships.iter().position(|r| r.id.is_none()) {
        bail!("relationships[{i}] has no id; every relationship of a backup has one");
    }
    Ok(Backup { batch, record })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Everything;

    fn applied() -> Applied {
        Applied {
            dry_run: false,
            before: Everything::default(),
            record: Record {
                applied_at: "2026-01-01T00:00:00.000000+00:00".into(),
                merged: Vec::new(),
                archived: vec!["a".into()],
                removed_relationships: Vec::new(),
                dangling: Vec::new(),
            },
        }
    }

    #[test]
    fn a_backup_reads_back_with_its_record() {
        let text = render(&applied()).unwrap();
        let read = parse(&text).unwrap();
        assert_eq!(read.record, applied().record);
        assert!(read.batch.memories.is_empty());
        // It is an export, too: the import reader takes it.
        assert!(json::parse(&text).is_ok());
    }

    #[test]
    fn a_plain_export_or_other_json_is_not_a_backup() {
        let export = json::export(&Everything::default(), "now").to_string();
        let e = parse(&export).unwrap_err().to_string();
        assert!(e.contains("no `consolidation` record"), "{e}");
        assert!(parse("[]").is_err());
        assert!(parse("not json").is_err());
        let bad = r#"{"consolidation": {"applied_at": 3}, "format_version": "2.0"}"#;
        assert!(parse(bad).is_err());
    }
}
