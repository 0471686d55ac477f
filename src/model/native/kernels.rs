//! The hot loops: direct 2-D convolution over `[channels][time][frequency]` planes, vectorised
//! along frequency, and the CQT's 256-tap dot products. Written as loops over fixed-size `f32`
//! arrays that the compiler turns into SIMD; on x86-64 the same code is compiled a second time with
//! AVX2 + FMA and chosen at run time. The only `unsafe` is that call, made after the CPU was seen
//! to have the features. Each kernel is tested against a plain scalar reference below.

use super::weights::ConvSpec;

/// What follows a convolution, fused into its last pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    Linear,
    Relu,
    Sigmoid,
}

#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Whether this CPU runs the AVX2 + FMA builds of the kernels.
fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Output channels computed together (their accumulators stay in registers).
const fn out_block(c_out: usize) -> usize {
    if c_out.is_multiple_of(4) {
        4
    } else {
        1
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
    /// `[c_out / ob][c_in][kh][kw][ob]`.
    packed: Vec<f32>,
    bias: Vec<f32>,
    /// The graph's `[c_out][c_in][kh][kw]`, for the reference.
    weight: Vec<f32>,
}

/// Frequency positions computed together for one block of output channels.
const WB4: usize = 16;
const WB1: usize = 32;

impl Conv {
    pub fn new(spec: &ConvSpec) -> Self {
        let d = &spec.weight.dims;
        let (c_out, c_in, kh, kw) = (d[0], d[1], d[2], d[3]);
        let ob = out_block(c_out);
        let mut packed = vec![0.0; c_out * c_in * kh * kw];
        for o in 0..c_out {
            for c in 0..c_in {
                for i in 0..kh {
                    for j in 0..kw {
                        let (blk, lane) = (o / ob, o % ob);
                        packed[(((blk * c_in + c) * kh + i) * kw + j) * ob + lane] = spec.weight.data[((o * c_in + c) * kh + i) * kw + j];
                    }
                }
            }
        }
        Conv { c_in, c_out, kh, kw, ph: spec.pad.0, pw: spec.pad.1, sw: spec.stride_w, packed, bias: spec.bias.clone(), weight: spec.weight.data.clone() }
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

    fn wb(&self) -> usize {
        if out_block(self.c_out) == 4 {
            WB4
        } else {
            WB1
        }
    }

    /// (padded rows, row length of one frequency phase) of the scratch for an `h` x `w` input.
    fn scratch_geometry(&self, h: usize, w: usize) -> (usize, usize) {
        let wb = self.wb();
        let blocks = self.out_w(w).div_ceil(wb) * wb;
        let phase_len = (w + 2 * self.pw).div_ceil(self.sw);
        (h + 2 * self.ph, phase_len.max(blocks + (self.kw - 1) / self.sw))
    }

    /// Scratch floats [`Conv::run`] needs for an `h` x `w` input.
    pub fn scratch_len(&self, h: usize, w: usize) -> usize {
        let (hp, row) = self.scratch_geometry(h, w);
        self.c_in * self.sw * hp * row
    }

    /// Convolves `input` (`[c_in][h][w]`) into `out` (`[c_out][out_h][out_w]`), applying `act`.
    /// `scratch` (at least [`Conv::scratch_len`]) receives the zero-padded input split into the
    /// `sw` phases of the frequency stride, so every tap is a contiguous run.
    pub fn run(&self, input: &[f32], h: usize, w: usize, scratch: &mut [f32], out: &mut [f32], act: Act) {
        assert_eq!(input.len(), self.c_in * h * w, "conv input size");
        let (hp, row) = self.scratch_geometry(h, w);
        let (oh, ow) = (self.out_h(h), self.out_w(w));
        assert_eq!(out.len(), self.c_out * oh * ow, "conv output size");
        let scratch = &mut scratch[..self.c_in * self.sw * hp * row];
        scratch.fill(0.0);
        for c in 0..self.c_in {
            for y in 0..h {
                let src = &input[(c * h + y) * w..][..w];
                for (x, &v) in src.iter().enumerate() {
                    let q = x + self.pw;
                    scratch[((c * self.sw + q % self.sw) * hp + y + self.ph) * row + q / self.sw] = v;
                }
            }
        }
        let g = Geom { c_in: self.c_in, kh: self.kh, kw: self.kw, sw: self.sw, hp, row, oh, ow };
        let fast = has_avx2_fma();
        match (out_block(self.c_out), fast) {
            #[cfg(target_arch = "x86_64")]
            (4, true) => unsafe { conv_avx2::<4, WB4>(&g, scratch, &self.packed, &self.bias, out) },
            #[cfg(target_arch = "x86_64")]
            (1, true) => unsafe { conv_avx2::<1, WB1>(&g, scratch, &self.packed, &self.bias, out) },
            (4, _) => conv_planes::<4, WB4, false>(&g, scratch, &self.packed, &self.bias, out),
            _ => conv_planes::<1, WB1, false>(&g, scratch, &self.packed, &self.bias, out),
        }
        match act {
            Act::Linear => {}
            Act::Relu => out.iter_mut().for_each(|v| *v = v.max(0.0)),
            Act::Sigmoid => out.iter_mut().for_each(|v| *v = sigmoid(*v)),
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

struct Geom {
    c_in: usize,
    kh: usize,
    kw: usize,
    sw: usize,
    hp: usize,
    row: usize,
    oh: usize,
    ow: usize,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv_avx2<const OB: usize, const WB: usize>(g: &Geom, scratch: &[f32], packed: &[f32], bias: &[f32], out: &mut [f32]) {
    conv_planes::<OB, WB, true>(g, scratch, packed, bias, out)
}

/// The convolution proper: for each block of `OB` output channels, row and run of `WB` frequency
/// positions, `OB x WB` accumulators, each tap one contiguous load of `WB` inputs and `OB`
/// broadcast weights.
#[inline(always)]
fn conv_planes<const OB: usize, const WB: usize, const FMA: bool>(g: &Geom, scratch: &[f32], packed: &[f32], bias: &[f32], out: &mut [f32]) {
    let taps = g.c_in * g.kh * g.kw;
    let c_out = bias.len();
    let plane = g.hp * g.row;
    for blk in 0..c_out / OB {
        let wblk = &packed[blk * taps * OB..][..taps * OB];
        for y in 0..g.oh {
            let mut x0 = 0;
            while x0 < g.ow {
                let mut acc = [[0.0f32; WB]; OB];
                for (o, a) in acc.iter_mut().enumerate() {
                    *a = [bias[blk * OB + o]; WB];
                }
                for c in 0..g.c_in {
                    for i in 0..g.kh {
                        let wrow = &wblk[(c * g.kh + i) * g.kw * OB..][..g.kw * OB];
                        let base = c * g.sw * plane + (y + i) * g.row + x0;
                        for j in 0..g.kw {
                            let at = base + (j % g.sw) * plane + j / g.sw;
                            let src: &[f32; WB] = scratch[at..at + WB].try_into().unwrap();
                            let wj: &[f32; OB] = wrow[j * OB..j * OB + OB].try_into().unwrap();
                            for o in 0..OB {
                                for l in 0..WB {
                                    acc[o][l] = madd::<FMA>(wj[o], src[l], acc[o][l]);
                                }
                            }
                        }
                    }
                }
                let n = WB.min(g.ow - x0);
                for (o, a) in acc.iter().enumerate() {
                    let dst = &mut out[((blk * OB + o) * g.oh + y) * g.ow + x0..][..n];
                    dst.copy_from_slice(&a[..n]);
                }
                x0 += WB;
            }
        }
    }
}

/// `out[k] = bank[k] . x` for every 256-tap filter `k` of `bank` (`[n][256]`).
pub fn dots256(bank: &[f32], x: &[f32; 256], out: &mut [f32]) {
    assert_eq!(bank.len(), out.len() * 256);
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked above).
        return unsafe { dots_avx2(bank, x, out) };
    }
    dots::<false>(bank, x, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_avx2(bank: &[f32], x: &[f32; 256], out: &mut [f32]) {
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
        ]
        .into_iter()
        .enumerate()
        {
            let conv = Conv::new(&spec(dims, pad, sw, k as u64));
            for (h, w) in [(9, 264), (5, 88), (4, 47)] {
                let input = noise(dims[1] * h * w, 100 + k as u64);
                for act in [Act::Relu, Act::Sigmoid] {
                    let mut scratch = vec![f32::NAN; conv.scratch_len(h, w)];
                    let mut out = vec![f32::NAN; conv.c_out * conv.out_h(h) * conv.out_w(w)];
                    conv.run(&input, h, w, &mut scratch, &mut out, act);
                    let reference = conv.reference(&input, h, w, act);
                    let worst = out.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                    assert!(worst < 1e-4, "{dims:?} on {h}x{w}: {worst}");
                }
            }
        }
    }

    #[test]
    fn dots_match_the_reference() {
        let bank = noise(7 * 256, 3);
        let x: [f32; 256] = noise(256, 4).try_into().unwrap();
        let mut out = vec![0.0; 7];
        dots256(&bank, &x, &mut out);
        for k in 0..7 {
            let r: f64 = (0..256).map(|n| bank[k * 256 + n] as f64 * x[n] as f64).sum();
            assert!((out[k] as f64 - r).abs() < 1e-4, "{k}: {} vs {r}", out[k]);
        }
    }
}
