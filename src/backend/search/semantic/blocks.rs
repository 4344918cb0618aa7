//! The codes laid out for a table scan. A code's 384 bits are 96 nibbles of four dimensions
//! each; 32 codes make a block, in which row `j` (16 bytes) holds nibble `j` of every code,
//! code `k`'s in the low half of byte `k` and code `k + 16`'s in the high half. A query turns
//! into one table of 16 small integers per nibble, the sums of its rotated coordinates over
//! each subset of the nibble's four dimensions, and one byte shuffle (`pshufb`) then looks
//! 16 codes up in a table at once: the "fast scan" of product quantization (André,
//! Kermarrec and Le Scouarnec, VLDB 2015). The portable path sums the same integers, two
//! codes a lookup, so both paths give the same sums to the bit.

use super::codes::CODE_BYTES;
use crate::backend::search::kernels::Kernels;

/// Codes per block.
pub const LANES: usize = 32;
/// Nibbles per code.
pub const NIBBLES: usize = CODE_BYTES * 2;
/// Bytes per block.
const BLOCK_BYTES: usize = NIBBLES * 16;

/// Codes in blocks.
#[derive(Default)]
pub struct Blocks {
    bytes: Vec<u8>,
}

/// A query's tables in the form a path reads them.
pub enum Tables {
    /// For the shuffle: row `j` holds table `j`'s 16 entries.
    Shuffle(Box<[u8; NIBBLES * 16]>),
    /// For the portable path: per row, per byte of the block, the entries of its two
    /// nibbles, the low one's in the low 16 bits (sums of 96 entries stay below 2¹⁶).
    Pairs(Box<[[u32; 256]; NIBBLES]>),
}

impl Tables {
    /// The tables (`NIBBLES` of 16 entries, each at most 255) for the path `kernels`
    /// allow on this CPU.
    pub fn new(entries: &[[u8; 16]; NIBBLES], kernels: Kernels) -> Tables {
        if shuffle_runs(kernels) {
            let mut rows = Box::new([0u8; NIBBLES * 16]);
            for (row, table) in rows.chunks_exact_mut(16).zip(entries) {
                row.copy_from_slice(table);
            }
            return Tables::Shuffle(rows);
        }
        let mut pairs = Box::new([[0u32; 256]; NIBBLES]);
        for (pair, table) in pairs.iter_mut().zip(entries) {
            for (byte, entry) in pair.iter_mut().enumerate() {
                *entry = table[byte & 15] as u32 | (table[byte >> 4] as u32) << 16;
            }
        }
        Tables::Pairs(pairs)
    }
}

/// Whether the shuffle path runs: on x86-64 with AVX2, unless held to the plain path.
fn shuffle_runs(kernels: Kernels) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        kernels.avx2() && std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = kernels;
        false
    }
}

impl Blocks {
    /// Makes room for `slots` codes in all.
    pub fn reserve(&mut self, slots: usize) {
        let wanted = slots.div_ceil(LANES) * BLOCK_BYTES;
        self.bytes
            .reserve_exact(wanted.saturating_sub(self.bytes.len()));
    }

    /// Keeps exactly the blocks `slots` codes need (new ones zeroed).
    pub fn resize(&mut self, slots: usize) {
        self.bytes.resize(slots.div_ceil(LANES) * BLOCK_BYTES, 0);
    }

