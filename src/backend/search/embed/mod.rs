//! Sentence embeddings in-process, on the CPU, offline: all-MiniLM-L6-v2 (384 dimensions,
//! mean pooling, L2-normalised) with the Hugging Face tokenizer and our encoder ([`bert`]).
//! The weights are never part of the binary: `memorygraph model install` puts them in the
//! data folder ([`install`]), and the server reads them from there after the MCP handshake.

#[cfg(feature = "semantic")]
mod bert;
#[cfg(feature = "semantic")]
mod bf16;
#[cfg(feature = "semantic")]
mod few_rows;
#[cfg(feature = "semantic")]
pub mod install;
#[cfg(feature = "semantic")]
mod weights;

use std::path::{Path, PathBuf};

#[cfg(feature = "semantic")]
use super::kernels::Kernels;

/// The model every vector in a database comes from (recorded in the database).
pub const MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// The folder under the data folder's `models/` that holds it.
pub const MODEL_FOLDER: &str = "all-MiniLM-L6-v2";
/// Numbers per vector.
pub const DIMENSIONS: usize = 384;
/// The SHA-256 of the one `model.safetensors` accepted, whatever the source.
pub const WEIGHTS_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// Tokens read per text; the rest is not embedded. 128 is the length the model was trained
/// on (its configuration allows 256): a long memory embeds in about half the time (38–49
/// instead of 25 per second), while recall@5 and hit@5 stayed the same on both benchmarks
/// (LoCoMo 0.611 against 0.612; paraphrase hit@5 0.830 both, hit@1 0.623 against 0.660).
/// The title and summary come first in the text, so they are always read.
pub const MAX_TOKENS: usize = 128;
/// Tokens per batch: texts are sorted by length and cut into batches of about this many
/// tokens, which bounds a batch's working memory (≈15 KB per token) while keeping its
/// matrices large enough for the products to run at full speed.
#[cfg(feature = "semantic")]
const BATCH_TOKENS: usize = 1024;
#[cfg(feature = "semantic")]
const MAX_BATCH: usize = 32;
/// A batch's number and its vectors.
#[cfg(feature = "semantic")]
type Embedded = (usize, Vec<Vec<f32>>);
/// Threads that embed a group of texts at once, at most.
#[cfg(feature = "semantic")]
const MAX_THREADS: usize = 2;

/// Where the model lives for a database: `models/all-MiniLM-L6-v2` beside the file.
pub fn model_dir(database: &Path) -> PathBuf {
    database
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("models")
        .join(MODEL_FOLDER)
}

/// Whether the model's files are in place for a database (they may still fail to load).
pub fn installed(database: &Path) -> bool {
    let dir = model_dir(database);
    dir.join(WEIGHTS_FILE).is_file() && dir.join(TOKENIZER_FILE).is_file()
}

/// The text of a memory that is embedded: title, summary and content, in that order, so the
/// words that say most about a memory are always inside the first [`MAX_TOKENS`].
pub fn memory_text(title: &str, summary: Option<&str>, content: &str) -> String {
    let mut text = String::with_capacity(title.len() + content.len() + 8);
    text.push_str(title.trim());
    if let Some(s) = summary.map(str::trim).filter(|s| !s.is_empty()) {
        text.push_str(". ");
        text.push_str(s);
    }
    let content = content.trim();
    if !content.is_empty() && content != title.trim() {
        text.push_str(". ");
        // The tokenizer reads at most MAX_TOKENS tokens; a few characters per token is plenty.
        let cut = content
            .char_indices()
            .nth(MAX_TOKENS * 8)
            .map_or(content.len(), |(i, _)| i);
        text.push_str(&content[..cut]);
    }
    text
}

/// Cosine similarity of two L2-normalised vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The loaded model.
#[cfg(feature = "semantic")]
pub struct Embedder {
    bert: bert::Bert,
    tokenizer: tokenizers::Tokenizer,
    bf16: bool,
}

/// Built without the `semantic` feature: never loads.
#[cfg(not(feature = "semantic"))]
pub struct Embedder {
    _never: std::convert::Infallible,
}

#[cfg(not(feature = "semantic"))]
impl Embedder {
    pub fn load(_dir: &Path) -> Result<Embedder, String> {
        Err("this memorygraph was built without semantic recall (cargo feature `semantic`)".into())
    }

    pub fn load_f32(dir: &Path) -> Result<Embedder, String> {
        Self::load(dir)
    }

    pub fn precision(&self) -> &'static str {
        match self._never {}
    }

    pub fn embed(&self, _texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        match self._never {}
    }
}

#[cfg(feature = "semantic")]
impl Embedder {
    /// Reads the weights and the tokenizer from a model folder (≈0.1–0.2 s). The products
    /// run in bfloat16 where the CPU has them ([`bf16`]).
    /// `MEMORYGRAPH_KERNEL` may keep the kernels to slower paths ([`Kernels`]).
    pub fn load(dir: &Path) -> Result<Embedder, String> {
        let kernels = Kernels::from_env()?;
        Self::load_with(dir, kernels, bf16::chosen(kernels))
    }

