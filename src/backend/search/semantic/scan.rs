//! The scan of the in-memory copy for one query: every code's estimate and bound, of which
//! the best [`PICKS`] bounds are kept as the candidates to check, best first. It needs no
//! connection, so it runs on the thread that embedded the query.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::blocks::LANES;
use super::codes::{Estimates, Prepared};
use super::index::{Inner, VectorIndex, unit};
use crate::backend::search::SEMANTIC_FLOOR;
use crate::backend::search::kernels::Kernels;

/// Candidates a scan keeps. Above this many vectors a search may need more (with filters
/// that most candidates fail); it then scans the copy again for all of them.
pub const PICKS: usize = 2048;
/// From this many vectors a scan runs on two threads.
const TWO_THREADS_FROM: usize = 100_000;
/// Slack added to every bound for the rounding of f32 arithmetic (the database's cosine and
/// ours): far above it, far below any gap that decides a ranking.
const SLACK: f32 = 1e-4;

/// The best an exact cosine can be, from its estimate and the estimate's bound (one
/// expression, so a scan's bounds and its picks' agree to the bit).
fn high(estimate: f32, error: f32) -> f32 {
    estimate + error + SLACK
}

/// A candidate: a memory's row, the hash of its id, and its estimated cosine with the error
/// bound.
#[derive(Debug, Clone, Copy)]
pub struct Pick {
    pub rid: i64,
    pub key: u64,
    pub estimate: f32,
    pub error: f32,
}

impl Pick {
    /// The best its exact cosine can be.
    pub fn high(&self) -> f32 {
        high(self.estimate, self.error)
    }

    /// The worst its exact cosine can be.
    pub fn low(&self) -> f32 {
        self.estimate - self.error - SLACK
    }
}

/// What a scan found.
#[derive(Debug, Clone)]
pub struct Scan {
    /// The change count of the copy scanned.
    pub seen: i64,
    /// The best candidates by [`Pick::high`], best first.
    pub picks: Vec<Pick>,
    /// The best `high` among the vectors not picked (−∞ when every vector was).
    pub rest: f32,
    /// Among the vectors not picked, how many are estimated at least [`SEMANTIC_FLOOR`]
    /// similar (for the count of a semantic search).
    pub rest_above_floor: usize,
}

impl Scan {
    /// A scan that picked nothing, of the copy at change count `seen`.
    pub fn empty(seen: i64) -> Scan {
        Scan {
            seen,
            picks: Vec::new(),
            rest: f32::NEG_INFINITY,
            rest_above_floor: 0,
        }
    }
}

impl Scan {
    /// Counts a vector the scan does not pick among the rest.
    fn leave_out(&mut self, high: f32, estimate: f32) {
        self.rest = self.rest.max(high);
        if estimate >= SEMANTIC_FLOOR as f32 {
            self.rest_above_floor += 1;
        }
    }
}

/// A pick ordered by its `high`, for the heap of the best.
struct ByHigh(f32, Pick);

impl PartialEq for ByHigh {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}
impl Eq for ByHigh {}
impl PartialOrd for ByHigh {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByHigh {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Inner {
    /// Scans the copy for `query`, keeping at most `most` candidates; `None` before the copy
    /// is loaded. A large copy is scanned in two halves on two threads.
    pub(super) fn scan(&self, query: &[f32], most: usize) -> Option<Scan> {
        let two = self.len() >= TWO_THREADS_FROM
            && std::thread::available_parallelism().is_ok_and(|p| p.get() >= 2);
        self.scan_on(query, Kernels::process(), most, two)
    }

    /// [`Inner::scan`] with the kernels given, on one thread or two.
    fn scan_on(&self, query: &[f32], kernels: Kernels, most: usize, two: bool) -> Option<Scan> {
        let seen = self.seen?;
        let empty = Scan::empty(seen);
        let Some(q) = unit(query) else {
            return Some(empty);
        };
        let prepared = self.codes.prepare_for(&q, kernels);
        let n = self.len();
        if !two {
            return Some(self.scan_slots(&prepared, 0..n, most, empty));
        }
        // Halves that split no block.
        let half = (n / 2).next_multiple_of(LANES).min(n);
        let (first, second) = std::thread::scope(|s| {
            let first = s.spawn(|| self.scan_slots(&prepared, 0..half, most, empty.clone()));
            let second = self.scan_slots(&prepared, half..n, most, empty.clone());
            (first.join().expect("the scan's thread"), second)
        });
        // The best of both halves; what does not make it is left out like the rest.
        let mut merged = Scan {
            rest: first.rest.max(second.rest),
            rest_above_floor: first.rest_above_floor + second.rest_above_floor,
            picks: [first.picks, second.picks].concat(),
            ..empty
        };
        merged.picks.sort_by(|a, b| b.high().total_cmp(&a.high()));
        for out in merged.picks.split_off(most.min(merged.picks.len())) {
            merged.leave_out(out.high(), out.estimate);
        }
        Some(merged)
    }

