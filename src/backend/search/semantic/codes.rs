//! One bit per dimension: the compact form of the vectors that semantic search scans in
//! memory (48 bytes and two numbers a vector instead of 1,536 bytes), and the estimate of a
//! cosine it gives with a bound on its error.
//!
//! A vector `x` (length 1) is rotated by a fixed random orthogonal transform `R`, its
//! offset from the corpus's mean `c` is taken, `y = R(x − c)`, and only the signs of `y` are
//! kept, with two numbers: `|y|` and `a = Σ|yᵢ| / (|y|·√D)`, how well the signs point along
//! `y`. For a query `q` (length 1), `q·x = q·c + |y|·(Rq·ŷ)`, and `Rq·ŷ` is estimated by
//! `Rq·s / a` where `s` is the sign vector scaled to length 1. The rotation spreads every
//! direction over all dimensions, which makes the estimate's error about
//! `√(1 − a²) / (a·√(D − 1))` times a standard normal draw (the analysis of RaBitQ, Gao and
//! Long, SIGMOD 2024). The bound used is [`CONFIDENCE`] times that: the search checks every
//! candidate whose estimate plus bound can still beat what it found, in the database, with
//! the exact cosine, so the bound decides how many are checked, never a score.
//!
//! The sum over a vector's set bits is read from 96 tables of 16 partial sums of the rotated
//! query, one per nibble of the code, rounded to bytes so that a shuffle looks up 16 codes
//! at once ([`super::blocks`]); the most the rounding can move a sum is added to the bound.

use super::blocks::{Blocks, LANES, NIBBLES, Tables};
use crate::backend::search::embed::DIMENSIONS;
use crate::backend::search::kernels::Kernels;

/// Bytes of one code.
pub const CODE_BYTES: usize = DIMENSIONS / 8;
/// How many standard errors the bound spans. At 4, an estimate falls below its bound's
/// lower end about once in 30,000 vectors; a true neighbour is missed only when that
/// happens to one near the cut.
pub const CONFIDENCE: f32 = 4.0;
/// The rotation works on blocks of this many dimensions (a Walsh–Hadamard transform).
const BLOCK: usize = 128;
/// Rounds of signs, blocks and a permutation that make up the rotation.
const ROUNDS: usize = 3;

/// The fixed random rotation: each round flips signs, transforms each block, and permutes
/// the dimensions across blocks. Orthogonal, so it keeps lengths and inner products.
pub struct Rotation {
    signs: [[f32; DIMENSIONS]; ROUNDS],
    permutations: [[u16; DIMENSIONS]; ROUNDS],
}

impl Default for Rotation {
    fn default() -> Self {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut signs = [[1f32; DIMENSIONS]; ROUNDS];
        let mut permutations = [[0u16; DIMENSIONS]; ROUNDS];
        for round in 0..ROUNDS {
            for s in signs[round].iter_mut() {
                *s = if next() & 1 == 0 { 1.0 } else { -1.0 };
            }
            let p = &mut permutations[round];
            for (i, v) in p.iter_mut().enumerate() {
                *v = i as u16;
            }
            for i in (1..DIMENSIONS).rev() {
                p.swap(i, (next() % (i as u64 + 1)) as usize);
            }
        }
        Rotation {
            signs,
            permutations,
        }
    }
}

impl Rotation {
    pub fn apply(&self, v: &[f32]) -> [f32; DIMENSIONS] {
        let mut x = [0f32; DIMENSIONS];
        x.copy_from_slice(&v[..DIMENSIONS]);
        let mut moved = [0f32; DIMENSIONS];
        for round in 0..ROUNDS {
            for (xi, s) in x.iter_mut().zip(&self.signs[round]) {
                *xi *= s;
            }
            for block in x.chunks_exact_mut(BLOCK) {
                hadamard(block);
            }
            for (i, &to) in self.permutations[round].iter().enumerate() {
                moved[to as usize] = x[i];
            }
            x = moved;
        }
        x
    }
}

/// The Walsh–Hadamard transform of one block, scaled to keep lengths.
fn hadamard(x: &mut [f32]) {
    let mut h = 1;
    while h < x.len() {
        for start in (0..x.len()).step_by(2 * h) {
            for i in start..start + h {
                let (a, b) = (x[i], x[i + h]);
                x[i] = a + b;
                x[i + h] = a - b;
            }
        }
        h *= 2;
    }
    let scale = 1.0 / (x.len() as f32).sqrt();
    x.iter_mut().for_each(|v| *v *= scale);
}

/// The codes of every vector held, in slots, beside the rotation and the mean they are
/// relative to.
pub struct Codes {
    rotation: Rotation,
    /// The mean of the vectors, rotated.
    mean: [f32; DIMENSIONS],
    blocks: Blocks,
    /// Per slot: `|y| / (a·√D)`, what the sum over the signs is multiplied by.
    scales: Vec<f32>,
    /// Per slot: the bound, `CONFIDENCE·|y|·√(1 − a²) / (a·√(D − 1))`.
    errors: Vec<f32>,
}

