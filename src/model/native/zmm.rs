//! AVX-512 builds of the hot kernels, written with intrinsics so that the accumulators are known to
//! stay in the 32 zmm registers: `OB` output channels x `NV` vectors of 16 frequency positions (or
//! 32 channels x 11 positions for the strided layers), each tap one load per vector and one
//! broadcast per channel or position. Every function here is `unsafe` for its `target_feature` and
//! for raw-pointer loops whose bounds are the `# Safety` sizes: the safe callers in
//! [`super::kernels`] check the CPU (`Isa::supported`) and the slice sizes (and the scratch lengths
//! [`super::kernels::Conv::scratch_len`] promises). Summation order per output is the portable
//! kernels' (bias, input channel, row, tap), but for the Winograd kernel and the CQT's tap-order sum.

use super::kernels::{Geom, MAX_SW, WINO_T};
use std::arch::x86_64::*;

/// The convolution of `scratch` (zero-padded, phase-split input) into `out`'s rows from `y_from`
/// on, ReLU fused if `relu`.
///
/// # Safety
/// The CPU has AVX-512F and FMA; `scratch` holds `g`'s planes with rows long enough for blocks of
/// `16 * NV` outputs; `out` holds `bias.len() * g.oh * g.ow` floats; `packed` is laid out for `OB`.
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn conv<const OB: usize, const NV: usize>(
    g: &Geom,
    scratch: &[f32],
    packed: &[f32],
    bias: &[f32],
    out: &mut [f32],
    y_from: usize,
    relu: bool,
) {
    let taps = g.c_in * g.kh * g.kw;
    let plane = g.hp * g.row;
    debug_assert!(scratch.len() >= g.c_in * g.sw * plane);
    debug_assert!(out.len() >= bias.len() * g.oh * g.ow);
    debug_assert!(packed.len() >= bias.len() * taps);
    let wb = 16 * NV;
    let s = scratch.as_ptr();
    // Taps of each stride phase, hoisted: a division per row of taps costs as much as the taps.
    let mut ntaps = [0usize; MAX_SW];
    for (p, n) in ntaps.iter_mut().enumerate().take(g.sw) {
        *n = (g.kw - p).div_ceil(g.sw);
    }
    let ntaps = &ntaps[..g.sw];
    for blk in 0..bias.len() / OB {
        let w = packed.as_ptr().add(blk * taps * OB);
        let b = bias.as_ptr().add(blk * OB);
        for y in y_from..g.oh {
            let mut x0 = 0;
            while x0 < g.ow {
                let src = s.add(y * g.row + x0);
                let dst = out.as_mut_ptr().add(((blk * OB) * g.oh + y) * g.ow + x0);
                let rem = g.ow - x0;
                let ostride = g.oh * g.ow;
                if rem >= wb {
                    block::<OB, NV>(g, ntaps, src, plane, w, b, dst, ostride, wb, relu);
                } else {
                    match rem.div_ceil(16) {
                        1 => block::<OB, 1>(g, ntaps, src, plane, w, b, dst, ostride, rem, relu),
                        2 => block::<OB, 2>(g, ntaps, src, plane, w, b, dst, ostride, rem, relu),
                        3 => block::<OB, 3>(g, ntaps, src, plane, w, b, dst, ostride, rem, relu),
                        _ => block::<OB, 4>(g, ntaps, src, plane, w, b, dst, ostride, rem, relu),
                    }
                }
                x0 += wb;
            }
        }
    }
}

/// One block: `OB` channels x `n` (<= 16 * NV) positions of one output row.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn block<const OB: usize, const NV: usize>(
    g: &Geom,
    ntaps: &[usize],
    src: *const f32,
    plane: usize,
    w: *const f32,
    bias: *const f32,
    dst: *mut f32,
    ostride: usize,
    n: usize,
    relu: bool,
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; OB];
    for (o, a) in acc.iter_mut().enumerate() {
        *a = [_mm512_set1_ps(*bias.add(o)); NV];
    }
    let mut w = w;
    for c in 0..g.c_in {
        for i in 0..g.kh {
            for (p, &ntap) in ntaps.iter().enumerate() {
                let base = src.add((c * g.sw + p) * plane + i * g.row);
                for off in 0..ntap {
                    let mut x = [_mm512_setzero_ps(); NV];
                    for (v, xv) in x.iter_mut().enumerate() {
                        *xv = _mm512_loadu_ps(base.add(off + 16 * v));
                    }
                    for (o, a) in acc.iter_mut().enumerate() {
                        let wo = _mm512_set1_ps(*w.add(o));
                        for v in 0..NV {
                            a[v] = _mm512_fmadd_ps(wo, x[v], a[v]);
                        }
                    }
                    w = w.add(OB);
                }
            }
        }
    }
    // One output channel per row, `ostride` apart.
    store_rows(&acc, dst, ostride, n, relu);
}

