//! Auth tokens for a primary started with `--auth-jwt-key-file`: an Ed25519 key pair made
//! with openssl, and EdDSA-signed JWTs with the payload a test chooses (`{"a":"rw"}`,
//! `{"a":"ro"}`, an `exp` in the past …).

use std::path::{Path, PathBuf};

/// Base64url without padding, as JWTs use.
pub fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Makes the key pair in `dir` (once) and returns the public key's path and a token with
/// `payload`, signed by the private key.
pub fn signed_token(dir: &Path, payload: &str) -> (PathBuf, String) {
    let key = dir.join("jwt-key.pem");
    let public = dir.join("jwt-pub.pem");
    if !key.exists() {
        openssl(&[
            "genpkey",
            "-algorithm",
            "ed25519",
            "-out",
            key.to_str().unwrap(),
        ]);
        openssl(&[
            "pkey",
            "-in",
            key.to_str().unwrap(),
            "-pubout",
            "-out",
            public.to_str().unwrap(),
        ]);
    }
    let signing_input = format!(
        "{}.{}",
        b64url(br#"{"alg":"EdDSA","typ":"JWT"}"#),
        b64url(payload.as_bytes())
    );
    let input = dir.join("jwt-input");
    std::fs::write(&input, &signing_input).unwrap();
    let signature = openssl(&[
        "pkeyutl",
        "-sign",
        "-inkey",
        key.to_str().unwrap(),
        "-rawin",
        "-in",
        input.to_str().unwrap(),
    ]);
    (public, format!("{signing_input}.{}", b64url(&signature)))
}
