//! Likely secrets in text a caller asks us to store. Memories are plain text that is
//! searched, shown to models and, in replica mode, copied to every machine of the user; a
//! private key or an access token pasted into a memory by a model would leak that way. So a
//! store or update whose text carries one is refused unless the caller says it is meant
//! (`allow_secrets: true`). Only well-known shapes are recognised, to keep false alarms rare:
//! private key blocks, cloud access key ids, tokens with a vendor's fixed prefix, JWTs.

use super::InvalidInput;

/// A likely secret: what it looks like and where it starts (in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFinding {
    pub kind: &'static str,
    pub at_char: usize,
}

/// Token shapes that start with a fixed prefix: the prefix, how many characters of the
/// token's alphabet must follow it (at least), and whether more may follow.
struct PrefixedToken {
    kind: &'static str,
    prefix: &'static str,
    min_body: usize,
    exact: bool,
    body: fn(char) -> bool,
}

fn upper_alnum(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

fn alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

fn url_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

const PREFIXED: &[PrefixedToken] = &[
    PrefixedToken {
        kind: "an AWS access key id",
        prefix: "AKIA",
        min_body: 16,
        exact: true,
        body: upper_alnum,
    },
    PrefixedToken {
        kind: "an AWS temporary access key id",
        prefix: "ASIA",
        min_body: 16,
        exact: true,
        body: upper_alnum,
    },
    PrefixedToken {
        kind: "a GitHub token",
        prefix: "ghp_",
        min_body: 36,
        exact: false,
        body: alnum,
    },
    PrefixedToken {
        kind: "a GitHub OAuth token",
        prefix: "gho_",
        min_body: 36,
        exact: false,
        body: alnum,
    },
    PrefixedToken {
        kind: "a GitHub app token",
        prefix: "ghs_",
        min_body: 36,
        exact: false,
        body: alnum,
    },
    PrefixedToken {
        kind: "a GitHub user-to-server token",
        prefix: "ghu_",
        min_body: 36,
        exact: false,
        body: alnum,
    },
    PrefixedToken {
        kind: "a GitHub refresh token",
        prefix: "ghr_",
        min_body: 36,
        exact: false,
        body: alnum,
    },
    PrefixedToken {
        kind: "a GitHub fine-grained token",
        prefix: "github_pat_",
        min_body: 40,
        exact: false,
        body: url_safe,
    },
    PrefixedToken {
        kind: "a GitLab token",
        prefix: "glpat-",
        min_body: 20,
        exact: false,
        body: url_safe,
    },
    PrefixedToken {
        kind: "a Slack token",
        prefix: "xoxb-",
        min_body: 20,
        exact: false,
        body: url_safe,
    },
    PrefixedToken {
        kind: "a Slack token",
        prefix: "xoxp-",
        min_body: 20,
        exact: false,
        body: url_safe,
    },
    PrefixedToken {
        kind: "an Anthropic API key",
        prefix: "sk-ant-",
        min_body: 32,
        exact: false,
        body: url_safe,
    },
    PrefixedToken {
        kind: "an OpenAI API key",
        prefix: "sk-proj-",
        min_body: 32,
        exact: false,
        body: url_safe,
    },
    PrefixedToken {
        kind: "a Stripe secret key",
        prefix: "sk_live_",
        min_body: 20,
        exact: false,
        body: alnum,
    },
    PrefixedToken {
        kind: "a Stripe restricted key",
        prefix: "rk_live_",
        min_body: 20,
        exact: false,
        body: alnum,
    },
    PrefixedToken {
        kind: "a Google API key",
        prefix: "AIza",
        min_body: 35,
        exact: true,
        body: url_safe,
    },
    PrefixedToken {
        kind: "an npm token",
        prefix: "npm_",
        min_body: 36,
        exact: false,
        body: alnum,
    },
    PrefixedToken {
        kind: "a PyPI token",
        prefix: "pypi-AgEIcHlwaS5vcmc",
        min_body: 32,
        exact: false,
        body: url_safe,
    },
];

/// The first likely secret in `text`, if any.
pub fn find_secret(text: &str) -> Option<SecretFinding> {
    let mut found: Option<(usize, &'static str)> = None;
    let mut keep = |byte: usize, kind: &'static str| {
        if found.is_none_or(|(b, _)| byte < b) {
            found = Some((byte, kind));
        }
    };
    if let Some(byte) = private_key_block(text) {
        keep(byte, "a private key");
    }
    if let Some(byte) = jwt(text) {
        keep(byte, "a JSON web token (such as a Turso auth token)");
    }
    for token in PREFIXED {
        for (byte, _) in text.match_indices(token.prefix) {
            if starts_word(text, byte) && body_fits(&text[byte + token.prefix.len()..], token) {
                keep(byte, token.kind);
                break;
            }
        }
    }
    found.map(|(byte, kind)| SecretFinding {
        kind,
        at_char: text[..byte].chars().count(),
    })
}

/// Refuses text that holds a likely secret, naming the field, the kind and the place but
/// never repeating the secret.
pub fn refuse_secrets<'a>(
    fields: impl IntoIterator<Item = (&'static str, &'a str)>,
) -> Result<(), InvalidInput> {
    for (field, text) in fields {
        if let Some(f) = find_secret(text) {
            return Err(InvalidInput::new(
                field,
                format!(
                    "it looks like it holds a secret ({}, at character {}). Memories are kept as \
                     plain text, shown to models and synced to your other machines, so nothing \
                     was stored. Remove the secret, or pass allow_secrets: true to store it anyway",
                    f.kind, f.at_char
                ),
            ));
        }
    }
    Ok(())
}

