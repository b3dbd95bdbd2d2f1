//! Dropout's mask against its reference definition on every ISA this CPU has (bit for bit:
//! integer hashing), and the statistics a keep mask must have.

use ember_kernels::dropout::dropout_mask;
use ember_kernels::{reference, Ctx, Isa};

fn threshold(rate: f64) -> u32 {
    (rate * f64::from(1u32 << 24)).ceil() as u32
}

#[test]
fn masks_are_the_reference_bit_for_bit_on_every_isa() {
    for isa in Isa::available() {
        for (key, rate) in [(0u64, 0.5), (0x1234_5678_9abc_def0, 0.3), (u64::MAX, 0.0), (42, 1.0)] {
            for len in [0usize, 1, 7, 16, 17, 1000, 100_003] {
                let mut got = vec![-1.0f32; len];
                dropout_mask(&Ctx::for_isa(isa), key, threshold(rate), 2.0, &mut got).unwrap();
                let want = reference::dropout_mask(key, threshold(rate), 2.0, len);
                assert!(got == want, "{isa}: key {key:#x}, rate {rate}, len {len}");
            }
        }
    }
}

#[test]
fn masks_keep_the_right_fraction_and_differ_by_key() {
    let t = threshold(0.3);
    let (mut a, mut b) = (vec![0.0f32; 100_000], vec![0.0f32; 100_000]);
    dropout_mask(&Ctx::new(), 0x9e37_79b9_7f4a_7c15, t, 2.0, &mut a).unwrap();
    dropout_mask(&Ctx::new(), 0x9e37_79b9_7f4a_7c16, t, 2.0, &mut b).unwrap();
    let kept = a.iter().filter(|&&m| m == 2.0).count() as f64 / a.len() as f64;
    // 100,000 Bernoulli(0.7) draws: standard deviation 0.0014.
    assert!((kept - 0.7).abs() < 0.01, "kept {kept}");
    assert!(a.iter().all(|&m| m == 0.0 || m == 2.0));
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64;
    // Independent masks agree on 0.7² + 0.3² = 58% of the elements.
    assert!((same - 0.58).abs() < 0.02, "masks of keys one apart agree on {same}");
}
