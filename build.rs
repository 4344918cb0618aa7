//! Sets the cfgs that turn tests which cannot run here into ignored ones, so the test
//! summary counts them as skipped instead of passing them without running (libtest decides
//! "ignored" at compile time, hence cfgs set here):
//!
//! - `memorygraph_test_offline`, from `MEMORYGRAPH_TEST_OFFLINE=1`: the tests that need
//!   programs from outside (sqld, MemoryGraph 0.12.4, the MCP Inspector, packaging tools).
//! - `memorygraph_no_bf16`, where the CPU building (and running) the tests has no
//!   AVX512_BF16: the tests of the encoder's bfloat16 products.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(memorygraph_test_offline)");
    println!("cargo::rustc-check-cfg=cfg(memorygraph_no_bf16)");
    println!("cargo::rerun-if-env-changed=MEMORYGRAPH_TEST_OFFLINE");
    println!("cargo::rerun-if-changed=build.rs");
    let offline = std::env::var("MEMORYGRAPH_TEST_OFFLINE").unwrap_or_default();
    if !matches!(offline.trim(), "" | "0" | "false" | "no") {
        println!("cargo::rustc-cfg=memorygraph_test_offline");
    }
    let x86_64 = std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64");
    if !(x86_64 && host_has_bf16()) {
        println!("cargo::rustc-cfg=memorygraph_no_bf16");
    }
}

#[cfg(target_arch = "x86_64")]
fn host_has_bf16() -> bool {
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bf16")
}

#[cfg(not(target_arch = "x86_64"))]
fn host_has_bf16() -> bool {
    false
}
