//! The hot loops: direct 2-D convolution over `[channels][time][frequency]` planes, the CQT's
//! filter bank and lowpass, the dB and sigmoid. The portable builds are loops over fixed-size `f32`
//! arrays that the compiler turns into SIMD; on x86-64 the same code is compiled a second time with
//! AVX2 + FMA and chosen at run time, and on AVX-512 the intrinsic kernels of `super::zmm` run
//! instead (register-blocked convolutions, Winograd F(4,3) for the 3-row one, the CQT as a matrix
//! product, vector `ln`/`exp`). The only `unsafe` is those calls, made after the CPU was seen to
//! have the features and the sizes were checked. Each kernel is tested against a plain scalar
//! reference below, on every build this CPU runs.

use super::weights::ConvSpec;

/// What follows a convolution, fused into its last pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    Linear,
    Relu,
    Sigmoid,
}

/// `a * b + c`, fused where the build has FMA (the portable loops of both native engines).
#[inline(always)]
pub(crate) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Which build of the kernels runs: the same loops compiled for the baseline, for AVX2 + FMA, or
/// for AVX-512 (wider accumulator blocks: 32 registers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Baseline,
    Avx2,
    Avx512,
}

impl Isa {
    /// Whether this CPU runs this build (no allocation: the detection is cached by std).
    pub fn supported(self) -> bool {
        match self {
            Isa::Baseline => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Isa::Avx2.supported() && is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every build this CPU runs, best last.
    pub fn available() -> Vec<Isa> {
        [Isa::Baseline, Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.supported()).collect()
    }

    /// The best build this CPU runs (detected once).
    pub fn best() -> Isa {
        static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| *Isa::available().last().unwrap())
    }

    /// (output channels, frequency positions) computed together, so that the accumulators fill
    /// the registers without spilling.
    fn blocks(self, c_out: usize) -> (usize, usize) {
        match self {
            Isa::Avx512 if c_out.is_multiple_of(8) => (8, 48),
            Isa::Avx512 => (1, 64),
            _ if c_out.is_multiple_of(4) => (4, 16),
            _ => (1, 32),
        }
    }
}

/// The largest frequency stride the AVX-512 convolution takes (the network's is 3).
pub(super) const MAX_SW: usize = 8;
/// Products of one Winograd F(4,3) tile (4 output rows from 6 input rows).
pub(super) const WINO_T: usize = 6;
/// Output rows of one Winograd F(4,3) tile.
const WINO_TILE: usize = 4;

/// A weight as the kernels multiply by it: subnormal ones are 0. Their products (< 1.2e-38 x the
/// input) are below the resolution of any sum they join, but each FMA reading a subnormal operand
/// takes a microcode assist: with Basic Pitch's weights conv2d_1 took 6.5 ms a window instead of 2.5.
fn flush_denormal(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}

/// A convolution with stride 1 along time and `sw` along frequency, zero padded, its weights packed
/// for the kernel. Input and output are dense `[channels][h][w]` planes.
pub struct Conv {
    c_in: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    ph: usize,
    pw: usize,
    sw: usize,
    isa: Isa,
    /// Vectorised along output channels (AVX-512, strided, 32k channels): the scratch is not split
    /// into phases and `packed` is `[c_out / 32][c_in][kh][kw][32]`.
    cv: bool,
    /// `[c_out / ob][c_in][kh][phase][tap of the phase][ob]`, tap `j = tap * sw + phase`.
    packed: Vec<f32>,
    /// Winograd F(4,3) along time (AVX-512, 3 rows, stride 1, 8k channels): the transformed weights,
    /// `[c_out / 8][6][c_in][kw][8]`; empty otherwise.
    packed_u: Vec<f32>,
    bias: Vec<f32>,
    /// The graph's `[c_out][c_in][kh][kw]`, for the reference.
    weight: Vec<f32>,
}

impl Conv {
    pub fn new(spec: &ConvSpec) -> Self {
        Self::with_isa(spec, Isa::best())
    }

