//! CPU dispatch: the only module that knows which CPU it runs on.
//!
//! An [`Isa`] names one family of microkernels. [`Isa::detect`] finds the best one this CPU
//! supports (once; the answer is cached). Callers can inspect it, force a particular one for a
//! call (every dispatching kernel takes a [`crate::Ctx`] naming it), or set the process default with
//! [`set_default_isa`] or the `EMBER_ISA=scalar|avx2|avx512|neon` environment variable.
//! Forcing an ISA the CPU lacks is an [`Error::IsaUnavailable`], never a crash.

pub(crate) mod simd;

use crate::error::{Error, Result};
use core::fmt;
use core::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// A family of microkernels, named by the instructions it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Portable Rust, no ISA-specific intrinsics. Always available.
    Scalar,
    /// x86-64 AVX2 + FMA3 (256-bit).
    Avx2,
    /// x86-64 AVX-512F (512-bit), plus AVX2 + FMA3.
    Avx512,
    /// AArch64 Advanced SIMD (128-bit), always present on AArch64.
    Neon,
}

impl Isa {
    /// Every ISA Ember knows, in order of preference (worst first).
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    /// Lower-case name, as accepted by `EMBER_ISA` and [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Whether this CPU (and this build's target architecture) can run this ISA's kernels.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The ISAs available here, worst first (the last is [`Isa::detect`]'s answer).
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
    }

    /// The best ISA this CPU supports. Detected once, then cached.
    pub fn detect() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            [Isa::Avx512, Isa::Neon, Isa::Avx2].into_iter().find(|i| i.is_available()).unwrap_or(Isa::Scalar)
        })
    }

    /// `Ok(self)` when available, else [`Error::IsaUnavailable`].
    pub fn check(self) -> Result<Isa> {
        if self.is_available() {
            Ok(self)
        } else {
            Err(Error::IsaUnavailable(self))
        }
    }

    /// The ISA named by the `EMBER_ISA` environment variable, checked against this CPU;
    /// [`Isa::detect`] when the variable is unset or empty.
    pub fn from_env() -> Result<Isa> {
        match std::env::var("EMBER_ISA") {
            Ok(s) if !s.trim().is_empty() => s.parse::<Isa>()?.check(),
            _ => Ok(Isa::detect()),
        }
    }

    fn to_code(self) -> u8 {
        self as u8 + 1
    }

    fn from_code(c: u8) -> Option<Isa> {
        Isa::ALL.get(usize::from(c).checked_sub(1)?).copied()
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isa {
    type Err = Error;
    fn from_str(s: &str) -> Result<Isa> {
        let t = s.trim().to_ascii_lowercase();
        Isa::ALL.into_iter().find(|i| i.name() == t).ok_or_else(|| Error::UnknownIsa(s.to_string()))
    }
}

/// 0 = not chosen yet; otherwise `Isa::to_code`.
static DEFAULT_ISA: AtomicU8 = AtomicU8::new(0);

/// The ISA used by the functions that do not take one: the one set with [`set_default_isa`],
/// else `EMBER_ISA` when it names an available ISA, else [`Isa::detect`]. A bad `EMBER_ISA`
/// is ignored here; binaries that want to report it call [`Isa::from_env`] and
/// [`set_default_isa`] at start-up.
pub fn default_isa() -> Isa {
    if let Some(isa) = Isa::from_code(DEFAULT_ISA.load(Ordering::Relaxed)) {
        return isa;
    }
    let isa = Isa::from_env().unwrap_or_else(|_| Isa::detect());
    DEFAULT_ISA.store(isa.to_code(), Ordering::Relaxed);
    isa
}

/// Sets the process-wide default ISA. Fails, changing nothing, if the CPU lacks it.
pub fn set_default_isa(isa: Isa) -> Result<()> {
    isa.check()?;
    DEFAULT_ISA.store(isa.to_code(), Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>().unwrap(), isa);
            assert_eq!(Isa::from_code(isa.to_code()), Some(isa));
        }
        assert_eq!(" AVX512 ".parse::<Isa>().unwrap(), Isa::Avx512);
        assert!(matches!("sse9".parse::<Isa>(), Err(Error::UnknownIsa(_))));
    }

    #[test]
    fn detect_is_available_and_scalar_always_is() {
        assert!(Isa::detect().is_available());
        assert!(Isa::Scalar.is_available());
        assert!(Isa::available().contains(&Isa::detect()));
    }

    #[test]
    fn forcing_a_missing_isa_is_an_error() {
        for isa in Isa::ALL.into_iter().filter(|i| !i.is_available()) {
            assert_eq!(set_default_isa(isa), Err(Error::IsaUnavailable(isa)));
        }
    }
}
