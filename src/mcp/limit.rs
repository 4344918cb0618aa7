//! The answer size limit (`MEMORY_MAX_RESPONSE_CHARS`), applied to every tool answer as its
//! last step: neither the text nor the structured content, written as JSON, is longer.
//!
//! The tools size what they can page (lists, a long content) to fit, and say how to go on.
//! What they cannot page — a memory with 50 tags of 100 characters in a store's answer at
//! the smallest limit, a long primary URL or error in `health` — is made to fit here, the
//! same way for every tool: the longest strings are cut first, each to the same length
//! and marked with `…`, so short values (types, names, numbers) stay as they are and the
//! answer keeps every field its `outputSchema` requires. When that is not enough, items
//! are dropped from the end of the largest lists (a page keeps one, and says where to go
//! on); ids and timestamps, which a cut makes useless, are cut only when nothing else is
//! left.

use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// What marks a cut string or line.
const CUT: char = '…';
/// Strings of at most this many characters are left whole while longer ones can be cut.
const KEEP: usize = 16;
/// Lines of the text are cut to no fewer characters than this.
const KEEP_LINE: usize = 40;
/// Ends the text when it had to be cut short.
const TEXT_CUT: &str = "\n… (cut to the answer size limit)";

/// Makes both parts of a successful answer fit `max` characters. Tool errors have their
/// own, lower limit.
pub fn bound(result: &mut CallToolResult, max: usize) {
    if result.is_error == Some(true) {
        return;
    }
    if let Some(data) = result.structured_content.as_mut() {
        bound_json(data, max, true);
    }
    bound_text(&mut result.content, max);
}

/// Characters of a value written as JSON.
fn json_chars(v: &Value) -> usize {
    serde_json::to_string(v).map_or(usize::MAX, |s| s.chars().count())
}

/// Cuts a part of an answer the way [`bound`] would until it takes at most `max`
/// characters as JSON: for a tool that sizes the rest of its answer around that part.
/// Ids and times stay whole, so the part may stay larger.
pub fn squeeze<T: Serialize + DeserializeOwned>(value: &T, max: usize) -> Option<T> {
    let mut v = serde_json::to_value(value).ok()?;
    bound_json(&mut v, max, false);
    serde_json::from_value(v).ok()
}

/// Whether a field holds an id or a time, which a cut would make useless, or a memory's
/// content, which `get_memory` pages itself (a cut would lose characters it says it sent).
fn exact(key: &str) -> bool {
    key == "id"
        || key == "content"
        || key.ends_with("_id")
        || key.ends_with("_at")
        || matches!(
            key,
            "timestamp"
                | "last_accessed"
                | "valid_from"
                | "valid_until"
                | "supersedes"
                | "superseded_by"
                | "invalidated_by"
        )
}

/// `s` cut to `keep` characters, the last of them `…`.
fn cut(s: &str, keep: usize) -> String {
    let mut out: String = s.chars().take(keep.saturating_sub(1)).collect();
    out.push(CUT);
    out
}

/// Cuts every string longer than `keep` characters (ids and times too when `all`). The
/// items of a list count as values of the list's field.
fn cut_strings(v: &mut Value, key: &str, keep: usize, all: bool) {
    match v {
        Value::String(s) if (all || !exact(key)) && s.chars().count() > keep => {
            *s = cut(s, keep);
        }
        Value::Array(items) => {
            for item in items {
                cut_strings(item, key, keep, all);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                cut_strings(item, k, keep, all);
            }
        }
        _ => {}
    }
}

/// The longest string `cut_strings` would cut, in characters.
fn longest(v: &Value, key: &str, all: bool) -> usize {
    match v {
        Value::String(s) if all || !exact(key) => s.chars().count(),
        Value::Array(items) => items
            .iter()
            .map(|i| longest(i, key, all))
            .max()
            .unwrap_or(0),
        Value::Object(map) => map
            .iter()
            .map(|(k, i)| longest(i, k, all))
            .max()
            .unwrap_or(0),
        _ => 0,
    }
}