/// A query prepared for scanning: its tables, and what turns a code's sum of table entries
/// into an estimate. The sum over a code's set bits is `Σ lowⱼ + step·sum`, give or take
/// `rounding`.
pub struct Prepared {
    tables: Tables,
    /// `2·Σ lowⱼ − Σ Rq`, `2·step` and `2·rounding`: the estimate is
    /// `q·c + scale·(offset + step2·sum)`, and its bound grows by `scale·rounding2`.
    offset: f32,
    step2: f32,
    rounding2: f32,
    /// `q·c`.
    on_mean: f32,
}

impl Codes {
    /// Codes relative to `mean` (the vectors' mean, or zero when there are none yet).
    pub fn new(mean: &[f32]) -> Codes {
        let rotation = Rotation::default();
        let mean = rotation.apply(mean);
        Codes {
            rotation,
            mean,
            blocks: Blocks::default(),
            scales: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.scales.len()
    }

    /// Bytes held, for the benchmark.
    #[cfg(feature = "bench")]
    pub fn bytes(&self) -> usize {
        self.blocks.capacity() + (self.scales.capacity() + self.errors.capacity()) * 4
    }

    /// Makes room for `more` slots at once (growing by doubling would hold up to twice the
    /// memory while it copies).
    pub fn reserve(&mut self, more: usize) {
        self.blocks.reserve(self.len() + more);
        self.scales.reserve_exact(more);
        self.errors.reserve_exact(more);
    }

    /// Adds a slot at the end for the unit vector `v`.
    pub fn push(&mut self, v: &[f32]) {
        self.blocks.resize(self.len() + 1);
        self.scales.push(0.0);
        self.errors.push(0.0);
        self.set(self.len() - 1, v);
    }

    /// Codes the unit vector `v` into `slot`.
    pub fn set(&mut self, slot: usize, v: &[f32]) {
        let mut y = self.rotation.apply(v);
        for (yi, m) in y.iter_mut().zip(&self.mean) {
            *yi -= m;
        }
        let norm = y.iter().map(|v| v * v).sum::<f32>().sqrt();
        let mut bits = [0u8; CODE_BYTES];
        for (i, yi) in y.iter().enumerate() {
            if *yi > 0.0 {
                bits[i / 8] |= 1 << (i % 8);
            }
        }
        self.blocks.write(slot, &bits);
        let d = DIMENSIONS as f32;
        let a = if norm > 0.0 {
            y.iter().map(|v| v.abs()).sum::<f32>() / (norm * d.sqrt())
        } else {
            1.0
        };
        self.scales[slot] = norm / (a * d.sqrt());
        self.errors[slot] =
            CONFIDENCE * norm * (1.0 - a * a).max(0.0).sqrt() / (a * (d - 1.0).sqrt());
    }

    /// Moves the last slot into `slot` and drops the last.
    pub fn swap_remove(&mut self, slot: usize) {
        let last = self.len() - 1;
        if slot != last {
            let code = self.blocks.read(last);
            self.blocks.write(slot, &code);
            self.scales[slot] = self.scales[last];
            self.errors[slot] = self.errors[last];
        }
        // Zeroed, so a later push into the same block starts clean.
        self.blocks.write(last, &[0; CODE_BYTES]);
        self.blocks.resize(last);
        self.scales.pop();
        self.errors.pop();
    }

    /// The unit query's tables, for the path this process's kernels allow.
    #[cfg(test)]
    pub fn prepare(&self, q: &[f32]) -> Prepared {
        self.prepare_for(q, Kernels::process())
    }

    /// [`Codes::prepare`] for the path `kernels` allow.
    pub fn prepare_for(&self, q: &[f32], kernels: Kernels) -> Prepared {
        let r = self.rotation.apply(q);
        // Table j: the sum of r over each subset of dimensions 4j..4j+4 (bit b, dimension 4j+b).
        let mut exact = [[0f32; 16]; NIBBLES];
        for (t, four) in exact.iter_mut().zip(r.chunks_exact(4)) {
            for v in 1..16usize {
                t[v] = t[v & (v - 1)] + four[v.trailing_zeros() as usize];
            }
        }
        let lows = exact.map(|t| t.iter().copied().fold(f32::INFINITY, f32::min));
        let widest = exact
            .iter()
            .zip(&lows)
            .map(|(t, low)| t.iter().map(|v| v - low).fold(0f32, f32::max))
            .fold(0f32, f32::max);
        // One step for every table, so that sums of entries add up; 1 when all are flat.
        let step = if widest > 0.0 { widest / 255.0 } else { 1.0 };
        let mut rounding = 0f64;
        let mut entries = [[0u8; 16]; NIBBLES];
        for ((e, t), low) in entries.iter_mut().zip(&exact).zip(&lows) {
            let mut worst = 0f32;
            for (byte, v) in e.iter_mut().zip(t) {
                *byte = ((v - low) / step).round().clamp(0.0, 255.0) as u8;
                worst = worst.max((v - low - step * *byte as f32).abs());
            }
            rounding += worst as f64;
        }
        let total: f32 = r.iter().sum();
        Prepared {
            tables: Tables::new(&entries, kernels),
            offset: 2.0 * lows.iter().sum::<f32>() - total,
            step2: 2.0 * step,
            rounding2: 2.0 * rounding as f32,
            on_mean: r.iter().zip(&self.mean).map(|(a, b)| a * b).sum(),
        }
    }

    /// The estimated cosines with the prepared query of the codes in `block`, and their
    /// error bounds, by lane (lanes past the last code are left as they were).
    pub fn estimate_block(&self, query: &Prepared, block: usize, out: &mut Estimates) {
        let mut sums = [0u16; LANES];
        self.blocks.sums(block, &query.tables, &mut sums);
        let first = block * LANES;
        let last = (first + LANES).min(self.len());
        let (scales, errors) = (&self.scales[first..last], &self.errors[first..last]);
        for (lane, (scale, error)) in scales.iter().zip(errors).enumerate() {
            out.estimate[lane] =
                query.on_mean + scale * (query.offset + query.step2 * sums[lane] as f32);
            out.error[lane] = error + scale * query.rounding2;
        }
    }

    /// One slot's estimate and bound ([`Codes::estimate_block`]).
    #[cfg(test)]
    pub fn estimate(&self, query: &Prepared, slot: usize) -> (f32, f32) {
        let mut out = Estimates::default();
        self.estimate_block(query, slot / LANES, &mut out);
        (out.estimate[slot % LANES], out.error[slot % LANES])
    }
}

/// A block's estimates and bounds, by lane.
#[derive(Default)]
pub struct Estimates {
    pub estimate: [f32; LANES],
    pub error: [f32; LANES],
}

/// The mean of some unit vectors (zero for none).
pub fn mean<'a>(vectors: impl Iterator<Item = &'a [f32]>) -> Vec<f32> {
    let mut sum = vec![0f64; DIMENSIONS];
    let mut n = 0usize;
    for v in vectors {
        for (s, x) in sum.iter_mut().zip(v) {
            *s += *x as f64;
        }
        n += 1;
    }
    sum.iter()
        .map(|s| if n == 0 { 0.0 } else { (s / n as f64) as f32 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::search::embed::cosine;

    /// Unit vectors that share a direction, as a model's do (a cosine of about 0.3 between
    /// any two), with a seed each.
    fn sample(seed: u64, shared: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
        let v: Vec<f32> = (0..DIMENSIONS)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let noise = (s >> 11) as f32 / (1u64 << 53) as f32 - 0.5;
                noise + if i % 3 == 0 { shared } else { 0.0 }
            })
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn the_rotation_keeps_lengths_and_inner_products() {
        let r = Rotation::default();
        let (a, b) = (sample(1, 0.2), sample(2, 0.2));
        let (ra, rb) = (r.apply(&a), r.apply(&b));
        assert!((cosine(&a, &b) - cosine(&ra, &rb)).abs() < 1e-5);
        assert!((ra.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
        // It spreads a single dimension over many.
        let mut e = vec![0f32; DIMENSIONS];
        e[7] = 1.0;
        let spread = r.apply(&e).iter().filter(|x| x.abs() > 1e-6).count();
        assert!(spread > DIMENSIONS / 2, "spread over {spread}");
    }

    #[test]
    fn estimates_stay_within_their_bound() {
        for shared in [0.0, 0.3] {
            let vectors: Vec<Vec<f32>> = (0..2_000).map(|i| sample(i + 10, shared)).collect();
            let mut codes = Codes::new(&mean(vectors.iter().map(Vec::as_slice)));
            vectors.iter().for_each(|v| codes.push(v));
            let mut outside = 0;
            let mut worst = 0f32;
            for q in 0..20 {
                let query = sample(1_000_000 + q, shared);
                let prepared = codes.prepare(&query);
                for (slot, v) in vectors.iter().enumerate() {
                    let (estimate, error) = codes.estimate(&prepared, slot);
                    let miss = (estimate - cosine(&query, v)).abs();
                    worst = worst.max(miss / error * CONFIDENCE);
                    if miss > error {
                        outside += 1;
                    }
                }
            }
            // 40,000 estimates: at four standard errors, hardly any fall outside.
            assert!(outside <= 10, "{outside} outside, worst {worst:.2} errors");
        }
    }

    #[test]
    fn removing_a_slot_moves_the_last_into_it() {
        let vectors: Vec<Vec<f32>> = (0..5).map(|i| sample(i, 0.1)).collect();
        let mut codes = Codes::new(&mean(vectors.iter().map(Vec::as_slice)));
        vectors.iter().for_each(|v| codes.push(v));
        let prepared = codes.prepare(&vectors[4]);
        let last = codes.estimate(&prepared, 4);
        codes.swap_remove(1);
        assert_eq!(codes.len(), 4);
        assert_eq!(codes.estimate(&prepared, 1), last);
        codes.swap_remove(3);
        assert_eq!(codes.len(), 3);
    }
}