    /// With a given build of the kernel (tests run each one the CPU has).
    pub fn with_isa(spec: &ConvSpec, isa: Isa) -> Self {
        assert!(isa.supported(), "{isa:?} is not available on this CPU");
        let d = &spec.weight.dims;
        let (c_out, c_in, kh, kw) = (d[0], d[1], d[2], d[3]);
        let sw = spec.stride_w.clamp(1, kw);
        // The AVX-512 kernel keeps each stride phase's tap count on the stack.
        let isa = if isa == Isa::Avx512 && sw > MAX_SW { Isa::Avx2 } else { isa };
        #[cfg(target_arch = "x86_64")]
        let cv = isa == Isa::Avx512 && sw > 1 && c_out.is_multiple_of(super::zmm::CV_OB);
        #[cfg(not(target_arch = "x86_64"))]
        let cv = false;
        let (ob, _) = isa.blocks(c_out);
        let mut packed = Vec::with_capacity(c_out * c_in * kh * kw);
        if cv {
            #[cfg(target_arch = "x86_64")]
            for blk in 0..c_out / super::zmm::CV_OB {
                for c in 0..c_in {
                    for i in 0..kh {
                        for j in 0..kw {
                            for o in blk * super::zmm::CV_OB..(blk + 1) * super::zmm::CV_OB {
                                packed.push(flush_denormal(spec.weight.data[((o * c_in + c) * kh + i) * kw + j]));
                            }
                        }
                    }
                }
            }
        } else {
            for blk in 0..c_out / ob {
                for c in 0..c_in {
                    for i in 0..kh {
                        for p in 0..sw {
                            for j in (p..kw).step_by(sw) {
                                for o in blk * ob..(blk + 1) * ob {
                                    packed.push(flush_denormal(spec.weight.data[((o * c_in + c) * kh + i) * kw + j]));
                                }
                            }
                        }
                    }
                }
            }
        }
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut packed_u = vec![];
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512 && kh == 3 && sw == 1 && c_out.is_multiple_of(8) {
            let g = |o: usize, c: usize, i: usize, j: usize| spec.weight.data[((o * c_in + c) * kh + i) * kw + j] as f64;
            for blk in 0..c_out / 8 {
                for k in 0..WINO_T {
                    for c in 0..c_in {
                        for j in 0..kw {
                            for o in blk * 8..(blk + 1) * 8 {
                                // G of F(4,3).
                                let (g0, g1, g2) = (g(o, c, 0, j), g(o, c, 1, j), g(o, c, 2, j));
                                packed_u.push(flush_denormal(match k {
                                    0 => g0 / 4.0,
                                    1 => -(g0 + g1 + g2) / 6.0,
                                    2 => -(g0 - g1 + g2) / 6.0,
                                    3 => g0 / 24.0 + g1 / 12.0 + g2 / 6.0,
                                    4 => g0 / 24.0 - g1 / 12.0 + g2 / 6.0,
                                    _ => g2,
                                } as f32));
                            }
                        }
                    }
                }
            }
        }
        Conv { c_in, c_out, kh, kw, ph: spec.pad.0, pw: spec.pad.1, sw, isa, cv, packed, packed_u, bias: spec.bias.clone(), weight: spec.weight.data.clone() }
    }

    pub fn c_in(&self) -> usize {
        self.c_in
    }

    pub fn c_out(&self) -> usize {
        self.c_out
    }

    pub fn out_w(&self, w: usize) -> usize {
        (w + 2 * self.pw - self.kw) / self.sw + 1
    }

    pub fn out_h(&self, h: usize) -> usize {
        h + 2 * self.ph + 1 - self.kh
    }

    /// (padded rows, row length of one frequency phase) of the scratch for an `h` x `w` input.
    fn scratch_geometry(&self, h: usize, w: usize) -> (usize, usize) {
        if self.cv {
            return (h + 2 * self.ph, w + 2 * self.pw);
        }
        let (_, wb) = self.isa.blocks(self.c_out);
        // The AVX-512 kernels end a row with a block of whole vectors, not of `wb`.
        let wb = if self.isa == Isa::Avx512 { 16 } else { wb };
        let blocks = self.out_w(w).div_ceil(wb) * wb;
        let phase_len = (w + 2 * self.pw).div_ceil(self.sw);
        (h + 2 * self.ph, phase_len.max(blocks + self.kw.div_ceil(self.sw) - 1))
    }

    /// Scratch floats [`Conv::run`] needs for an `h` x `w` input.
    pub fn scratch_len(&self, h: usize, w: usize) -> usize {
        if self.direct() {
            return 0;
        }
        let (hp, row) = self.scratch_geometry(h, w);
        self.c_in * self.phases() * hp * row + self.wino_len(row)
    }

    /// Floats of the Winograd transform of one pair of input rows, after the padded input.
    fn wino_len(&self, row: usize) -> usize {
        if self.packed_u.is_empty() {
            0
        } else {
            WINO_T * self.c_in * row + row
        }
    }