    /// [`Embedder::load`] with every product in f32, whatever the CPU: the vectors the
    /// bfloat16 ones are compared with.
    pub fn load_f32(dir: &Path) -> Result<Embedder, String> {
        Self::load_with(dir, Kernels::from_env()?, false)
    }

    /// The precision of the encoder's weight products: `bf16` or `f32`.
    pub fn precision(&self) -> &'static str {
        if self.bf16 { "bf16" } else { "f32" }
    }

    fn load_with(dir: &Path, kernels: Kernels, bf16: bool) -> Result<Embedder, String> {
        let weights = dir.join(WEIGHTS_FILE);
        let bert = bert::Bert::load(&weights, kernels, bf16)
            .map_err(|e| format!("cannot read the model weights {}: {e}", weights.display()))?;
        let path = dir.join(TOKENIZER_FILE);
        // A batch's texts are shared among the encoder's own threads ([`Embedder::embed`]);
        // left to itself, the tokenizer would encode them on a rayon pool of one thread per
        // core, beyond the encoder's limit.
        tokenizers::utils::parallelism::set_parallelism(false);
        let mut tokenizer = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| format!("cannot read the tokenizer {}: {e}", path.display()))?;
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| format!("cannot configure the tokenizer: {e}"))?;
        tokenizer.with_padding(None);
        Ok(Embedder {
            bert,
            tokenizer,
            bf16,
        })
    }

    /// One L2-normalised vector of [`DIMENSIONS`] numbers per text, in order. CPU-bound:
    /// call it off the async runtime's thread.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // Matrices this small keep one core busy, so the batches are shared among threads
        // (two on two cores): a group of texts is cut into at least one batch per thread.
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_THREADS)
            .min(texts.len());
        let encodings = self.tokenize(texts, threads)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let most = MAX_BATCH.min(texts.len().div_ceil(threads));
        let mut batches: Vec<&[usize]> = Vec::new();
        let mut start = 0;
        while start < order.len() {
            // Sorted by length: the batch's last text is its longest.
            let mut end = start + 1;
            while end < order.len()
                && end - start < most
                && (end + 1 - start) * encodings[order[end]].get_ids().len() <= BATCH_TOKENS
            {
                end += 1;
            }
            batches.push(&order[start..end]);
            start = end;
        }
        let run = |batch: &[usize]| -> Result<Vec<Vec<f32>>, String> {
            let ids: Vec<&[u32]> = batch.iter().map(|&i| encodings[i].get_ids()).collect();
            self.bert.embed(&ids).map_err(|e| format!("embedding: {e}"))
        };
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = || -> Result<Vec<Embedded>, String> {
            let mut done = Vec::new();
            loop {
                let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(batch) = batches.get(b) else {
                    return Ok(done);
                };
                done.push((b, run(batch)?));
            }
        };
        let results: Vec<Result<Vec<Embedded>, String>> = if threads <= 1 {
            vec![work()]
        } else {
            std::thread::scope(|scope| {
                let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
                let mut all = vec![work()];
                all.extend(helpers.into_iter().map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("an embedding thread panicked".to_string()))
                }));
                all
            })
        };
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for done in results {
            for (b, vectors) in done? {
                for (&i, v) in batches[b].iter().zip(vectors) {
                    out[i] = v;
                }
            }
        }
        Ok(out)
    }

    /// The texts' tokens, in order, on `threads` threads at most (the tokenizer's own
    /// parallelism is off): each encodes a run of consecutive texts.
    fn tokenize(
        &self,
        texts: &[&str],
        threads: usize,
    ) -> Result<Vec<tokenizers::Encoding>, String> {
        let encode = |run: &[&str]| {
            self.tokenizer
                .encode_batch(run.to_vec(), true)
                .map_err(|e| format!("tokenizing: {e}"))
        };
        if threads <= 1 {
            return encode(texts);
        }
        let runs: Vec<Result<Vec<_>, String>> = std::thread::scope(|scope| {
            let workers: Vec<_> = texts
                .chunks(texts.len().div_ceil(threads))
                .map(|run| scope.spawn(move || encode(run)))
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|_| Err("a tokenizing thread panicked".to_string()))
                })
                .collect()
        });
        let mut encodings = Vec::with_capacity(texts.len());
        for run in runs {
            encodings.extend(run?);
        }
        Ok(encodings)
    }
}

/// Numbers in [-scale, scale) from a fixed seed, for the kernels' tests.
#[cfg(all(test, feature = "semantic"))]
pub(super) fn numbers(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_text_puts_title_first_and_skips_repeats() {
        assert_eq!(memory_text("T", None, "T"), "T");
        assert_eq!(memory_text("T", Some(" s "), "c"), "T. s. c");
        assert_eq!(memory_text("T", Some(""), "c"), "T. c");
    }

    #[test]
    fn model_dir_is_beside_the_database() {
        assert_eq!(
            model_dir(Path::new("/d/memory.db")),
            Path::new("/d/models/all-MiniLM-L6-v2")
        );
        assert_eq!(
            model_dir(Path::new("memory.db")),
            Path::new("./models/all-MiniLM-L6-v2")
        );
    }
}
