//! One f32 vector type per ISA behind a common trait, so that a microkernel body is written
//! once (`fn body<V: F32x>`) and instantiated per ISA inside a `#[target_feature]` wrapper
//! (the body and these methods are `#[inline(always)]`, so they compile with the wrapper's
//! features). The GEMM keeps its own hand-written kernels; convolution, Winograd transforms,
//! pooling and the activations use this.
//!
//! Over 400 lines because it is one trait and its four implementations (portable, AVX2,
//! AVX-512, NEON), each method a line of intrinsics with its safety comment.
//!
//! Every method is `unsafe`: the caller guarantees the ISA is present (the wrapper's
//! `#[target_feature]` plus a prior [`crate::Isa::check`]) and, for loads and stores, that
//! `LANES` floats at the pointer are in bounds.

/// A vector of `LANES` f32.
pub(crate) trait F32x: Copy {
    /// Floats per vector.
    const LANES: usize;
    /// Vector registers a kernel can keep live: [`vector_registers`] of this type's ISA.
    const REGISTERS: usize;
    /// All lanes 0.
    unsafe fn zero() -> Self;
    /// All lanes `v`.
    unsafe fn splat(v: f32) -> Self;
    /// Unaligned load of `LANES` floats.
    unsafe fn load(p: *const f32) -> Self;
    /// Unaligned store of `LANES` floats.
    unsafe fn store(self, p: *mut f32);
    /// `self * b + c`, fused.
    unsafe fn fma(self, b: Self, c: Self) -> Self;
    unsafe fn add(self, b: Self) -> Self;
    unsafe fn sub(self, b: Self) -> Self;
    unsafe fn mul(self, b: Self) -> Self;
    unsafe fn max(self, b: Self) -> Self;
    /// `self / b`, correctly rounded.
    unsafe fn div(self, b: Self) -> Self;
    /// `√self`, correctly rounded.
    unsafe fn sqrt(self) -> Self;
    /// Per lane the smaller; the second operand when either is NaN (as `max`).
    unsafe fn min(self, b: Self) -> Self;
    /// Rounded to the nearest integer, ties to even.
    unsafe fn round(self) -> Self;
    /// `2^n` for lanes holding integers `n` in `[-126, 127]` (built in the exponent bits).
    unsafe fn pow2i(self) -> Self;
    /// Per lane: `b` where `self > other`, else `a`.
    unsafe fn select_gt(self, other: Self, b: Self, a: Self) -> Self;
    /// Per lane: `b` where `self == other`, else `a`.
    unsafe fn select_eq(self, other: Self, b: Self, a: Self) -> Self;
    /// Lanes whose magnitude's bits are below `t` (at most `0x7fff_ffff`) as zero of their
    /// sign, the others as they are. Integer operations on the bits, so that no subnormal reaches the floating-point
    /// units.
    unsafe fn flush_below(self, t: u32) -> Self;
    /// Subnormal lanes as zero of their sign, the others as they are: TensorFlow's
    /// flush-to-zero ([`crate::elementwise::flush_subnormal`] per lane).
    #[inline(always)]
    unsafe fn flush(self) -> Self {
        // SAFETY: forwarded.
        unsafe { self.flush_below(MIN_NORMAL_BITS) }
    }
    /// Whether some lane's magnitude is neither zero nor in `[lo, hi]` (as bits, `lo > 0`,
    /// `hi < 2^31`; NaN lies above every `hi` below it).
    unsafe fn any_outside(self, lo: u32, hi: u32) -> bool;
    /// Whether some lane's magnitude is neither zero nor at least `lo` (as bits, `lo > 0`).
    unsafe fn any_below(self, lo: u32) -> bool;

    /// Loads `LANES` indices (`u32`, below 2^24) as exact floats.
    unsafe fn load_index(p: *const u32) -> Self;
    /// Loads `LANES` window cells (`u32`; 0..=3 name a cell) as exact floats, any value
    /// above 3 as 4.0 (an unsigned minimum before the conversion).
    unsafe fn load_cells(p: *const u32) -> Self;
    /// Stores lanes holding exact integers in `[0, 2^24)` as `u32` indices.
    unsafe fn store_index(self, p: *mut u32);

    /// A four-entry table for [`F32x::pick4`]: lane `i < 4` is `p[o[i]]`; the other lanes
    /// are what the ISA's `pick4` needs (0, or the table repeated per 128-bit half).
    unsafe fn load4(p: *const f32, o: [usize; 4]) -> Self;
    /// A four-entry table of two pairs: lanes 0..4 are `a[0], a[1], b[0], b[1]`, the other
    /// lanes as for [`F32x::load4`] (its special case for adjacent pairs, in two loads).
    unsafe fn load2x2(a: *const f32, b: *const f32) -> Self;
    /// Table lookup: lane `i` is lane `q[i]` of `self`, for lanes of `q` holding 0.0, 1.0,
    /// 2.0 or 3.0 (one shuffle on every ISA).
    unsafe fn pick4(self, q: Self) -> Self;
    /// `q` (lanes 0.0..=3.0, as for [`F32x::pick4`]) in the shuffle's own index form, for
    /// [`F32x::pick4_prepared`]: an index computed once and used for many tables skips
    /// the conversion per lookup. Opaque lanes; by default `q` itself.
    #[inline(always)]
    unsafe fn pick4_index(q: Self) -> Self {
        q
    }
    /// [`F32x::pick4`] with an index from [`F32x::pick4_index`].
    #[inline(always)]
    unsafe fn pick4_prepared(self, idx: Self) -> Self {
        // SAFETY: the default index is the float form pick4 takes.
        unsafe { self.pick4(idx) }
    }