/// Filters the CQT bank holds, padded to whole vectors: 72 -> 80.
pub(super) const BANK_LANES: usize = 80;
/// Frames computed together by [`cqt_frames`].
const CQT_TB: usize = 5;

/// One octave of the CQT as a small matrix product: `out[t][k] = sum_n bank[k][n] * x[t * hop + n]`
/// for the `k < out_k` filters of `bank_t` (`[taps][BANK_LANES]`, zero beyond `out_k`), summed in tap
/// order. `CQT_TB` frames x 5 vectors of filters accumulate together; each tap is 5 loads of the
/// transposed bank and one broadcast sample per frame.
///
/// # Safety
/// The CPU has AVX-512F and FMA; `bank_t.len() == taps * BANK_LANES`;
/// `x.len() >= (frames - 1) * hop + taps`; `out.len() >= frames * out_k`; `64 < out_k <= 80`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn cqt_frames(bank_t: &[f32], taps: usize, x: &[f32], hop: usize, frames: usize, out: &mut [f32], out_k: usize) {
    debug_assert!(bank_t.len() == taps * BANK_LANES && out.len() >= frames * out_k && out_k > 64 && out_k <= BANK_LANES);
    debug_assert!(frames == 0 || x.len() >= (frames - 1) * hop + taps);
    let mut t = 0;
    while t + CQT_TB <= frames {
        cqt_block::<CQT_TB>(bank_t, taps, x.as_ptr().add(t * hop), hop, out.as_mut_ptr().add(t * out_k), out_k);
        t += CQT_TB;
    }
    while t < frames {
        cqt_block::<1>(bank_t, taps, x.as_ptr().add(t * hop), hop, out.as_mut_ptr().add(t * out_k), out_k);
        t += 1;
    }
}

#[inline(always)]
unsafe fn cqt_block<const TB: usize>(bank_t: &[f32], taps: usize, x: *const f32, hop: usize, out: *mut f32, out_k: usize) {
    const NV: usize = BANK_LANES / 16;
    let mut acc = [[_mm512_setzero_ps(); NV]; TB];
    let b = bank_t.as_ptr();
    for n in 0..taps {
        let mut w = [_mm512_setzero_ps(); NV];
        for (v, wv) in w.iter_mut().enumerate() {
            *wv = _mm512_loadu_ps(b.add(n * BANK_LANES + 16 * v));
        }
        for (f, a) in acc.iter_mut().enumerate() {
            let s = _mm512_set1_ps(*x.add(f * hop + n));
            for v in 0..NV {
                a[v] = _mm512_fmadd_ps(w[v], s, a[v]);
            }
        }
    }
    let last = ((1u32 << (out_k - 16 * (NV - 1))) - 1) as __mmask16;
    for (f, a) in acc.iter().enumerate() {
        let o = out.add(f * out_k);
        for (v, &r) in a.iter().enumerate().take(NV - 1) {
            _mm512_storeu_ps(o.add(16 * v), r);
        }
        _mm512_mask_storeu_ps(o.add(16 * (NV - 1)), last, a[NV - 1]);
    }
}

/// Output channels a block of [`conv_cv`] holds: two vectors.
pub(super) const CV_OB: usize = 32;
/// Output positions a block of [`conv_cv`] holds (88 = 8 x 11: the strided convolutions' width).
const CV_XB: usize = 11;