    /// Computed from the unpadded input (AVX-512, one output channel, stride 1): no scratch.
    fn direct(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        return self.isa == Isa::Avx512 && self.c_out == 1 && self.sw == 1 && self.kw <= super::zmm::DIRECT_MAX_KW && self.pw < self.kw;
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// Planes per input channel in the scratch: one per stride phase, or one when `cv`.
    fn phases(&self) -> usize {
        if self.cv {
            1
        } else {
            self.sw
        }
    }

    /// Convolves `input` (`[c_in][h][w]`) into `out` (`[c_out][out_h][out_w]`), applying `act`.
    /// `scratch` (at least [`Conv::scratch_len`]) receives the zero-padded input split into the
    /// `sw` phases of the frequency stride, so every tap is a contiguous run.
    pub fn run(&self, input: &[f32], h: usize, w: usize, scratch: &mut [f32], out: &mut [f32], act: Act) {
        assert_eq!(input.len(), self.c_in * h * w, "conv input size");
        let (hp, row) = self.scratch_geometry(h, w);
        let (oh, ow) = (self.out_h(h), self.out_w(w));
        assert_eq!(out.len(), self.c_out * oh * ow, "conv output size");
        #[cfg(target_arch = "x86_64")]
        if self.direct() {
            let g = Geom { c_in: self.c_in, kh: self.kh, kw: self.kw, sw: self.sw, hp, row, oh, ow };
            // SAFETY: `direct` convs are AVX-512 ones (the CPU was checked in `with_isa`) with stride 1,
            // one output channel, `kw <= DIRECT_MAX_KW` and `pw < kw`; the sizes were checked above.
            unsafe { super::zmm::conv_rows_direct(&g, h, w, self.ph, self.pw, input, &self.packed, &self.bias, out, act == Act::Relu) };
            if act == Act::Sigmoid {
                sigmoid_in_place(self.isa, out);
            }
            return;
        }
        // The Winograd buffer (`vbuf`) is used only by the AVX-512 kernel.
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
        let (scratch, vbuf) = scratch[..self.c_in * self.phases() * hp * row + self.wino_len(row)].split_at_mut(self.c_in * self.phases() * hp * row);
        if self.phases() == 1 {
            // One pass: each row is its zero border around the input's row, or zeros.
            // The Winograd kernel reads the input itself; the direct one finishes its last rows.
            let first_row = if self.packed_u.is_empty() { 0 } else { oh - oh % WINO_TILE };
            for (c, plane) in scratch.chunks_exact_mut(hp * row).enumerate() {
                for (yp, dst) in plane.chunks_exact_mut(row).enumerate().skip(first_row) {
                    match yp.checked_sub(self.ph).filter(|&y| y < h) {
                        Some(y) => {
                            dst[..self.pw].fill(0.0);
                            dst[self.pw..self.pw + w].copy_from_slice(&input[(c * h + y) * w..][..w]);
                            dst[self.pw + w..].fill(0.0);
                        }
                        None => dst.fill(0.0),
                    }
                }
            }
        } else {
            scratch.fill(0.0);
        }
        for c in 0..self.c_in {
            for y in 0..h {
                if self.phases() == 1 {
                    break;
                }
                let src = &input[(c * h + y) * w..][..w];
                for (x, &v) in src.iter().enumerate() {
                    let q = x + self.pw;
                    scratch[((c * self.sw + q % self.sw) * hp + y + self.ph) * row + q / self.sw] = v;
                }
            }
        }
        let g = Geom { c_in: self.c_in, kh: self.kh, kw: self.kw, sw: self.sw, hp, row, oh, ow };
        let (p, b) = (&self.packed, &self.bias);
        let (ob, _) = self.isa.blocks(self.c_out);
        match (self.isa, ob) {
            // SAFETY: `Isa::Avx2`/`Avx512` convs are made only where the CPU has the features
            // (`Conv::with_isa` checks); the scratch and output sizes were checked above, with
            // rows padded for the `isa.blocks` width.
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, _) if self.cv => unsafe { super::zmm::conv_cv(&g, scratch, p, b, out, act == Act::Relu) },
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, 8) if !self.packed_u.is_empty() => unsafe {
                super::zmm::conv_wino(&g, h, w, self.ph, self.pw, input, vbuf, &self.packed_u, b, out, act == Act::Relu);
                super::zmm::conv::<8, 3>(&g, scratch, p, b, out, oh - oh % WINO_TILE, act == Act::Relu)
            },
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, 8) => unsafe { super::zmm::conv::<8, 3>(&g, scratch, p, b, out, 0, act == Act::Relu) },
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, _) if self.c_out == 1 => unsafe { super::zmm::conv_rows::<4>(&g, scratch, p, b, out, act == Act::Relu) },
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, _) => unsafe { super::zmm::conv::<1, 4>(&g, scratch, p, b, out, 0, act == Act::Relu) },
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2, 4) => unsafe { conv_avx2::<4, 16>(&g, scratch, p, b, out) },
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2, _) => unsafe { conv_avx2::<1, 32>(&g, scratch, p, b, out) },
            (_, 4) => conv_planes::<4, 16, false>(&g, scratch, p, b, out),
            _ => conv_planes::<1, 32, false>(&g, scratch, p, b, out),
        }
        match act {
            // The AVX-512 kernel applies the ReLU as it stores.
            Act::Linear => {}
            Act::Relu if self.isa == Isa::Avx512 => {}
            Act::Relu => out.iter_mut().for_each(|v| *v = v.max(0.0)),
            Act::Sigmoid => sigmoid_in_place(self.isa, out),
        }
    }

    /// The definition, for tests: plain loops over the unpadded input.
    pub fn reference(&self, input: &[f32], h: usize, w: usize, act: Act) -> Vec<f32> {
        let (oh, ow) = (self.out_h(h), self.out_w(w));
        let mut out = vec![0.0; self.c_out * oh * ow];
        for o in 0..self.c_out {
            for y in 0..oh {
                for x in 0..ow {
                    let mut acc = self.bias[o] as f64;
                    for c in 0..self.c_in {
                        for i in 0..self.kh {
                            for j in 0..self.kw {
                                let (yy, xx) = ((y + i) as isize - self.ph as isize, (x * self.sw + j) as isize - self.pw as isize);
                                if yy >= 0 && (yy as usize) < h && xx >= 0 && (xx as usize) < w {
                                    acc += (self.weight[((o * self.c_in + c) * self.kh + i) * self.kw + j] * input[(c * h + yy as usize) * w + xx as usize])
                                        as f64;
                                }
                            }
                        }
                    }
                    let v = acc as f32;
                    out[(o * oh + y) * ow + x] = match act {
                        Act::Linear => v,
                        Act::Relu => v.max(0.0),
                        Act::Sigmoid => sigmoid(v),
                    };
                }
            }
        }
        out
    }
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// [`sigmoid`] of every element (on AVX-512 with a vector `exp` within 2 ulp of libm's).
pub fn sigmoid_in_place(isa: Isa, xs: &mut [f32]) {
    assert!(isa.supported(), "{isa:?} is not available on this CPU");
    match isa {
        // SAFETY: checked above that the CPU has the features.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { super::zmm::sigmoid(xs) },
        _ => xs.iter_mut().for_each(|v| *v = sigmoid(*v)),
    }
}

