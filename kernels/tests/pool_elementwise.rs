//! Pooling against the reference, and the elementwise kernels against their definitions
//! (Adam's update in `adam.rs`).

mod common;

use common::{assert_close, fill, padding, EPS};
use ember_kernels::conv::Padding;
use ember_kernels::elementwise::{
    accumulate, accumulate_in_order, add_forward, bias_add, bias_grad, relu_backward, relu_forward, softmax,
    softmax_cross_entropy,
};
use ember_kernels::pool::{
    avg_pool_backward, avg_pool_forward, global_avg_pool_backward, global_avg_pool_forward, max_pool_backward,
    max_pool_forward, Pool2d,
};
use ember_kernels::Ctx;
use ember_kernels::{reference, Error, Isa};
use proptest::prelude::*;

fn pool() -> impl Strategy<Value = Pool2d> {
    ((1usize..4, 1usize..11, 1usize..11, 1usize..40), (1usize..4, 1usize..4, 1usize..4, 1usize..4), padding())
        .prop_filter_map("window larger than padded input", |((n, h, w, c), (kh, kw, sh, sw), p)| {
            Pool2d::new([n, h, w, c], (kh, kw), (sh, sw), p).ok()
        })
}

fn len(s: [usize; 4]) -> usize {
    s.iter().product()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::cases(64)))]

    #[test]
    fn max_pool_matches_reference(p in pool(), seed in any::<u64>()) {
        // Quantised values make ties common, so the tie rule is exercised too.
        let x: Vec<f32> = fill(seed, len(p.input_shape())).iter().map(|v| (v * 4.0).round()).collect();
        let dy = fill(seed ^ 1, len(p.output_shape()));
        let (mut yr, mut ar) = (vec![0.0; dy.len()], vec![0u32; dy.len()]);
        reference::max_pool_forward(&p, &x, &mut yr, &mut ar).unwrap();
        let mut dxr = vec![0.0; x.len()];
        reference::max_pool_backward(&p, &dy, &ar, &mut dxr).unwrap();
        for isa in Isa::available() {
            let (mut y, mut a) = (vec![0.0; dy.len()], vec![0u32; dy.len()]);
            max_pool_forward(&Ctx::for_isa(isa), &p, &x, &mut y, &mut a).unwrap();
            prop_assert_eq!(&y, &yr, "{}", isa);
            prop_assert_eq!(&a, &ar, "{}", isa);
            let mut dx = vec![f32::NAN; x.len()];
            max_pool_backward(&Ctx::for_isa(isa), &p, &dy, &a, &mut dx).unwrap();
            // Each input cell sums at most kh*kw routed gradients.
            let tol = vec![(p.window_size().0 * p.window_size().1 + 2) as f64 * EPS * 2.0 * (p.window_size().0 * p.window_size().1) as f64; x.len()];
            assert_close(&dx, &dxr, &tol, &format!("max_pool_backward {isa}"));
        }
    }

    #[test]
    fn avg_pool_matches_reference(p in pool(), seed in any::<u64>()) {
        let x = fill(seed, len(p.input_shape()));
        let dy = fill(seed ^ 1, len(p.output_shape()));
        let (mut y, mut yr) = (vec![f32::NAN; dy.len()], vec![0.0; dy.len()]);
        avg_pool_forward(&p, &x, &mut y).unwrap();
        reference::avg_pool_forward(&p, &x, &mut yr).unwrap();
        // A mean of up to kh*kw values in [-1, 1): summation error + one scaling.
        let cells = (p.window_size().0 * p.window_size().1) as f64;
        assert_close(&y, &yr, &vec![(cells + 3.0) * EPS; y.len()], "avg_pool_forward");
        let (mut dx, mut dxr) = (vec![f32::NAN; x.len()], vec![0.0; x.len()]);
        avg_pool_backward(&p, &dy, &mut dx).unwrap();
        reference::avg_pool_backward(&p, &dy, &mut dxr).unwrap();
        assert_close(&dx, &dxr, &vec![(cells + 3.0) * EPS * cells; x.len()], "avg_pool_backward");
    }
}

