//! Arbitrary convolution descriptors (invalid ones included), every algorithm and pass, and
//! the fused conv+ReLU+pool kernel, on a forced ISA: equal to the f64 reference within the
//! tests' bounds, or a typed error.
#![no_main]
use ember_kernels::conv::{
    conv2d_backward_data, conv2d_backward_data_pooled, conv2d_backward_filter, conv2d_backward_filter_pooled,
    conv2d_forward, conv_relu_maxpool_backward_filter, conv_relu_maxpool_forward, unpool_relu_grad, Conv2d, ConvAlgo,
    ConvReluPool, Padding, Pass,
};
use ember_kernels::Ctx;
use ember_kernels::{reference, Isa};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const EPS: f64 = f32::EPSILON as f64;

fn vals(u: &mut Unstructured, len: usize) -> Result<Vec<f32>> {
    (0..len).map(|_| Ok(f32::from(u.int_in_range(-32i8..=32)?) / 16.0)).collect()
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

fn max_abs(v: &[f32]) -> f64 {
    v.iter().fold(0f64, |m, &x| m.max(f64::from(x.abs())))
}

/// The largest over `groups` of `Σ |v|` over the elements `v[i]` with `i % groups == g`.
fn max_group_sum(v: &[f32], groups: usize) -> f64 {
    let mut s = vec![0f64; groups.max(1)];
    v.iter().enumerate().for_each(|(i, &x)| s[i % groups.max(1)] += f64::from(x.abs()));
    s.into_iter().fold(0.0, f64::max)
}

/// `got` within `(terms + 2) ε m` of `want` per element (`m` its magnitude: the reference
/// on absolute values), plus `extra ε` times `scale`, the larger of the largest magnitude and
/// `tile`. Winograd's rounding error scales with everything its transformed tiles mix, not
/// with the products an output sums: where every product an output needs is zero (an input
/// that meets only zero taps, taps that meet only padding) its magnitude is 0 while the
/// tile's is not, so `tile` bounds a tile's magnitude by the largest operand times the
/// largest per-output sum of the other's (see `winograd_tile`).
fn close(got: &[f32], want: &[f32], mag: &[f32], terms: usize, (extra, tile): (f64, f64), what: &str) {
    let mx = mag.iter().fold(0f64, |m, &v| m.max(f64::from(v))).max(if extra > 0.0 { tile } else { 0.0 });
    for (i, ((&g, &w), &m)) in got.iter().zip(want).zip(mag).enumerate() {
        let tol = (terms as f64 + 2.0) * EPS * f64::from(m) + extra * EPS * mx + 1e-30;
        assert!((f64::from(g) - f64::from(w)).abs() <= tol, "{what}: element {i}: {g} vs {w} (tol {tol})");
    }
}

/// Winograd's measured extra allowance (as in the tests), in units of ε·M, for the algorithm
/// `algo` runs for `pass` of `c`.
fn winograd_extra(algo: ConvAlgo, c: &Conv2d, pass: Pass, isa: Isa) -> f64 {
    match algo.resolve(c, pass, isa) {
        ConvAlgo::Winograd2x3 => 8.0,
        ConvAlgo::Winograd4x3 => 128.0,
        _ => 0.0,
    }
}

/// The tile bound of [`close`] for `pass`: forward, `max |x|` times the largest per-output-
/// channel `Σ |w|` (plus `|b|`); backward-data, `max |dy|` times the largest per-input-channel
/// `Σ |w|`; backward-filter, `max |x|` times the largest per-output-channel `Σ |dy|`.
fn winograd_tile(c: &Conv2d, pass: Pass, x: &[f32], w: &[f32], b: &[f32], dy: &[f32]) -> f64 {
    match pass {
        Pass::Forward => max_abs(x) * max_group_sum(w, c.cout()) + max_abs(b),
        Pass::BackwardData => {
            // HWIO: input channel ci is every `cout` consecutive floats' group, `cin` groups.
            let per_ci: Vec<f32> = w.chunks(c.cout().max(1)).map(|g| g.iter().map(|v| v.abs()).sum()).collect();
            max_abs(dy) * max_group_sum(&per_ci, c.cin())
        }
        Pass::BackwardFilter => max_abs(x) * max_group_sum(dy, c.cout()),
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let input = [
        u.int_in_range(0..=3usize)?,
        u.int_in_range(0..=9usize)?,
        u.int_in_range(0..=9usize)?,
        u.int_in_range(0..=5usize)?,
    ];
    let filter = [u.int_in_range(0..=4usize)?, u.int_in_range(0..=4usize)?, input[3], u.int_in_range(0..=6usize)?];
    let stride = (u.int_in_range(0..=3usize)?, u.int_in_range(0..=3usize)?);
    let dilation = (u.int_in_range(0..=2usize)?, u.int_in_range(0..=2usize)?);
    let padding = match u.int_in_range(0..=2u8)? {
        0 => Padding::Valid,
        1 => Padding::Same,
        _ => Padding::Explicit {
            top: u.int_in_range(0..=3)?,
            bottom: u.int_in_range(0..=3)?,
            left: u.int_in_range(0..=3)?,
            right: u.int_in_range(0..=3)?,
        },
    };
    let Ok(c) = Conv2d::new(input, filter, stride, dilation, padding) else { return Ok(()) };
    let isa = *u.choose(&Isa::ALL)?;
    let algo =
        *u.choose(&[ConvAlgo::Auto, ConvAlgo::Direct, ConvAlgo::Im2col, ConvAlgo::Winograd2x3, ConvAlgo::Winograd4x3])?;
    let relu = u.arbitrary::<bool>()?;
    let len = |s: [usize; 4]| s.iter().product::<usize>();
    let (x, w, b) = (vals(u, len(c.input_shape()))?, vals(u, len(c.filter_shape()))?, vals(u, c.cout())?);
    let dy = vals(u, len(c.output_shape()))?;
    let opts = Ctx { algo, isa, weights_version: None };
    let extra = (winograd_extra(algo, &c, Pass::Forward, isa), winograd_tile(&c, Pass::Forward, &x, &w, &b, &dy));
    let usable = isa.is_available();

    let mut y = vec![0.0; dy.len()];
    let r = conv2d_forward(&opts, &c, &x, &w, Some(&b), relu, &mut y);
    if !usable || !algo.supports(&c, Pass::Forward) {
        assert!(r.is_err(), "forward should be refused");
    } else {
        r.expect("forward");
        let (mut want, mut mag) = (vec![0.0; y.len()], vec![0.0; y.len()]);
        reference::conv2d_forward(&c, &x, &w, Some(&b), relu, &mut want).expect("reference");
        reference::conv2d_forward(&c, &abs(&x), &abs(&w), Some(&abs(&b)), false, &mut mag).expect("reference");
        close(&y, &want, &mag, c.kh() * c.kw() * c.cin(), extra, "forward");
    }
    let mut dx = vec![0.0; x.len()];
    let r = conv2d_backward_data(&opts, &c, &dy, &w, &mut dx, false);
    if !usable || !algo.supports(&c, Pass::BackwardData) {
        assert!(r.is_err(), "backward-data should be refused");
    } else {
        r.expect("backward-data");
        let (mut want, mut mag) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        reference::conv2d_backward_data(&c, &dy, &w, &mut want).expect("reference");
        reference::conv2d_backward_data(&c, &abs(&dy), &abs(&w), &mut mag).expect("reference");
        let extra =
            (winograd_extra(algo, &c, Pass::BackwardData, isa), winograd_tile(&c, Pass::BackwardData, &x, &w, &b, &dy));
        close(&dx, &want, &mag, c.kh() * c.kw() * c.cout(), extra, "backward-data");
    }
    let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; c.cout()]);
    let r = conv2d_backward_filter(&opts, &c, &x, &dy, &mut dw, Some(&mut db), false);
    if !usable || !algo.supports(&c, Pass::BackwardFilter) {
        assert!(r.is_err(), "backward-filter should be refused");
    } else {
        r.expect("backward-filter");
        let (mut want, mut mag) = (vec![0.0; w.len()], vec![0.0; w.len()]);
        reference::conv2d_backward_filter(&c, &x, &dy, &mut want, None).expect("reference");
        reference::conv2d_backward_filter(&c, &abs(&x), &abs(&dy), &mut mag, None).expect("reference");
        let extra = (
            winograd_extra(algo, &c, Pass::BackwardFilter, isa),
            winograd_tile(&c, Pass::BackwardFilter, &x, &w, &b, &dy),
        );
        close(&dw, &want, &mag, c.pixels(), extra, "backward-filter");
    }

    // The fused kernel, where the convolution output holds a 2x2 window.
    if let Ok(cp) = ConvReluPool::new(c) {
        let out = len(cp.output_shape());
        let (mut yp, mut a) = (vec![0.0; out], vec![0u32; out]);
        let r = conv_relu_maxpool_forward(&Ctx::for_isa(isa), &cp, &x, &w, Some(&b), &mut yp, &mut a);
        if !usable {
            assert!(r.is_err());
            return Ok(());
        }
        r.expect("fused forward");
        let (mut want, mut wa) = (vec![0.0; out], vec![0u32; out]);
        reference::conv_relu_maxpool_forward(&cp, &x, &w, Some(&b), &mut want, &mut wa).expect("reference");
        let (mut mag, mut ma) = (vec![0.0; out], vec![0u32; out]);
        reference::conv_relu_maxpool_forward(&cp, &abs(&x), &abs(&w), Some(&abs(&b)), &mut mag, &mut ma)
            .expect("reference");
        // The fused forward runs the algorithm Auto picks for the plain forward.
        let extra =
            (winograd_extra(ConvAlgo::Auto, &c, Pass::Forward, isa), winograd_tile(&c, Pass::Forward, &x, &w, &b, &dy));
        close(&yp, &want, &mag, c.kh() * c.kw() * c.cin(), extra, "fused forward");
        let dyp = vals(u, out)?;
        let (mut dwf, mut dbf) = (vec![0.0; w.len()], vec![0.0; c.cout()]);
        conv_relu_maxpool_backward_filter(&Ctx::for_isa(isa), &cp, &x, &yp, &dyp, &a, &mut dwf, Some(&mut dbf), false)
            .expect("fused backward");
        let (mut want, mut mag) = (vec![0.0; w.len()], vec![0.0; w.len()]);
        reference::conv_relu_maxpool_backward_filter(&cp, &x, &yp, &dyp, &a, &mut want, None).expect("reference");
        reference::conv_relu_maxpool_backward_filter(&cp, &abs(&x), &yp, &abs(&dyp), &a, &mut mag, None)
            .expect("reference");
        close(&dwf, &want, &mag, 4 * out / c.cout().max(1), (0.0, 0.0), "fused backward-filter");
        // The pooled passes from the pooled gradient (Winograd reads it in its tiles, which
        // cover only the pooling windows), with the context's algorithm, against the plain
        // reference passes on the unpooled gradient.
        let mut dconv = vec![0.0; dy.len()];
        unpool_relu_grad(&cp, &yp, &dyp, &a, &mut dconv).expect("unpool");
        let mut dxp = vec![0.0; x.len()];
        let r = conv2d_backward_data_pooled(&opts, &cp, &yp, &dyp, &a, &w, &mut dxp);
        if algo.supports(&c, Pass::BackwardData) {
            r.expect("pooled backward-data");
            let (mut want, mut mag) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            reference::conv2d_backward_data(&c, &dconv, &w, &mut want).expect("reference");
            reference::conv2d_backward_data(&c, &abs(&dconv), &abs(&w), &mut mag).expect("reference");
            let extra = (
                winograd_extra(algo, &c, Pass::BackwardData, isa),
                winograd_tile(&c, Pass::BackwardData, &x, &w, &b, &dconv),
            );
            close(&dxp, &want, &mag, c.kh() * c.kw() * c.cout(), extra, "pooled backward-data");
        }
        let mut dwp = vec![0.0; w.len()];
        let r = conv2d_backward_filter_pooled(&opts, &cp, &x, &yp, &dyp, &a, &mut dwp, None, false);
        if algo.supports(&c, Pass::BackwardFilter) {
            r.expect("pooled backward-filter");
            let (mut want, mut mag) = (vec![0.0; w.len()], vec![0.0; w.len()]);
            reference::conv2d_backward_filter(&c, &x, &dconv, &mut want, None).expect("reference");
            reference::conv2d_backward_filter(&c, &abs(&x), &abs(&dconv), &mut mag, None).expect("reference");
            let extra = (
                winograd_extra(algo, &c, Pass::BackwardFilter, isa),
                winograd_tile(&c, Pass::BackwardFilter, &x, &w, &b, &dconv),
            );
            close(&dwp, &want, &mag, c.pixels(), extra, "pooled backward-filter");
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
