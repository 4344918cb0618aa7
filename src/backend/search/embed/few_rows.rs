//! Matrix products whose left-hand side has few rows (a query's dozen tokens), computed
//! without packing.
//!
//! gemm copies the right-hand matrix into its own panel layout on every call. Over a batch
//! of a thousand tokens that copy is paid back many times; for a query of a dozen tokens it
//! is most of the work, since the right-hand matrices are the encoder's weights (42 MB,
//! copied once per query). This kernel reads the right-hand matrix where it lies, 16
//! columns (one 64-byte line) of one row at a time, while the sums of up to six rows stay in
//! registers. It needs AVX2 and FMA; elsewhere gemm does every product.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m256, _MM_HINT_T0, _mm_prefetch, _mm256_add_ps, _mm256_broadcast_ss, _mm256_fmadd_ps,
    _mm256_loadu_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm256_storeu_ps,
};

/// Left-hand rows up to which this kernel is used: at about 60 (a long query) it and gemm
/// take the same time, and past that gemm's packed kernels win.
pub const MOST_ROWS: usize = 64;
/// Rows summed together: 6 rows × 2 registers of 8 sums, plus 2 registers for the
/// right-hand line and one for the broadcast, within AVX2's 16.
#[cfg(target_arch = "x86_64")]
const ROWS: usize = 6;
/// Right-hand rows per band (see [`product`]).
#[cfg(target_arch = "x86_64")]
const DEPTH: usize = 64;
/// Columns per step: one cache line of f32.
const COLUMNS: usize = 16;

/// Whether [`product`] takes a product of `m` rows and `n` columns on this CPU.
pub fn fits(m: usize, n: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        m <= MOST_ROWS
            && n.is_multiple_of(COLUMNS)
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (m, n);
        false
    }
}

/// `dst (m × n) = scale · lhs (m × k) · rhs (k × n)`, plus what `dst` holds when `add`; the
/// same contract as the encoder's gemm call, for a `rhs` whose rows are contiguous.
///
/// # Safety
///
/// [`fits`] holds for `m` and `n`; `dst` and `lhs` cover their rows with the given row
/// strides, `rhs` covers `k` rows of `n` contiguous numbers `rhs_row` apart, and `dst`
/// overlaps neither source.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn product(
    (m, n, k): (usize, usize, usize),
    (dst, dst_row, add): (*mut f32, usize, bool),
    (lhs, lhs_row): (*const f32, usize),
    (rhs, rhs_row): (*const f32, usize),
    scale: f32,
) {
    // The right-hand matrix is read in bands of DEPTH rows: a band's lines are a few dozen
    // pages, so walking its columns costs no address-translation misses, and it stays in
    // the second-level cache while every group of rows passes over it. Walking a whole
    // column of 384 rows, 6 KB apart, missed the translation cache on every line.
    for k0 in (0..k).step_by(DEPTH) {
        let depth = DEPTH.min(k - k0);
        for j in (0..n).step_by(COLUMNS) {
            let mut r = 0;
            while r < m {
                // Groups as even as they can be: 20 rows as 5 + 5 + 5 + 5, not 6 + 6 + 6 + 2.
                let rows = (m - r).div_ceil((m - r).div_ceil(ROWS));
                // SAFETY: the caller's contract; the block stays inside rows r..r+rows,
                // columns j..j+16 and the band's rows k0..k0+depth.
                unsafe {
                    let at = Block {
                        depth,
                        dst: dst.add(r * dst_row + j),
                        dst_row,
                        add: add || k0 > 0,
                        lhs: lhs.add(r * lhs_row + k0),
                        lhs_row,
                        rhs: rhs.add(k0 * rhs_row + j),
                        rhs_row,
                        scale,
                        prefetch: r == 0 && j + COLUMNS < n,
                    };
                    match rows {
                        6 => at.run::<6>(),
                        5 => at.run::<5>(),
                        4 => at.run::<4>(),
                        3 => at.run::<3>(),
                        2 => at.run::<2>(),
                        _ => at.run::<1>(),
                    }
                }
                r += rows;
            }
        }
    }
}

