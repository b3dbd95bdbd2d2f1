//! Pictures of a training run (placeholder; filled in below).
use ember_model::data::Dataset;
use ember_model::{History, Sequential};
use std::path::Path;

pub fn draw_all(
    _m: &mut Sequential,
    _h: &History,
    _t: &Dataset,
    _dir: &Path,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    Ok(vec![])
}