/// True when the character before `byte` cannot be part of a token, so "xAKIA…" inside a
/// longer word is not taken for a key.
fn starts_word(text: &str, byte: usize) -> bool {
    text[..byte]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
}

fn body_fits(rest: &str, token: &PrefixedToken) -> bool {
    let len = rest.chars().take_while(|c| (token.body)(*c)).count();
    if token.exact {
        len == token.min_body
            && rest
                .chars()
                .nth(len)
                .is_none_or(|c| !c.is_ascii_alphanumeric())
    } else {
        len >= token.min_body
    }
}

/// `-----BEGIN … PRIVATE KEY-----` (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP … BLOCK).
fn private_key_block(text: &str) -> Option<usize> {
    const BEGIN: &str = "-----BEGIN ";
    text.match_indices(BEGIN).find_map(|(byte, _)| {
        let label: String = text[byte + BEGIN.len()..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || *c == ' ')
            .take(40)
            .collect();
        label.contains("PRIVATE KEY").then_some(byte)
    })
}

/// Three base64url parts joined by dots, the first two starting with `eyJ` (`{"`).
fn jwt(text: &str) -> Option<usize> {
    text.match_indices("eyJ").find_map(|(byte, _)| {
        if !starts_word(text, byte) {
            return None;
        }
        let mut parts = text[byte..].splitn(3, '.');
        let header = parts.next()?;
        let payload = parts.next()?;
        let signature = parts.next()?;
        let part_len = |s: &str| s.chars().take_while(|c| url_safe(*c)).count();
        let whole = |s: &str| part_len(s) == s.len();
        (header.len() >= 10
            && whole(header)
            && payload.starts_with("eyJ")
            && payload.len() >= 10
            && whole(payload)
            && part_len(signature) >= 16)
            .then_some(byte)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Option<&'static str> {
        find_secret(text).map(|f| f.kind)
    }

    #[test]
    fn finds_the_well_known_shapes() {
        let pem = "notes\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n-----END OPENSSH PRIVATE KEY-----";
        assert_eq!(kind(pem), Some("a private key"));
        assert_eq!(
            kind("-----BEGIN RSA PRIVATE KEY-----"),
            Some("a private key")
        );
        assert_eq!(
            kind("key AKIAIOSFODNN7EXAMPLE here"),
            Some("an AWS access key id")
        );
        assert_eq!(
            kind(&format!("token=ghp_{}", "a1B2".repeat(9))),
            Some("a GitHub token")
        );
        assert_eq!(
            kind(&format!("sk-ant-api03-{}", "x".repeat(40))),
            Some("an Anthropic API key")
        );
        assert_eq!(
            kind(&format!("xoxb-{}", "1234567890-".repeat(3))),
            Some("a Slack token")
        );
        let jwt = "Authorization: Bearer eyJhbGciOiJFZERTQSJ9.eyJhIjoicnciLCJpYXQiOjE3MDB9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";
        assert_eq!(
            kind(jwt),
            Some("a JSON web token (such as a Turso auth token)")
        );
    }

    #[test]
    fn ordinary_developer_text_passes() {
        for text in [
            "Use AKIA-style key ids only through the credentials file.",
            "-----BEGIN CERTIFICATE----- is public, not a secret",
            "-----BEGIN PUBLIC KEY-----",
            "the ghp_ prefix marks GitHub tokens",
            "task-ant-colony and desk-proj-plan",
            "JSON starts with eyJ when base64-encoded: eyJhbGciOi.",
            "PKIAIOSFODNN7EXAMPLE1 is too long to be a key id",
            "xAKIAIOSFODNN7EXAMPLE",
        ] {
            assert_eq!(kind(text), None, "{text}");
        }
    }

    #[test]
    fn reports_the_character_offset_and_never_the_secret() {
        let text = "ünïcödé AKIAIOSFODNN7EXAMPLE";
        assert_eq!(find_secret(text).unwrap().at_char, 8);
        let err = refuse_secrets([("content", text)]).unwrap_err();
        assert_eq!(err.field, "content");
        assert!(err.rule.contains("allow_secrets"));
        assert!(!err.to_string().contains("AKIAIOSFODNN7EXAMPLE"));
    }
}
