//! Latency samples and the table they become.

use std::time::Duration;

use serde::Serialize;

/// One measured operation.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub operation: String,
    pub n: usize,
    pub samples: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Operations per second, one at a time.
    pub ops_per_s: f64,
    /// The same work in-process on libsql through the same backend code, no MCP.
    pub raw_p50_ms: Option<f64>,
    /// MCP p50 / raw p50.
    pub ratio: Option<f64>,
    pub note: String,
}

pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

pub fn row(
    operation: &str,
    n: usize,
    mut mcp: Vec<Duration>,
    raw: Option<Vec<Duration>>,
    note: &str,
) -> Row {
    mcp.sort();
    let total: f64 = mcp.iter().map(Duration::as_secs_f64).sum();
    let raw_p50 = raw.map(|mut r| {
        r.sort();
        percentile(&r, 0.5)
    });
    let p50 = percentile(&mcp, 0.5);
    Row {
        operation: operation.to_string(),
        n,
        samples: mcp.len(),
        p50_ms: round(p50),
        p95_ms: round(percentile(&mcp, 0.95)),
        p99_ms: round(percentile(&mcp, 0.99)),
        ops_per_s: if total > 0.0 {
            (mcp.len() as f64 / total).round()
        } else {
            0.0
        },
        raw_p50_ms: raw_p50.map(round),
        ratio: raw_p50
            .filter(|r| *r > 0.0)
            .map(|r| (p50 / r * 10.0).round() / 10.0),
        note: note.to_string(),
    }
}

fn round(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| operation | N | samples | p50 ms | p95 ms | p99 ms | ops/s | raw libsql p50 ms | MCP / raw | note |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.operation,
            r.n,
            r.samples,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.ops_per_s,
            r.raw_p50_ms
                .map(|v| v.to_string())
                .unwrap_or_else(|| "–".into()),
            r.ratio
                .map(|v| format!("{v}×"))
                .unwrap_or_else(|| "–".into()),
            r.note
        ));
    }
    out
}