/// The convolution vectorised along output channels instead, for the strided layers (32 channels,
/// 88 positions): `CV_XB` positions x 32 channels accumulate together; each tap is two loads of
/// the packed weights (`[c_out / 32][c_in][kh][kw][32]`) and one broadcast input per position, so
/// the stride costs nothing. `scratch` is the zero-padded input, `[c_in][g.hp][g.row]`, not split
/// into phases. Summed in the graph's order (bias, input channel, row, column).
///
/// # Safety
/// The CPU has AVX-512F and FMA; `bias.len()` is a multiple of 32; `scratch` holds `c_in * hp * row`
/// floats with `row >= (ow - 1) * sw + kw`; `out` holds `bias.len() * oh * ow`; `packed` is laid out
/// as above.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn conv_cv(g: &Geom, scratch: &[f32], packed: &[f32], bias: &[f32], out: &mut [f32], relu: bool) {
    let taps = g.c_in * g.kh * g.kw;
    debug_assert!(bias.len().is_multiple_of(CV_OB) && scratch.len() >= g.c_in * g.hp * g.row);
    debug_assert!(out.len() >= bias.len() * g.oh * g.ow && packed.len() >= bias.len() * taps);
    debug_assert!(g.ow == 0 || g.row >= (g.ow - 1) * g.sw + g.kw);
    for blk in 0..bias.len() / CV_OB {
        let w = packed.as_ptr().add(blk * taps * CV_OB);
        let b = bias.as_ptr().add(blk * CV_OB);
        let o = out.as_mut_ptr().add(blk * CV_OB * g.oh * g.ow);
        for y in 0..g.oh {
            let mut x0 = 0;
            while x0 + CV_XB <= g.ow {
                cv_block::<CV_XB>(g, scratch.as_ptr(), w, b, o, y, x0, relu);
                x0 += CV_XB;
            }
            while x0 < g.ow {
                cv_block::<1>(g, scratch.as_ptr(), w, b, o, y, x0, relu);
                x0 += 1;
            }
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn cv_block<const XB: usize>(g: &Geom, s: *const f32, w: *const f32, bias: *const f32, out: *mut f32, y: usize, x0: usize, relu: bool) {
    let b0 = _mm512_loadu_ps(bias);
    let b1 = _mm512_loadu_ps(bias.add(16));
    let mut acc = [[b0, b1]; XB];
    let mut w = w;
    for c in 0..g.c_in {
        for i in 0..g.kh {
            let row = s.add((c * g.hp + y + i) * g.row + x0 * g.sw);
            for j in 0..g.kw {
                let w0 = _mm512_loadu_ps(w);
                let w1 = _mm512_loadu_ps(w.add(16));
                w = w.add(CV_OB);
                for (xb, a) in acc.iter_mut().enumerate() {
                    let v = _mm512_set1_ps(*row.add(xb * g.sw + j));
                    a[0] = _mm512_fmadd_ps(w0, v, a[0]);
                    a[1] = _mm512_fmadd_ps(w1, v, a[1]);
                }
            }
        }
    }
    // Positions x channels in registers; the planes want channels x positions.
    let mut t = [[0.0f32; CV_OB]; XB];
    let zero = _mm512_setzero_ps();
    for (a, r) in acc.iter().zip(t.iter_mut()) {
        let (a0, a1) = if relu { (_mm512_max_ps(a[0], zero), _mm512_max_ps(a[1], zero)) } else { (a[0], a[1]) };
        _mm512_storeu_ps(r.as_mut_ptr(), a0);
        _mm512_storeu_ps(r.as_mut_ptr().add(16), a1);
    }
    let plane = g.oh * g.ow;
    for ch in 0..CV_OB {
        let d = out.add(ch * plane + y * g.ow + x0);
        for (xb, r) in t.iter().enumerate() {
            *d.add(xb) = r[ch];
        }
    }
}

/// Output rows a block of [`conv_rows`] holds.
const ROWS_RB: usize = 4;

/// The one-output-channel convolution: `ROWS_RB` output rows x `16 * NV` positions accumulate
/// together, so each loaded input vector serves every output row it reaches (up to `ROWS_RB`
/// kernel rows) instead of one. Same scratch and packing as [`conv`] with `OB = 1`; each output is
/// still summed in the order bias, input channel, kernel row, phase, tap.
///
/// # Safety
/// As [`conv`] with `OB = 1` and `bias.len() == 1`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn conv_rows<const NV: usize>(g: &Geom, scratch: &[f32], packed: &[f32], bias: &[f32], out: &mut [f32], relu: bool) {
    let plane = g.hp * g.row;
    debug_assert!(bias.len() == 1 && scratch.len() >= g.c_in * g.sw * plane);
    debug_assert!(out.len() >= g.oh * g.ow && packed.len() >= g.c_in * g.kh * g.kw);
    let mut ntaps = [0usize; MAX_SW];
    let mut pstart = [0usize; MAX_SW];
    let mut start = 0;
    for p in 0..g.sw {
        ntaps[p] = (g.kw - p).div_ceil(g.sw);
        pstart[p] = start;
        start += ntaps[p];
    }
    let ph = Phases { ntaps: &ntaps[..g.sw], pstart: &pstart[..g.sw] };
    let wb = 16 * NV;
    let s = scratch.as_ptr();
    let w = packed.as_ptr();
    let b = *bias.get_unchecked(0);
    let mut y = 0;
    while y < g.oh {
        let full = y + ROWS_RB <= g.oh;
        let mut x0 = 0;
        while x0 < g.ow {
            let src = s.add(y * g.row + x0);
            let dst = out.as_mut_ptr().add(y * g.ow + x0);
            let n = wb.min(g.ow - x0);
            macro_rules! go {
                ($rb:expr) => {
                    match n.div_ceil(16) {
                        1 => rows_block::<$rb, 1>(g, &ph, src, plane, w, b, dst, n, relu),
                        2 => rows_block::<$rb, 2>(g, &ph, src, plane, w, b, dst, n, relu),
                        3 => rows_block::<$rb, 3>(g, &ph, src, plane, w, b, dst, n, relu),
                        _ => rows_block::<$rb, 4>(g, &ph, src, plane, w, b, dst, n, relu),
                    }
                };
            }
            if full {
                go!(ROWS_RB)
            } else {
                go!(1)
            }
            x0 += wb;
        }
        y += if full { ROWS_RB } else { 1 };
    }
}

struct Phases<'a> {
    ntaps: &'a [usize],
    pstart: &'a [usize],
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn rows_block<const RB: usize, const NV: usize>(
    g: &Geom,
    ph: &Phases,
    src: *const f32,
    plane: usize,
    w: *const f32,
    bias: f32,
    dst: *mut f32,
    n: usize,
    relu: bool,
) {
    let mut acc = [[_mm512_set1_ps(bias); NV]; RB];
    for c in 0..g.c_in {
        for d in 0..RB + g.kh - 1 {
            for (p, (&ntap, &pstart)) in ph.ntaps.iter().zip(ph.pstart).enumerate() {
                let base = src.add((c * g.sw + p) * plane + d * g.row);
                for off in 0..ntap {
                    let mut x = [_mm512_setzero_ps(); NV];
                    for (v, xv) in x.iter_mut().enumerate() {
                        *xv = _mm512_loadu_ps(base.add(off + 16 * v));
                    }
                    for (r, a) in acc.iter_mut().enumerate() {
                        // Output row r meets input row d through kernel row d - r.
                        if d >= r && d - r < g.kh {
                            let wv = _mm512_set1_ps(*w.add((c * g.kh + d - r) * g.kw + pstart + off));
                            for v in 0..NV {
                                a[v] = _mm512_fmadd_ps(wv, x[v], a[v]);
                            }
                        }
                    }
                }
            }
        }
    }
    store_rows(&acc, dst, g.ow, n, relu);
}

/// `ln(x)` of 16 positive normal floats (Cephes' `logf`: mantissa in [sqrt(1/2), sqrt(2)), a
/// degree-9 polynomial; within 2 ulp of libm over the CQT's range).
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' constants as published
unsafe fn ln16(x: __m512) -> __m512 {
    let one = _mm512_set1_ps(1.0);
    let mut e = _mm512_getexp_ps(x);
    let mut m = _mm512_getmant_ps::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_ZERO>(x);
    let big = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(m, _mm512_set1_ps(std::f32::consts::SQRT_2));
    m = _mm512_mask_mul_ps(m, big, m, _mm512_set1_ps(0.5));
    e = _mm512_mask_add_ps(e, big, e, one);
    let f = _mm512_sub_ps(m, one);
    let z = _mm512_mul_ps(f, f);
    let mut y = _mm512_set1_ps(7.037_683_6e-2);
    for c in [-1.151_461e-1, 1.167_699_9e-1, -1.242_014_1e-1, 1.424_932_3e-1, -1.666_805_8e-1, 2.000_071_4e-1, -2.499_999_4e-1, 3.333_333_1e-1] {
        y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(c));
    }
    y = _mm512_mul_ps(_mm512_mul_ps(y, f), z);
    y = _mm512_fmadd_ps(e, _mm512_set1_ps(-2.121_944_4e-4), y);
    y = _mm512_fmadd_ps(z, _mm512_set1_ps(-0.5), y);
    let r = _mm512_add_ps(f, y);
    _mm512_fmadd_ps(e, _mm512_set1_ps(0.693_359_4), r)
}