#[test]
fn global_avg_pool_is_the_channel_mean() {
    let x: Vec<f32> = (0..2 * 3 * 2 * 2).map(|v| v as f32).collect(); // [2,3,2,2]
    let mut y = vec![0.0; 4];
    global_avg_pool_forward([2, 3, 2, 2], &x, &mut y).unwrap();
    assert_eq!(y, [5.0, 6.0, 17.0, 18.0]);
}

/// The global pooling's backward spreads each image's gradient over its pixels in one pass:
/// the bits of the general average pooling's (a zeroed sum plus `g / count`, so a `-0.0`
/// gradient gives `+0.0`, and NaN passes through), whatever the output held before.
#[test]
fn global_avg_pool_backward_is_the_whole_window_average_pool_backward() {
    for (shape, dy) in [
        ([2, 3, 2, 2], vec![1.5, -0.0, f32::NAN, 3.0e-39]),
        ([3, 5, 7, 3], (0..9).map(|i| (i as f32 - 4.0) / 3.0).collect()),
        ([1, 1, 1, 1], vec![-2.0]),
        ([0, 4, 4, 2], vec![]),
    ] {
        let [n, h, w, c] = shape;
        let p = Pool2d::new(shape, (h, w), (1, 1), Padding::Valid).unwrap();
        let mut general = vec![0.0; n * h * w * c];
        avg_pool_backward(&p, &dy, &mut general).unwrap();
        let mut global = vec![f32::NAN; general.len()];
        global_avg_pool_backward(shape, &dy, &mut global).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&global), bits(&general), "{shape:?}");
    }
    let mut dx = vec![0.0; 16];
    assert!(matches!(global_avg_pool_backward([1, 4, 4, 1], &[1.0, 2.0], &mut dx), Err(Error::ShapeMismatch { .. })));
}

#[test]
fn pooling_rejects_bad_input() {
    assert!(matches!(Pool2d::new([1, 2, 2, 1], (3, 3), (1, 1), Padding::Valid), Err(Error::InvalidArgument(_))));
    assert!(matches!(Pool2d::new([1, 4, 4, 1], (2, 2), (0, 1), Padding::Valid), Err(Error::InvalidArgument(_))));
    let p = Pool2d::new([1, 4, 4, 1], (2, 2), (2, 2), Padding::Valid).unwrap();
    let (x, mut y, mut a) = (vec![0.0; 16], vec![0.0; 4], vec![0u32; 4]);
    assert!(matches!(max_pool_forward(&Ctx::new(), &p, &x[..15], &mut y, &mut a), Err(Error::ShapeMismatch { .. })));
    let mut dx = vec![0.0; 16];
    assert!(matches!(max_pool_backward(&Ctx::new(), &p, &y, &[99, 0, 0, 0], &mut dx), Err(Error::InvalidArgument(_))));
    // Regression: the output size was never checked (padding can make it exceed the input).
    let huge = Padding::Explicit { top: 1 << 31, bottom: 0, left: 1 << 31, right: 0 };
    assert!(matches!(Pool2d::new([1, 1, 1, 1], (1, 1), (1, 1), huge), Err(Error::SizeOverflow { .. })));
    let overflow = Padding::Explicit { top: usize::MAX, bottom: 1, left: 0, right: 0 };
    assert!(matches!(Pool2d::new([1, 1, 1, 1], (1, 1), (1, 1), overflow), Err(Error::SizeOverflow { .. })));
}

#[test]
fn elementwise_kernels_follow_their_definitions() {
    let mut x = vec![1.0, -2.0, 3.0, -4.0];
    bias_add(&mut x, &[0.5, 1.0]).unwrap();
    assert_eq!(x, [1.5, -1.0, 3.5, -3.0]);
    let mut db = [9.0; 2];
    bias_grad(&x, 2, &mut db).unwrap();
    assert_eq!(db, [5.0, -4.0]);
    relu_forward(&mut x);
    assert_eq!(x, [1.5, 0.0, 3.5, 0.0]);
    let mut d = vec![1.0; 4];
    relu_backward(&x, &mut d).unwrap();
    assert_eq!(d, [1.0, 0.0, 1.0, 0.0]);
    assert!(matches!(bias_add(&mut x, &[1.0; 3]), Err(Error::ShapeMismatch { .. })));
}

