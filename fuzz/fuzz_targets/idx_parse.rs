//! Arbitrary bytes (raw, or gzip when they start with its magic) into the IDX reader:
//! `Ok` with data consistent with its dimensions, or a typed error; never a panic, and
//! never an allocation larger than the input justifies (the reader checks the dimensions
//! against the data, and a gzip stream against the DEFLATE expansion bound, first).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(idx) = ember_model::data::parse_idx(data, "fuzz") {
        let len: usize = idx.dims.iter().product();
        assert_eq!(len, idx.data.len());
        assert!(idx.data.len() <= data.len().saturating_mul(1032) + 1032);
    }
});