/// One block of rows by 16 columns, pointers at its first row and column.
#[cfg(target_arch = "x86_64")]
struct Block {
    /// Right-hand rows (and left-hand columns) summed.
    depth: usize,
    dst: *mut f32,
    dst_row: usize,
    add: bool,
    lhs: *const f32,
    lhs_row: usize,
    rhs: *const f32,
    rhs_row: usize,
    scale: f32,
    /// Whether to ask for the band's next 16 columns while summing these: the lines are
    /// far apart, so the hardware does not foresee them, and waiting for each one in turn
    /// took most of the time.
    prefetch: bool,
}

#[cfg(target_arch = "x86_64")]
impl Block {
    /// # Safety
    ///
    /// The block's `R` rows and 16 columns lie inside the matrices; the CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run<const R: usize>(&self) {
        let mut sums: [[__m256; 2]; R] = [[_mm256_setzero_ps(); 2]; R];
        for kk in 0..self.depth {
            // SAFETY: row kk of rhs and column kk of each row of lhs are inside (contract).
            unsafe {
                let b = self.rhs.add(kk * self.rhs_row);
                if self.prefetch {
                    _mm_prefetch::<_MM_HINT_T0>(b.add(COLUMNS) as *const i8);
                }
                let (b0, b1) = (_mm256_loadu_ps(b), _mm256_loadu_ps(b.add(8)));
                for (i, sum) in sums.iter_mut().enumerate() {
                    let a = _mm256_broadcast_ss(&*self.lhs.add(i * self.lhs_row + kk));
                    sum[0] = _mm256_fmadd_ps(a, b0, sum[0]);
                    sum[1] = _mm256_fmadd_ps(a, b1, sum[1]);
                }
            }
        }
        let scale = _mm256_set1_ps(self.scale);
        for (i, sum) in sums.iter().enumerate() {
            for (half, s) in sum.iter().enumerate() {
                // SAFETY: row i, columns half·8.. of the block are inside dst (contract).
                unsafe {
                    let d = self.dst.add(i * self.dst_row + half * 8);
                    let mut v = _mm256_mul_ps(*s, scale);
                    if self.add {
                        v = _mm256_add_ps(v, _mm256_loadu_ps(d));
                    }
                    _mm256_storeu_ps(d, v);
                }
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Numbers in [-1, 1) from a fixed seed.
    fn numbers(n: usize, seed: u64) -> Vec<f32> {
        super::super::numbers(n, seed, 1.0)
    }

    #[test]
    fn equals_the_plain_product_for_every_row_count() {
        if !fits(1, COLUMNS) {
            eprintln!("skipped: this CPU has no AVX2 and FMA, so the kernel is never used");
            return;
        }
        let (n, k) = (48, 150);
        let (lhs_row, dst_row, rhs_row) = (k + 3, n + 5, n + 16);
        for m in 1..=13 {
            for add in [false, true] {
                let lhs = numbers(m * lhs_row, m as u64);
                let rhs = numbers(k * rhs_row, 7);
                let start = numbers(m * dst_row, 11);
                let mut dst = start.clone();
                // SAFETY: every matrix is allocated with the strides passed.
                unsafe {
                    product(
                        (m, n, k),
                        (dst.as_mut_ptr(), dst_row, add),
                        (lhs.as_ptr(), lhs_row),
                        (rhs.as_ptr(), rhs_row),
                        0.5,
                    );
                }
                for i in 0..m {
                    for j in 0..dst_row {
                        let want = if j < n {
                            let dot: f32 = (0..k)
                                .map(|x| lhs[i * lhs_row + x] * rhs[x * rhs_row + j])
                                .sum();
                            0.5 * dot + if add { start[i * dst_row + j] } else { 0.0 }
                        } else {
                            // Past the n columns, the stride's gap is left alone.
                            start[i * dst_row + j]
                        };
                        let got = dst[i * dst_row + j];
                        assert!(
                            (got - want).abs() < 1e-4,
                            "m={m} add={add} [{i},{j}]: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
