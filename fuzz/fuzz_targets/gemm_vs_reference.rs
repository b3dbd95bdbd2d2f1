//! Arbitrary small GEMMs — m, n, k up to 24, row and column strides of A and B (zero
//! included: broadcast views), alpha, beta, an epilogue, a forced ISA (available or not),
//! prepacked B or not — against the f64 reference within the documented bound
//! `(k + 2)·ε·Σ|terms|` (+ the bias, ReLU is 1-Lipschitz), or a typed error.
#![no_main]
use ember_kernels::gemm::{sgemm_epilogue, Epilogue, MatMut, MatRef, PackedB, Rhs};
use ember_kernels::Ctx;
use ember_kernels::{reference, Isa};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn vals(u: &mut Unstructured, len: usize) -> Result<Vec<f32>> {
    (0..len).map(|_| Ok(f32::from(u.int_in_range(-64i8..=64)?) / 16.0)).collect()
}

fn run(u: &mut Unstructured) -> Result<()> {
    let (m, n, k) = (u.int_in_range(0..=24usize)?, u.int_in_range(0..=24usize)?, u.int_in_range(0..=24usize)?);
    let stride = |u: &mut Unstructured, dim: usize| -> Result<usize> {
        Ok(match u.int_in_range(0..=3u8)? {
            0 => 0,
            1 => 1,
            2 => dim,
            _ => u.int_in_range(0..=40usize)?,
        })
    };
    let (ars, acs, brs, bcs) = (stride(u, k)?, stride(u, 1)?, stride(u, n)?, stride(u, 1)?);
    let (la, lb) = (u.int_in_range(0..=700usize)?, u.int_in_range(0..=700usize)?);
    let (a, b) = (vals(u, la)?, vals(u, lb)?);
    let (alpha, beta) = (f32::from(u.int_in_range(-8i8..=8)?) / 4.0, f32::from(u.int_in_range(-8i8..=8)?) / 4.0);
    let bias = vals(u, n)?;
    let epi = Epilogue { bias: if u.arbitrary()? { Some(&bias) } else { None }, relu: u.arbitrary()? };
    let isa = *u.choose(&Isa::ALL)?;
    let packed = u.arbitrary::<bool>()?;
    let c0 = vals(u, m * n)?;

    let (Ok(av), Ok(bv)) = (MatRef::new(&a, m, k, ars, acs), MatRef::new(&b, k, n, brs, bcs)) else {
        return Ok(()); // views that do not fit their buffers are refused at construction
    };
    let mut c = c0.clone();
    let pb;
    let rhs = if packed {
        match PackedB::new(&Ctx::for_isa(isa), bv) {
            Ok(p) => {
                pb = p;
                Rhs::Packed(&pb)
            }
            Err(_) => {
                assert!(!isa.is_available(), "packing failed on an available ISA");
                return Ok(());
            }
        }
    } else {
        Rhs::View(bv)
    };
    let r = sgemm_epilogue(
        &Ctx::for_isa(isa),
        alpha,
        av,
        rhs,
        beta,
        MatMut::row_major(&mut c, m, n).expect("dense C"),
        epi,
    );
    if !isa.is_available() {
        assert!(r.is_err(), "{isa:?} is not available but the call succeeded");
        return Ok(());
    }
    r.expect("valid GEMM");
    let mut want = c0.clone();
    reference::sgemm(alpha, av, bv, beta, &mut MatMut::row_major(&mut want, m, n).expect("dense C"))
        .expect("reference");
    for i in 0..m {
        for j in 0..n {
            let mut w = f64::from(want[i * n + j]) + epi.bias.map_or(0.0, |b| f64::from(b[j]));
            if epi.relu {
                w = w.max(0.0);
            }
            let mag: f64 = (0..k).map(|p| f64::from((alpha * av.at(i, p) * bv.at(p, j)).abs())).sum::<f64>()
                + f64::from((beta * c0[i * n + j]).abs())
                + epi.bias.map_or(0.0, |b| f64::from(b[j].abs()));
            let tol = (k as f64 + 3.0) * f64::from(f32::EPSILON) * mag + 1e-30;
            let got = f64::from(c[i * n + j]);
            assert!((got - w).abs() <= tol, "C[{i}][{j}] = {got}, want {w} (tol {tol}) {isa:?} m{m} n{n} k{k}");
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