/// `xs[i] = ln(xs[i]) * a * b` for positive `xs`, returning the least result (the CQT's dB).
pub fn scaled_ln_in_place(isa: Isa, xs: &mut [f32], a: f32, b: f32) -> f32 {
    assert!(isa.supported(), "{isa:?} is not available on this CPU");
    match isa {
        // SAFETY: checked above that the CPU has the features.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { super::zmm::scaled_ln(xs, a, b) },
        _ => xs.iter_mut().fold(f32::INFINITY, |lo, v| {
            *v = (v.ln() * a) * b;
            lo.min(*v)
        }),
    }
}

pub(super) struct Geom {
    pub(super) c_in: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) sw: usize,
    pub(super) hp: usize,
    pub(super) row: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv_avx2<const OB: usize, const WB: usize>(g: &Geom, scratch: &[f32], packed: &[f32], bias: &[f32], out: &mut [f32]) {
    conv_planes::<OB, WB, true>(g, scratch, packed, bias, out)
}

/// The convolution proper: for each block of `OB` output channels, row and run of `WB` frequency
/// positions, `OB x WB` accumulators; each tap is one contiguous load of `WB` inputs and `OB`
/// broadcast weights, the taps of one input row and stride phase walked in order. With stride 1
/// that is the graph's order (input channel, row, column), ONNX Runtime's too.
#[inline(always)]
fn conv_planes<const OB: usize, const WB: usize, const FMA: bool>(g: &Geom, scratch: &[f32], packed: &[f32], bias: &[f32], out: &mut [f32]) {
    let taps = g.c_in * g.kh * g.kw;
    let plane = g.hp * g.row;
    for blk in 0..bias.len() / OB {
        let wblk = &packed[blk * taps * OB..][..taps * OB];
        for y in 0..g.oh {
            let mut x0 = 0;
            while x0 < g.ow {
                let mut acc = [[0.0f32; WB]; OB];
                for (o, a) in acc.iter_mut().enumerate() {
                    *a = [bias[blk * OB + o]; WB];
                }
                let mut wpos = 0;
                for c in 0..g.c_in {
                    for i in 0..g.kh {
                        for p in 0..g.sw {
                            let ntap = (g.kw - p).div_ceil(g.sw);
                            let start = (c * g.sw + p) * plane + (y + i) * g.row + x0;
                            let win = &scratch[start..start + ntap - 1 + WB];
                            let wts = &wblk[wpos..wpos + ntap * OB];
                            wpos += ntap * OB;
                            for (off, w) in wts.chunks_exact(OB).enumerate() {
                                let w: &[f32; OB] = w.try_into().unwrap();
                                let src: &[f32; WB] = win[off..off + WB].try_into().unwrap();
                                for o in 0..OB {
                                    for l in 0..WB {
                                        acc[o][l] = madd::<FMA>(w[o], src[l], acc[o][l]);
                                    }
                                }
                            }
                        }
                    }
                }
                let n = WB.min(g.ow - x0);
                for (o, a) in acc.iter().enumerate() {
                    out[((blk * OB + o) * g.oh + y) * g.ow + x0..][..n].copy_from_slice(&a[..n]);
                }
                x0 += WB;
            }
        }
    }
}

