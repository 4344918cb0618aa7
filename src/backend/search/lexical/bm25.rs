//! Two FTS5 ranking functions of our own, registered on every connection this process
//! opens: `mg_bm25` and `mg_matched`.
//!
//! FTS5's `bm25()` computes each phrase's IDF by walking the phrase's whole document list
//! once per query, even when the query then scores a handful of rows. At 100,000 memories a
//! word found in most of them costs ≈3 ms per walk, a quoted phrase ≈9 ms. `mg_bm25` is the
//! same formula (k1 = 1.2, b = 0.75, column weights, FTS5's own average document length)
//! with the IDFs passed in by the caller, who keeps document frequencies cached
//! ([`super::lexical`]). Given FTS5's IDFs it returns exactly `-bm25()`: larger is better.
//!
//! `mg_matched` says how many of the query's first `n` phrases occur in the row, which is
//! how "memories matching every word first" is decided without a second query.
//!
//! Both look only at the first `n` phrases of the match expression, so a caller may append
//! phrases that narrow the rows (`E AND (rare words)`) without changing the scores.

use std::ffi::{c_char, c_int, c_void};
use std::ptr::null_mut;
use std::sync::Once;

use libsql::ffi;

/// FTS5's BM25 constants.
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Columns of `memory_fts`: title, summary, tags, content.
pub const COLUMNS: usize = 4;

/// Most phrases scored (queries are cut to 32 terms).
const MAX_PHRASES: usize = 64;

/// Registers the functions for every connection opened from now on (libsql opens its
/// connections through SQLite, local files and embedded replicas alike). Idempotent.
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // libsql sets SQLite's threading mode when it opens its first database, which must
        // happen before SQLite initialises; registering initialises it. So libsql opens a
        // database first (the one call that does it synchronously).
        #[allow(deprecated)]
        drop(libsql::Database::open_in_memory());
        // SAFETY: `init` has the signature SQLite expects of an automatic extension.
        unsafe {
            ffi::sqlite3_auto_extension(Some(init));
        }
    });
}

/// Finds the connection's FTS5 API and adds the functions. A connection without FTS5 gets
/// none; its searches then fail with SQLite's own "no such function" error.
unsafe extern "C" fn init(
    db: *mut ffi::sqlite3,
    _error: *mut *const c_char,
    _routines: *const ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: `db` is the connection being opened; the statement and the pointer binding
    // follow SQLite's documented way of reaching `fts5_api`.
    unsafe {
        let mut stmt = null_mut();
        if ffi::sqlite3_prepare_v2(db, c"SELECT fts5(?1)".as_ptr(), -1, &mut stmt, null_mut())
            != ffi::SQLITE_OK
        {
            return ffi::SQLITE_OK;
        }
        let mut api: *mut ffi::fts5_api = null_mut();
        ffi::sqlite3_bind_pointer(
            stmt,
            1,
            (&mut api as *mut *mut ffi::fts5_api).cast::<c_void>(),
            c"fts5_api_ptr".as_ptr(),
            None,
        );
        ffi::sqlite3_step(stmt);
        ffi::sqlite3_finalize(stmt);
        if api.is_null() {
            return ffi::SQLITE_OK;
        }
        if let Some(create) = (*api).xCreateFunction {
            create(api, c"mg_bm25".as_ptr(), null_mut(), Some(bm25), None);
            create(api, c"mg_matched".as_ptr(), null_mut(), Some(matched), None);
        }
        ffi::SQLITE_OK
    }
}

/// The table's average document length in tokens, kept for the statement's lifetime.
struct Averages {
    avgdl: f64,
}

unsafe extern "C" fn free_averages(p: *mut c_void) {
    // SAFETY: set by `averages` from a `Box<Averages>`.
    unsafe { drop(Box::from_raw(p.cast::<Averages>())) }
}

/// The statement's average document length, computed on first use as FTS5's `bm25()` does.
unsafe fn averages(api: &ffi::Fts5ExtensionApi, fts: *mut ffi::Fts5Context) -> Result<f64, c_int> {
    // SAFETY: the callbacks are FTS5's own, called with its context.
    unsafe {
        let get = api.xGetAuxdata.ok_or(ffi::SQLITE_ERROR)?;
        let found = get(fts, 0).cast::<Averages>();
        if !found.is_null() {
            return Ok((*found).avgdl);
        }
        let (mut rows, mut tokens) = (0i64, 0i64);
        check(api.xRowCount.ok_or(ffi::SQLITE_ERROR)?(fts, &mut rows))?;
        check(api.xColumnTotalSize.ok_or(ffi::SQLITE_ERROR)?(
            fts,
            -1,
            &mut tokens,
        ))?;
        let avgdl = tokens as f64 / (rows.max(1)) as f64;
        let boxed = Box::into_raw(Box::new(Averages { avgdl }));
        check(api.xSetAuxdata.ok_or(ffi::SQLITE_ERROR)?(
            fts,
            boxed.cast(),
            Some(free_averages),
        ))?;
        Ok(avgdl)
    }
}

fn check(rc: c_int) -> Result<(), c_int> {
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rc)
    }
}

