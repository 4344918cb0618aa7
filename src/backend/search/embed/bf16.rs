//! The encoder's weight products in bfloat16, on CPUs with AVX512_BF16 (AMD Zen 4 and later,
//! Intel Cooper Lake and Sapphire Rapids and later).
//!
//! `vdpbf16ps` multiplies pairs of bfloat16 numbers and adds both products to an f32 sum, so
//! one instruction does twice the work of an f32 multiply-add, and the weights take half
//! the memory and half the bandwidth. Long memories embed at the speed of the weight
//! products (≈2.7 GFLOP per memory of 128 tokens), and a query's dozen tokens at the speed
//! of reading the weights: both got faster (docs/performance.md has the figures).
//!
//! Only the multiplicands are rounded to bfloat16 (8 significant bits); every sum, bias,
//! residual and normalisation stays f32. Whole sentences keep a cosine above 0.9999 with
//! the f32 vectors (0.99999 measured; `tests/semantic.rs` checks it against the reference
//! model, and the tests below against exact sums).
//!
//! `MEMORYGRAPH_EMBED_PRECISION=f32` keeps the f32 products on such a CPU, to compare the
//! two.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m256bh, __m512, __m512bh, __m512i, _mm512_cvtneps_pbh, _mm512_dpbf16_ps, _mm512_loadu_ps,
    _mm512_set1_epi32, _mm512_storeu_ps,
};

/// Output columns of one block: four registers of 16 sums.
const COLUMNS: usize = 64;
#[cfg(target_arch = "x86_64")]
const VECTORS: usize = COLUMNS / 16;
/// Input rows whose sums stay in registers together: 6 × 4 sums, 4 weight registers and a
/// broadcast, within AVX-512's 32.
#[cfg(target_arch = "x86_64")]
const ROWS: usize = 6;
/// Input rows per band: a band's bfloat16 rows (at most 48 × 1536 × 2 bytes) stay in the
/// second-level cache while every block of columns passes over them.
#[cfg(target_arch = "x86_64")]
const BAND: usize = 48;

/// Whether this CPU runs [`Packed::apply`].
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the encoder uses bfloat16 products: where the CPU has them and `kernels` lets
/// AVX-512 run, unless `MEMORYGRAPH_EMBED_PRECISION=f32` asks for the f32 ones.
pub(super) fn chosen(kernels: super::Kernels) -> bool {
    kernels.avx512()
        && supported()
        && std::env::var("MEMORYGRAPH_EMBED_PRECISION").as_deref() != Ok("f32")
}

/// Rounds to the nearest bfloat16 (ties to even), the rounding `vcvtneps2bf16` does.
fn round(x: f32) -> u32 {
    let bits = x.to_bits();
    bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16
}

/// A weight matrix of `inputs` rows and `outputs` columns (the transposed layout the f32
/// products read), in bfloat16, laid out in the order the kernel reads it: for each block
/// of 64 columns, for each pair of rows, the block's 64 pairs of numbers, each as one
/// 32-bit word (the even row in the low half, as `vdpbf16ps` pairs them).
pub struct Packed {
    words: Vec<u32>,
    inputs: usize,
    outputs: usize,
}

impl Packed {
    /// Whether a matrix of this shape can be packed.
    pub fn fits(inputs: usize, outputs: usize) -> bool {
        inputs.is_multiple_of(16) && outputs.is_multiple_of(COLUMNS)
    }

    /// Packs `weight` (`inputs` rows of `outputs`, row-major); [`Packed::fits`] must hold,
    /// and the CPU must run the products ([`supported`]), so that a `Packed` is one that
    /// can be applied.
    pub fn new(weight: &[f32], inputs: usize, outputs: usize) -> Packed {
        assert!(Self::fits(inputs, outputs) && weight.len() == inputs * outputs);
        assert!(
            supported(),
            "bfloat16 products on a CPU without AVX512_BF16"
        );
        let pairs = inputs / 2;
        let mut words = Vec::with_capacity(pairs * outputs);
        for block in (0..outputs).step_by(COLUMNS) {
            for pair in 0..pairs {
                let even = &weight[2 * pair * outputs + block..][..COLUMNS];
                let odd = &weight[(2 * pair + 1) * outputs + block..][..COLUMNS];
                words.extend(
                    even.iter()
                        .zip(odd)
                        .map(|(&e, &o)| round(e) | round(o) << 16),
                );
            }
        }
        Packed {
            words,
            inputs,
            outputs,
        }
    }

