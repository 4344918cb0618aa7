//! The encoder of all-MiniLM-L6-v2: a BERT of 6 layers, 12 heads, 384 dimensions, read from
//! its safetensors file and run on the CPU. Sentence embeddings are the mean of the last
//! layer's token vectors, scaled to length 1, as the model's sentence-transformers
//! configuration prescribes.
//!
//! The forward pass is written over plain `f32` buffers, with the matrix products done by
//! `gemm` (AVX-512 kernels where the CPU has them). Written with a tensor library, the same
//! pass spent half its time outside the products: a new tensor for every step, scalar
//! exponentials, and padding. Here every token of a batch is one row of one matrix: the
//! projections and the feed-forward layers run over all of them at once, and attention runs
//! per text over its own tokens only, so texts of different lengths need no padding.

use std::path::Path;

use gemm::{Parallelism, gemm};

use super::Kernels;
use super::weights::Weights;

/// The model's shape (its config.json); the weights are checked against it when read.
pub const HIDDEN: usize = 384;
const HEADS: usize = 12;
const HEAD: usize = HIDDEN / HEADS;
const LAYERS: usize = 6;
const INTERMEDIATE: usize = 1536;
const VOCABULARY: usize = 30522;
/// Longest input the position table covers.
pub const MAX_POSITIONS: usize = 512;
const LAYER_NORM_EPS: f32 = 1e-12;

/// `y = x·Wᵀ + b`. PyTorch stores `W` as one row of `inputs` numbers per output; it is kept
/// transposed here (`inputs` rows of `outputs`), the layout gemm's kernels read directly:
/// read as stored, every product first copied the whole matrix, so a short query's
/// embedding cost what reading all the weights twice costs.
///
/// On CPUs with AVX512_BF16 the weight is kept in bfloat16 instead ([`super::bf16`]), which
/// runs the products two to three times as fast.
struct Linear {
    weight: Weight,
    bias: Vec<f32>,
    outputs: usize,
    inputs: usize,
}

enum Weight {
    F32(Vec<f32>),
    Bf16(super::bf16::Packed),
}

impl Linear {
    /// Reads the projections `names` of one input as one: their outputs side by side
    /// (`outputs` each).
    fn read(
        w: &mut Weights,
        names: &[String],
        outputs: usize,
        inputs: usize,
        bf16: bool,
    ) -> Result<Self, String> {
        let (mut stored, mut bias) = (Vec::new(), Vec::new());
        for name in names {
            stored.extend(w.take(&format!("{name}.weight"), &[outputs, inputs])?);
            bias.extend(w.take(&format!("{name}.bias"), &[outputs])?);
        }
        let outputs = outputs * names.len();
        let mut weight = vec![0.0; stored.len()];
        for o in 0..outputs {
            for i in 0..inputs {
                weight[i * outputs + o] = stored[o * inputs + i];
            }
        }
        let weight = if bf16 && super::bf16::Packed::fits(inputs, outputs) {
            Weight::Bf16(super::bf16::Packed::new(&weight, inputs, outputs))
        } else {
            Weight::F32(weight)
        };
        Ok(Linear {
            weight,
            bias,
            outputs,
            inputs,
        })
    }

    /// Writes `x·Wᵀ + b` for `rows` rows of `x` into `out`; with `residual`, adds what `out`
    /// holds (the layer's input, in BERT's residual connections).
    fn apply(&self, kernels: Kernels, x: &[f32], rows: usize, out: &mut [f32], residual: bool) {
        assert!(x.len() >= rows * self.inputs && out.len() >= rows * self.outputs);
        for row in out[..rows * self.outputs].chunks_exact_mut(self.outputs) {
            if residual {
                row.iter_mut().zip(&self.bias).for_each(|(o, b)| *o += b);
            } else {
                row.copy_from_slice(&self.bias);
            }
        }
        match &self.weight {
            Weight::Bf16(packed) => packed.apply(x, rows, out),
            // SAFETY: the lengths are checked above; `out` (rows × outputs, row-major) does
            // not overlap `x` (rows × inputs) or the weight (`inputs` rows of `outputs`).
            Weight::F32(weight) => unsafe {
                product(
                    kernels,
                    (rows, self.outputs, self.inputs),
                    (out.as_mut_ptr(), self.outputs, true),
                    (x.as_ptr(), self.inputs),
                    (weight.as_ptr(), 1, self.outputs),
                    1.0,
                );
            },
        }
    }
}

