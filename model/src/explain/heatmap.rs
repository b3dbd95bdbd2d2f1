//! Attribution maps as pictures: a colour map and an overlay on the grey input, as RGB
//! bytes (`[h, w, 3]`, row-major) for any image writer. The example draws grids of them
//! with captions (`model/examples/mnist/pictures.rs`).

/// keras.io's Grad-CAM colour map ("jet"): `v` in `[0, 1]` from dark blue through cyan,
/// yellow and red to dark red; values outside are clamped, NaN is black.
pub fn jet(v: f32) -> [u8; 3] {
    if v.is_nan() {
        return [0, 0, 0];
    }
    let v = v.clamp(0.0, 1.0);
    let channel = |centre: f32| (1.5 - (4.0 * v - centre).abs()).clamp(0.0, 1.0);
    let byte = |c: f32| (c * 255.0).round() as u8;
    [byte(channel(3.0)), byte(channel(2.0)), byte(channel(1.0))]
}

/// `map` scaled into `[0, 1]` by its largest magnitude: `|v| / max |v|` (all zeros stay
/// zeros). Signed maps show where attribution is strong, whatever its sign.
pub fn normalise(map: &[f32]) -> Vec<f32> {
    let top = map.iter().fold(0f32, |a, v| if v.is_finite() { a.max(v.abs()) } else { a });
    map.iter().map(|v| if top > 0.0 && v.is_finite() { v.abs() / top } else { 0.0 }).collect()
}

/// The map (already in `[0, 1]`, e.g. by [`normalise`]) in the [`jet`] colours.
pub fn colorize(map: &[f32]) -> Vec<u8> {
    map.iter().flat_map(|&v| jet(v)).collect()
}

/// The map in [`jet`] colours blended over a grey image of the same size (`grey` in
/// `[0, 1]`): `(1 - alpha) * grey + alpha * jet(map)`; `alpha` is clamped to `[0, 1]`.
/// Errors when the two differ in length.
pub fn overlay(grey: &[f32], map: &[f32], alpha: f32) -> crate::Result<Vec<u8>> {
    if grey.len() != map.len() {
        return Err(crate::Error::Data(format!("a map of {} pixels over an image of {}", map.len(), grey.len())));
    }
    let a = if alpha.is_nan() { 0.0 } else { alpha.clamp(0.0, 1.0) };
    Ok(grey
        .iter()
        .zip(map)
        .flat_map(|(&g, &m)| {
            let g = if g.is_finite() { g.clamp(0.0, 1.0) * 255.0 } else { 0.0 };
            jet(m).map(|c| ((1.0 - a) * g + a * f32::from(c)).round() as u8)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jet_runs_blue_to_red() {
        assert_eq!(jet(0.0), [0, 0, 128]);
        assert_eq!(jet(0.5), [128, 255, 128]);
        assert_eq!(jet(1.0), [128, 0, 0]);
        assert_eq!(jet(-3.0), jet(0.0));
        assert_eq!(jet(f32::NAN), [0, 0, 0]);
    }

    #[test]
    fn normalise_and_overlay() {
        assert_eq!(normalise(&[-2.0, 1.0, 0.0]), vec![1.0, 0.5, 0.0]);
        assert_eq!(normalise(&[0.0, 0.0]), vec![0.0, 0.0]);
        assert_eq!(overlay(&[1.0], &[0.0], 0.0).unwrap(), vec![255, 255, 255]);
        assert_eq!(overlay(&[0.0], &[1.0], 1.0).unwrap(), jet(1.0).to_vec());
        assert!(overlay(&[0.0], &[], 0.5).is_err());
    }
}
