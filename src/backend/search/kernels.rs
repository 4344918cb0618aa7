//! The setting that holds the hand-written kernels (the encoder's and the scan of the vector
//! copy) to the paths slower CPUs take, so one machine's tests run them all.

/// How far up the hand-written kernels may go. Each kernel takes the fastest of its paths that
/// both the CPU and this allow: `Best` (the default) lets AVX-512 and AVX512_BF16 run, `Avx2`
/// stops at AVX2 and FMA (what a CPU without AVX-512 runs), `Plain` keeps to the portable code
/// (what a CPU without AVX2 runs). Lowering it on a fast CPU runs the fallbacks that slower
/// ones take, so tests compare every path with the fastest on one machine. The products gemm
/// computes pick their own kernels and are not bound by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kernels {
    Plain,
    Avx2,
    Best,
}

impl Kernels {
    /// The variable that lowers them for a process, read when the model loads (and by the
    /// scan of the vector copy, once).
    const VARIABLE: &str = "MEMORYGRAPH_KERNEL";

    /// `MEMORYGRAPH_KERNEL`: `plain`, `avx2`, or `best` (the same as unset).
    pub(crate) fn from_env() -> Result<Kernels, String> {
        match std::env::var(Self::VARIABLE) {
            Err(std::env::VarError::NotPresent) => Ok(Kernels::Best),
            Ok(value) => Self::parse(&value),
            Err(std::env::VarError::NotUnicode(value)) => {
                Err(Self::refusal(&value.to_string_lossy()))
            }
        }
    }

    /// The setting for this process, read once. A value it does not take counts as `best`
    /// here: the model refuses to load with it ([`Kernels::from_env`]), so nothing scans.
    pub(crate) fn process() -> Kernels {
        static CHOSEN: std::sync::OnceLock<Kernels> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| Self::from_env().unwrap_or(Kernels::Best))
    }

    fn parse(value: &str) -> Result<Kernels, String> {
        match value.trim() {
            "" | "best" => Ok(Kernels::Best),
            "avx2" => Ok(Kernels::Avx2),
            "plain" => Ok(Kernels::Plain),
            other => Err(Self::refusal(other)),
        }
    }

    fn refusal(value: &str) -> String {
        format!(
            "{} is {value:?}: it takes `plain`, `avx2` or `best` (the default)",
            Self::VARIABLE
        )
    }

    /// Whether a path that needs AVX2 (and FMA) may run, where the CPU has them.
    pub(crate) fn avx2(self) -> bool {
        self >= Kernels::Avx2
    }

    /// Whether a path that needs AVX-512 may run, where the CPU has it.
    #[cfg(feature = "semantic")]
    pub(crate) fn avx512(self) -> bool {
        self == Kernels::Best
    }

    /// Every setting, slowest first, for tests that run each path (on a CPU without AVX2,
    /// `Avx2` runs the plain paths again).
    #[cfg(test)]
    pub(crate) const ALL: [Kernels; 3] = [Kernels::Plain, Kernels::Avx2, Kernels::Best];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_setting_takes_three_values_and_names_them_when_refused() {
        assert_eq!(Kernels::parse(""), Ok(Kernels::Best));
        assert_eq!(Kernels::parse("best"), Ok(Kernels::Best));
        assert_eq!(Kernels::parse(" avx2 "), Ok(Kernels::Avx2));
        assert_eq!(Kernels::parse("plain"), Ok(Kernels::Plain));
        let refused = Kernels::parse("avx512").unwrap_err();
        assert!(
            refused.contains("MEMORYGRAPH_KERNEL")
                && refused.contains("\"avx512\"")
                && refused.contains("`plain`, `avx2` or `best`"),
            "{refused}"
        );
        assert!(Kernels::Best.avx2() && Kernels::Avx2.avx2() && !Kernels::Plain.avx2());
        #[cfg(feature = "semantic")]
        assert!(Kernels::Best.avx512() && !Kernels::Avx2.avx512() && !Kernels::Plain.avx512());
    }
}