/// `dst (m × n) = scale · lhs (m × k) · rhs (k × n)`, plus what `dst` holds when `add`: every
/// matrix product of the encoder, on one thread. `dst` and `lhs` are row-major with the given
/// row strides; `rhs` is read with its own column and row strides (a transposed matrix is
/// read in place). A product of few rows goes through [`super::few_rows`] where `kernels`
/// lets AVX2 run and the CPU has it; gemm computes the others.
///
/// # Safety
///
/// Every pointer must cover its matrix with those strides, and `dst` must overlap neither
/// source.
unsafe fn product(
    kernels: Kernels,
    (m, n, k): (usize, usize, usize),
    (dst, dst_row, add): (*mut f32, usize, bool),
    (lhs, lhs_row): (*const f32, usize),
    (rhs, rhs_col, rhs_row): (*const f32, usize, usize),
    scale: f32,
) {
    #[cfg(target_arch = "x86_64")]
    if kernels.avx2() && rhs_col == 1 && super::few_rows::fits(m, n) {
        // SAFETY: the caller's contract, with `rhs`'s rows contiguous and `fits` checked.
        unsafe {
            super::few_rows::product(
                (m, n, k),
                (dst, dst_row, add),
                (lhs, lhs_row),
                (rhs, rhs_row),
                scale,
            );
        }
        return;
    }
    // SAFETY: the caller's contract.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_row as isize,
            add,
            lhs,
            1,
            lhs_row as isize,
            rhs,
            rhs_col as isize,
            rhs_row as isize,
            1.0,
            scale,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl LayerNorm {
    fn read(w: &mut Weights, name: &str) -> Result<Self, String> {
        Ok(LayerNorm {
            weight: w.take(&format!("{name}.weight"), &[HIDDEN])?,
            bias: w.take(&format!("{name}.bias"), &[HIDDEN])?,
        })
    }

    /// Normalises every row of [`HIDDEN`] numbers in place.
    fn apply(&self, kernels: Kernels, x: &mut [f32]) {
        layer_norm(kernels, x, &self.weight, &self.bias);
    }
}

struct Layer {
    /// Query, key and value projections side by side (3 × [`HIDDEN`] outputs).
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// Defines an elementwise kernel that runs compiled for AVX-512 or AVX2 when the CPU has
/// them (AVX2: every x86-64 CPU of the last decade) and for the baseline otherwise: the
/// portable build targets SSE2, whose 4-lane vectors left these loops taking as long as the
/// matrix products. With the products in bfloat16, AVX-512's 16 lanes took softmax and GELU
/// from a fifth of a long memory's time to a tenth. Its first argument, the [`Kernels`],
/// keeps it to the slower paths.
macro_rules! vectorised {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$doc])*
        fn $name(kernels: Kernels, $($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                if kernels.avx512() && std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { avx512($($arg),*) };
                }
                if kernels.avx2() && std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    return unsafe { avx2($($arg),*) };
                }
            }
            let _ = kernels;
            body($($arg),*)
        }
    };
}

/// Lanes of the reductions below: partial sums kept apart so the loop vectorises (a
/// single running sum fixes the order of additions, which forbids it).
const LANES: usize = 16;

#[inline(always)]
fn sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + rest
}