/// Cuts the strings to the longest common length that fits; false when even `KEEP` does not.
fn fill(v: &mut Value, max: usize, all: bool) -> bool {
    let fits = |keep: usize, v: &Value| {
        let mut tried = v.clone();
        cut_strings(&mut tried, "", keep, all);
        json_chars(&tried) <= max
    };
    let top = longest(v, "", all);
    if top <= KEEP || !fits(KEEP, v) {
        cut_strings(v, "", KEEP, all);
        return json_chars(v) <= max;
    }
    // The largest length that fits: KEEP fits, `top` does not.
    let (mut low, mut high) = (KEEP, top);
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if fits(mid, v) {
            low = mid;
        } else {
            high = mid;
        }
    }
    cut_strings(v, "", low, all);
    true
}

/// Every non-empty list in the value: its size as JSON, where it is, and its length.
fn lists(v: &Value, path: &mut Vec<PathStep>, out: &mut Vec<(usize, Vec<PathStep>, usize)>) {
    match v {
        Value::Array(items) => {
            if !items.is_empty() {
                out.push((json_chars(v), path.clone(), items.len()));
            }
            for (i, item) in items.iter().enumerate() {
                path.push(PathStep::Index(i));
                lists(item, path, out);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                path.push(PathStep::Key(k.clone()));
                lists(item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn at<'a>(v: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, step| match step {
        PathStep::Key(k) => v.get_mut(k.as_str()),
        PathStep::Index(i) => v.get_mut(*i),
    })
}

/// For a list at the top of an answer that pages it: the fields that say where the page
/// starts and where the next one does (`offset`, `next_offset` beside `has_more`; or
/// `relationships_offset`, `relationships_next_offset` for `relationships`).
fn paging_of(v: &Value, list: &str) -> Option<(String, String)> {
    let own = format!("{list}_offset");
    if v.get(&own).is_some_and(Value::is_u64) {
        return Some((own, format!("{list}_next_offset")));
    }
    (v.get("offset").is_some_and(Value::is_u64) && v.get("has_more").is_some())
        .then(|| ("offset".to_string(), "next_offset".to_string()))
}

/// Drops items from the end of the largest lists until the value fits. A page of a paged
/// answer ([`paging_of`]) keeps one item, so paging moves on, and says where to go on.
fn drop_items(v: &mut Value, max: usize) {
    while json_chars(v) > max {
        let mut found = Vec::new();
        lists(v, &mut Vec::new(), &mut found);
        let paging = |path: &[PathStep]| match path {
            [PathStep::Key(list)] => paging_of(v, list),
            _ => None,
        };
        found.retain(|(_, path, len)| *len > 1 || paging(path).is_none());
        let Some((_, path, _)) = found.into_iter().max_by_key(|(size, _, _)| *size) else {
            return;
        };
        let paged = paging(&path);
        let Some(Value::Array(items)) = at(v, &path) else {
            return;
        };
        items.pop();
        let left = items.len() as u64;
        if let Some((offset, next_offset)) = paged {
            let next = v[&offset].as_u64().unwrap_or(0) + left;
            let resume = v
                .get(&next_offset)
                .and_then(Value::as_u64)
                .map_or(next, |n| n.min(next));
            if v.get("has_more").is_some() {
                v["has_more"] = Value::Bool(true);
            }
            v[&next_offset] = Value::from(resume);
        }
    }
}

/// Makes structured content fit: long strings cut alike, then list items dropped, and
/// only then (with `all`) ids and times cut.
fn bound_json(v: &mut Value, max: usize, all: bool) {
    if json_chars(v) <= max || fill(v, max, false) {
        return;
    }
    drop_items(v, max);
    if all && json_chars(v) > max {
        fill(v, max, true);
    }
}

/// Makes the text blocks together fit: their longest lines cut alike (to no fewer than
/// [`KEEP_LINE`] characters), then the end cut off.
fn bound_text(content: &mut [ContentBlock], max: usize) {
    let mut texts: Vec<String> = content
        .iter()
        .filter_map(|b| b.as_text().map(|t| t.text.clone()))
        .collect();
    let total = |texts: &[String]| texts.iter().map(|t| t.chars().count()).sum::<usize>();
    if total(&texts) <= max {
        return;
    }
    let cut_lines = |texts: &[String], keep: usize| -> Vec<String> {
        texts
            .iter()
            .map(|t| {
                t.split('\n')
                    .map(|line| {
                        if line.chars().count() > keep {
                            cut(line, keep)
                        } else {
                            line.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect()
    };
    let top = texts
        .iter()
        .flat_map(|t| t.split('\n'))
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    if top > KEEP_LINE && total(&cut_lines(&texts, KEEP_LINE)) <= max {
        let (mut low, mut high) = (KEEP_LINE, top);
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if total(&cut_lines(&texts, mid)) <= max {
                low = mid;
            } else {
                high = mid;
            }
        }
        texts = cut_lines(&texts, low);
    } else {
        texts = cut_lines(&texts, KEEP_LINE);
        // Whole blocks while they fit, then the start of the next; blocks past it are left
        // empty.
        let mut room = Some(max.saturating_sub(TEXT_CUT.chars().count()));
        for t in texts.iter_mut() {
            let n = t.chars().count();
            match room {
                Some(r) if n <= r => room = Some(r - n),
                Some(r) => {
                    *t = t.chars().take(r).collect::<String>() + TEXT_CUT;
                    room = None;
                }
                None => t.clear(),
            }
        }
    }
    let mut texts = texts.into_iter();
    for block in content.iter_mut() {
        if block.as_text().is_some()
            && let Some(t) = texts.next()
        {
            *block = ContentBlock::text(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn long_strings_are_cut_alike_and_ids_kept() {
        let id = "x".repeat(36);
        let mut v = json!({"memory_id": id, "title": "t".repeat(300), "tags": vec!["g".repeat(100); 30],
                           "type": "general", "created_at": "2026-01-01T00:00:00.000000+00:00"});
        bound_json(&mut v, 1000, true);
        assert!(json_chars(&v) <= 1000, "{v}");
        assert_eq!(v["memory_id"], json!(id));
        assert_eq!(v["type"], "general");
        assert_eq!(v["created_at"], "2026-01-01T00:00:00.000000+00:00");
        assert_eq!(v["tags"].as_array().unwrap().len(), 30);
        assert!(v["title"].as_str().unwrap().ends_with('…'));
        // Too many items to fit even cut: the last ones go, the id stays.
        let mut v = json!({"memory_id": id, "tags": vec!["g".repeat(100); 80]});
        bound_json(&mut v, 1000, true);
        assert!(json_chars(&v) <= 1000, "{v}");
        assert_eq!(v["memory_id"], json!(id));
        assert!(v["tags"].as_array().unwrap().len() < 80);
    }

    #[test]
    fn a_page_cut_to_fit_says_where_to_go_on() {
        let mut v = json!({"results": vec![json!({"id": "i".repeat(30)}); 100], "offset": 10,
                           "has_more": false, "total": 110});
        bound_json(&mut v, 1000, true);
        assert!(json_chars(&v) <= 1000);
        let kept = v["results"].as_array().unwrap().len() as u64;
        assert!(kept > 0);
        assert_eq!(v["has_more"], true);
        assert_eq!(v["next_offset"], json!(10 + kept));
    }

    #[test]
    fn text_lines_are_cut_before_the_end() {
        let mut blocks = vec![
            ContentBlock::text(format!(
                "head\n{}\nMore: call again with offset=3.",
                "z".repeat(3000)
            )),
            ContentBlock::text("a note"),
        ];
        bound_text(&mut blocks, 1000);
        let all: Vec<String> = blocks
            .iter()
            .map(|b| b.as_text().unwrap().text.clone())
            .collect();
        assert!(all.iter().map(|t| t.chars().count()).sum::<usize>() <= 1000);
        assert!(all[0].ends_with("offset=3."), "{}", all[0]);
        assert_eq!(all[1], "a note");
        let mut many = vec![ContentBlock::text("line\n".repeat(1000))];
        bound_text(&mut many, 1000);
        let t = &many[0].as_text().unwrap().text;
        assert!(t.chars().count() <= 1000 && t.ends_with(TEXT_CUT));
    }
}