/// The CQT's stride-2 downsampler: `out[n] = sum_j taps[j] * x[2n + j - pad]`, zero outside `x`,
/// each output summed in tap order. The octaves cascade through it eight times, so it keeps the
/// reference's order exactly (with the taps' phases interleaved, the posteriors of quiet songs
/// moved 4x further from ONNX Runtime's).
pub struct Lowpass {
    taps: Vec<f32>,
    pad: usize,
    isa: Isa,
}

/// Outputs computed together by the lowpass kernel.
const LOWPASS_WB: usize = 64;

impl Lowpass {
    pub fn new(taps: &[f32], pad: usize) -> Self {
        Self::with_isa(taps, pad, Isa::best())
    }

    pub fn with_isa(taps: &[f32], pad: usize, isa: Isa) -> Self {
        assert!(isa.supported(), "{isa:?} is not available on this CPU");
        // An odd filter gets a zero tap: adding 0 x input changes no sum.
        let mut taps = taps.to_vec();
        if !taps.len().is_multiple_of(2) {
            taps.push(0.0);
        }
        Lowpass { taps, pad, isa }
    }

    pub fn out_len(&self, n: usize) -> usize {
        (n + 2 * self.pad - self.taps.len()) / 2 + 1
    }

    /// The length of one phase's row in the scratch.
    fn row(&self, n: usize) -> usize {
        (n + 2 * self.pad).div_ceil(2).max(self.out_len(n).div_ceil(LOWPASS_WB) * LOWPASS_WB + self.taps.len() / 2 - 1)
    }

    pub fn scratch_len(&self, n: usize) -> usize {
        2 * self.row(n)
    }

    /// Filters and downsamples `x` into `out` (`out_len(x.len())`), using `scratch` for the
    /// zero-padded signal split into even and odd samples.
    pub fn run(&self, x: &[f32], scratch: &mut [f32], out: &mut [f32]) {
        let row = self.row(x.len());
        assert_eq!(out.len(), self.out_len(x.len()), "lowpass output size");
        let (even, odd) = scratch[..2 * row].split_at_mut(row);
        even.fill(0.0);
        odd.fill(0.0);
        // x[k] lands at q = k + pad: even k at q / 2 = k / 2 + pad / 2 in the phase of pad's parity,
        // odd k at (k - 1) / 2 + (pad + 1) / 2 in the other. No branch per sample.
        let (a, b) = if self.pad.is_multiple_of(2) { (&mut *even, &mut *odd) } else { (&mut *odd, &mut *even) };
        let (a, b) = (&mut a[self.pad / 2..], &mut b[self.pad.div_ceil(2)..]);
        for ((pair, ea), eb) in x.chunks_exact(2).zip(a.iter_mut()).zip(b.iter_mut()) {
            *ea = pair[0];
            *eb = pair[1];
        }
        if x.len() % 2 == 1 {
            a[x.len() / 2] = x[x.len() - 1];
        }
        match self.isa {
            // SAFETY: `with_isa` checked that the CPU has the features.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { lowpass_avx512(even, odd, &self.taps, out) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { lowpass_avx2(even, odd, &self.taps, out) },
            _ => lowpass::<false>(even, odd, &self.taps, out),
        }
    }