#[inline(always)]
fn max(v: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for c in chunks {
        for i in 0..LANES {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    acc.iter().copied().fold(rest, f32::max)
}

vectorised! {
    /// Normalises every row of [`HIDDEN`] numbers of `x` in place, then scales and shifts it.
    fn layer_norm(x: &mut [f32], weight: &[f32], bias: &[f32]) {
        for row in x.chunks_exact_mut(HIDDEN) {
            let mean = sum(row) / HIDDEN as f32;
            row.iter_mut().for_each(|v| *v -= mean);
            let mut squares = [0.0f32; HIDDEN];
            squares.iter_mut().zip(row.iter()).for_each(|(s, v)| *s = v * v);
            let inv = 1.0 / (sum(&squares) / HIDDEN as f32 + LAYER_NORM_EPS).sqrt();
            for ((v, g), b) in row.iter_mut().zip(weight).zip(bias) {
                *v = *v * inv * g + b;
            }
        }
    }
}

/// `e^x` for single floats, within a few units in the last place: 2^n · e^r with
/// `n = round(x / ln 2)` and a degree-6 polynomial for `e^r`, |r| ≤ ln 2 / 2. Unlike the
/// C library's `expf` it has no branch or call, so loops over it vectorise; the softmax and
/// GELU take millions of exponentials per text.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and removing 1.5 · 2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    // `shifted` is 1.5 · 2^23 + n, whose bits are those of 1.5 · 2^23 plus n: 2^n's exponent
    // comes from them by integer steps (a float-to-integer cast, saturating in Rust, does
    // not vectorise).
    let shifted = x * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let exponent = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127);
    p * f32::from_bits(exponent << 23)
}

vectorised! {
    /// GELU as BERT defines it, `x·Φ(x) = x/2·(1 + erf(x/√2))`, with erf from Abramowitz
    /// and Stegun 7.1.26 (absolute error below 1.5e-7, far under the model's own f32 noise).
    fn gelu(v: &mut [f32]) {
        for x in v {
            let z = (*x * std::f32::consts::FRAC_1_SQRT_2).abs();
            let k = 1.0 / (1.0 + 0.327_591_1 * z);
            let poly = k
                * (0.254_829_6
                    + k * (-0.284_496_72
                        + k * (1.421_413_8 + k * (-1.453_152 + k * 1.061_405_4))));
            let erf = 1.0 - poly * exp(-z * z);
            *x *= 0.5 * (1.0 + erf.copysign(*x));
        }
    }
}