    /// Every vector whose bound reaches `bar`, best first, however many; `None` before the
    /// copy is loaded. For a search whose filters turned most picks away: what cannot reach
    /// the bar could not change its answer, and a million picks would cost more to keep than
    /// to find.
    pub(super) fn scan_above(&self, query: &[f32], bar: f32) -> Option<Scan> {
        let seen = self.seen?;
        let mut scan = Scan::empty(seen);
        let Some(q) = unit(query) else {
            return Some(scan);
        };
        let prepared = self.codes.prepare_for(&q, Kernels::process());
        let mut block_of = Estimates::default();
        for block in 0..self.len().div_ceil(LANES) {
            self.codes.estimate_block(&prepared, block, &mut block_of);
            let first = block * LANES;
            for lane in 0..(self.len() - first).min(LANES) {
                let pick = self.pick(first + lane, &block_of, lane);
                if pick.high() >= bar {
                    scan.picks.push(pick);
                } else {
                    scan.leave_out(pick.high(), pick.estimate);
                }
            }
        }
        scan.picks.sort_by(|a, b| b.high().total_cmp(&a.high()));
        Some(scan)
    }

    /// The candidate in `slot`, from its block's estimates.
    fn pick(&self, slot: usize, block: &Estimates, lane: usize) -> Pick {
        Pick {
            rid: self.rids[slot],
            key: self.keys[slot],
            estimate: block.estimate[lane],
            error: block.error[lane],
        }
    }

