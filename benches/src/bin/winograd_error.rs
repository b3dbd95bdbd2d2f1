//! Measures the error of each convolution algorithm against the f64 reference at typical
//! activation scales and prints the Markdown table kept in BENCHMARKS.md.
//!
//! Inputs are uniform in [-1, 1), filters Glorot-uniform (`±sqrt(6 / (fan_in + fan_out))`).
//! Per pass and algorithm it reports, over every output element: the largest absolute
//! error relative to the largest |reference| output, the RMS error relative to the RMS
//! output, and the largest error in units of `ε · M` where `M` is the largest element
//! magnitude `Σ|terms|` of the output (the reference run on absolute values) — the unit the
//! tests' Winograd allowance uses. (Per element, Winograd's error follows the magnitude of
//! the whole input tile, not of the element's own window, so the tensor-wide M is the
//! stable unit.)
//!
//! usage: cargo run --release -p ember-benches --bin winograd_error

use ember_benches::fill;
use ember_kernels::conv::{
    conv2d_backward_data, conv2d_backward_filter, conv2d_forward, Conv2d, ConvAlgo, Padding, Pass,
};
use ember_kernels::reference;
use ember_kernels::Ctx;

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// (max |err| / max |ref|, rms err / rms ref, max |err| / (ε m)).
fn stats(got: &[f32], want: &[f32], mag: &[f32]) -> (f64, f64, f64) {
    let (mut max_err, mut max_ref, mut se, mut sr) = (0f64, 0f64, 0f64, 0f64);
    for (&g, &w) in got.iter().zip(want) {
        let e = (f64::from(g) - f64::from(w)).abs();
        max_err = max_err.max(e);
        max_ref = max_ref.max(f64::from(w).abs());
        se += e * e;
        sr += f64::from(w) * f64::from(w);
    }
    let max_mag = mag.iter().fold(0f64, |m, &v| m.max(f64::from(v)));
    (max_err / max_ref, (se / sr).sqrt(), max_err / (f64::from(f32::EPSILON) * max_mag))
}

fn main() {
    let shapes = [
        ("mnist_conv2", Conv2d::simple([4, 13, 13, 32], [3, 3, 32, 64], Padding::Valid).unwrap()),
        ("res56_64", Conv2d::simple([1, 56, 56, 64], [3, 3, 64, 64], Padding::Same).unwrap()),
        ("res28_128", Conv2d::simple([1, 28, 28, 128], [3, 3, 128, 128], Padding::Same).unwrap()),
        ("res14_256", Conv2d::simple([1, 14, 14, 256], [3, 3, 256, 256], Padding::Same).unwrap()),
        // The example's resnet at one part of 8 images.
        ("resnet_28_32", Conv2d::simple([8, 28, 28, 32], [3, 3, 32, 32], Padding::Same).unwrap()),
    ];
    let algos = [ConvAlgo::Direct, ConvAlgo::Im2col, ConvAlgo::Winograd2x3, ConvAlgo::Winograd4x3];
    println!("| shape | pass | algorithm | max err / max out | rms err / rms out | max err / (ε·max Σ\\|terms\\|) |");
    println!("|---|---|---|---:|---:|---:|");
    for (name, c) in shapes {
        let x = fill(11, c.input_shape().iter().product());
        let scale = (6.0 / (9.0 * (c.cin() + c.cout()) as f32)).sqrt();
        let w: Vec<f32> = fill(12, c.filter_shape().iter().product()).iter().map(|v| v * scale).collect();
        let dy = fill(13, c.output_shape().iter().product());
        let mut y_ref = vec![0.0; dy.len()];
        reference::conv2d_forward(&c, &x, &w, None, false, &mut y_ref).unwrap();
        let mut y_mag = vec![0.0; dy.len()];
        reference::conv2d_forward(&c, &abs(&x), &abs(&w), None, false, &mut y_mag).unwrap();
        let mut dx_ref = vec![0.0; x.len()];
        reference::conv2d_backward_data(&c, &dy, &w, &mut dx_ref).unwrap();
        let mut dx_mag = vec![0.0; x.len()];
        reference::conv2d_backward_data(&c, &abs(&dy), &abs(&w), &mut dx_mag).unwrap();
        let mut dw_ref = vec![0.0; w.len()];
        reference::conv2d_backward_filter(&c, &x, &dy, &mut dw_ref, None).unwrap();
        let mut dw_mag = vec![0.0; w.len()];
        reference::conv2d_backward_filter(&c, &abs(&x), &abs(&dy), &mut dw_mag, None).unwrap();
        let passes = [
            (Pass::Forward, "forward"),
            (Pass::BackwardData, "backward-data"),
            (Pass::BackwardFilter, "backward-filter"),
        ];
        for (pass, pname) in passes {
            for algo in algos {
                let opts = Ctx::new().with_algo(algo);
                let (got, want, mag) = match pass {
                    Pass::Forward => {
                        let mut y = vec![0.0; dy.len()];
                        conv2d_forward(&opts, &c, &x, &w, None, false, &mut y).unwrap();
                        (y, &y_ref, &y_mag)
                    }
                    Pass::BackwardData => {
                        let mut dx = vec![0.0; x.len()];
                        conv2d_backward_data(&opts, &c, &dy, &w, &mut dx, false).unwrap();
                        (dx, &dx_ref, &dx_mag)
                    }
                    Pass::BackwardFilter => {
                        let mut dw = vec![0.0; w.len()];
                        conv2d_backward_filter(&opts, &c, &x, &dy, &mut dw, None, false).unwrap();
                        (dw, &dw_ref, &dw_mag)
                    }
                };
                let (rel_max, rel_rms, worst) = stats(&got, want, mag);
                println!("| {name} | {pname} | {algo:?} | {rel_max:.1e} | {rel_rms:.1e} | {worst:.2} |");
            }
        }
    }
}