vectorised! {
    /// Softmax of every row of `len` numbers in place.
    fn softmax(rows: &mut [f32], len: usize) {
        for row in rows.chunks_exact_mut(len) {
            let top = max(row);
            row.iter_mut().for_each(|v| *v = exp(*v - top));
            let inv = 1.0 / sum(row);
            row.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

/// Working memory of one forward pass over `tokens` rows.
struct Buffers {
    x: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    attended: Vec<f32>,
    inner: Vec<f32>,
    scores: Vec<f32>,
}

pub struct Bert {
    /// The paths the kernels may take, chosen at load.
    kernels: Kernels,
    words: Vec<f32>,
    positions: Vec<f32>,
    token_type: Vec<f32>,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
}

impl Bert {
    /// Reads the weights (BERT names without a prefix, as sentence-transformers saves them);
    /// the kernels take the paths `kernels` allows; with `bf16`, the products run in bfloat16
    /// ([`super::bf16::supported`] must hold).
    pub fn load(path: &Path, kernels: Kernels, bf16: bool) -> Result<Bert, String> {
        let mut w = Weights::open(path)?;
        let words = w.take("embeddings.word_embeddings.weight", &[VOCABULARY, HIDDEN])?;
        let positions = w.take(
            "embeddings.position_embeddings.weight",
            &[MAX_POSITIONS, HIDDEN],
        )?;
        // Every input is one segment: only the first token type is ever used.
        let mut token_type = w.take("embeddings.token_type_embeddings.weight", &[2, HIDDEN])?;
        token_type.truncate(HIDDEN);
        let embeddings_norm = LayerNorm::read(&mut w, "embeddings.LayerNorm")?;
        let layers = (0..LAYERS)
            .map(|i| {
                let p = format!("encoder.layer.{i}");
                let names = |suffixes: &[&str]| -> Vec<String> {
                    suffixes.iter().map(|s| format!("{p}.{s}")).collect()
                };
                Ok(Layer {
                    qkv: Linear::read(
                        &mut w,
                        &names(&[
                            "attention.self.query",
                            "attention.self.key",
                            "attention.self.value",
                        ]),
                        HIDDEN,
                        HIDDEN,
                        bf16,
                    )?,
                    attention_out: Linear::read(
                        &mut w,
                        &names(&["attention.output.dense"]),
                        HIDDEN,
                        HIDDEN,
                        bf16,
                    )?,
                    attention_norm: LayerNorm::read(
                        &mut w,
                        &format!("{p}.attention.output.LayerNorm"),
                    )?,
                    intermediate: Linear::read(
                        &mut w,
                        &names(&["intermediate.dense"]),
                        INTERMEDIATE,
                        HIDDEN,
                        bf16,
                    )?,
                    output: Linear::read(
                        &mut w,
                        &names(&["output.dense"]),
                        HIDDEN,
                        INTERMEDIATE,
                        bf16,
                    )?,
                    output_norm: LayerNorm::read(&mut w, &format!("{p}.output.LayerNorm"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Bert {
            kernels,
            words,
            positions,
            token_type,
            embeddings_norm,
            layers,
        })
    }

    /// Sentence embeddings of texts given as token ids (at most [`MAX_POSITIONS`] each): one
    /// L2-normalised row of [`HIDDEN`] numbers per text.
    pub fn embed(&self, texts: &[&[u32]]) -> Result<Vec<Vec<f32>>, String> {
        let mut starts = Vec::with_capacity(texts.len() + 1);
        let mut tokens = 0;
        for ids in texts {
            if ids.len() > MAX_POSITIONS {
                return Err(format!("a text of {} tokens is too long", ids.len()));
            }
            starts.push(tokens);
            tokens += ids.len();
        }
        starts.push(tokens);
        let longest = texts.iter().map(|t| t.len()).max().unwrap_or(0);
        let mut b = Buffers {
            x: vec![0.0; tokens * HIDDEN],
            qkv: vec![0.0; tokens * 3 * HIDDEN],
            context: vec![0.0; tokens * HIDDEN],
            attended: vec![0.0; tokens * HIDDEN],
            inner: vec![0.0; tokens * INTERMEDIATE],
            scores: vec![0.0; longest * longest],
        };
        for (ids, &start) in texts.iter().zip(&starts) {
            for (position, &id) in ids.iter().enumerate() {
                let id = id as usize;
                if id >= VOCABULARY {
                    return Err(format!("token id {id} is outside the vocabulary"));
                }
                let row = &mut b.x[(start + position) * HIDDEN..][..HIDDEN];
                let word = &self.words[id * HIDDEN..][..HIDDEN];
                let place = &self.positions[position * HIDDEN..][..HIDDEN];
                for (i, v) in row.iter_mut().enumerate() {
                    *v = word[i] + place[i] + self.token_type[i];
                }
            }
        }
        self.embeddings_norm.apply(self.kernels, &mut b.x);
        for layer in &self.layers {
            self.layer(layer, &mut b, &starts, tokens);
        }
        Ok(starts
            .windows(2)
            .map(|w| {
                let mut mean = vec![0.0f32; HIDDEN];
                for row in b.x[w[0] * HIDDEN..w[1] * HIDDEN].chunks_exact(HIDDEN) {
                    mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
                }
                let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                mean.iter_mut().for_each(|m| *m /= norm);
                mean
            })
            .collect())
    }

    fn layer(&self, layer: &Layer, b: &mut Buffers, starts: &[usize], tokens: usize) {
        let kernels = self.kernels;
        layer.qkv.apply(kernels, &b.x, tokens, &mut b.qkv, false);
        let stride = 3 * HIDDEN;
        let scale = 1.0 / (HEAD as f32).sqrt();
        for w in starts.windows(2) {
            let (start, len) = (w[0], w[1] - w[0]);
            if len == 0 {
                continue;
            }
            let scores = &mut b.scores[..len * len];
            for h in 0..HEADS {
                let at = start * stride + h * HEAD;
                // SAFETY: every pointer stays inside its buffer: this text's `len` rows of
                // `qkv` (stride 3 × HIDDEN; query, key and value of head h at HIDDEN apart,
                // HEAD numbers each), the `len × len` scores, and the head's HEAD columns of
                // this text's rows of `context`. The destinations overlap no source.
                unsafe {
                    let q = b.qkv.as_ptr().add(at);
                    let k = b.qkv.as_ptr().add(at + HIDDEN);
                    let v = b.qkv.as_ptr().add(at + 2 * HIDDEN);
                    // scores = scale · Q·Kᵀ (Kᵀ read in place: column stride = row stride of K).
                    product(
                        kernels,
                        (len, len, HEAD),
                        (scores.as_mut_ptr(), len, false),
                        (q, stride),
                        (k, stride, 1),
                        scale,
                    );
                    softmax(kernels, scores, len);
                    // context (this head's columns) = probabilities · V.
                    product(
                        kernels,
                        (len, HEAD, len),
                        (
                            b.context.as_mut_ptr().add(start * HIDDEN + h * HEAD),
                            HIDDEN,
                            false,
                        ),
                        (scores.as_ptr(), len),
                        (v, 1, stride),
                        1.0,
                    );
                }
            }
        }
        b.attended.copy_from_slice(&b.x);
        layer
            .attention_out
            .apply(kernels, &b.context, tokens, &mut b.attended, true);
        layer.attention_norm.apply(kernels, &mut b.attended);
        layer
            .intermediate
            .apply(kernels, &b.attended, tokens, &mut b.inner, false);
        gelu(kernels, &mut b.inner);
        b.x.copy_from_slice(&b.attended);
        layer
            .output
            .apply(kernels, &b.inner, tokens, &mut b.x, true);
        layer.output_norm.apply(kernels, &mut b.x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::search::embed::numbers;

    /// erf in f64 from its series with every term positive, e^(-x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)),
    /// which loses no digits to cancellation at any x.
    fn erf(x: f64) -> f64 {
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= 2.0 * x * x / (2.0 * n + 1.0);
            sum += term;
        }
        2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
    }

    #[test]
    fn gelu_matches_the_exact_one() {
        assert!((erf(1.0) - 0.842_700_792_949_714_9).abs() < 1e-15);
        assert!((erf(-3.0) + 0.999_977_909_503_001_4).abs() < 1e-15);
        let xs: Vec<f32> = (-800..=800).map(|i| i as f32 / 100.0).collect();
        let mut fast = xs.clone();
        gelu(Kernels::Best, &mut fast);
        for (x, f) in xs.iter().zip(&fast) {
            let x = f64::from(*x);
            let exact = x / 2.0 * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2));
            assert!(
                (f64::from(*f) - exact).abs() < 2e-6,
                "gelu({x}) = {f}, exact {exact}"
            );
        }
    }

    #[test]
    fn exp_matches_the_library_one() {
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let (fast, exact) = (exp(x), x.exp());
            assert!(
                ((fast - exact) / exact).abs() < 1e-6,
                "exp({x}) = {fast}, library {exact}"
            );
        }
    }

    /// Each path of layer norm, GELU and softmax gives the fastest path's numbers. They run
    /// the same code compiled for other vector widths, whose partial sums are kept in the
    /// same 16 lanes: anything past a rounding step is a fault of the dispatch.
    #[test]
    fn every_path_of_the_elementwise_kernels_matches_the_fastest() {
        let weight = numbers(HIDDEN, 1, 2.0);
        let bias = numbers(HIDDEN, 2, 1.0);
        let run = |kernels: Kernels| {
            let mut norm = numbers(7 * HIDDEN, 3, 4.0);
            layer_norm(kernels, &mut norm, &weight, &bias);
            let mut activated = numbers(1007, 4, 8.0);
            gelu(kernels, &mut activated);
            // Rows of 13 (all remainder) and 40 (two blocks of 16 and a remainder).
            let mut short = numbers(13 * 13, 5, 10.0);
            softmax(kernels, &mut short, 13);
            let mut long = numbers(40 * 40, 6, 10.0);
            softmax(kernels, &mut long, 40);
            [
                ("layer_norm", norm),
                ("gelu", activated),
                ("softmax of 13", short),
                ("softmax of 40", long),
            ]
        };
        let fastest = run(Kernels::Best);
        for kernels in Kernels::ALL {
            for ((name, got), (_, want)) in run(kernels).iter().zip(&fastest) {
                for (i, (g, w)) in got.iter().zip(want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                        "{name} on {kernels:?} at {i}: {g}, fastest path {w}"
                    );
                }
            }
        }
    }

    /// Each path of the products (the few-rows kernel where AVX2 may run, gemm otherwise)
    /// gives the exact sums, within f32 rounding of the terms, and so the fastest path's.
    #[test]
    fn every_path_of_the_products_matches_the_fastest() {
        // Query-sized and batch-sized, the encoder's shapes, and columns no block divides.
        let shapes = [
            (1, 384, 384),
            (5, 1152, 384),
            (13, 48, 150),
            (64, 96, 1536),
            (65, 384, 384),
            (7, 40, 32),
        ];
        for (m, n, k) in shapes {
            for add in [false, true] {
                let lhs = numbers(m * k, m as u64, 1.0);
                let rhs = numbers(k * n, k as u64, 1.0);
                let start = numbers(m * n, n as u64, 1.0);
                // Per element: the exact result, and the sum of its terms' sizes, which
                // bounds what rounding them in another order can change.
                let exact: Vec<(f64, f64)> = (0..m * n)
                    .map(|at| {
                        let (i, j) = (at / n, at % n);
                        let terms = (0..k).map(|x| lhs[i * k + x] as f64 * rhs[x * n + j] as f64);
                        let base = if add { start[at] as f64 } else { 0.0 };
                        let size = terms.clone().map(f64::abs).sum::<f64>() + 1.0;
                        (base + 0.5 * terms.sum::<f64>(), size)
                    })
                    .collect();
                let run = |kernels: Kernels| {
                    let mut dst = start.clone();
                    // SAFETY: the three matrices are allocated with the shapes and strides
                    // passed, and are distinct.
                    unsafe {
                        product(
                            kernels,
                            (m, n, k),
                            (dst.as_mut_ptr(), n, add),
                            (lhs.as_ptr(), k),
                            (rhs.as_ptr(), 1, n),
                            0.5,
                        );
                    }
                    dst
                };
                let fastest = run(Kernels::Best);
                for kernels in Kernels::ALL {
                    let got = run(kernels);
                    for (at, &(exact, size)) in exact.iter().enumerate() {
                        let (g, f) = (got[at] as f64, fastest[at] as f64);
                        let place = format!(
                            "{m}×{k}·{k}×{n} add={add} on {kernels:?} at ({}, {})",
                            at / n,
                            at % n
                        );
                        assert!(
                            (g - exact).abs() <= 1e-6 * size,
                            "{place}: {g}, exact {exact}"
                        );
                        assert!(
                            (g - f).abs() <= 1e-6 * size,
                            "{place}: {g}, fastest path {f}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_the_order() {
        let mut row = vec![1.0, 3.0, -2.0, 3.0, 0.5];
        softmax(Kernels::Best, &mut row, 5);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(row[1] == row[3] && row[1] > row[0] && row[0] > row[4] && row[4] > row[2]);
    }
}
