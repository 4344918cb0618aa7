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
//! The sum over a vector's set bits is read from 48 tables of 256 partial sums of the
//! rotated query, one per byte of the code: 48 lookups a vector.

use crate::backend::search::embed::DIMENSIONS;

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
    bits: Vec<u8>,
    /// Per slot: `|y| / (a·√D)`, what the sum over the signs is multiplied by.
    scales: Vec<f32>,
    /// Per slot: the bound, `CONFIDENCE·|y|·√(1 − a²) / (a·√(D − 1))`.
    errors: Vec<f32>,
}

/// A query prepared for scanning: its rotation's partial sums per code byte.
pub struct Prepared {
    tables: Box<[[f32; 256]; CODE_BYTES]>,
    /// `Σ Rq`, and `q·c`.
    total: f32,
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
            bits: Vec::new(),
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
        self.bits.capacity() + (self.scales.capacity() + self.errors.capacity()) * 4
    }

    /// Makes room for `more` slots at once (growing by doubling would hold up to twice the
    /// memory while it copies).
    pub fn reserve(&mut self, more: usize) {
        self.bits.reserve_exact(more * CODE_BYTES);
        self.scales.reserve_exact(more);
        self.errors.reserve_exact(more);
    }

    /// Adds a slot at the end for the unit vector `v`.
    pub fn push(&mut self, v: &[f32]) {
        self.bits.resize(self.bits.len() + CODE_BYTES, 0);
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
        let bits = &mut self.bits[slot * CODE_BYTES..(slot + 1) * CODE_BYTES];
        bits.fill(0);
        for (i, yi) in y.iter().enumerate() {
            if *yi > 0.0 {
                bits[i / 8] |= 1 << (i % 8);
            }
        }
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
            let (head, tail) = self.bits.split_at_mut(last * CODE_BYTES);
            head[slot * CODE_BYTES..(slot + 1) * CODE_BYTES].copy_from_slice(&tail[..CODE_BYTES]);
            self.scales[slot] = self.scales[last];
            self.errors[slot] = self.errors[last];
        }
        self.bits.truncate(last * CODE_BYTES);
        self.scales.pop();
        self.errors.pop();
    }

    /// The unit query's tables.
    pub fn prepare(&self, q: &[f32]) -> Prepared {
        let r = self.rotation.apply(q);
        let mut tables = Box::new([[0f32; 256]; CODE_BYTES]);
        for (t, eight) in tables.iter_mut().zip(r.chunks_exact(8)) {
            for b in 1..256usize {
                t[b] = t[b & (b - 1)] + eight[b.trailing_zeros() as usize];
            }
        }
        Prepared {
            tables,
            total: r.iter().sum(),
            on_mean: r.iter().zip(&self.mean).map(|(a, b)| a * b).sum(),
        }
    }

    /// Each slot's estimated cosine with the prepared query, and its error bound.
    pub fn estimate(&self, query: &Prepared, slot: usize) -> (f32, f32) {
        let bits: &[u8; CODE_BYTES] = self.bits[slot * CODE_BYTES..(slot + 1) * CODE_BYTES]
            .try_into()
            .expect("a code's bytes");
        // Four running sums, so the lookups do not wait on one another; fixed sizes, so no
        // index is checked.
        let mut lanes = [0f32; 4];
        for i in 0..CODE_BYTES / 4 {
            for l in 0..4 {
                lanes[l] += query.tables[4 * i + l][bits[4 * i + l] as usize];
            }
        }
        let set: f32 = lanes.iter().sum();
        let estimate = query.on_mean + self.scales[slot] * (2.0 * set - query.total);
        (estimate, self.errors[slot])
    }
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