/// `exp(x)` of 16 floats (Cephes' `expf`, clamped to +-88; within 2 ulp of libm).
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' constants as published
unsafe fn exp16(x: __m512) -> __m512 {
    let x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-88.0)), _mm512_set1_ps(88.0));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)));
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
    let z = _mm512_mul_ps(r, r);
    let mut y = _mm512_set1_ps(1.987_569_1e-4);
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5.000_000_1e-1] {
        y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(c));
    }
    y = _mm512_fmadd_ps(y, z, _mm512_add_ps(r, _mm512_set1_ps(1.0)));
    _mm512_scalef_ps(y, n)
}

/// `xs[i] = ln(xs[i]) * a * b` (`xs` positive), returning the least result.
///
/// # Safety
/// The CPU has AVX-512F and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn scaled_ln(xs: &mut [f32], a: f32, b: f32) -> f32 {
    let (va, vb) = (_mm512_set1_ps(a), _mm512_set1_ps(b));
    let mut lo = _mm512_set1_ps(f32::INFINITY);
    let mut chunks = xs.chunks_exact_mut(16);
    for c in &mut chunks {
        let r = _mm512_mul_ps(_mm512_mul_ps(ln16(_mm512_loadu_ps(c.as_ptr())), va), vb);
        lo = _mm512_min_ps(lo, r);
        _mm512_storeu_ps(c.as_mut_ptr(), r);
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let k = ((1u32 << rest.len()) - 1) as __mmask16;
        let x = _mm512_mask_loadu_ps(_mm512_set1_ps(1.0), k, rest.as_ptr());
        let r = _mm512_mul_ps(_mm512_mul_ps(ln16(x), va), vb);
        lo = _mm512_mask_min_ps(lo, k, lo, r);
        _mm512_mask_storeu_ps(rest.as_mut_ptr(), k, r);
    }
    _mm512_reduce_min_ps(lo)
}