    /// The definition, for tests.
    pub fn reference(&self, x: &[f32]) -> Vec<f32> {
        (0..self.out_len(x.len()))
            .map(|n| {
                let mut acc = 0.0f64;
                for (j, &t) in self.taps.iter().enumerate() {
                    let k = (2 * n + j) as isize - self.pad as isize;
                    if k >= 0 && (k as usize) < x.len() {
                        acc += (t * x[k as usize]) as f64;
                    }
                }
                acc as f32
            })
            .collect()
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn lowpass_avx2(even: &[f32], odd: &[f32], taps: &[f32], out: &mut [f32]) {
    lowpass::<true>(even, odd, taps, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn lowpass_avx512(even: &[f32], odd: &[f32], taps: &[f32], out: &mut [f32]) {
    lowpass::<true>(even, odd, taps, out)
}

#[inline(always)]
fn lowpass<const FMA: bool>(even: &[f32], odd: &[f32], taps: &[f32], out: &mut [f32]) {
    const WB: usize = LOWPASS_WB;
    let span = taps.len() / 2 - 1 + WB;
    let mut x0 = 0;
    while x0 < out.len() {
        let mut acc = [0.0f32; WB];
        let (ev, od) = (&even[x0..x0 + span], &odd[x0..x0 + span]);
        for (off, t) in taps.chunks_exact(2).enumerate() {
            let e: &[f32; WB] = ev[off..off + WB].try_into().unwrap();
            let o: &[f32; WB] = od[off..off + WB].try_into().unwrap();
            for l in 0..WB {
                acc[l] = madd::<FMA>(t[0], e[l], acc[l]);
            }
            for l in 0..WB {
                acc[l] = madd::<FMA>(t[1], o[l], acc[l]);
            }
        }
        let n = WB.min(out.len() - x0);
        out[x0..x0 + n].copy_from_slice(&acc[..n]);
        x0 += WB;
    }
}

/// The CQT's filter bank applied to every frame of an octave: `out[t][k] = bank[k] . x[t * hop..][..256]`.
/// On AVX-512 a small matrix product over a transposed copy of the bank (frames x filters at once),
/// elsewhere [`dots256`] per frame.
pub struct CqtBank {
    /// `[n][256]`.
    bank: Vec<f32>,
    /// `[256][BANK_LANES]`, zero past `n` (AVX-512 only, else empty).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    bank_t: Vec<f32>,
    n: usize,
    isa: Isa,
}

impl CqtBank {
    pub fn new(bank: &[f32]) -> Self {
        Self::with_isa(bank, Isa::best())
    }

    pub fn with_isa(bank: &[f32], isa: Isa) -> Self {
        assert!(isa.supported(), "{isa:?} is not available on this CPU");
        assert!(bank.len().is_multiple_of(256), "256-tap filters");
        let n = bank.len() / 256;
        #[cfg(target_arch = "x86_64")]
        let bank_t = if isa == Isa::Avx512 && n > 64 && n <= super::zmm::BANK_LANES {
            let lanes = super::zmm::BANK_LANES;
            let mut t = vec![0.0; 256 * lanes];
            for k in 0..n {
                for j in 0..256 {
                    t[j * lanes + k] = bank[k * 256 + j];
                }
            }
            t
        } else {
            vec![]
        };
        #[cfg(not(target_arch = "x86_64"))]
        let bank_t = vec![];
        CqtBank { bank: bank.to_vec(), bank_t, n, isa }
    }

    /// Filters of the bank.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// `frames` frames `hop` apart of `x` through every filter into `out` (`[frames][n]`).
    pub fn run(&self, x: &[f32], hop: usize, frames: usize, out: &mut [f32]) {
        assert_eq!(out.len(), frames * self.n, "CQT output size");
        assert!(frames == 0 || x.len() >= (frames - 1) * hop + 256, "CQT input too short");
        #[cfg(target_arch = "x86_64")]
        if !self.bank_t.is_empty() {
            // SAFETY: `bank_t` is made only on AVX-512 (checked in `with_isa`) for 64 < n <= 80;
            // the sizes were checked above.
            unsafe { super::zmm::cqt_frames(&self.bank_t, 256, x, hop, frames, out, self.n) };
            return;
        }
        for (t, row) in out.chunks_exact_mut(self.n).enumerate() {
            let xs: &[f32; 256] = x[t * hop..t * hop + 256].try_into().unwrap();
            dots256_with(self.isa, &self.bank, xs, row);
        }
    }
}

/// `out[k] = bank[k] . x` for every 256-tap filter `k` of `bank` (`[n][256]`).
pub fn dots256(bank: &[f32], x: &[f32; 256], out: &mut [f32]) {
    dots256_with(Isa::best(), bank, x, out)
}

/// [`dots256`] with a given build of the kernel (an `isa` from [`Isa::available`]).
pub fn dots256_with(isa: Isa, bank: &[f32], x: &[f32; 256], out: &mut [f32]) {
    assert_eq!(bank.len(), out.len() * 256);
    assert!(isa.supported(), "{isa:?} is not available on this CPU");
    match isa {
        // SAFETY: checked above that the CPU has the features.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { dots_avx512(bank, x, out) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { dots_avx2(bank, x, out) },
        _ => dots::<false>(bank, x, out),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_avx2(bank: &[f32], x: &[f32; 256], out: &mut [f32]) {
    dots::<true>(bank, x, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn dots_avx512(bank: &[f32], x: &[f32; 256], out: &mut [f32]) {
    dots::<true>(bank, x, out)
}

#[inline(always)]
fn dots<const FMA: bool>(bank: &[f32], x: &[f32; 256], out: &mut [f32]) {
    const L: usize = 32;
    let mut k = 0;
    // Four filters at a time share each load of the signal.
    while k + 4 <= out.len() {
        let mut acc = [[0.0f32; L]; 4];
        for n in (0..256).step_by(L) {
            let xs: &[f32; L] = x[n..n + L].try_into().unwrap();
            for (f, a) in acc.iter_mut().enumerate() {
                let ws: &[f32; L] = bank[(k + f) * 256 + n..][..L].try_into().unwrap();
                for l in 0..L {
                    a[l] = madd::<FMA>(ws[l], xs[l], a[l]);
                }
            }
        }
        for (f, a) in acc.iter().enumerate() {
            out[k + f] = hsum(a);
        }
        k += 4;
    }
    while k < out.len() {
        let mut a = [0.0f32; L];
        for n in (0..256).step_by(L) {
            for l in 0..L {
                a[l] = madd::<FMA>(bank[k * 256 + n + l], x[n + l], a[l]);
            }
        }
        out[k] = hsum(&a);
        k += 1;
    }
}

#[inline(always)]
fn hsum<const L: usize>(a: &[f32; L]) -> f32 {
    let mut v = *a;
    let mut n = L;
    while n > 1 {
        n /= 2;
        for l in 0..n {
            v[l] += v[l + n];
        }
    }
    v[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::native::weights::Tensor;

    /// A deterministic pseudo-random sequence in -1..1.
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn spec(dims: [usize; 4], pad: (usize, usize), stride_w: usize, seed: u64) -> ConvSpec {
        let n = dims.iter().product();
        ConvSpec { weight: Tensor { dims: dims.to_vec(), data: noise(n, seed) }, bias: noise(dims[0], seed + 1), pad, stride_w }
    }

    #[test]
    fn convolutions_match_the_reference() {
        // The network's six shapes, on odd sizes so every tail and border is exercised.
        for (k, (dims, pad, sw)) in [
            ([32, 8, 5, 5], (2, 1), 3),
            ([8, 8, 3, 39], (1, 19), 1),
            ([1, 8, 5, 5], (2, 2), 1),
            ([32, 1, 7, 7], (3, 2), 3),
            ([1, 32, 7, 3], (3, 1), 1),
            ([1, 33, 3, 3], (1, 1), 1),
            // Not the network's: one output channel with a stride, a row wider than the padding.
            ([1, 4, 3, 5], (1, 2), 2),
            ([1, 2, 3, 20], (1, 1), 1),
        ]
        .into_iter()
        .enumerate()
        {
            for isa in Isa::available() {
                let conv = Conv::with_isa(&spec(dims, pad, sw, k as u64), isa);
                for (h, w) in [(9, 264), (5, 88), (4, 47)] {
                    let input = noise(dims[1] * h * w, 100 + k as u64);
                    for act in [Act::Relu, Act::Sigmoid] {
                        let mut scratch = vec![f32::NAN; conv.scratch_len(h, w)];
                        let mut out = vec![f32::NAN; conv.c_out * conv.out_h(h) * conv.out_w(w)];
                        conv.run(&input, h, w, &mut scratch, &mut out, act);
                        let reference = conv.reference(&input, h, w, act);
                        let worst = out.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                        assert!(worst < 1e-4, "{isa:?} {dims:?} on {h}x{w}: {worst}");
                    }
                }
            }
        }
    }

    #[test]
    fn lowpass_matches_the_reference() {
        let taps = noise(256, 7);
        for (isa, pad) in Isa::available().into_iter().flat_map(|isa| [(isa, 127), (isa, 128)]) {
            let lp = Lowpass::with_isa(&taps, pad, isa);
            for n in [171, 1000, 43844] {
                let x = noise(n, n as u64);
                let mut scratch = vec![f32::NAN; lp.scratch_len(n)];
                let mut out = vec![f32::NAN; lp.out_len(n)];
                lp.run(&x, &mut scratch, &mut out);
                let reference = lp.reference(&x);
                let worst = out.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                assert!(worst < 1e-4, "{isa:?} {n}: {worst}");
            }
        }
    }

    #[test]
    fn cqt_bank_matches_the_reference() {
        for n in [7, 72] {
            let bank = noise(n * 256, 5);
            let (hop, frames) = (32, 13);
            let x = noise((frames - 1) * hop + 256, 6);
            for isa in Isa::available() {
                let cb = CqtBank::with_isa(&bank, isa);
                let mut out = vec![f32::NAN; frames * n];
                cb.run(&x, hop, frames, &mut out);
                for t in 0..frames {
                    for k in 0..n {
                        let r: f64 = (0..256).map(|j| bank[k * 256 + j] as f64 * x[t * hop + j] as f64).sum();
                        assert!((out[t * n + k] as f64 - r).abs() < 1e-4, "{isa:?} {n} {t} {k}: {} vs {r}", out[t * n + k]);
                    }
                }
            }
        }
    }

    #[test]
    fn vector_ln_and_sigmoid_match_libm() {
        let xs: Vec<f32> = (0..2000).map(|k| 1e-11f32 * 1.021f32.powi(k) * (1.0 + 0.37 * (k % 7) as f32)).collect();
        let ys: Vec<f32> = (0..1001).map(|k| (k as f32 - 500.0) * 0.23).collect();
        for isa in Isa::available() {
            for n in [xs.len(), 37, 5] {
                let mut v = xs[..n].to_vec();
                let lo = scaled_ln_in_place(isa, &mut v, std::f32::consts::LOG10_E, 10.0);
                let mut want = f32::INFINITY;
                for (got, x) in v.iter().zip(&xs) {
                    let r = ((*x as f64).ln() * std::f64::consts::LOG10_E * 10.0) as f32;
                    want = want.min(r);
                    assert!((got - r).abs() <= 2e-5 * r.abs().max(1.0), "{isa:?} ln {x}: {got} vs {r}");
                }
                assert!((lo - want).abs() <= 2e-5 * want.abs(), "{isa:?} min {lo} vs {want}");
            }
            let mut v = ys.clone();
            sigmoid_in_place(isa, &mut v);
            for (got, y) in v.iter().zip(&ys) {
                let r = 1.0 / (1.0 + (-*y as f64).exp());
                assert!((*got as f64 - r).abs() < 1e-6, "{isa:?} sigmoid {y}: {got} vs {r}");
            }
        }
    }

    #[test]
    fn dots_match_the_reference() {
        let bank = noise(7 * 256, 3);
        let x: [f32; 256] = noise(256, 4).try_into().unwrap();
        for isa in Isa::available() {
            let mut out = vec![0.0; 7];
            dots256_with(isa, &bank, &x, &mut out);
            for k in 0..7 {
                let r: f64 = (0..256).map(|n| bank[k * 256 + n] as f64 * x[n] as f64).sum();
                assert!((out[k] as f64 - r).abs() < 1e-4, "{isa:?} {k}: {} vs {r}", out[k]);
            }
        }
    }
}