    /// The sums of the lanes of `a`, `b`, `c` and `d`, in that order (dot products finished
    /// four at a time). The order of the additions is fixed per ISA: a tree of shuffled
    /// adds where the ISA has one (AVX2, NEON), lane order by default (the portable type,
    /// and AVX-512, whose version has not run on a machine of its own yet).
    #[inline(always)]
    unsafe fn sum4(a: Self, b: Self, c: Self, d: Self) -> [f32; 4] {
        let mut sums = [0.0f32; 4];
        let mut buf = [0.0f32; 16];
        // (Plain loops: a closure would be compiled without the caller's target features.)
        for (s, v) in sums.iter_mut().zip([a, b, c, d]) {
            // SAFETY: buf holds LANES <= 16 floats; the caller enabled the ISA.
            unsafe { v.store(buf.as_mut_ptr()) };
            *s = buf[..Self::LANES].iter().sum();
        }
        sums
    }

    /// Loads `n <= LANES` floats, the other lanes 0.
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        let mut buf = [0.0f32; 16];
        // SAFETY: the caller guarantees n floats at p; buf holds LANES <= 16.
        unsafe {
            core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
            Self::load(buf.as_ptr())
        }
    }
    /// Stores the first `n <= LANES` lanes.
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        let mut buf = [0.0f32; 16];
        // SAFETY: buf holds LANES <= 16; the caller guarantees n floats at p.
        unsafe {
            self.store(buf.as_mut_ptr());
            core::ptr::copy_nonoverlapping(buf.as_ptr(), p, n);
        }
    }

    /// Transposes the `LANES x LANES` block at `src` (rows `ss` floats apart) into `dst`
    /// (rows `ds` floats apart): `dst[j·ds + i] = src[i·ss + j]`. A value at a time by
    /// default; in registers (`LANES` loads, `LANES` stores and shuffles) where the ISA has
    /// its own.
    ///
    /// # Safety
    /// `LANES` floats at each `src + i·ss` are readable and at each `dst + j·ds` writable
    /// (`i, j < LANES`), the two blocks disjoint; the ISA of `Self` is enabled.
    #[inline(always)]
    unsafe fn transpose_square(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
        for i in 0..Self::LANES {
            for j in 0..Self::LANES {
                // SAFETY: i, j < LANES (the contract).
                unsafe { *dst.add(j * ds + i) = *src.add(i * ss + j) };
            }
        }
    }
}

/// `n <= LANES` floats at `p` as a vector: a whole one when `n == LANES` (one plain load),
/// else the first `n` lanes and the others 0 (the tail of a run of channels).
///
/// # Safety
/// `n` floats are readable at `p`; the ISA of `V` is enabled.
#[inline(always)]
pub(crate) unsafe fn ld<V: F32x>(p: *const f32, n: usize) -> V {
    // SAFETY: forwarded.
    unsafe {
        if n == V::LANES {
            V::load(p)
        } else {
            V::load_partial(p, n)
        }
    }
}

/// Stores the first `n <= LANES` lanes of `v` at `p` (the whole vector when `n == LANES`).
///
/// # Safety
/// `n` floats are writable at `p`; the ISA of `V` is enabled.
#[inline(always)]
pub(crate) unsafe fn st<V: F32x>(v: V, p: *mut f32, n: usize) {
    // SAFETY: forwarded.
    unsafe {
        if n == V::LANES {
            v.store(p)
        } else {
            v.store_partial(p, n)
        }
    }
}

/// The bits of an f32 but its sign.
const ABS_BITS: u32 = 0x7fff_ffff;
/// The bits of the smallest normal f32: magnitudes below it are zero or subnormal.
pub(crate) const MIN_NORMAL_BITS: u32 = 0x0080_0000;

/// One lane of [`F32x::flush_below`]: `x` as zero of its sign if its magnitude's bits are
/// below `t`, else as it is.
#[inline(always)]
pub(crate) fn flush_lane_below(x: f32, t: u32) -> f32 {
    if x.to_bits() & ABS_BITS < t {
        f32::from_bits(x.to_bits() & !ABS_BITS)
    } else {
        x
    }
}

/// The portable fallback: 8 lanes of plain Rust, which LLVM vectorises for the baseline target.
#[derive(Clone, Copy)]
pub(crate) struct Portable([f32; 8]);

impl Portable {
    #[inline(always)]
    fn zip(self, b: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        let mut r = self.0;
        for (x, y) in r.iter_mut().zip(b.0) {
            *x = f(*x, y);
        }
        Portable(r)
    }
}