/// `xs[i] = 1 / (1 + exp(-xs[i]))`.
///
/// # Safety
/// The CPU has AVX-512F and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn sigmoid(xs: &mut [f32]) {
    let mut chunks = xs.chunks_exact_mut(16);
    for c in &mut chunks {
        _mm512_storeu_ps(c.as_mut_ptr(), sigmoid16(_mm512_loadu_ps(c.as_ptr())));
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let k = ((1u32 << rest.len()) - 1) as __mmask16;
        _mm512_mask_storeu_ps(rest.as_mut_ptr(), k, sigmoid16(_mm512_mask_loadu_ps(_mm512_setzero_ps(), k, rest.as_ptr())));
    }
}

#[inline(always)]
unsafe fn sigmoid16(x: __m512) -> __m512 {
    let one = _mm512_set1_ps(1.0);
    _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))))
}

/// The 3-row convolution (`kh == 3`, stride 1, 8k output channels) by Winograd's F(4,3) along
/// time: each 4 output rows are 6 one-row products instead of 12, over the input rows transformed
/// per 4 rows from the unpadded input `[c_in][h][w]` into `vbuf` (`[6][c_in][g.row]`, then a row
/// of zeros) and the weights transformed at load (`packed_u`,
/// `[c_out / 8][6][c_in][kw][8]`, see `Conv::with_isa`). Rows past the last whole 4 are left to
/// the caller. Each block of outputs is built up in `out` itself, the ReLU on the last product.
///
/// # Safety
/// As [`conv`] with `OB = 8`, `NV = 3`, `g.kh == 3`, `g.sw == 1`, the input unpadded (`ph`, `pw`
/// its padding); `vbuf.len() >= 6 * c_in * g.row + w`.
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn conv_wino(
    g: &Geom,
    h: usize,
    w: usize,
    ph: usize,
    pw: usize,
    input: &[f32],
    vbuf: &mut [f32],
    packed_u: &[f32],
    bias: &[f32],
    out: &mut [f32],
    relu: bool,
) {
    const NV: usize = 3;
    let (c_in, row) = (g.c_in, g.row);
    debug_assert!(g.kh == 3 && g.sw == 1 && bias.len().is_multiple_of(8) && input.len() >= c_in * h * w);
    debug_assert!(vbuf.len() >= WINO_T * c_in * row + w && row >= pw + w && g.oh + 2 == h + 2 * ph);
    debug_assert!(out.len() >= bias.len() * g.oh * g.ow && packed_u.len() >= bias.len() * WINO_T * c_in * g.kw);
    let ulen = WINO_T * c_in * g.kw * 8;
    let wb = 16 * NV;
    let vs = c_in * row;
    // The transformed rows' borders (columns outside pw..pw + w) stay the padding's zeros; one
    // more row of zeros stands for the input rows above and below the input.
    let (vbuf, zero) = vbuf[..WINO_T * vs + w].split_at_mut(WINO_T * vs);
    vbuf.fill(0.0);
    zero.fill(0.0);
    let zero: &[f32] = zero;
    for quad in 0..g.oh / 4 {
        let y = 4 * quad;
        for c in 0..c_in {
            // Padded rows y..y + 6 are input rows y - ph..y + 6 - ph.
            let x: [&[f32]; 6] = std::array::from_fn(|i| match (y + i).checked_sub(ph).filter(|&r| r < h) {
                Some(r) => &input[(c * h + r) * w..][..w],
                None => zero,
            });
            let (v0, v) = vbuf.split_at_mut(vs);
            let (v1, v) = v.split_at_mut(vs);
            let (v2, v) = v.split_at_mut(vs);
            let (v3, v) = v.split_at_mut(vs);
            let (v4, v5) = v.split_at_mut(vs);
            let o = c * row + pw;
            let (v0, v1, v2, v3, v4, v5) = (&mut v0[o..o + w], &mut v1[o..o + w], &mut v2[o..o + w], &mut v3[o..o + w], &mut v4[o..o + w], &mut v5[o..o + w]);
            for i in 0..w {
                let (x0, x1, x2, x3, x4, x5) = (x[0][i], x[1][i], x[2][i], x[3][i], x[4][i], x[5][i]);
                v0[i] = 4.0 * x0 - 5.0 * x2 + x4;
                v1[i] = -4.0 * x1 - 4.0 * x2 + x3 + x4;
                v2[i] = 4.0 * x1 - 4.0 * x2 - x3 + x4;
                v3[i] = -2.0 * x1 - x2 + 2.0 * x3 + x4;
                v4[i] = 2.0 * x1 - x2 - 2.0 * x3 + x4;
                v5[i] = 4.0 * x1 - 5.0 * x3 + x5;
            }
        }
        for blk in 0..bias.len() / 8 {
            let u = packed_u.as_ptr().add(blk * ulen);
            let b = bias.as_ptr().add(blk * 8);
            let mut x0 = 0;
            while x0 < g.ow {
                let dst = out.as_mut_ptr().add((blk * 8 * g.oh + y) * g.ow + x0);
                let n = wb.min(g.ow - x0);
                let src = vbuf.as_ptr().add(x0);
                match n.div_ceil(16) {
                    1 => wino_block::<1>(g, src, u, b, dst, n, relu),
                    2 => wino_block::<2>(g, src, u, b, dst, n, relu),
                    _ => wino_block::<NV>(g, src, u, b, dst, n, relu),
                }
                x0 += wb;
            }
        }
    }
}