    /// Adds `x·W` for `rows` rows of `x` (`inputs` numbers each) to `out` (`outputs` each).
    pub fn apply(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        assert!(x.len() >= rows * self.inputs && out.len() >= rows * self.outputs);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512F and AVX512_BF16 (checked when `self` was packed), and
        // the lengths are checked above.
        unsafe {
            self.product(x, rows, out)
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn product(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        let pairs = self.inputs / 2;
        // x in bfloat16, two numbers per 32-bit word: word p of a row is its pair (2p, 2p + 1).
        let mut rounded = vec![0u32; rows * pairs];
        for (dst, src) in rounded
            .chunks_exact_mut(8)
            .zip(x[..rows * self.inputs].chunks_exact(16))
        {
            // SAFETY: 8 words hold the 16 bfloat16 numbers of the 16 read.
            unsafe {
                let halves = _mm512_cvtneps_pbh(_mm512_loadu_ps(src.as_ptr()));
                dst.as_mut_ptr().cast::<__m256bh>().write_unaligned(halves);
            }
        }
        let words = rounded.as_ptr();
        for band in (0..rows).step_by(BAND) {
            let end = rows.min(band + BAND);
            for block in (0..self.outputs).step_by(COLUMNS) {
                let weights = self.words[block * pairs..].as_ptr();
                let mut r = band;
                while r < end {
                    let n = ROWS.min(end - r);
                    // SAFETY: rows r..r+n of the rounded x and of out, columns
                    // block..block+64 of out, and this block's weights are in bounds.
                    unsafe {
                        let lhs = words.add(r * pairs);
                        let dst = out.as_mut_ptr().add(r * self.outputs + block);
                        let at = (weights, lhs, pairs, dst, self.outputs);
                        match n {
                            6 => tile::<6>(at),
                            5 => tile::<5>(at),
                            4 => tile::<4>(at),
                            3 => tile::<3>(at),
                            2 => tile::<2>(at),
                            _ => tile::<1>(at),
                        }
                    }
                    r += n;
                }
            }
        }
    }
}

/// Adds the products of `R` rows by one block of 64 columns to `dst`, over every pair of
/// inputs, with the sums kept in registers.
///
/// # Safety
///
/// AVX-512F and AVX512_BF16; `weights` holds `pairs` × 64 words, `lhs` `R` rows of `pairs`
/// words, and `dst` `R` rows of 64 numbers, `stride` apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile<const R: usize>(
    (weights, lhs, pairs, dst, stride): (*const u32, *const u32, usize, *mut f32, usize),
) {
    // SAFETY: the caller's contract.
    unsafe {
        let mut sums: [[__m512; VECTORS]; R] = std::array::from_fn(|i| {
            std::array::from_fn(|j| _mm512_loadu_ps(dst.add(i * stride + j * 16)))
        });
        for p in 0..pairs {
            let line = weights.add(p * COLUMNS);
            let w: [__m512bh; VECTORS] =
                std::array::from_fn(|j| line.add(j * 16).cast::<__m512bh>().read_unaligned());
            for (i, row) in sums.iter_mut().enumerate() {
                let pair = _mm512_set1_epi32(*lhs.add(i * pairs + p) as i32);
                let a = std::mem::transmute::<__m512i, __m512bh>(pair);
                for (sum, w) in row.iter_mut().zip(&w) {
                    *sum = _mm512_dpbf16_ps(*sum, a, *w);
                }
            }
        }
        for (i, row) in sums.iter().enumerate() {
            for (j, sum) in row.iter().enumerate() {
                _mm512_storeu_ps(dst.add(i * stride + j * 16), *sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(round(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: to the even one, 1.
        assert_eq!(round(1.0 + 1.0 / 256.0), 0x3f80);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: to the even one, 1 + 2^-6.
        assert_eq!(round(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(round(-2.0), 0xc000);
    }

    /// Every shape the encoder has, and row counts that leave every remainder of a tile and
    /// a band. With factors bfloat16 holds exactly (quarters up to 2) every sum is exact in
    /// f32 too, so any slip in the layout shows as a wrong number; with any factors, the
    /// error stays at what rounding them to bfloat16 makes.
    #[test]
    #[cfg_attr(memorygraph_no_bf16, ignore = "this CPU has no AVX512_BF16")]
    fn products_match_exact_sums() {
        assert!(
            supported(),
            "built where the CPU has AVX512_BF16, run where it has not"
        );
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let mut quarter = || (next() * 16.0).round() / 4.0;
        for (inputs, outputs) in [(384, 1152), (384, 384), (384, 1536), (1536, 384)] {
            let weight: Vec<f32> = (0..inputs * outputs).map(|_| quarter()).collect();
            let packed = Packed::new(&weight, inputs, outputs);
            for rows in [1, 5, 7, 13, 53, 100] {
                let x: Vec<f32> = (0..rows * inputs).map(|_| quarter()).collect();
                let start: Vec<f32> = (0..rows * outputs).map(|_| quarter() / 4.0).collect();
                let mut out = start.clone();
                packed.apply(&x, rows, &mut out);
                for r in 0..rows {
                    for o in 0..outputs {
                        let exact = start[r * outputs + o]
                            + (0..inputs)
                                .map(|k| x[r * inputs + k] * weight[k * outputs + o])
                                .sum::<f32>();
                        assert_eq!(
                            out[r * outputs + o],
                            exact,
                            "{rows}×{inputs}·{inputs}×{outputs} at ({r}, {o})"
                        );
                    }
                }
            }
        }
        let (inputs, outputs, rows) = (1536, 384, 9);
        let weight: Vec<f32> = (0..inputs * outputs).map(|_| next()).collect();
        let x: Vec<f32> = (0..rows * inputs).map(|_| next()).collect();
        let mut out = vec![0.0; rows * outputs];
        Packed::new(&weight, inputs, outputs).apply(&x, rows, &mut out);
        for r in 0..rows {
            for o in 0..outputs {
                let terms =
                    (0..inputs).map(|k| x[r * inputs + k] as f64 * weight[k * outputs + o] as f64);
                let exact: f64 = terms.clone().sum();
                let spread = terms.map(|t| t * t).sum::<f64>().sqrt();
                // Each factor is off by at most 2^-9 of itself, independently: the sum is
                // off by about 2^-8.5 of the terms' root sum of squares; 6 times that is
                // never reached by chance.
                let error = (out[r * outputs + o] as f64 - exact).abs();
                assert!(
                    error < 6.0 * spread / 362.0,
                    "({r}, {o}): {} against {exact}",
                    out[r * outputs + o]
                );
            }
        }
    }
}
