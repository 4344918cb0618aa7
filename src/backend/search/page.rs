//! A page of search results and how many there are in all.

use serde::Serialize;

use super::correction::Checked;
use super::{Correction, SearchHit, SearchRequest};

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// Every memory matching the request, across all pages; a lower bound when
    /// `total_exact` is false.
    pub total: u64,
    /// False when more memories match than are counted for a page near the start
    /// ([`super::lexical::COUNTED`]): `total` then says how many at least.
    pub total_exact: bool,
    pub offset: u32,
    pub limit: u32,
    pub has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u32>,
    /// Query words that matched nothing and were corrected.
    pub corrections: Vec<Correction>,
    /// Query words that matched nothing and had no near neighbour in the index: left as
    /// they are, they match nothing.
    pub unmatched: Vec<String>,
    /// Recall only: memories linked to the hits of this page, listed apart. They are not
    /// hits, so they count neither in `total` nor in the paging.
    pub neighbours: Vec<SearchHit>,
    /// Set when the call would have used the model but it was still loading after
    /// [`super::semantic::READY_WAIT`]: the page was found by words alone.
    pub model_note: Option<String>,
}

/// How many memories match a request: exactly, or at least (a lower bound is always past
/// the page asked for, so `has_more` stays true).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    pub count: i64,
    pub exact: bool,
}

impl Total {
    pub fn exact(count: i64) -> Self {
        Total { count, exact: true }
    }

    pub fn at_least(count: i64) -> Self {
        Total {
            count,
            exact: false,
        }
    }
}

impl SearchPage {
    pub(super) fn new(
        hits: Vec<SearchHit>,
        total: Total,
        req: &SearchRequest,
        checked: Checked,
    ) -> Self {
        let end = u64::from(req.offset) + hits.len() as u64;
        let count = total.count.max(0) as u64;
        let has_more = end < count;
        SearchPage {
            hits,
            total: count,
            total_exact: total.exact,
            offset: req.offset,
            limit: req.limit,
            has_more,
            next_offset: has_more.then_some(end as u32),
            corrections: checked.corrections,
            unmatched: checked.unmatched,
            neighbours: Vec::new(),
            model_note: None,
        }
    }
}