proptest! {
    /// `add_forward` is the sum in input order, element by element (bit for bit: the same
    /// f32 additions, on every ISA), and with `relu` its positive part (0 for a NaN or -0
    /// sum, as the SIMD max); lengths across the vectors, their tails and the 16K-float
    /// chunks the threads split, with a NaN and a -0 sum among the elements.
    #[test]
    fn add_is_the_ordered_sum_and_its_relu(len in 0usize..40_000, inputs in 1usize..4, seed in any::<u64>()) {
        let mut xs: Vec<Vec<f32>> = (0..inputs as u64).map(|k| fill(seed ^ k, len)).collect();
        if len > 2 {
            xs[0][len / 2] = f32::NAN;
            for x in xs.iter_mut() {
                x[len - 1] = -0.0;
            }
        }
        let refs: Vec<&[f32]> = xs.iter().map(|x| &x[..]).collect();
        for isa in Isa::available() {
            for relu in [false, true] {
                let mut y = vec![f32::NAN; len];
                add_forward(&Ctx::for_isa(isa), &refs, relu, &mut y).unwrap();
                for (i, &v) in y.iter().enumerate() {
                    let mut want = xs[0][i];
                    for x in &xs[1..] {
                        want += x[i];
                    }
                    let want = if !relu || want > 0.0 { want } else { 0.0 };
                    prop_assert_eq!(v.to_bits(), want.to_bits(), "{:?}: element {} of {}", isa, i, len);
                }
            }
        }
    }
}

#[test]
fn softmax_is_stable_and_cross_entropy_gradient_matches_finite_differences() {
    let mut big = vec![1000.0, 1001.0, 1002.0];
    softmax(&mut big, 3).unwrap();
    let e: Vec<f64> = [-2.0f64, -1.0, 0.0].iter().map(|v| v.exp()).collect();
    let s: f64 = e.iter().sum();
    for (p, q) in big.iter().zip(&e) {
        assert!((f64::from(*p) - q / s).abs() < 1e-6);
    }
    let logits = fill(3, 4 * 5);
    let labels = [0u32, 4, 2, 2];
    let mut g = vec![0.0; 20];
    let loss = softmax_cross_entropy(&logits, &labels, 5, &mut g).unwrap();
    assert!(loss.is_finite() && loss > 0.0);
    for i in 0..20 {
        let h = 1e-2f32;
        let (mut lp, mut lm) = (logits.clone(), logits.clone());
        lp[i] += h;
        lm[i] -= h;
        let mut tmp = vec![0.0; 20];
        let fd = (softmax_cross_entropy(&lp, &labels, 5, &mut tmp).unwrap()
            - softmax_cross_entropy(&lm, &labels, 5, &mut tmp).unwrap())
            / (2.0 * h);
        // Central differences in f32 with h = 1e-2: truncation ~h², rounding ~ε/h.
        assert!((fd - g[i]).abs() < 2e-3, "element {i}: fd {fd} vs {}", g[i]);
    }
    assert!(matches!(softmax_cross_entropy(&logits, &[0, 5, 0, 0], 5, &mut g), Err(Error::InvalidArgument(_))));
}

/// `y += x` is the scalar sum bit for bit on every ISA and thread count, over lengths across
/// the vectors and the 16384-float chunks.
#[test]
fn accumulate_is_the_scalar_sum() {
    for isa in Isa::available() {
        for len in [0usize, 1, 5, 16, 17, 40_000 + 3] {
            let (y0, x) = (fill(1, len), fill(2, len));
            let want: Vec<f32> = y0.iter().zip(&x).map(|(a, b)| a + b).collect();
            for threads in [1, 2, 3] {
                let mut y = y0.clone();
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| accumulate(&Ctx::for_isa(isa), &mut y, &x)).unwrap();
                assert!(y == want, "{isa}, len {len}, {threads} threads");
            }
        }
    }
}

