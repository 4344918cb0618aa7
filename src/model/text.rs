//! Quoting a caller's value in an error message. An error names what was wrong; it never
//! repeats a long input whole (a 1 MB id must not come back as a 1 MB error).

/// Longest part of a caller's value an error message quotes, in characters.
pub const QUOTED_MAX_CHARS: usize = 40;

/// Longest stretch of unquoted library text kept in a message.
const PLAIN_MAX_CHARS: usize = 300;

/// A caller's value for an error message: quoted whole when short; otherwise its first
/// characters, a `…` mark and how long it was.
pub fn quote(value: &str) -> String {
    let chars = value.chars().count();
    if chars <= QUOTED_MAX_CHARS {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(QUOTED_MAX_CHARS).collect();
    format!("{head:?}… ({chars} characters)")
}

/// A caller's value shown unquoted (an id): whole when short; otherwise its first
/// characters, a `…` mark and how long it was.
pub fn shorten(value: &str) -> String {
    clip(value, QUOTED_MAX_CHARS)
}

/// Shortens every long quoted or backticked stretch of a message written by a library
/// (serde's "unknown field `…`" or "invalid type: string \"…\""), so the message stays
/// short whatever the caller sent.
pub fn clip_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1_024));
    let mut rest = message;
    while let Some(start) = rest.find(['`', '"']) {
        let mark = rest[start..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find(mark) else {
            out.push_str(&clip(after, QUOTED_MAX_CHARS));
            return out;
        };
        out.push_str(&clip(&after[..end], QUOTED_MAX_CHARS));
        out.push(mark);
        rest = &after[end + 1..];
    }
    out.push_str(&clip(rest, PLAIN_MAX_CHARS));
    out
}

/// Cuts a stretch of text past `max` characters, saying how long it was.
fn clip(text: &str, max: usize) -> String {
    let chars = text.chars().count();
    if chars <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max).collect();
    format!("{head}… ({chars} characters)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_and_marked() {
        assert_eq!(quote("abc"), "\"abc\"");
        let long = "x".repeat(1_000_000);
        let q = quote(&long);
        assert!(q.len() < 80, "{q}");
        assert!(q.contains("1000000 characters"));
        let m = clip_quoted(&format!("unknown field `{long}`, expected one of `a`, `b`"));
        assert!(m.len() < 150, "{m}");
        assert!(m.ends_with("expected one of `a`, `b`"), "{m}");
        let m = clip_quoted(&format!("invalid type: string \"{long}\", expected f64"));
        assert!(m.len() < 150, "{m}");
    }
}