/// The weighted frequency of each of the first `n` phrases in the current row.
unsafe fn frequencies(
    api: &ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    n: usize,
    weights: &[f64; COLUMNS],
    freq: &mut [f64; MAX_PHRASES],
) -> Result<(), c_int> {
    // SAFETY: FTS5's callbacks with its context.
    unsafe {
        let mut count = 0;
        check(api.xInstCount.ok_or(ffi::SQLITE_ERROR)?(fts, &mut count))?;
        let inst = api.xInst.ok_or(ffi::SQLITE_ERROR)?;
        for i in 0..count {
            let (mut phrase, mut column, mut offset) = (0, 0, 0);
            check(inst(fts, i, &mut phrase, &mut column, &mut offset))?;
            let (p, c) = (phrase as usize, column as usize);
            if p < n && c < COLUMNS {
                freq[p] += weights[c];
            }
        }
        Ok(())
    }
}

/// Reads the arguments: `n`, then (for `mg_bm25`) the four column weights and `n` IDFs.
unsafe fn arguments(values: &[*mut ffi::sqlite3_value], with_scores: bool) -> Option<Args> {
    // SAFETY: the values are the function's arguments, valid during the call.
    unsafe {
        let n = usize::try_from(ffi::sqlite3_value_int(*values.first()?)).ok()?;
        if n > MAX_PHRASES {
            return None;
        }
        let mut args = Args {
            n,
            weights: [1.0; COLUMNS],
            idf: [0.0; MAX_PHRASES],
        };
        if with_scores {
            if values.len() != 1 + COLUMNS + n {
                return None;
            }
            for c in 0..COLUMNS {
                args.weights[c] = ffi::sqlite3_value_double(values[1 + c]);
            }
            for i in 0..n {
                args.idf[i] = ffi::sqlite3_value_double(values[1 + COLUMNS + i]);
            }
        } else if values.len() != 1 {
            return None;
        }
        Some(args)
    }
}

struct Args {
    n: usize,
    weights: [f64; COLUMNS],
    idf: [f64; MAX_PHRASES],
}

unsafe fn fail(ctx: *mut ffi::sqlite3_context, message: &std::ffi::CStr) {
    // SAFETY: `ctx` is the call's result context.
    unsafe { ffi::sqlite3_result_error(ctx, message.as_ptr(), -1) }
}

/// `mg_bm25(memory_fts, n, w_title, w_summary, w_tags, w_content, idf_0, …, idf_n-1)`.
unsafe extern "C" fn bm25(
    api: *const ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    ctx: *mut ffi::sqlite3_context,
    n_values: c_int,
    values: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: called by FTS5 with valid pointers for the duration of the call.
    unsafe {
        let values = std::slice::from_raw_parts(values, n_values.max(0) as usize);
        let Some(args) = arguments(values, true) else {
            return fail(
                ctx,
                c"mg_bm25 takes n, four column weights and n IDFs (n at most 64)",
            );
        };
        let api = &*api;
        let mut freq = [0.0; MAX_PHRASES];
        let result = averages(api, fts).and_then(|avgdl| {
            frequencies(api, fts, args.n, &args.weights, &mut freq)?;
            let mut tokens = 0;
            check(api.xColumnSize.ok_or(ffi::SQLITE_ERROR)?(
                fts,
                -1,
                &mut tokens,
            ))?;
            let length = 1.0 - B + B * f64::from(tokens) / avgdl;
            Ok((0..args.n)
                .map(|i| args.idf[i] * (freq[i] * (K1 + 1.0)) / (freq[i] + K1 * length))
                .sum::<f64>())
        });
        match result {
            Ok(score) => ffi::sqlite3_result_double(ctx, score),
            Err(rc) => ffi::sqlite3_result_error_code(ctx, rc),
        }
    }
}

/// `mg_matched(memory_fts, n)`: how many of the first `n` phrases the row contains.
unsafe extern "C" fn matched(
    api: *const ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    ctx: *mut ffi::sqlite3_context,
    n_values: c_int,
    values: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: called by FTS5 with valid pointers for the duration of the call.
    unsafe {
        let values = std::slice::from_raw_parts(values, n_values.max(0) as usize);
        let Some(args) = arguments(values, false) else {
            return fail(ctx, c"mg_matched takes n (at most 64)");
        };
        let mut freq = [0.0; MAX_PHRASES];
        match frequencies(&*api, fts, args.n, &args.weights, &mut freq) {
            Ok(()) => {
                let found = freq[..args.n].iter().filter(|f| **f > 0.0).count();
                ffi::sqlite3_result_int(ctx, found as c_int)
            }
            Err(rc) => ffi::sqlite3_result_error_code(ctx, rc),
        }
    }
}

/// FTS5's IDF of a phrase found in `docs` of `rows` documents (never below 1e-6). The two
/// counts may come from different moments (each is cached with the change count it was read
/// at, and another process may write in between): a phrase counted in more documents than
/// the row count says is taken to be in all of them, where FTS5's formula would take the
/// logarithm of a negative number and the NaN would reach the SQL text.
pub fn idf(rows: i64, docs: i64) -> f64 {
    let rows = rows.max(0);
    let docs = docs.clamp(0, rows);
    let idf = (((rows - docs) as f64 + 0.5) / (docs as f64 + 0.5)).ln();
    if idf > 0.0 { idf } else { 1e-6 }
}

#[cfg(test)]
mod tests {
    #[test]
    fn idf_stays_a_positive_number_when_the_counts_disagree() {
        for (rows, docs) in [(10, 12), (0, 1), (-1, 3), (5, 5), (100, 0)] {
            let v = super::idf(rows, docs);
            assert!(v.is_finite() && v > 0.0, "idf({rows}, {docs}) = {v}");
        }
        assert!((super::idf(100, 1) - (99.5f64 / 1.5).ln()).abs() < 1e-12);
    }
}
