//! Dropout's keep mask from its definition (the optimized twin is `dropout`).

/// `mask[i]` = 0 when the top 24 bits of `lowbias32(lowbias32(i ^ k₀) ^ k₁)` are below
/// `threshold`, else `scale` (`k₀`, `k₁` the low and high 32 bits of `key`). The hash is
/// written here in u64 arithmetic reduced mod 2^32, independently of the kernel's.
pub fn dropout_mask(key: u64, threshold: u32, scale: f32, len: usize) -> Vec<f32> {
    const M32: u64 = 0xffff_ffff;
    let hash = |x: u64| {
        let x = x ^ (x >> 16);
        let x = (x * 0x7feb_352d) & M32;
        let x = x ^ (x >> 15);
        let x = (x * 0x846c_a68b) & M32;
        x ^ (x >> 16)
    };
    (0..len as u64)
        .map(|i| {
            let h = hash(hash(i ^ (key & M32)) ^ (key >> 32)) >> 8;
            if h < u64::from(threshold) {
                0.0
            } else {
                scale
            }
        })
        .collect()
}