impl F32x for Portable {
    const LANES: usize = 8;
    const REGISTERS: usize = 16;
    #[inline(always)]
    unsafe fn load_index(p: *const u32) -> Self {
        // SAFETY: the caller guarantees 8 indices at p.
        Portable(unsafe { p.cast::<[u32; 8]>().read_unaligned() }.map(|i| i as f32))
    }
    #[inline(always)]
    unsafe fn load_cells(p: *const u32) -> Self {
        // SAFETY: the caller guarantees 8 cells at p.
        Portable(unsafe { p.cast::<[u32; 8]>().read_unaligned() }.map(|i| i.min(4) as f32))
    }
    #[inline(always)]
    unsafe fn store_index(self, p: *mut u32) {
        // SAFETY: the caller guarantees 8 writable indices at p.
        unsafe { p.cast::<[u32; 8]>().write_unaligned(self.0.map(|f| f as i32 as u32)) }
    }
    #[inline(always)]
    unsafe fn load4(p: *const f32, o: [usize; 4]) -> Self {
        let mut r = [0.0; 8];
        // SAFETY: the caller guarantees a readable float at each p + o[i].
        r[..4].iter_mut().zip(o).for_each(|(r, o)| *r = unsafe { *p.add(o) });
        Portable(r)
    }
    #[inline(always)]
    unsafe fn load2x2(a: *const f32, b: *const f32) -> Self {
        // SAFETY: the caller guarantees two readable floats at a and at b.
        unsafe { Portable([*a, *a.add(1), *b, *b.add(1), 0.0, 0.0, 0.0, 0.0]) }
    }
    #[inline(always)]
    unsafe fn pick4(self, q: Self) -> Self {
        Portable(q.0.map(|q| self.0[(q as usize) & 3]))
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        Portable([0.0; 8])
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        Portable([v; 8])
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 8 floats at p.
        Portable(unsafe { p.cast::<[f32; 8]>().read_unaligned() })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees 8 writable floats at p.
        unsafe { p.cast::<[f32; 8]>().write_unaligned(self.0) }
    }
    #[inline(always)]
    unsafe fn fma(self, b: Self, c: Self) -> Self {
        // Separate multiply and add: `mul_add` is a libm call without hardware FMA.
        let m = self.zip(b, |x, y| x * y);
        m.zip(c, |x, y| x + y)
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        self.zip(b, |x, y| x + y)
    }
    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        self.zip(b, |x, y| x - y)
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        self.zip(b, |x, y| x * y)
    }
    #[inline(always)]
    unsafe fn max(self, b: Self) -> Self {
        // Like the SIMD max instructions: the second operand when either is NaN.
        self.zip(b, |x, y| if x > y { x } else { y })
    }
    #[inline(always)]
    unsafe fn div(self, b: Self) -> Self {
        self.zip(b, |x, y| x / y)
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        self.zip(self, |x, _| x.sqrt())
    }
    #[inline(always)]
    unsafe fn min(self, b: Self) -> Self {
        self.zip(b, |x, y| if x < y { x } else { y })
    }
    #[inline(always)]
    unsafe fn round(self) -> Self {
        Portable(self.0.map(f32::round_ties_even))
    }
    #[inline(always)]
    unsafe fn pow2i(self) -> Self {
        Portable(self.0.map(|n| f32::from_bits(((n as i32 + 127) as u32) << 23)))
    }
    #[inline(always)]
    unsafe fn select_gt(self, other: Self, b: Self, a: Self) -> Self {
        let mut r = a.0;
        for (((r, x), o), b) in r.iter_mut().zip(self.0).zip(other.0).zip(b.0) {
            if x > o {
                *r = b;
            }
        }
        Portable(r)
    }
    #[inline(always)]
    unsafe fn select_eq(self, other: Self, b: Self, a: Self) -> Self {
        let mut r = a.0;
        for (((r, x), o), b) in r.iter_mut().zip(self.0).zip(other.0).zip(b.0) {
            if x == o {
                *r = b;
            }
        }
        Portable(r)
    }
    #[inline(always)]
    unsafe fn flush_below(self, t: u32) -> Self {
        Portable(self.0.map(|x| flush_lane_below(x, t)))
    }
    #[inline(always)]
    unsafe fn any_outside(self, lo: u32, hi: u32) -> bool {
        self.0.iter().any(|x| {
            let a = x.to_bits() & ABS_BITS;
            a != 0 && (a < lo || a > hi)
        })
    }
    #[inline(always)]
    unsafe fn any_below(self, lo: u32) -> bool {
        self.0.iter().any(|x| {
            let a = x.to_bits() & ABS_BITS;
            a != 0 && a < lo
        })
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::F32x;
    use core::arch::x86_64::*;

    /// AVX2 + FMA: 8 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx2(__m256);

    /// AVX-512F: 16 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512(__m512);

    impl F32x for Avx2 {
        const LANES: usize = 8;
        const REGISTERS: usize = 16;
        #[inline(always)]
        unsafe fn load_index(p: *const u32) -> Self {
            // Indices below 2^24 are non-negative as i32 and exact as f32.
            // SAFETY: 8 readable u32 at p (trait contract); AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_cvtepi32_ps(_mm256_loadu_si256(p.cast()))) }
        }
        #[inline(always)]
        unsafe fn load_cells(p: *const u32) -> Self {
            // SAFETY: 8 readable u32 at p (trait contract); AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_cvtepi32_ps(_mm256_min_epu32(_mm256_loadu_si256(p.cast()), _mm256_set1_epi32(4)))) }
        }
        #[inline(always)]
        unsafe fn store_index(self, p: *mut u32) {
            // SAFETY: 8 writable u32 at p (trait contract); AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { _mm256_storeu_si256(p.cast(), _mm256_cvttps_epi32(self.0)) }
        }
        // The table is repeated in both 128-bit halves, so `pick4` is the in-lane `vpermilps`
        // rather than the lane-crossing `vpermps`, and the tables come from broadcast loads
        // and blends rather than inserts: the fused backward-filter on cifar_conv1 (AVX2,
        // Zen 3) went from 0.25-0.27 to 0.19-0.21 ms with this alone.
        #[inline(always)]
        unsafe fn load4(p: *const f32, o: [usize; 4]) -> Self {
            // SAFETY: a readable float at each p + o[i] (trait contract); AVX2+FMA enabled by the caller's #[target_feature].
            unsafe {
                let c = o.map(|o| _mm256_broadcast_ss(&*p.add(o)));
                let lo = _mm256_blend_ps::<0b0010_0010>(c[0], c[1]);
                let hi = _mm256_blend_ps::<0b1000_1000>(c[2], c[3]);
                Avx2(_mm256_blend_ps::<0b1100_1100>(lo, hi))
            }
        }
        #[inline(always)]
        unsafe fn load2x2(a: *const f32, b: *const f32) -> Self {
            // SAFETY: two readable floats at a and at b (trait contract); AVX2+FMA enabled by the caller's #[target_feature].
            unsafe {
                // Each pair as one (possibly unaligned) 8-byte value broadcast to all four.
                let pa = _mm256_set1_pd(a.cast::<f64>().read_unaligned());
                let pb = _mm256_set1_pd(b.cast::<f64>().read_unaligned());
                Avx2(_mm256_blend_ps::<0b1100_1100>(_mm256_castpd_ps(pa), _mm256_castpd_ps(pb)))
            }
        }
        #[inline(always)]
        unsafe fn pick4(self, q: Self) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_permutevar_ps(self.0, _mm256_cvttps_epi32(q.0))) }
        }
        #[inline(always)]
        unsafe fn pick4_index(q: Self) -> Self {
            // The lane numbers as 32-bit integers, carried in a float register.
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_castsi256_ps(_mm256_cvttps_epi32(q.0))) }
        }
        #[inline(always)]
        unsafe fn pick4_prepared(self, idx: Self) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_permutevar_ps(self.0, _mm256_castps_si256(idx.0))) }
        }
        #[inline(always)]
        unsafe fn transpose_square(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
            // SAFETY: 8 readable floats at each src + i·ss and 8 writable at each dst + j·ds
            // (trait contract); AVX2+FMA enabled by the caller's #[target_feature].
            unsafe {
                let mut r = [_mm256_setzero_ps(); 8];
                for (i, r) in r.iter_mut().enumerate() {
                    *r = _mm256_loadu_ps(src.add(i * ss));
                }
                let [r0, r1, r2, r3, r4, r5, r6, r7] = r;
                // Pairs of rows interleaved, then pairs of pairs: each 128-bit half of `sK`
                // holds column K (low half) or K + 4 (high half) of four rows.
                let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
                let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
                let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
                let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
                let (s0, s1) = (_mm256_shuffle_ps::<0x44>(t0, t2), _mm256_shuffle_ps::<0xEE>(t0, t2));
                let (s2, s3) = (_mm256_shuffle_ps::<0x44>(t1, t3), _mm256_shuffle_ps::<0xEE>(t1, t3));
                let (s4, s5) = (_mm256_shuffle_ps::<0x44>(t4, t6), _mm256_shuffle_ps::<0xEE>(t4, t6));
                let (s6, s7) = (_mm256_shuffle_ps::<0x44>(t5, t7), _mm256_shuffle_ps::<0xEE>(t5, t7));
                let columns = [
                    _mm256_permute2f128_ps::<0x20>(s0, s4),
                    _mm256_permute2f128_ps::<0x20>(s1, s5),
                    _mm256_permute2f128_ps::<0x20>(s2, s6),
                    _mm256_permute2f128_ps::<0x20>(s3, s7),
                    _mm256_permute2f128_ps::<0x31>(s0, s4),
                    _mm256_permute2f128_ps::<0x31>(s1, s5),
                    _mm256_permute2f128_ps::<0x31>(s2, s6),
                    _mm256_permute2f128_ps::<0x31>(s3, s7),
                ];
                for (j, c) in columns.iter().enumerate() {
                    _mm256_storeu_ps(dst.add(j * ds), *c);
                }
            }
        }
        #[inline(always)]
        unsafe fn sum4(a: Self, b: Self, c: Self, d: Self) -> [f32; 4] {
            // Two rounds of pairwise adds within each 128-bit half leave each vector's
            // half-sums side by side; the halves are then added. Five shuffles and adds
            // for four sums, against a store and seven scalar adds for each.
            // SAFETY: registers and a local array only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe {
                let ab = _mm256_hadd_ps(a.0, b.0); // a01 a23 b01 b23 | a45 a67 b45 b67
                let cd = _mm256_hadd_ps(c.0, d.0);
                let abcd = _mm256_hadd_ps(ab, cd); // a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7
                let s = _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps::<1>(abcd));
                let mut sums = [0.0f32; 4];
                _mm_storeu_ps(sums.as_mut_ptr(), s);
                sums
            }
        }
        #[inline(always)]
        unsafe fn zero() -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_setzero_ps()) }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_set1_ps(v)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: 8 readable floats at p (trait contract); AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_loadu_ps(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: 8 writable floats at p (trait contract); AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn fma(self, b: Self, c: Self) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_fmadd_ps(self.0, b.0, c.0)) }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_add_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn sub(self, b: Self) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_sub_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_mul_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn max(self, b: Self) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_max_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn div(self, b: Self) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_div_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn sqrt(self) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_sqrt_ps(self.0)) }
        }
        #[inline(always)]
        unsafe fn min(self, b: Self) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_min_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn round(self) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0)) }
        }
        #[inline(always)]
        unsafe fn pow2i(self) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe {
                let e = _mm256_add_epi32(_mm256_cvtps_epi32(self.0), _mm256_set1_epi32(127));
                Avx2(_mm256_castsi256_ps(_mm256_slli_epi32::<23>(e)))
            }
        }
        #[inline(always)]
        unsafe fn select_gt(self, other: Self, b: Self, a: Self) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_blendv_ps(a.0, b.0, _mm256_cmp_ps::<_CMP_GT_OQ>(self.0, other.0))) }
        }
        #[inline(always)]
        unsafe fn select_eq(self, other: Self, b: Self, a: Self) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe { Avx2(_mm256_blendv_ps(a.0, b.0, _mm256_cmp_ps::<_CMP_EQ_OQ>(self.0, other.0))) }
        }
        #[inline(always)]
        unsafe fn flush_below(self, t: u32) -> Self {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe {
                let (bits, abs) = (_mm256_castps_si256(self.0), _mm256_set1_epi32(super::ABS_BITS as i32));
                // Magnitudes and the thresholds are below 2^31, so the signed compare is the
                // unsigned one.
                let tiny = _mm256_cmpgt_epi32(_mm256_set1_epi32(t as i32), _mm256_and_si256(bits, abs));
                Avx2(_mm256_castsi256_ps(_mm256_andnot_si256(_mm256_and_si256(tiny, abs), bits)))
            }
        }
        #[inline(always)]
        unsafe fn any_outside(self, lo: u32, hi: u32) -> bool {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe {
                let mag = _mm256_and_si256(_mm256_castps_si256(self.0), _mm256_set1_epi32(super::ABS_BITS as i32));
                // `mag - 1` as unsigned, biased by 2^31 for the signed compare: `mag + 2^31 -
                // 1` wraps zero to the top, so one compare finds (0, lo).
                let biased = _mm256_add_epi32(mag, _mm256_set1_epi32(i32::MAX));
                let small = _mm256_cmpgt_epi32(_mm256_set1_epi32(((lo - 1) ^ 0x8000_0000) as i32), biased);
                let big = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(hi as i32));
                _mm256_testz_si256(_mm256_or_si256(small, big), _mm256_set1_epi32(-1)) == 0
            }
        }
        #[inline(always)]
        unsafe fn any_below(self, lo: u32) -> bool {
            // SAFETY: registers only; AVX2+FMA enabled by the caller's #[target_feature].
            unsafe {
                let mag = _mm256_and_si256(_mm256_castps_si256(self.0), _mm256_set1_epi32(super::ABS_BITS as i32));
                // As in `any_outside`.
                let biased = _mm256_add_epi32(mag, _mm256_set1_epi32(i32::MAX));
                let small = _mm256_cmpgt_epi32(_mm256_set1_epi32(((lo - 1) ^ 0x8000_0000) as i32), biased);
                _mm256_testz_si256(small, small) == 0
            }
        }
    }

    impl F32x for Avx512 {
        const LANES: usize = 16;
        const REGISTERS: usize = 32;
        #[inline(always)]
        unsafe fn load_index(p: *const u32) -> Self {
            // SAFETY: 16 readable u32 at p (trait contract); AVX-512F enabled by the caller's #[target_feature].
            unsafe { Avx512(_mm512_cvtepi32_ps(_mm512_loadu_si512(p.cast()))) }
        }
        #[inline(always)]
        unsafe fn load_cells(p: *const u32) -> Self {
            // SAFETY: 16 readable u32 at p (trait contract); AVX-512F enabled by the caller's #[target_feature].
            unsafe { Avx512(_mm512_cvtepi32_ps(_mm512_min_epu32(_mm512_loadu_si512(p.cast()), _mm512_set1_epi32(4)))) }
        }
        #[inline(always)]
        unsafe fn store_index(self, p: *mut u32) {
            // SAFETY: 16 writable u32 at p (trait contract); AVX-512F enabled by the caller's #[target_feature].
            unsafe { _mm512_storeu_si512(p.cast(), _mm512_cvttps_epi32(self.0)) }
        }
        #[inline(always)]
        unsafe fn load4(p: *const f32, o: [usize; 4]) -> Self {
            // SAFETY: a readable float at each p + o[i] (trait contract); AVX-512F enabled by the caller's #[target_feature].
            unsafe {
                let t = _mm_setr_ps(*p.add(o[0]), *p.add(o[1]), *p.add(o[2]), *p.add(o[3]));
                Avx512(_mm512_zextps128_ps512(t))
            }
        }
        #[inline(always)]
        unsafe fn load2x2(a: *const f32, b: *const f32) -> Self {
            // SAFETY: two readable floats at a and at b (trait contract); AVX-512F enabled by the caller's #[target_feature].
            unsafe {
                let pairs = _mm_loadh_pd(_mm_load_sd(a.cast()), b.cast());
                Avx512(_mm512_zextps128_ps512(_mm_castpd_ps(pairs)))
            }
        }
        #[inline(always)]
        unsafe fn pick4(self, q: Self) -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe { Avx512(_mm512_permutexvar_ps(_mm512_cvttps_epi32(q.0), self.0)) }
        }
        #[inline(always)]
        unsafe fn zero() -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe { Avx512(_mm512_setzero_ps()) }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe { Avx512(_mm512_set1_ps(v)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: 16 readable floats at p (trait contract); AVX-512F enabled by the caller's #[target_feature].
            unsafe { Avx512(_mm512_loadu_ps(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: 16 writable floats at p (trait contract); AVX-512F enabled by the caller's #[target_feature].
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn fma(self, b: Self, c: Self) -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe { Avx512(_mm512_fmadd_ps(self.0, b.0, c.0)) }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe { Avx512(_mm512_add_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn sub(self, b: Self) -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe { Avx512(_mm512_sub_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe { Avx512(_mm512_mul_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn max(self, b: Self) -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe { Avx512(_mm512_max_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn div(self, b: Self) -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe { Avx512(_mm512_div_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn sqrt(self) -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe { Avx512(_mm512_sqrt_ps(self.0)) }
        }
        #[inline(always)]
        unsafe fn min(self, b: Self) -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe { Avx512(_mm512_min_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn round(self) -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe { Avx512(_mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0)) }
        }
        #[inline(always)]
        unsafe fn pow2i(self) -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe {
                let e = _mm512_add_epi32(_mm512_cvtps_epi32(self.0), _mm512_set1_epi32(127));
                Avx512(_mm512_castsi512_ps(_mm512_slli_epi32::<23>(e)))
            }
        }
        #[inline(always)]
        unsafe fn transpose_square(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
            // SAFETY: 16 readable floats at each src + i·ss and 16 writable at each dst +
            // j·ds (trait contract); AVX-512F enabled by the caller's #[target_feature].
            unsafe {
                let mut r = [_mm512_setzero_ps(); 16];
                for (i, r) in r.iter_mut().enumerate() {
                    *r = _mm512_loadu_ps(src.add(i * ss));
                }
                // Within each 128-bit lane, as AVX2's 8x8: after the two steps, lane L of
                // s[4g + m] holds column 4L + m of rows 4g..4g + 4.
                let mut t = [_mm512_setzero_ps(); 16];
                for p in 0..8 {
                    t[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
                    t[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
                }
                let mut s = [_mm512_setzero_ps(); 16];
                for g in 0..4 {
                    let (a, b, c, d) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
                    s[4 * g] = _mm512_shuffle_ps::<0x44>(a, c);
                    s[4 * g + 1] = _mm512_shuffle_ps::<0xEE>(a, c);
                    s[4 * g + 2] = _mm512_shuffle_ps::<0x44>(b, d);
                    s[4 * g + 3] = _mm512_shuffle_ps::<0xEE>(b, d);
                }
                // Output row 4L + m is lane L of s[m], s[4 + m], s[8 + m], s[12 + m]: a 4x4
                // transpose of 128-bit lanes, in two steps of whole-lane shuffles.
                for m in 0..4 {
                    let u0 = _mm512_shuffle_f32x4::<0x44>(s[m], s[4 + m]);
                    let u1 = _mm512_shuffle_f32x4::<0xEE>(s[m], s[4 + m]);
                    let u2 = _mm512_shuffle_f32x4::<0x44>(s[8 + m], s[12 + m]);
                    let u3 = _mm512_shuffle_f32x4::<0xEE>(s[8 + m], s[12 + m]);
                    _mm512_storeu_ps(dst.add(m * ds), _mm512_shuffle_f32x4::<0x88>(u0, u2));
                    _mm512_storeu_ps(dst.add((4 + m) * ds), _mm512_shuffle_f32x4::<0xDD>(u0, u2));
                    _mm512_storeu_ps(dst.add((8 + m) * ds), _mm512_shuffle_f32x4::<0x88>(u1, u3));
                    _mm512_storeu_ps(dst.add((12 + m) * ds), _mm512_shuffle_f32x4::<0xDD>(u1, u3));
                }
            }
        }
        #[inline(always)]
        unsafe fn select_gt(self, other: Self, b: Self, a: Self) -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe {
                let m = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(self.0, other.0);
                Avx512(_mm512_mask_blend_ps(m, a.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn select_eq(self, other: Self, b: Self, a: Self) -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe {
                let m = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(self.0, other.0);
                Avx512(_mm512_mask_blend_ps(m, a.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn any_outside(self, lo: u32, hi: u32) -> bool {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe {
                let mag = _mm512_and_si512(_mm512_castps_si512(self.0), _mm512_set1_epi32(super::ABS_BITS as i32));
                // `mag - 1` wraps zero to the top, so one unsigned compare finds (0, lo).
                let one = _mm512_set1_epi32(1);
                let small = _mm512_cmplt_epu32_mask(_mm512_sub_epi32(mag, one), _mm512_set1_epi32((lo - 1) as i32));
                let big = _mm512_cmpgt_epu32_mask(mag, _mm512_set1_epi32(hi as i32));
                (small | big) != 0
            }
        }
        #[inline(always)]
        unsafe fn any_below(self, lo: u32) -> bool {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe {
                let mag = _mm512_and_si512(_mm512_castps_si512(self.0), _mm512_set1_epi32(super::ABS_BITS as i32));
                // As in `any_outside`.
                let one = _mm512_set1_epi32(1);
                _mm512_cmplt_epu32_mask(_mm512_sub_epi32(mag, one), _mm512_set1_epi32((lo - 1) as i32)) != 0
            }
        }
        #[inline(always)]
        unsafe fn flush_below(self, t: u32) -> Self {
            // SAFETY: registers only; AVX-512F enabled by the caller's #[target_feature].
            unsafe {
                let bits = _mm512_castps_si512(self.0);
                let mag = _mm512_and_si512(bits, _mm512_set1_epi32(super::ABS_BITS as i32));
                let tiny = _mm512_cmplt_epu32_mask(mag, _mm512_set1_epi32(t as i32));
                let sign = _mm512_set1_epi32(!super::ABS_BITS as i32);
                Avx512(_mm512_castsi512_ps(_mm512_mask_and_epi32(bits, tiny, bits, sign)))
            }
        }
    }
}
#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::F32x;
    use core::arch::aarch64::*;

    /// NEON: 4 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct Neon(float32x4_t);

    impl F32x for Neon {
        const LANES: usize = 4;
        const REGISTERS: usize = 32;
        #[inline(always)]
        unsafe fn load_index(p: *const u32) -> Self {
            // SAFETY: 4 readable u32 at p (trait contract); NEON is always present on AArch64.
            unsafe { Neon(vcvtq_f32_u32(vld1q_u32(p))) }
        }
        #[inline(always)]
        unsafe fn load_cells(p: *const u32) -> Self {
            // SAFETY: 4 readable u32 at p (trait contract); NEON is always present on AArch64.
            unsafe { Neon(vcvtq_f32_u32(vminq_u32(vld1q_u32(p), vdupq_n_u32(4)))) }
        }
        #[inline(always)]
        unsafe fn store_index(self, p: *mut u32) {
            // SAFETY: 4 writable u32 at p (trait contract); NEON is always present on AArch64.
            unsafe { vst1q_u32(p, vcvtq_u32_f32(self.0)) }
        }
        #[inline(always)]
        unsafe fn load4(p: *const f32, o: [usize; 4]) -> Self {
            // SAFETY: a readable float at each p + o[i] (trait contract); NEON is always present on AArch64.
            unsafe {
                let t = [*p.add(o[0]), *p.add(o[1]), *p.add(o[2]), *p.add(o[3])];
                Neon(vld1q_f32(t.as_ptr()))
            }
        }
        #[inline(always)]
        unsafe fn load2x2(a: *const f32, b: *const f32) -> Self {
            // SAFETY: two readable floats at a and at b (trait contract); NEON is always present on AArch64.
            unsafe { Neon(vcombine_f32(vld1_f32(a), vld1_f32(b))) }
        }
        #[inline(always)]
        unsafe fn pick4(self, q: Self) -> Self {
            // Byte indices 4q..4q+3 of each lane into the table's 16 bytes.
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe {
                let lane = vcvtq_u32_f32(q.0);
                let bytes = vmlaq_u32(vdupq_n_u32(0x0302_0100), lane, vdupq_n_u32(0x0404_0404));
                Neon(vreinterpretq_f32_u8(vqtbl1q_u8(vreinterpretq_u8_f32(self.0), vreinterpretq_u8_u32(bytes))))
            }
        }
        #[inline(always)]
        unsafe fn transpose_square(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
            // SAFETY: 4 readable floats at each src + i·ss and 4 writable at each dst + j·ds
            // (trait contract); NEON is always present on AArch64.
            unsafe {
                let (r0, r1) = (vld1q_f32(src), vld1q_f32(src.add(ss)));
                let (r2, r3) = (vld1q_f32(src.add(2 * ss)), vld1q_f32(src.add(3 * ss)));
                // Pairs of rows interleaved (columns 0 and 2, 1 and 3), then 64-bit halves.
                let (t0, t1) = (vreinterpretq_f64_f32(vtrn1q_f32(r0, r1)), vreinterpretq_f64_f32(vtrn2q_f32(r0, r1)));
                let (t2, t3) = (vreinterpretq_f64_f32(vtrn1q_f32(r2, r3)), vreinterpretq_f64_f32(vtrn2q_f32(r2, r3)));
                vst1q_f32(dst, vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)));
                vst1q_f32(dst.add(ds), vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)));
                vst1q_f32(dst.add(2 * ds), vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)));
                vst1q_f32(dst.add(3 * ds), vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)));
            }
        }
        #[inline(always)]
        unsafe fn sum4(a: Self, b: Self, c: Self, d: Self) -> [f32; 4] {
            // Pairwise adds: a01 a23 b01 b23, c01 c23 d01 d23, then a b c d.
            // SAFETY: registers and a local array only; NEON is always present on AArch64.
            unsafe {
                let s = vpaddq_f32(vpaddq_f32(a.0, b.0), vpaddq_f32(c.0, d.0));
                let mut sums = [0.0f32; 4];
                vst1q_f32(sums.as_mut_ptr(), s);
                sums
            }
        }
        #[inline(always)]
        unsafe fn zero() -> Self {
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe { Neon(vdupq_n_f32(0.0)) }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe { Neon(vdupq_n_f32(v)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: 4 readable floats at p (trait contract); NEON is always present on AArch64.
            unsafe { Neon(vld1q_f32(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: 4 writable floats at p (trait contract); NEON is always present on AArch64.
            unsafe { vst1q_f32(p, self.0) }
        }
        #[inline(always)]
        unsafe fn fma(self, b: Self, c: Self) -> Self {
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe { Neon(vfmaq_f32(c.0, self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe { Neon(vaddq_f32(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn sub(self, b: Self) -> Self {
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe { Neon(vsubq_f32(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe { Neon(vmulq_f32(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn max(self, b: Self) -> Self {
            // Not vmaxq (NaN-propagating): the other ISAs return the second operand on NaN.
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe { Neon(vbslq_f32(vcgtq_f32(self.0, b.0), self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn div(self, b: Self) -> Self {
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe { Neon(vdivq_f32(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn sqrt(self) -> Self {
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe { Neon(vsqrtq_f32(self.0)) }
        }
        #[inline(always)]
        unsafe fn min(self, b: Self) -> Self {
            // As `max`: the second operand on NaN.
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe { Neon(vbslq_f32(vcltq_f32(self.0, b.0), self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn round(self) -> Self {
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe { Neon(vrndnq_f32(self.0)) }
        }
        #[inline(always)]
        unsafe fn pow2i(self) -> Self {
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe {
                let e = vaddq_s32(vcvtnq_s32_f32(self.0), vdupq_n_s32(127));
                Neon(vreinterpretq_f32_s32(vshlq_n_s32::<23>(e)))
            }
        }
        #[inline(always)]
        unsafe fn select_gt(self, other: Self, b: Self, a: Self) -> Self {
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe { Neon(vbslq_f32(vcgtq_f32(self.0, other.0), b.0, a.0)) }
        }
        #[inline(always)]
        unsafe fn select_eq(self, other: Self, b: Self, a: Self) -> Self {
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe { Neon(vbslq_f32(vceqq_f32(self.0, other.0), b.0, a.0)) }
        }
        #[inline(always)]
        unsafe fn flush_below(self, t: u32) -> Self {
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe {
                let (bits, abs) = (vreinterpretq_u32_f32(self.0), vdupq_n_u32(super::ABS_BITS));
                let tiny = vcltq_u32(vandq_u32(bits, abs), vdupq_n_u32(t));
                Neon(vreinterpretq_f32_u32(vbicq_u32(bits, vandq_u32(tiny, abs))))
            }
        }
        #[inline(always)]
        unsafe fn any_outside(self, lo: u32, hi: u32) -> bool {
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe {
                let mag = vandq_u32(vreinterpretq_u32_f32(self.0), vdupq_n_u32(super::ABS_BITS));
                // `mag - 1` wraps zero to the top, so one unsigned compare finds (0, lo).
                let small = vcltq_u32(vsubq_u32(mag, vdupq_n_u32(1)), vdupq_n_u32(lo - 1));
                let big = vcgtq_u32(mag, vdupq_n_u32(hi));
                vmaxvq_u32(vorrq_u32(small, big)) != 0
            }
        }
        #[inline(always)]
        unsafe fn any_below(self, lo: u32) -> bool {
            // SAFETY: registers only; NEON is always present on AArch64.
            unsafe {
                let mag = vandq_u32(vreinterpretq_u32_f32(self.0), vdupq_n_u32(super::ABS_BITS));
                // As in `any_outside`.
                vmaxvq_u32(vcltq_u32(vsubq_u32(mag, vdupq_n_u32(1)), vdupq_n_u32(lo - 1))) != 0
            }
        }
    }
}
#[cfg(target_arch = "aarch64")]
pub(crate) use arm::Neon;

/// A cache line of stack that [`align_frame`] asks for.
#[cfg(target_arch = "x86_64")]
#[repr(C, align(64))]
pub(crate) struct CacheLine(#[allow(dead_code)] [u8; 64]);

/// Makes the calling function's stack frame start on a cache line, so the vectors LLVM
/// spills there (32-byte ymm, 64-byte zmm slots at offsets it aligns within the frame)
/// never straddle two lines.
///
/// Without it a `#[target_feature]` kernel keeps the caller's 16-byte alignment, and
/// whether its spill slots straddle lines depends on how deep it was called. The
/// one-channel fused forward ran 1.4-1.7x slower per image inside the seed network than in
/// its layer bench (the same code; `perf annotate` put 60% of its samples on the reloads of two spill
/// slots), and aligning its frame alone took the network's step from 1.15-1.35 to
/// 0.92-0.97 ms on a Zen 3. The likely mechanism: a store that straddles two lines does not
/// forward to the load that reads it back, which waits until the store reaches the cache.
///
/// An uninitialised 64-byte-aligned local whose address escapes costs no stores; LLVM
/// realigns the frame (`and $-64, %rsp`) to place it.
#[cfg(target_arch = "x86_64")]
macro_rules! align_frame {
    () => {
        let line = core::mem::MaybeUninit::<$crate::arch::simd::CacheLine>::uninit();
        core::hint::black_box(&line);
    };
}
#[cfg(target_arch = "x86_64")]
pub(crate) use align_frame;

/// Defines `unsafe fn $name(isa, args...)` that runs the generic body `$body::<V, ...>` with
/// the vector type of `isa`, inside a per-ISA function compiled with that ISA's target
/// features (a `#[target_feature]` wrapper around an `#[inline(always)]` body, its frame
/// aligned by [`align_frame`]).
///
/// The generated function is `unsafe`: the caller must have checked that `isa` is available
/// ([`crate::Isa::check`]) and must meet the body's own contract.
macro_rules! simd_dispatch {
    ($(#[$m:meta])* $vis:vis unsafe fn $name:ident $(<$(const $cg:ident: $ct:ty),*>)? ($($a:ident: $t:ty),* $(,)?)
        => $body:ident) => {
        $(#[$m])*
        $vis unsafe fn $name $(<$(const $cg: $ct),*>)? (isa: $crate::arch::Isa, $($a: $t),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn avx512 $(<$(const $cg: $ct),*>)? ($($a: $t),*) {
                $crate::arch::simd::align_frame!();
                // SAFETY: forwarded contract; AVX-512F is enabled for this function.
                unsafe { $body::<$crate::arch::simd::Avx512 $($(, $cg)*)?>($($a),*) }
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2 $(<$(const $cg: $ct),*>)? ($($a: $t),*) {
                $crate::arch::simd::align_frame!();
                // SAFETY: forwarded contract; AVX2 and FMA are enabled for this function.
                unsafe { $body::<$crate::arch::simd::Avx2 $($(, $cg)*)?>($($a),*) }
            }
            // SAFETY: the caller checked `isa` against this CPU and meets the body's contract.
            unsafe {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    $crate::arch::Isa::Avx512 => avx512 $(::<$($cg),*>)? ($($a),*),
                    #[cfg(target_arch = "x86_64")]
                    $crate::arch::Isa::Avx2 => avx2 $(::<$($cg),*>)? ($($a),*),
                    #[cfg(target_arch = "aarch64")]
                    $crate::arch::Isa::Neon => $body::<$crate::arch::simd::Neon $($(, $cg)*)?>($($a),*),
                    _ => $body::<$crate::arch::simd::Portable $($(, $cg)*)?>($($a),*),
                }
            }
        }
    };
}
pub(crate) use simd_dispatch;

/// Lanes of the vector type [`simd_dispatch`] uses for `isa`.
pub(crate) fn lanes(isa: crate::arch::Isa) -> usize {
    match isa {
        crate::arch::Isa::Avx512 => 16,
        crate::arch::Isa::Neon => 4,
        _ => 8,
    }
}

/// Vector registers the kernels [`simd_dispatch`] picks for `isa` can keep live: 32 on
/// AVX-512 (zmm0-31) and NEON (v0-31), 16 on AVX2 and the portable path (ymm0-15, or the
/// baseline x86-64's xmm0-15 its plain arrays compile to). Tiles size their register
/// blocks from it.
pub(crate) fn vector_registers(isa: crate::arch::Isa) -> usize {
    match isa {
        crate::arch::Isa::Avx512 | crate::arch::Isa::Neon => 32,
        _ => 16,
    }
}