    /// The scan of some slots into `scan` (empty), a block of codes at a time.
    fn scan_slots(
        &self,
        prepared: &Prepared,
        slots: std::ops::Range<usize>,
        most: usize,
        mut scan: Scan,
    ) -> Scan {
        let floor = SEMANTIC_FLOOR as f32;
        // The best `most` so far, the worst on top.
        let mut best: BinaryHeap<Reverse<ByHigh>> = BinaryHeap::with_capacity(most + 1);
        // The `high` a vector must beat to be picked, once `most` are.
        let mut bar = f32::NEG_INFINITY;
        let mut block_of = Estimates::default();
        let mut highs = [0f32; LANES];
        for block in slots.start / LANES..slots.end.div_ceil(LANES) {
            self.codes.estimate_block(prepared, block, &mut block_of);
            let first = block * LANES;
            let lanes = slots.start.max(first) - first..slots.end.min(first + LANES) - first;
            let Estimates { estimate, error } = &block_of;
            for lane in lanes.clone() {
                highs[lane] = high(estimate[lane], error[lane]);
            }
            // Most blocks hold nothing that beats the bar: left out at once, all of them.
            let top = highs[lanes.clone()]
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            if best.len() == most && top <= bar {
                scan.rest = scan.rest.max(top);
                scan.rest_above_floor += estimate[lanes].iter().filter(|e| **e >= floor).count();
                continue;
            }
            for lane in lanes {
                let (high, slot) = (highs[lane], first + lane);
                if best.len() == most && high <= bar {
                    scan.leave_out(high, estimate[lane]);
                    continue;
                }
                best.push(Reverse(ByHigh(high, self.pick(slot, &block_of, lane))));
                if best.len() > most
                    && let Some(Reverse(ByHigh(high, out))) = best.pop()
                {
                    scan.leave_out(high, out.estimate);
                }
                if best.len() == most {
                    bar = best.peek().map_or(f32::NEG_INFINITY, |w| w.0.0);
                }
            }
        }
        // Ascending by Reverse is descending by `high`.
        scan.picks = best
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(ByHigh(_, p))| p)
            .collect();
        scan
    }
}

impl VectorIndex {
    /// Scans the copy as it is now, from a thread that may block (the one that embedded the
    /// query): it waits for a search holding the copy to finish with it.
    pub fn scan_blocking(&self, query: &[f32]) -> Option<Scan> {
        self.inner.blocking_lock().scan(query, PICKS)
    }
}

#[cfg(test)]
impl VectorIndex {
    /// [`VectorIndex::scan_blocking`] from an async test (which may not block its thread).
    pub fn scan_blocking_for_tests(&self, query: &[f32]) -> Option<Scan> {
        self.inner.try_lock().ok()?.scan(query, PICKS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::search::semantic::index::tests::pseudo_unit;

    #[test]
    fn the_picks_are_the_best_bounds_and_the_rest_is_below_them() {
        let mut inner = Inner::default();
        inner.seen = Some(7);
        // Odd seeds: the generator takes `seed | 1`.
        for i in 0..500u64 {
            inner.put(&format!("m{i}"), i as i64, &pseudo_unit(2 * i + 1));
        }
        let q = pseudo_unit(5);
        let scan = inner.scan(&q, 40).unwrap();
        assert_eq!(scan.seen, 7);
        assert_eq!(scan.picks.len(), 40);
        assert!(scan.picks.windows(2).all(|w| w[0].high() >= w[1].high()));
        assert!(scan.rest <= scan.picks[39].high());
        // The query's own vector is the best candidate.
        assert_eq!(scan.picks[0].rid, 2);
        let all = inner.scan(&q, 1000).unwrap();
        assert_eq!(all.picks.len(), 500);
        assert_eq!(all.rest, f32::NEG_INFINITY);
        assert_eq!(all.rest_above_floor, 0);
        let above = all
            .picks
            .iter()
            .skip(40)
            .filter(|p| p.estimate >= SEMANTIC_FLOOR as f32)
            .count();
        assert_eq!(scan.rest_above_floor, above);
        assert!(Inner::default().scan(&q, 10).is_none());
    }

    /// One thread or two, the portable path or the fastest: the same picks, in the same
    /// order, with the same bounds.
    #[test]
    fn every_path_and_two_threads_pick_what_one_plain_thread_does() {
        let mut inner = Inner::default();
        inner.seen = Some(1);
        // Odd seeds: the generator takes `seed | 1`, so these are all different. Not a
        // multiple of the block, so the last block is partly filled and the halves split.
        for i in 0..3_001u64 {
            inner.put(&format!("m{i}"), i as i64, &pseudo_unit(2 * i + 1));
        }
        for q in 0..5 {
            let q = pseudo_unit(90_000 + q);
            let plain = inner.scan_on(&q, Kernels::Plain, 300, false).unwrap();
            let rids = |s: &Scan| s.picks.iter().map(|p| p.rid).collect::<Vec<_>>();
            let bounds = |s: &Scan| {
                s.picks
                    .iter()
                    .map(|p| (p.estimate, p.error))
                    .collect::<Vec<_>>()
            };
            for kernels in Kernels::ALL {
                for two in [false, true] {
                    let other = inner.scan_on(&q, kernels, 300, two).unwrap();
                    assert_eq!(
                        rids(&plain),
                        rids(&other),
                        "{kernels:?}, two threads: {two}"
                    );
                    assert_eq!(bounds(&plain), bounds(&other), "{kernels:?}, two: {two}");
                    assert_eq!(plain.rest, other.rest);
                    assert_eq!(plain.rest_above_floor, other.rest_above_floor);
                }
            }
        }
    }

    /// Above a bar: exactly the vectors whose bound reaches it, in the order a scan keeping
    /// all of them gives.
    #[test]
    fn a_scan_above_a_bar_keeps_what_reaches_it_in_the_full_scans_order() {
        let mut inner = Inner::default();
        inner.seen = Some(1);
        for i in 0..1_000u64 {
            inner.put(&format!("m{i}"), i as i64, &pseudo_unit(2 * i + 1));
        }
        let q = pseudo_unit(31);
        let all = inner.scan(&q, inner.len()).unwrap();
        let bar = all.picks[100].high();
        let above = inner.scan_above(&q, bar).unwrap();
        let reaching: Vec<i64> = all
            .picks
            .iter()
            .filter(|p| p.high() >= bar)
            .map(|p| p.rid)
            .collect();
        assert_eq!(
            above.picks.iter().map(|p| p.rid).collect::<Vec<_>>(),
            reaching
        );
        assert!(above.rest < bar);
        assert_eq!(
            above.rest,
            all.picks[reaching.len()..]
                .iter()
                .map(Pick::high)
                .fold(f32::NEG_INFINITY, f32::max)
        );
        assert!(Inner::default().scan_above(&q, 0.0).is_none());
    }
}
