const ITER: usize = 20;
use ember_kernels::gemm::{sgemm, MatMut, MatRef};
use std::time::Instant;
fn t(name: &str, mut f: impl FnMut()) {
    for _ in 0..ITER {
        f();
    }
    let mut v = vec![];
    for _ in 0..3 {
        let s = Instant::now();
        for _ in 0..ITER {
            f();
        }
        v.push(s.elapsed().as_secs_f64() / ITER as f64 * 1e6);
    }
    v.sort_by(f64::total_cmp);
    println!("{name:40} {:8.1} us (min)", v[0]);
}
fn main() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(std::env::args().nth(1).map_or(1, |s| s.parse().unwrap()))
        .build()
        .unwrap();
    pool.install(|| {
        let (n, i, o) = (32usize, 5408usize, 10usize);
        let x = ember_kernels::reference::fill_uniform(1, n * i);
        let w = ember_kernels::reference::fill_uniform(2, i * o);
        let dy = ember_kernels::reference::fill_uniform(3, n * o);
        let mut y = vec![0.0; n * o];
        let mut dw = vec![0.0; i * o];
        let mut dx = vec![0.0; n * i];
        t("fwd y=xW", || {
            sgemm(
                1.0,
                MatRef::row_major(&x, n, i).unwrap(),
                MatRef::row_major(&w, i, o).unwrap(),
                0.0,
                MatMut::row_major(&mut y, n, o).unwrap(),
            )
            .unwrap()
        });
        t("fwd yT=WT xT", || {
            sgemm(
                1.0,
                MatRef::row_major(&w, i, o).unwrap().t(),
                MatRef::row_major(&x, n, i).unwrap().t(),
                0.0,
                MatMut::row_major(&mut y, n, o).unwrap().t(),
            )
            .unwrap()
        });
        t("dW = xT dy", || {
            sgemm(
                1.0,
                MatRef::row_major(&x, n, i).unwrap().t(),
                MatRef::row_major(&dy, n, o).unwrap(),
                0.0,
                MatMut::row_major(&mut dw, i, o).unwrap(),
            )
            .unwrap()
        });
        t("dWT = dyT x", || {
            sgemm(
                1.0,
                MatRef::row_major(&dy, n, o).unwrap().t(),
                MatRef::row_major(&x, n, i).unwrap(),
                0.0,
                MatMut::row_major(&mut dw, i, o).unwrap().t(),
            )
            .unwrap()
        });
        t("dx = dy WT", || {
            sgemm(
                1.0,
                MatRef::row_major(&dy, n, o).unwrap(),
                MatRef::row_major(&w, i, o).unwrap().t(),
                0.0,
                MatMut::row_major(&mut dx, n, i).unwrap(),
            )
            .unwrap()
        });
        t("dxT = W dyT", || {
            sgemm(
                1.0,
                MatRef::row_major(&w, i, o).unwrap(),
                MatRef::row_major(&dy, n, o).unwrap().t(),
                0.0,
                MatMut::row_major(&mut dx, n, i).unwrap().t(),
            )
            .unwrap()
        });
        let wt: Vec<f32> = (0..o)
            .flat_map(|j| {
                (0..i).map({
                    let w = &w;
                    move |r| w[r * o + j]
                })
            })
            .collect();
        t("dx = dy Wt(rowmajor)", || {
            sgemm(
                1.0,
                MatRef::row_major(&dy, n, o).unwrap(),
                MatRef::row_major(&wt, o, i).unwrap(),
                0.0,
                MatMut::row_major(&mut dx, n, i).unwrap(),
            )
            .unwrap()
        });
        let mut wt2 = wt.clone();
        t("transpose W", || {
            for j in 0..o {
                for r in 0..i {
                    wt2[j * i + r] = w[r * o + j];
                }
            }
        });
        let mut g = vec![0.0; i * o];
        let mut m = vec![0.0; i * o];
        let mut vv = vec![0.0; i * o];
        let p = ember_kernels::elementwise::AdamParams::default();
        let mut wc = w.clone();
        t("adam", || ember_kernels::elementwise::adam_update(&p, 3, &mut wc, &g, &mut m, &mut vv).unwrap());
        g[0] = 1.0;
        let mut db = vec![0.0; 10];
        t("bias_grad", || ember_kernels::elementwise::bias_grad(&dy, 10, &mut db).unwrap());
        use ember_kernels::conv::*;
        let c = Conv2d::simple([32, 28, 28, 1], [3, 3, 1, 32], Padding::Valid).unwrap();
        let cp = ConvReluPool::new(c).unwrap();
        let xi = ember_kernels::reference::fill_uniform(4, 32 * 784);
        let wc = ember_kernels::reference::fill_uniform(5, 288);
        let b = vec![0.01; 32];
        let mut yp = vec![0.0; 32 * 5408];
        let mut am = vec![0u32; 32 * 5408];
        t("fused fwd", || conv_relu_maxpool_forward(&cp, &xi, &wc, Some(&b), &mut yp, &mut am).unwrap());
        let mut dwc = vec![0.0; 288];
        let mut dbc = vec![0.0; 32];
        t("fused wgrad", || {
            conv_relu_maxpool_backward_filter(&cp, &xi, &yp, &x, &am, &mut dwc, Some(&mut dbc)).unwrap()
        });
        let mut yc = vec![0.0; 32 * 676 * 32];
        t("conv fwd unfused", || {
            conv2d_forward(&c, &xi, &wc, Some(&b), true, &mut yc, &ConvOptions::default()).unwrap()
        });
    });
}