/// One of the four products of [`conv_wino`]: `sum_c sum_j u[c][j][o] * v[c][x + j]`, 8 channels x
/// `16 * NV` positions.
#[inline(always)]
unsafe fn wino_pass<const NV: usize>(c_in: usize, kw: usize, row: usize, v: *const f32, u: *const f32) -> [[__m512; NV]; 8] {
    let mut acc = [[_mm512_setzero_ps(); NV]; 8];
    let mut w = u;
    for c in 0..c_in {
        let base = v.add(c * row);
        for off in 0..kw {
            let mut x = [_mm512_setzero_ps(); NV];
            for (k, xv) in x.iter_mut().enumerate() {
                *xv = _mm512_loadu_ps(base.add(off + 16 * k));
            }
            for (o, a) in acc.iter_mut().enumerate() {
                let wo = _mm512_set1_ps(*w.add(o));
                for k in 0..NV {
                    a[k] = _mm512_fmadd_ps(wo, x[k], a[k]);
                }
            }
            w = w.add(8);
        }
    }
    acc
}

#[inline(always)]
unsafe fn wino_block<const NV: usize>(g: &Geom, v: *const f32, u: *const f32, bias: *const f32, dst: *mut f32, n: usize, relu: bool) {
    let (c_in, kw, row) = (g.c_in, g.kw, g.row);
    let (vstride, ustride) = (c_in * row, c_in * kw * 8);
    let ostride = g.oh * g.ow;
    let mask = |k: usize| -> __mmask16 {
        let left = n - 16 * k;
        if left >= 16 {
            0xffff
        } else {
            ((1u32 << left) - 1) as __mmask16
        }
    };
    // Output row r of the tile takes product t times COEF[t][r] (A^T of F(4,3)).
    const COEF: [[f32; 4]; WINO_T] =
        [[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0], [1.0, 2.0, 4.0, 8.0], [1.0, -2.0, 4.0, -8.0], [0.0, 0.0, 0.0, 1.0]];
    // The order the products are made in: every row is started (bias + m) before it is added to.
    const ORDER: [usize; WINO_T] = [0, 5, 1, 2, 3, 4];
    let zero = _mm512_setzero_ps();
    for (step, &t) in ORDER.iter().enumerate() {
        let m = wino_pass::<NV>(c_in, kw, row, v.add(t * vstride), u.add(t * ustride));
        let last = step == WINO_T - 1;
        for (o, a) in m.iter().enumerate() {
            let b = _mm512_set1_ps(*bias.add(o));
            for (k, &mv) in a.iter().enumerate() {
                for (r, &coef) in COEF[t].iter().enumerate() {
                    // Row r was started by the first product that reaches it: 0 by m0, 3 by m5, 1 and 2 by m1.
                    let starts = matches!((t, r), (0, 0) | (5, 3) | (1, 1) | (1, 2));
                    if coef == 0.0 {
                        continue;
                    }
                    let d = dst.add(o * ostride + r * g.ow + 16 * k);
                    let prev = if starts { b } else { _mm512_maskz_loadu_ps(mask(k), d) };
                    let mut y = if coef == 1.0 {
                        _mm512_add_ps(prev, mv)
                    } else if coef == -1.0 {
                        _mm512_sub_ps(prev, mv)
                    } else {
                        _mm512_fmadd_ps(_mm512_set1_ps(coef), mv, prev)
                    };
                    if last && relu {
                        y = _mm512_max_ps(y, zero);
                    }
                    _mm512_mask_storeu_ps(d, mask(k), y);
                }
            }
        }
    }
}

