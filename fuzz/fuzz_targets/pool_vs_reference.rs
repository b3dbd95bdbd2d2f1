//! Arbitrary pooling descriptors (invalid ones included), max and average, forward and
//! backward, on a forced ISA: equal to the reference (max pooling exactly; averages within
//! their summation bound), or a typed error.
#![no_main]
use ember_kernels::conv::Padding;
use ember_kernels::pool::{avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward, Pool2d};
use ember_kernels::Ctx;
use ember_kernels::{reference, Isa};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn run(u: &mut Unstructured) -> Result<()> {
    let input = [
        u.int_in_range(0..=3usize)?,
        u.int_in_range(0..=9usize)?,
        u.int_in_range(0..=9usize)?,
        u.int_in_range(0..=20usize)?,
    ];
    let window = (u.int_in_range(0..=4usize)?, u.int_in_range(0..=4usize)?);
    let stride = (u.int_in_range(0..=4usize)?, u.int_in_range(0..=4usize)?);
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
    let Ok(p) = Pool2d::new(input, window, stride, padding) else { return Ok(()) };
    let isa = *u.choose(&Isa::ALL)?;
    let len = |s: [usize; 4]| s.iter().product::<usize>();
    let x: Vec<f32> =
        (0..len(p.input_shape())).map(|_| Ok(f32::from(u.int_in_range(-8i8..=8)?))).collect::<Result<_>>()?;
    let dy: Vec<f32> =
        (0..len(p.output_shape())).map(|_| Ok(f32::from(u.int_in_range(-8i8..=8)?))).collect::<Result<_>>()?;
    let (mut y, mut a) = (vec![0.0; dy.len()], vec![0u32; dy.len()]);
    let r = max_pool_forward(&Ctx::for_isa(isa), &p, &x, &mut y, &mut a);
    if !isa.is_available() {
        assert!(r.is_err());
        return Ok(());
    }
    r.expect("max forward");
    let (mut yr, mut ar) = (vec![0.0; dy.len()], vec![0u32; dy.len()]);
    reference::max_pool_forward(&p, &x, &mut yr, &mut ar).expect("reference");
    assert_eq!(y, yr);
    assert_eq!(a, ar);
    let (mut dx, mut dxr) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    max_pool_backward(&Ctx::for_isa(isa), &p, &dy, &a, &mut dx).expect("max backward");
    reference::max_pool_backward(&p, &dy, &a, &mut dxr).expect("reference");
    assert_eq!(dx, dxr, "max backward (small integers: exact)");
    let (mut ya, mut yar) = (vec![0.0; dy.len()], vec![0.0; dy.len()]);
    avg_pool_forward(&p, &x, &mut ya).expect("avg forward");
    reference::avg_pool_forward(&p, &x, &mut yar).expect("reference");
    let (kh, kw) = p.window_size();
    let cells = (kh * kw) as f64;
    for (g, w) in ya.iter().zip(&yar) {
        assert!(
            (f64::from(*g) - f64::from(*w)).abs() <= (cells + 3.0) * f64::from(f32::EPSILON) * 8.0,
            "avg forward {g} vs {w}"
        );
    }
    let (mut dxa, mut dxar) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    avg_pool_backward(&p, &dy, &mut dxa).expect("avg backward");
    reference::avg_pool_backward(&p, &dy, &mut dxar).expect("reference");
    for (g, w) in dxa.iter().zip(&dxar) {
        assert!(
            (f64::from(*g) - f64::from(*w)).abs() <= (cells + 3.0) * f64::from(f32::EPSILON) * 8.0 * cells,
            "avg backward {g} vs {w}"
        );
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