/// `y += x₀; y += x₁; ...` in one pass is the scalar sums in that order bit for bit on every
/// ISA and thread count, for none, one and three `x`, over lengths across the vectors, the
/// L1 windows and the 16384-float chunks.
#[test]
fn accumulate_in_order_is_the_scalar_sums_in_order() {
    for isa in Isa::available() {
        for len in [0usize, 1, 17, 2048 + 9, 40_000 + 3] {
            let y0 = fill(1, len);
            let xs: Vec<Vec<f32>> = (0..3u64).map(|k| fill(10 + k, len)).collect();
            for count in [0, 1, 3] {
                let xs: Vec<&[f32]> = xs[..count].iter().map(|x| &x[..]).collect();
                let mut want = y0.clone();
                for x in &xs {
                    want.iter_mut().zip(*x).for_each(|(a, b)| *a += b);
                }
                for threads in [1, 2, 3] {
                    let mut y = y0.clone();
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    pool.install(|| accumulate_in_order(&Ctx::for_isa(isa), &mut y, &xs)).unwrap();
                    let same = y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{isa}, len {len}, {count} inputs, {threads} threads");
                }
            }
        }
    }
}

/// The bias gradient's sums in their documented order, bit for bit: blocks of 65,536 floats
/// of whole rows (`bias.rs`'s `BIAS_GRAD_BLOCK_FLOATS`), in a block row `r` on add chain
/// `r % 4`, the chains as `(c0 + c1) + (c2 + c3)`, the blocks' sums added in order. Widths
/// with full vectors, partial ones and both, rows not a multiple of 4, several blocks.
#[test]
fn bias_gradient_sums_rows_in_four_chains() {
    let model = |dy: &[f32], channels: usize| {
        let block_rows = (65_536 / channels).max(1);
        let mut db = vec![0.0f32; channels];
        for block in dy.chunks(block_rows * channels) {
            for (c, d) in db.iter_mut().enumerate() {
                let mut chain = [0.0f32; 4];
                for (r, row) in block.chunks_exact(channels).enumerate() {
                    chain[r % 4] += row[c];
                }
                *d += (chain[0] + chain[1]) + (chain[2] + chain[3]);
            }
        }
        db
    };
    for (channels, rows) in [(1, 7), (3, 5), (10, 6_601), (16, 4), (17, 9), (32, 2_051), (40, 3), (64, 1_030), (70, 11)]
    {
        // Magnitudes over six decades, so a different order of the additions changes bits.
        let dy: Vec<f32> = fill(channels as u64, channels * rows)
            .iter()
            .enumerate()
            .map(|(i, v)| v * 10f32.powi((i % 7) as i32 - 3))
            .collect();
        let mut db = vec![f32::NAN; channels];
        bias_grad(&dy, channels, &mut db).unwrap();
        let want = model(&dy, channels);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
        assert_eq!(bits(&db), bits(&want), "{channels} channels, {rows} rows");
    }
}

/// Pooling (every ISA the max kernels have) and the bias gradient give the same bits on 1, 2
/// and 3 threads: windows that overlap (stride < window) and padding included, and a bias
/// gradient over many blocks of rows.
#[test]
fn pooling_and_bias_gradient_do_not_depend_on_thread_count() {
    let p = Pool2d::new([5, 23, 19, 24], (3, 3), (2, 2), Padding::Same).unwrap();
    let x = fill(1, len(p.input_shape()));
    let dy = fill(2, len(p.output_shape()));
    let big_dy = fill(3, 40_000 * 10);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
    for isa in Isa::available() {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let (mut y, mut a) = (vec![0.0; dy.len()], vec![0u32; dy.len()]);
                max_pool_forward(&Ctx::for_isa(isa), &p, &x, &mut y, &mut a).unwrap();
                let mut dx = vec![0.0; x.len()];
                max_pool_backward(&Ctx::for_isa(isa), &p, &dy, &a, &mut dx).unwrap();
                let mut ya = vec![0.0; dy.len()];
                avg_pool_forward(&p, &x, &mut ya).unwrap();
                let mut dxa = vec![0.0; x.len()];
                avg_pool_backward(&p, &dy, &mut dxa).unwrap();
                let mut db = vec![0.0; 10];
                bias_grad(&big_dy, 10, &mut db).unwrap();
                (bits(&y), a, bits(&dx), bits(&ya), bits(&dxa), bits(&db))
            })
        };
        let one = run(1);
        assert!(one == run(2), "{isa}: 1 vs 2 threads");
        assert!(one == run(3), "{isa}: 1 vs 3 threads");
    }
}