    /// Bytes held, for the benchmark.
    #[cfg(feature = "bench")]
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// The blocks held.
    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.bytes.len() / BLOCK_BYTES
    }

    /// Where `slot`'s nibbles are: its block's offset, its byte in a row, and its half.
    fn place(slot: usize) -> (usize, usize, u32) {
        let k = slot % LANES;
        ((slot / LANES) * BLOCK_BYTES, k % 16, 4 * (k / 16) as u32)
    }

    /// Writes `slot`'s code (the bits of dimension `i` at bit `i % 8` of byte `i / 8`).
    pub fn write(&mut self, slot: usize, code: &[u8; CODE_BYTES]) {
        let (block, byte, shift) = Self::place(slot);
        for j in 0..NIBBLES {
            let nibble = (code[j / 2] >> (4 * (j % 2))) & 15;
            let at = &mut self.bytes[block + 16 * j + byte];
            *at = (*at & !(15 << shift)) | nibble << shift;
        }
    }

    /// Reads `slot`'s code back.
    pub fn read(&self, slot: usize) -> [u8; CODE_BYTES] {
        let (block, byte, shift) = Self::place(slot);
        let mut code = [0u8; CODE_BYTES];
        for j in 0..NIBBLES {
            let nibble = (self.bytes[block + 16 * j + byte] >> shift) & 15;
            code[j / 2] |= nibble << (4 * (j % 2));
        }
        code
    }

    /// Each code of `block`'s sum of its nibbles' table entries, by lane.
    pub fn sums(&self, block: usize, tables: &Tables, out: &mut [u16; LANES]) {
        let bytes: &[u8; BLOCK_BYTES] = self.bytes[block * BLOCK_BYTES..(block + 1) * BLOCK_BYTES]
            .try_into()
            .expect("a block's bytes");
        match tables {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Tables::Shuffle` is only made where the CPU has AVX2.
            Tables::Shuffle(rows) => unsafe { shuffle_sums(bytes, rows, out) },
            #[cfg(not(target_arch = "x86_64"))]
            Tables::Shuffle(_) => unreachable!("the shuffle tables are only made on x86-64"),
            Tables::Pairs(pairs) => pair_sums(bytes, pairs, out),
        }
    }
}

/// The portable path: one lookup per byte gives the entries of two codes at once.
fn pair_sums(bytes: &[u8; BLOCK_BYTES], pairs: &[[u32; 256]; NIBBLES], out: &mut [u16; LANES]) {
    let mut acc = [0u32; 16];
    for (row, pair) in bytes.chunks_exact(16).zip(pairs) {
        for (a, &b) in acc.iter_mut().zip(row) {
            *a += pair[b as usize];
        }
    }
    for (k, a) in acc.iter().enumerate() {
        out[k] = *a as u16;
        out[k + 16] = (*a >> 16) as u16;
    }
}

/// The AVX2 path: two rows per step, each 32-byte load holding 16 bytes of row `j` and 16 of
/// row `j + 1`, looked up in their two tables by one shuffle for the low nibbles and one
/// for the high ones. Bytes are summed in 16-bit lanes: one sum takes each pair of bytes as
/// `even + 256·odd` (wrapping), another the odd bytes alone, and the even sums are their
/// difference (exact, as no sum reaches 2¹⁶).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn shuffle_sums(
    bytes: &[u8; BLOCK_BYTES],
    rows: &[u8; NIBBLES * 16],
    out: &mut [u16; LANES],
) {
    use std::arch::x86_64::*;
    let low = _mm256_set1_epi8(0x0f);
    let (mut lo_both, mut lo_odd) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    let (mut hi_both, mut hi_odd) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    for j in (0..NIBBLES).step_by(2) {
        // SAFETY: 16·j + 32 ≤ BLOCK_BYTES for every even j < NIBBLES; unaligned loads.
        let (codes, table) = unsafe {
            (
                _mm256_loadu_si256(bytes.as_ptr().add(16 * j) as *const __m256i),
                _mm256_loadu_si256(rows.as_ptr().add(16 * j) as *const __m256i),
            )
        };
        let lo = _mm256_shuffle_epi8(table, _mm256_and_si256(codes, low));
        let hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(codes, 4), low));
        lo_both = _mm256_add_epi16(lo_both, lo);
        lo_odd = _mm256_add_epi16(lo_odd, _mm256_srli_epi16(lo, 8));
        hi_both = _mm256_add_epi16(hi_both, hi);
        hi_odd = _mm256_add_epi16(hi_odd, _mm256_srli_epi16(hi, 8));
    }
    let lo_even = _mm256_sub_epi16(lo_both, _mm256_slli_epi16(lo_odd, 8));
    let hi_even = _mm256_sub_epi16(hi_both, _mm256_slli_epi16(hi_odd, 8));
    let mut lanes = [[0u16; 16]; 4];
    for (lane, v) in lanes.iter_mut().zip([lo_even, lo_odd, hi_even, hi_odd]) {
        // SAFETY: a 32-byte store into a [u16; 16].
        unsafe { _mm256_storeu_si256(lane.as_mut_ptr() as *mut __m256i, v) };
    }
    // Each 16-bit lane `i` of the low 128 bits holds rows of even j, lane `8 + i` odd j.
    let [lo_even, lo_odd, hi_even, hi_odd] = lanes;
    for i in 0..8 {
        out[2 * i] = lo_even[i] + lo_even[8 + i];
        out[2 * i + 1] = lo_odd[i] + lo_odd[8 + i];
        out[16 + 2 * i] = hi_even[i] + hi_even[8 + i];
        out[17 + 2 * i] = hi_odd[i] + hi_odd[8 + i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers from a fixed seed.
    fn stream(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed | 1;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    fn codes(n: usize, seed: u64) -> Vec<[u8; CODE_BYTES]> {
        let mut next = stream(seed);
        (0..n)
            .map(|_| std::array::from_fn(|_| next() as u8))
            .collect()
    }

    fn entries(seed: u64, top: u64) -> [[u8; 16]; NIBBLES] {
        let mut next = stream(seed);
        std::array::from_fn(|_| std::array::from_fn(|_| (next() % (top + 1)) as u8))
    }

    /// What a code's sum is, read nibble by nibble.
    fn expected(code: &[u8; CODE_BYTES], entries: &[[u8; 16]; NIBBLES]) -> u16 {
        (0..NIBBLES)
            .map(|j| entries[j][((code[j / 2] >> (4 * (j % 2))) & 15) as usize] as u16)
            .sum()
    }

    #[test]
    fn codes_read_back_as_written_whatever_their_neighbours() {
        let all = codes(100, 3);
        let mut blocks = Blocks::default();
        blocks.resize(all.len());
        assert_eq!(blocks.count(), 4);
        for (slot, code) in all.iter().enumerate() {
            blocks.write(slot, code);
        }
        // Writing over a slot leaves the one sharing its bytes alone.
        let again = codes(1, 99)[0];
        blocks.write(21, &again);
        blocks.write(21, &all[21]);
        for (slot, code) in all.iter().enumerate() {
            assert_eq!(&blocks.read(slot), code, "slot {slot}");
        }
    }

    /// Every path gives the sums read nibble by nibble, up to the largest entries (255 in
    /// all 96 nibbles, where the 16-bit lanes are closest to wrapping).
    #[test]
    fn every_path_sums_what_the_nibbles_say() {
        let all = codes(96, 11);
        let mut blocks = Blocks::default();
        blocks.resize(all.len());
        for (slot, code) in all.iter().enumerate() {
            blocks.write(slot, code);
        }
        for (seed, top) in [(5, 255), (6, 17), (7, 0)] {
            let mut entries = entries(seed, top);
            if seed == 5 {
                entries[0] = [255; 16];
                entries[95] = [255; 16];
            }
            for kernels in Kernels::ALL {
                let tables = Tables::new(&entries, kernels);
                let mut out = [0u16; LANES];
                for block in 0..blocks.count() {
                    blocks.sums(block, &tables, &mut out);
                    for (lane, got) in out.iter().enumerate() {
                        let slot = block * LANES + lane;
                        assert_eq!(
                            *got,
                            expected(&all[slot], &entries),
                            "{kernels:?} slot {slot}"
                        );
                    }
                }
            }
        }
        let full = [[255u8; 16]; NIBBLES];
        let mut out = [0u16; LANES];
        for kernels in Kernels::ALL {
            blocks.sums(1, &Tables::new(&full, kernels), &mut out);
            assert_eq!(out, [255 * NIBBLES as u16; LANES], "{kernels:?}");
        }
    }

    #[test]
    fn the_shuffle_runs_where_the_cpu_has_it_unless_held_back() {
        assert!(matches!(
            Tables::new(&[[0; 16]; NIBBLES], Kernels::Plain),
            Tables::Pairs(_)
        ));
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            assert!(matches!(
                Tables::new(&[[0; 16]; NIBBLES], Kernels::Avx2),
                Tables::Shuffle(_)
            ));
        }
    }
}