/// Longest kernel row [`conv_rows_direct`] takes (its edge masks live on the stack).
pub(super) const DIRECT_MAX_KW: usize = 16;

/// [`conv_rows`] (one output channel, stride 1) reading the unpadded input `[c_in][h][w]` itself:
/// the zero border is masked-off lanes at the left and right edges and skipped rows at the top and
/// bottom (adding the padding's zeros changes no sum), so no padded copy is made.
///
/// # Safety
/// The CPU has AVX-512F and FMA; `g.sw == 1`, `g.kw <= DIRECT_MAX_KW`, `g.oh == h + 2 * ph + 1 - g.kh`,
/// `g.ow == w + 2 * pw + 1 - g.kw`, `pw < g.kw`; `input.len() >= g.c_in * h * w`;
/// `out.len() >= g.oh * g.ow`; `packed.len() >= g.c_in * g.kh * g.kw`; `bias.len() == 1`.
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn conv_rows_direct(
    g: &Geom,
    h: usize,
    w: usize,
    ph: usize,
    pw: usize,
    input: &[f32],
    packed: &[f32],
    bias: &[f32],
    out: &mut [f32],
    relu: bool,
) {
    debug_assert!(g.sw == 1 && g.kw <= DIRECT_MAX_KW && bias.len() == 1 && input.len() >= g.c_in * h * w);
    debug_assert!(out.len() >= g.oh * g.ow && packed.len() >= g.c_in * g.kh * g.kw);
    const NV: usize = 4;
    let wb = 16 * NV;
    let b = *bias.get_unchecked(0);
    let d = Direct { h, w, ph, pw, input: input.as_ptr(), wts: packed.as_ptr() };
    let mut y = 0;
    while y < g.oh {
        let full = y + ROWS_RB <= g.oh;
        let mut x0 = 0;
        while x0 < g.ow {
            let dst = out.as_mut_ptr().add(y * g.ow + x0);
            let n = wb.min(g.ow - x0);
            macro_rules! go {
                ($rb:expr) => {
                    match n.div_ceil(16) {
                        1 => direct_block::<$rb, 1>(g, &d, y, x0, b, dst, n, relu),
                        2 => direct_block::<$rb, 2>(g, &d, y, x0, b, dst, n, relu),
                        3 => direct_block::<$rb, 3>(g, &d, y, x0, b, dst, n, relu),
                        _ => direct_block::<$rb, 4>(g, &d, y, x0, b, dst, n, relu),
                    }
                };
            }
            if full {
                go!(ROWS_RB)
            } else {
                go!(1)
            }
            x0 += wb;
        }
        y += if full { ROWS_RB } else { 1 };
    }
}

struct Direct {
    h: usize,
    w: usize,
    ph: usize,
    pw: usize,
    input: *const f32,
    wts: *const f32,
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn direct_block<const RB: usize, const NV: usize>(g: &Geom, d: &Direct, y: usize, x0: usize, bias: f32, dst: *mut f32, n: usize, relu: bool) {
    // Lanes of each load that fall inside the input row: input column x0 + off + 16 v + l - pw.
    let mut masks = [[0 as __mmask16; NV]; DIRECT_MAX_KW];
    for (off, m) in masks.iter_mut().enumerate().take(g.kw) {
        for (v, mv) in m.iter_mut().enumerate() {
            let start = (x0 + off + 16 * v) as isize - d.pw as isize;
            let lo = (-start).clamp(0, 16) as u32;
            let hi = (d.w as isize - start).clamp(0, 16) as u32;
            let upto = if hi >= 16 { 0xffff } else { (1u32 << hi) - 1 };
            *mv = (upto & !((1u32 << lo) - 1)) as __mmask16;
        }
    }
    let mut acc = [[_mm512_set1_ps(bias); NV]; RB];
    for c in 0..g.c_in {
        for dd in 0..RB + g.kh - 1 {
            // Input row y + dd - ph; outside the input it is the padding's zeros.
            let yy = (y + dd) as isize - d.ph as isize;
            if yy < 0 || yy >= d.h as isize {
                continue;
            }
            let base = d.input.wrapping_add((c * d.h + yy as usize) * d.w + x0).wrapping_sub(d.pw);
            for (off, m) in masks.iter().enumerate().take(g.kw) {
                let mut x = [_mm512_setzero_ps(); NV];
                for (v, xv) in x.iter_mut().enumerate() {
                    *xv = _mm512_maskz_loadu_ps(m[v], base.wrapping_add(off + 16 * v));
                }
                for (r, a) in acc.iter_mut().enumerate() {
                    // Output row r meets input row dd through kernel row dd - r.
                    if dd >= r && dd - r < g.kh {
                        let wv = _mm512_set1_ps(*d.wts.add((c * g.kh + dd - r) * g.kw + off));
                        for v in 0..NV {
                            a[v] = _mm512_fmadd_ps(wv, x[v], a[v]);
                        }
                    }
                }
            }
        }
    }
    store_rows(&acc, dst, g.ow, n, relu);
}

/// Stores `RB` rows of `n` outputs (row `r` at `dst + r * ow`: output rows, or output channels),
/// ReLU'd when asked; the last
/// vector of a row is masked to the lanes that are outputs. The caller guarantees `n <= 16 * NV`
/// and that the rows lie inside its output.
#[inline(always)]
unsafe fn store_rows<const RB: usize, const NV: usize>(acc: &[[__m512; NV]; RB], dst: *mut f32, ow: usize, n: usize, relu: bool) {
    let zero = _mm512_setzero_ps();
    for (r, a) in acc.iter().enumerate() {
        for (v, &x) in a.iter().enumerate() {
            let x = if relu { _mm512_max_ps(x, zero) } else { x };
            let o = dst.add(r * ow + 16 * v);
            let left = n - 16 * v;
            if left >= 16 {
                _mm512_storeu_ps(o, x);
            } else {
                _mm512_mask_storeu_ps(o, ((1u32 << left) - 1) as __mmask16, x);
            }
        }
    }
}
