//! SwiftF0 computed natively: the graph's arithmetic in plain Rust, every constant (convolution
//! weights and biases, analysis windows, filterbanks, log epsilon, pitch bins) read from the
//! embedded ONNX at load, with buffers kept across runs, so a run plans nothing and allocates
//! nothing once its length was seen. tract stays the reference (`PitchTracker::tract`), and
//! tests/pitch_parity.rs bounds the difference.
//!
//! What the graph computes for `n = max(1, samples / 256)` frames (frame `t` centred on sample
//! `256 t`, the audio zero outside itself):
//! - three magnitude spectra per frame (windows of 1024, 2048 and 512 samples; the graph spells
//!   its DFTs as two matrix products with twiddles, here a real FFT), each mapped by a sparse
//!   `bins x 128` filterbank and `ln(x + eps)`: a `[3][128 bands][n]` image;
//! - a 3x3 convolution to 12 channels and six residual blocks of two convolutions (7x3, dilated
//!   7x1 / 5x1 / 3x1 / 3x1 along frequency, 7x3 dilated 2), ReLU throughout;
//! - the lowest 96 bands through a 3x3 convolution to 4 channels; from it a 1x1 convolution gives
//!   logits over 95 pitch bins, and a 5x1 convolution's maximum over frequency, with the mean of
//!   the input image, feeds a two-layer 1-D convolution whose sigmoid is the confidence;
//! - the pitch: a softmax over the three logits around the best bin inside `[fmin, fmax]`
//!   (in f64, as the graph casts), the exponential of the weighted mean of the bins' log
//!   frequencies; the confidence is zero where the best bin overall lies outside the range.
//!
//! The convolutions work on `[channel][time row][frequency]` planes whose rows carry zero padding
//! on both sides of the 128 bands and whose planes carry zero rows before and after the frames,
//! so every tap of a block of outputs is one contiguous load. The portable kernel is a loop over
//! fixed-size arrays that the compiler vectorises (aarch64 and x86-64 without AVX2); on x86-64
//! explicit AVX2 and AVX-512 kernels are chosen at run time (the only `unsafe`, after the CPU was
//! seen to have the features), and there the 3-tap-in-time convolutions (2/3 of the work)
//! run as Winograd F(2, 3): two frames from four products instead of six. Each build is tested
//! against a scalar reference below; tests/pitch_parity.rs bounds the whole against tract.

use crate::model::ModelError;
use prost::Message;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;
use tract_onnx::pb;

use super::HOP;

/// Bands of the log-frequency image.
const BANDS: usize = 128;
/// Zero padding on each side of a plane row: at least the widest frequency padding (54).
const PADF: usize = 56;
/// Floats per plane row.
const ROW: usize = PADF + BANDS + PADF;
/// Channels of the trunk.
const CH: usize = 12;
/// Channels of the pitch head.
const HEAD: usize = 4;
/// Pitch bins.
const BINS: usize = 95;

/// One convolution as the graph has it: (c_out, c_in, kernel h (frequency), kernel w (time),
/// pads [h begin, w begin, h end, w end], dilation h).
type Shape2d = (usize, usize, usize, usize, [usize; 4], usize);

/// The 2-D convolutions of SwiftF0 0.3.0 in graph order; a graph that differs is refused.
const CONV2D: [Shape2d; 16] = [
    (12, 3, 3, 3, [1, 1, 1, 1], 1),
    (12, 12, 7, 3, [3, 1, 3, 1], 1),
    (12, 12, 7, 3, [3, 1, 3, 1], 1),
    (12, 12, 7, 1, [51, 0, 51, 0], 17),
    (12, 12, 7, 1, [51, 0, 51, 0], 17),
    (12, 12, 5, 1, [54, 0, 54, 0], 27),
    (12, 12, 5, 1, [54, 0, 54, 0], 27),
    (12, 12, 3, 1, [40, 0, 40, 0], 40),
    (12, 12, 3, 1, [40, 0, 40, 0], 40),
    (12, 12, 3, 1, [48, 0, 48, 0], 48),
    (12, 12, 3, 1, [48, 0, 48, 0], 48),
    (12, 12, 7, 3, [6, 1, 6, 1], 2),
    (12, 12, 7, 3, [6, 1, 6, 1], 2),
    (4, 12, 3, 3, [1, 1, 0, 1], 1),
    (4, 4, 5, 1, [2, 0, 2, 0], 1),
    (1, 4, 1, 1, [0, 0, 0, 0], 1),
];

/// The analysis windows in the order the image stacks them, and their filterbanks' bins.
const WINDOWS: [usize; 3] = [1024, 2048, 512];

fn bad(why: impl std::fmt::Display) -> ModelError {
    ModelError::Load(format!("the pitch model (native engine): {why}"))
}

use crate::model::native::kernels::madd;
/// Which build of the kernels runs: the note model's own dispatch (one CPU detection for both
/// engines).
pub use crate::model::native::kernels::Isa;

/// The initializers and nodes of a graph, looked up by name.
struct Graph {
    init: std::collections::HashMap<String, pb::TensorProto>,
    nodes: Vec<pb::NodeProto>,
}

impl Graph {
    fn tensor(&self, name: &str) -> Result<&pb::TensorProto, ModelError> {
        self.init.get(name).ok_or_else(|| bad(format!("'{name}' is not a constant")))
    }

    fn dims(&self, name: &str) -> Result<Vec<usize>, ModelError> {
        Ok(self.tensor(name)?.dims.iter().map(|&d| d as usize).collect())
    }

    fn f32s(&self, name: &str) -> Result<Vec<f32>, ModelError> {
        let t = self.tensor(name)?;
        if t.data_type != pb::tensor_proto::DataType::Float as i32 {
            return Err(bad(format!("'{name}' is not float32")));
        }
        Ok(if t.raw_data.is_empty() { t.float_data.clone() } else { t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect() })
    }

    fn f64s(&self, name: &str) -> Result<Vec<f64>, ModelError> {
        let t = self.tensor(name)?;
        if t.data_type != pb::tensor_proto::DataType::Double as i32 {
            return Err(bad(format!("'{name}' is not float64")));
        }
        Ok(if t.raw_data.is_empty() { t.double_data.clone() } else { t.raw_data.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect() })
    }

    fn ints(&self, name: &str) -> Result<Vec<i64>, ModelError> {
        let t = self.tensor(name)?;
        use pb::tensor_proto::DataType;
        Ok(match t.data_type {
            d if d == DataType::Int32 as i32 => {
                if t.raw_data.is_empty() {
                    t.int32_data.iter().map(|&v| v as i64).collect()
                } else {
                    t.raw_data.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64).collect()
                }
            }
            d if d == DataType::Int64 as i32 => {
                if t.raw_data.is_empty() {
                    t.int64_data.clone()
                } else {
                    t.raw_data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()
                }
            }
            _ => return Err(bad(format!("'{name}' is not an integer tensor"))),
        })
    }

    fn producer(&self, output: &str) -> Option<&pb::NodeProto> {
        self.nodes.iter().find(|n| n.output.iter().any(|o| o == output))
    }

    fn consumers<'a>(&'a self, input: &'a str) -> impl Iterator<Item = &'a pb::NodeProto> + 'a {
        self.nodes.iter().filter(move |n| n.input.iter().any(|i| i == input))
    }
}

/// A Conv node's (weight dims, weight, bias, pads, dilations).
type ConvNode = (Vec<usize>, Vec<f32>, Vec<f32>, Vec<i64>, Vec<i64>);

fn attr_ints(node: &pb::NodeProto, name: &str) -> Option<Vec<i64>> {
    node.attribute.iter().find(|a| a.name == name).map(|a| if a.ints.is_empty() { vec![a.i] } else { a.ints.clone() })
}

/// A convolution's weights packed for the kernel: `[c_out / OB][c_in][kw][kh][OB]`.
#[derive(Clone, Debug)]
struct Conv {
    c_out: usize,
    c_in: usize,
    kh: usize,
    kw: usize,
    ph: usize,
    pw: usize,
    dil: usize,
    /// The graph's `[c_out][c_in][kh][kw]`.
    weight: Vec<f32>,
    bias: Vec<f32>,
    packed: Vec<f32>,
    /// For the Winograd kernel (3 time taps, output channels in blocks of [`WB3`]): per block,
    /// input channel and frequency tap, the four transformed time taps
    /// `[g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2]` of each output channel.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    wino: Vec<f32>,
}

/// Output channels computed together by the Winograd kernel.
const WB3: usize = 3;

/// Output channels computed together (every convolution run by the kernel has a multiple).
const OB: usize = 4;

impl Conv {
    /// `dims` the graph's `[c_out, c_in, kh, kw]`, `pad` (frequency, time) at the start.
    fn new(dims: [usize; 4], pad: (usize, usize), dil: usize, weight: Vec<f32>, bias: Vec<f32>) -> Self {
        let ([c_out, c_in, kh, kw], (ph, pw)) = (dims, pad);
        let mut packed = Vec::with_capacity(weight.len());
        if c_out.is_multiple_of(OB) {
            for blk in 0..c_out / OB {
                for c in 0..c_in {
                    for j in 0..kw {
                        for i in 0..kh {
                            for o in blk * OB..(blk + 1) * OB {
                                packed.push(weight[((o * c_in + c) * kh + i) * kw + j]);
                            }
                        }
                    }
                }
            }
        }
        let mut wino = Vec::new();
        if kw == 3 && c_out.is_multiple_of(WB3) {
            for blk in 0..c_out / WB3 {
                for c in 0..c_in {
                    for i in 0..kh {
                        let g = |o: usize, j: usize| weight[((o * c_in + c) * kh + i) * kw + j];
                        for k in 0..4 {
                            for o in blk * WB3..(blk + 1) * WB3 {
                                wino.push(match k {
                                    0 => g(o, 0),
                                    1 => (g(o, 0) + g(o, 1) + g(o, 2)) * 0.5,
                                    2 => (g(o, 0) - g(o, 1) + g(o, 2)) * 0.5,
                                    _ => g(o, 2),
                                });
                            }
                        }
                    }
                }
            }
        }
        Conv { c_out, c_in, kh, kw, ph, pw, dil, weight, bias, packed, wino }
    }
}

/// What the kernel does with its sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Epilogue {
    Linear,
    Relu,
    /// `out = relu(out + sum)`: a residual block's join, in place over its input.
    AddRelu,
}

/// The geometry of one run over planes of `cap` rows (a zero row, `n` frames, two zero rows).
#[derive(Clone, Copy)]
struct Geom {
    n: usize,
    plane: usize,
    /// Frequency outputs (128, or 95 in the pitch head).
    oh: usize,
}

/// Runs `conv` over the planes `input` into `out` with the given build of the kernel.
/// `scratch` holds [`scratch_len`] floats (the Winograd kernel's transformed input rows).
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn conv_run(conv: &Conv, isa: Isa, g: Geom, input: &[f32], out: &mut [f32], ep: Epilogue, scratch: &mut [f32]) {
    assert!(conv.c_out.is_multiple_of(OB), "the kernel runs blocks of {OB} output channels");
    assert!(conv.packed.len() == conv.c_out * conv.c_in * conv.kh * conv.kw && conv.bias.len() == conv.c_out, "packed weights");
    assert!(input.len() >= conv.c_in * g.plane && out.len() >= conv.c_out * g.plane && g.plane >= (g.n + 3) * ROW, "plane sizes");
    // Every tap of every output block (blocks of 16 or 64 bands, dividing 128) reads inside its
    // row's zero padding, and the time taps inside the zero rows around the frames.
    assert!(conv.ph <= PADF && (conv.kh - 1) * conv.dil <= PADF + conv.ph && g.oh <= BANDS, "frequency taps within the row padding");
    assert!(conv.kw == 2 * conv.pw + 1 && conv.pw <= 1, "time taps within the zero rows");
    match isa {
        // SAFETY: `Isa::Avx2`/`Avx512` are chosen only where the CPU has the features
        // (`NativeSwiftF0::with_isa` checks `Isa::supported`); the kernels load and store only
        // inside slices they took (checked) of `input`, `out` and the packed weights.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if !conv.wino.is_empty() && g.oh == BANDS => unsafe { x86::winograd_avx512::<WB3, 2>(conv, g, input, out, ep, scratch) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::conv_avx512::<OB, 4>(conv, g, input, out, ep) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if !conv.wino.is_empty() && g.oh == BANDS => unsafe { x86::winograd_avx2::<WB3, 1>(conv, g, input, out, ep, scratch) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::conv_avx2::<OB, 2>(conv, g, input, out, ep) },
        _ => conv_planes::<16, { cfg!(target_arch = "aarch64") }>(conv, g, input, out, ep),
    }
}

/// Scratch floats [`conv_run`] needs for convolutions of up to `c_in` input channels.
fn scratch_len(c_in: usize) -> usize {
    c_in * 4 * ROW
}

/// The kernel with explicit AVX2 / AVX-512 vectors: `OB x NV` vector accumulators held in
/// registers (the portable loop's accumulator array stays in registers only up to 128 floats,
/// too few for AVX-512's 32 registers).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Conv, Epilogue, Geom, PADF, ROW};
    use std::arch::x86_64::*;

    macro_rules! kernel {
        ($name:ident, $feat:literal, $v:ty, $lanes:expr, $set1:ident, $load:ident, $store:ident, $fmadd:ident, $max:ident, $add:ident) => {
            /// # Safety
            /// The CPU has the features; `conv_run`'s checks hold.
            #[target_feature(enable = $feat)]
            pub unsafe fn $name<const OB: usize, const NV: usize>(conv: &Conv, g: Geom, input: &[f32], out: &mut [f32], ep: Epilogue) {
                const L: usize = $lanes;
                let wb = NV * L;
                let taps = conv.c_in * conv.kh * conv.kw;
                let span = (conv.kh - 1) * conv.dil + wb;
                // Frames outermost: the rows a frame reads stay in cache for every block.
                for t in 0..g.n {
                    for blk in 0..conv.c_out / OB {
                        let wblk = &conv.packed[blk * taps * OB..][..taps * OB];
                        let mut x0 = 0;
                        while x0 < g.oh {
                            let mut acc = [[$set1(0.0); NV]; OB];
                            for o in 0..OB {
                                acc[o] = [$set1(conv.bias[blk * OB + o]); NV];
                            }
                            let mut wp = wblk.as_ptr();
                            for c in 0..conv.c_in {
                                for j in 0..conv.kw {
                                    let base = c * g.plane + (t + 1 + j - conv.pw) * ROW + PADF + x0 - conv.ph;
                                    let win = &input[base..base + span];
                                    let mut p = win.as_ptr();
                                    for _ in 0..conv.kh {
                                        let mut src = [$set1(0.0); NV];
                                        for v in 0..NV {
                                            src[v] = $load(p.add(v * L));
                                        }
                                        for o in 0..OB {
                                            let w = $set1(*wp.add(o));
                                            for v in 0..NV {
                                                acc[o][v] = $fmadd(w, src[v], acc[o][v]);
                                            }
                                        }
                                        wp = wp.add(OB);
                                        p = p.add(conv.dil);
                                    }
                                }
                            }
                            let valid = wb.min(g.oh - x0);
                            for o in 0..OB {
                                let dst = &mut out[(blk * OB + o) * g.plane + (t + 1) * ROW + PADF + x0..][..valid];
                                for v in 0..NV {
                                    let mut a = acc[o][v];
                                    let n = L.min(valid.saturating_sub(v * L));
                                    if n == 0 {
                                        break;
                                    }
                                    let d = dst[v * L..v * L + n].as_mut_ptr();
                                    if n == L {
                                        match ep {
                                            Epilogue::Linear => {}
                                            Epilogue::Relu => a = $max(a, $set1(0.0)),
                                            Epilogue::AddRelu => a = $max($add(a, $load(d)), $set1(0.0)),
                                        }
                                        $store(d, a);
                                    } else {
                                        let mut lanes = [0.0f32; L];
                                        $store(lanes.as_mut_ptr(), a);
                                        for (k, &x) in lanes[..n].iter().enumerate() {
                                            let y = &mut *d.add(k);
                                            *y = match ep {
                                                Epilogue::Linear => x,
                                                Epilogue::Relu => x.max(0.0),
                                                Epilogue::AddRelu => (*y + x).max(0.0),
                                            };
                                        }
                                    }
                                }
                            }
                            x0 += wb;
                        }
                    }
                }
            }
        };
    }

    macro_rules! winograd {
        ($name:ident, $feat:literal, $lanes:expr, $set1:ident, $load:ident, $store:ident, $fmadd:ident, $max:ident, $add:ident, $sub:ident) => {
            /// Two frames at a time with Winograd's F(2, 3) along time: for input rows `d0..d3`
            /// (frames `t - 1 .. t + 2`) the transformed rows `d0 - d2, d1 + d2, d2 - d1, d1 - d3` times
            /// the transformed taps give the frames `t` and `t + 1` with 4 products where the direct
            /// sum takes 6 (3 time taps are 2/3 of the trunk's work). The CPU does at most 16 lanes of
            /// multiply-add a cycle here with AVX2 or AVX-512 alike, so fewer products is what counts.
            ///
            /// # Safety
            /// The CPU has the features; `conv_run`'s checks hold; `conv.wino` is packed for `OB`.
            #[target_feature(enable = $feat)]
            #[allow(clippy::needless_range_loop)] // `o` and `v` index the four products alike
            pub unsafe fn $name<const OB: usize, const NV: usize>(conv: &Conv, g: Geom, input: &[f32], out: &mut [f32], ep: Epilogue, u: &mut [f32]) {
                const L: usize = $lanes;
                let wb = NV * L;
                assert!(conv.kw == 3 && conv.pw == 1 && g.oh.is_multiple_of(wb) && conv.wino.len() == conv.c_out * conv.c_in * conv.kh * 4);
                let (ci, kh, dil) = (conv.c_in, conv.kh, conv.dil);
                let taps = ci * kh * 4;
                let u = &mut u[..ci * 4 * ROW];
                let span = 3 * ROW + (kh - 1) * dil + wb;
                let mut t = 0;
                while t < g.n {
                    for c in 0..ci {
                        let rows = &input[c * g.plane + t * ROW..][..4 * ROW];
                        let (d0, rest) = rows.split_at(ROW);
                        let (d1, rest) = rest.split_at(ROW);
                        let (d2, d3) = rest.split_at(ROW);
                        let (u0, rest) = u[c * 4 * ROW..][..4 * ROW].split_at_mut(ROW);
                        let (u1, rest) = rest.split_at_mut(ROW);
                        let (u2, u3) = rest.split_at_mut(ROW);
                        for x in 0..ROW {
                            u0[x] = d0[x] - d2[x];
                            u1[x] = d1[x] + d2[x];
                            u2[x] = d2[x] - d1[x];
                            u3[x] = d1[x] - d3[x];
                        }
                    }
                    let second = t + 1 < g.n;
                    for blk in 0..conv.c_out / OB {
                        let wblk = &conv.wino[blk * taps * OB..][..taps * OB];
                        let mut x0 = 0;
                        while x0 < g.oh {
                            let mut m = [[[$set1(0.0); NV]; OB]; 4];
                            let mut wp = wblk.as_ptr();
                            for c in 0..ci {
                                let base = c * 4 * ROW + PADF + x0 - conv.ph;
                                let win = &u[base..base + span];
                                let mut p = win.as_ptr();
                                for _ in 0..kh {
                                    for (k, mk) in m.iter_mut().enumerate() {
                                        let mut src = [$set1(0.0); NV];
                                        for (v, s) in src.iter_mut().enumerate() {
                                            *s = $load(p.add(k * ROW + v * L));
                                        }
                                        for (o, mo) in mk.iter_mut().enumerate() {
                                            let w = $set1(*wp.add(k * OB + o));
                                            for v in 0..NV {
                                                mo[v] = $fmadd(w, src[v], mo[v]);
                                            }
                                        }
                                    }
                                    wp = wp.add(4 * OB);
                                    p = p.add(dil);
                                }
                            }
                            for o in 0..OB {
                                let b = $set1(conv.bias[blk * OB + o]);
                                let row = (blk * OB + o) * g.plane + PADF + x0;
                                for v in 0..NV {
                                    let y0 = $add(b, $add(m[0][o][v], $add(m[1][o][v], m[2][o][v])));
                                    let y1 = $add(b, $sub($sub(m[1][o][v], m[2][o][v]), m[3][o][v]));
                                    for (r, y) in [(t + 1, y0), (t + 2, y1)] {
                                        if r == t + 2 && !second {
                                            break;
                                        }
                                        let d = out[row + r * ROW + v * L..][..L].as_mut_ptr();
                                        let y = match ep {
                                            Epilogue::Linear => y,
                                            Epilogue::Relu => $max(y, $set1(0.0)),
                                            Epilogue::AddRelu => $max($add(y, $load(d)), $set1(0.0)),
                                        };
                                        $store(d, y);
                                    }
                                }
                            }
                            x0 += wb;
                        }
                    }
                    t += 2;
                }
            }
        };
    }

    winograd!(
        winograd_avx512,
        "avx512f,avx2,fma",
        16,
        _mm512_set1_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_fmadd_ps,
        _mm512_max_ps,
        _mm512_add_ps,
        _mm512_sub_ps
    );
    winograd!(winograd_avx2, "avx2,fma", 8, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps, _mm256_max_ps, _mm256_add_ps, _mm256_sub_ps);

    kernel!(conv_avx512, "avx512f,avx2,fma", __m512, 16, _mm512_set1_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_fmadd_ps, _mm512_max_ps, _mm512_add_ps);
    kernel!(conv_avx2, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps, _mm256_max_ps, _mm256_add_ps);
}

/// The convolution proper: for each block of `OB` output channels, frame and run of `WB`
/// frequency outputs, `OB x WB` accumulators; each tap is one contiguous load of `WB` inputs and
/// `OB` weights broadcast.
#[inline(always)]
fn conv_planes<const WB: usize, const FMA: bool>(conv: &Conv, g: Geom, input: &[f32], out: &mut [f32], ep: Epilogue) {
    let taps = conv.c_in * conv.kh * conv.kw;
    for blk in 0..conv.c_out / OB {
        let wblk = &conv.packed[blk * taps * OB..][..taps * OB];
        for t in 0..g.n {
            let mut x0 = 0;
            while x0 < g.oh {
                let mut acc = [[0.0f32; WB]; OB];
                for (o, a) in acc.iter_mut().enumerate() {
                    *a = [conv.bias[blk * OB + o]; WB];
                }
                let mut wpos = 0;
                for c in 0..conv.c_in {
                    for j in 0..conv.kw {
                        // Row `t + 1` holds frame `t`; the tap reads frame `t + j - pw`.
                        let base = c * g.plane + (t + 1 + j - conv.pw) * ROW + PADF + x0 - conv.ph;
                        let win = &input[base..base + (conv.kh - 1) * conv.dil + WB];
                        let wts = &wblk[wpos..wpos + conv.kh * OB];
                        wpos += conv.kh * OB;
                        for i in 0..conv.kh {
                            // SAFETY: `win` holds `(kh - 1) * dil + WB` floats and `wts` `kh * OB`
                            // (both sliced, so checked, above), and `i < kh`. Unchecked, the loop
                            // has no exit, so the accumulators stay in registers.
                            let (src, w) =
                                unsafe { (&*(win.as_ptr().add(i * conv.dil) as *const [f32; WB]), &*(wts.as_ptr().add(i * OB) as *const [f32; OB])) };
                            for o in 0..OB {
                                for l in 0..WB {
                                    acc[o][l] = madd::<FMA>(w[o], src[l], acc[o][l]);
                                }
                            }
                        }
                    }
                }
                let valid = WB.min(g.oh - x0);
                for (o, a) in acc.iter().enumerate() {
                    let dst = &mut out[(blk * OB + o) * g.plane + (t + 1) * ROW + PADF + x0..][..valid];
                    match ep {
                        Epilogue::Linear => dst.copy_from_slice(&a[..valid]),
                        Epilogue::Relu => dst.iter_mut().zip(a).for_each(|(d, &v)| *d = v.max(0.0)),
                        Epilogue::AddRelu => dst.iter_mut().zip(a).for_each(|(d, &v)| *d = (*d + v).max(0.0)),
                    }
                }
                x0 += WB;
            }
        }
    }
}

/// One analysis window: its FFT, window and filterbank (`[band] -> (bin, weight)` runs).
struct Spectrum {
    size: usize,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    /// `band_start[b]..band_start[b + 1]` index `bins`/`weights`.
    band_start: Vec<usize>,
    bins: Vec<usize>,
    weights: Vec<f32>,
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    magnitude: Vec<f32>,
}

impl Spectrum {
    fn new(size: usize, window: Vec<f32>, fb_index: &[i64], fb_value: &[f32], planner: &mut RealFftPlanner<f32>) -> Result<Self, ModelError> {
        let nbins = size / 2 + 1;
        if window.len() != size || fb_index.len() != fb_value.len() {
            return Err(bad(format!("the {size}-sample window or its filterbank has the wrong size")));
        }
        let mut entries: Vec<(usize, usize, f32)> = Vec::with_capacity(fb_index.len());
        let mut seen = std::collections::HashSet::new();
        for (&flat, &w) in fb_index.iter().zip(fb_value) {
            if flat < 0 || flat as usize >= nbins * BANDS || !seen.insert(flat) {
                return Err(bad(format!("the {size}-sample filterbank has an index out of range or twice ({flat})")));
            }
            let flat = flat as usize;
            entries.push((flat % BANDS, flat / BANDS, w));
        }
        // The graph's MatMul sums each band over the bins in order.
        entries.sort_by_key(|&(band, bin, _)| (band, bin));
        let mut band_start = vec![0; BANDS + 1];
        for &(band, _, _) in &entries {
            band_start[band + 1] += 1;
        }
        for b in 0..BANDS {
            band_start[b + 1] += band_start[b];
        }
        let fft = planner.plan_fft_forward(size);
        Ok(Spectrum {
            size,
            window,
            scratch: fft.make_scratch_vec(),
            spectrum: fft.make_output_vec(),
            fft,
            band_start,
            bins: entries.iter().map(|e| e.1).collect(),
            weights: entries.iter().map(|e| e.2).collect(),
            frame: vec![0.0; size],
            magnitude: vec![0.0; nbins],
        })
    }

    /// `ln(filterbank(|DFT(window * audio around 256 t)|) + eps)` into `bands`.
    fn bands(&mut self, audio: &[f32], t: usize, eps: f32, bands: &mut [f32]) {
        let start = (t * HOP) as isize - (self.size / 2) as isize;
        if start >= 0 && start as usize + self.size <= audio.len() {
            for ((f, &x), &w) in self.frame.iter_mut().zip(&audio[start as usize..]).zip(&self.window) {
                *f = x * w;
            }
        } else {
            for (j, f) in self.frame.iter_mut().enumerate() {
                let k = start + j as isize;
                *f = if k >= 0 && (k as usize) < audio.len() { audio[k as usize] * self.window[j] } else { 0.0 };
            }
        }
        self.fft.process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch).expect("buffers sized by the plan");
        for (m, c) in self.magnitude.iter_mut().zip(&self.spectrum) {
            *m = (c.re * c.re + c.im * c.im).sqrt();
        }
        for (b, out) in bands.iter_mut().enumerate() {
            let (from, to) = (self.band_start[b], self.band_start[b + 1]);
            let mut acc = 0.0f32;
            for (&k, &w) in self.bins[from..to].iter().zip(&self.weights[from..to]) {
                acc += self.magnitude[k] * w;
            }
            *out = acc + eps;
        }
        ln_in_place(bands);
    }
}

/// `x.ln()` for each of `xs`, vectorisable: the exponent and a mantissa `m` in [0.707, 1.414),
/// `ln m = 2 atanh((m - 1) / (m + 1))` by its series to the 21st power, in f64 (error below
/// 1e-18), rounded to f32: within one last bit of `f32::ln` (on 0.13% of values; glibc's `logf`
/// is not correctly rounded either). Zeros, negatives, subnormals and non-finite values go to
/// `f32::ln`.
fn ln_in_place(xs: &mut [f32]) {
    if !xs.iter().all(|x| x.is_normal() && *x > 0.0) {
        xs.iter_mut().for_each(|x| *x = x.ln());
        return;
    }
    for x in xs.iter_mut() {
        let bits = (*x as f64).to_bits();
        let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
        let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
        let big = m > std::f64::consts::SQRT_2;
        m = if big { m * 0.5 } else { m };
        e += big as i64;
        let f = (m - 1.0) / (m + 1.0);
        let f2 = f * f;
        let series = 1.0
            + f2 * (1.0 / 3.0
                + f2 * (1.0 / 5.0
                    + f2 * (1.0 / 7.0
                        + f2 * (1.0 / 9.0 + f2 * (1.0 / 11.0 + f2 * (1.0 / 13.0 + f2 * (1.0 / 15.0 + f2 * (1.0 / 17.0 + f2 * (1.0 / 19.0 + f2 / 21.0)))))))));
        *x = (e as f64 * std::f64::consts::LN_2 + 2.0 * f * series) as f32;
    }
}

/// SwiftF0 on its own: [`NativeSwiftF0::run`] gives the graph's two outputs.
pub struct NativeSwiftF0 {
    isa: Isa,
    spectra: Vec<Spectrum>,
    eps: f32,
    /// Convolutions in graph order: the 13 of the trunk, then the pitch head's three.
    convs: Vec<Conv>,
    /// The confidence head: 1-D convolutions `[16][5][3]` and `[1][16][1]`.
    conf1: Conv,
    conf2: Conv,
    /// Bands the pitch head reads (the lowest 96).
    head_bands: usize,
    /// The pitch bins' frequencies (f32, compared with fmin/fmax) and log frequencies (f64).
    bin_hz: Vec<f32>,
    bin_log_hz: Vec<f64>,
    /// Planes, `cap` rows each: the image, two trunk buffers, the head's two.
    cap: usize,
    image: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    h1: Vec<f32>,
    h2: Vec<f32>,
    scratch: Vec<f32>,
    /// Per frame: the image mean, the 4 maxima, the confidence head's hidden 16, the logits.
    mean: Vec<f32>,
    maxima: Vec<f32>,
    hidden: Vec<f32>,
    logits: Vec<f32>,
}

impl NativeSwiftF0 {
    pub fn from_bytes(onnx: &[u8]) -> Result<Self, ModelError> {
        Self::with_isa(onnx, Isa::best())
    }

    /// With a given build of the kernel (tests run each one the CPU has).
    pub fn with_isa(onnx: &[u8], isa: Isa) -> Result<Self, ModelError> {
        if !isa.supported() {
            return Err(bad(format!("{isa:?} is not available on this CPU")));
        }
        let model = pb::ModelProto::decode(onnx).map_err(bad)?;
        let graph = model.graph.ok_or_else(|| bad("no graph"))?;
        let g = Graph { init: graph.initializer.into_iter().map(|t| (t.name.clone(), t)).collect(), nodes: graph.node };

        // The convolutions, checked against the architecture this engine computes.
        let conv_nodes: Vec<&pb::NodeProto> = g.nodes.iter().filter(|n| n.op_type == "Conv").collect();
        if conv_nodes.len() != CONV2D.len() + 2 {
            return Err(bad(format!("{} convolutions where SwiftF0 has {}", conv_nodes.len(), CONV2D.len() + 2)));
        }
        let conv_of = |node: &pb::NodeProto, i: usize| -> Result<ConvNode, ModelError> {
            if node.input.len() != 3 {
                return Err(bad(format!("convolution {i} has no bias")));
            }
            let dims = g.dims(&node.input[1])?;
            let (w, b) = (g.f32s(&node.input[1])?, g.f32s(&node.input[2])?);
            let ones = vec![1i64; dims.len() - 2];
            if attr_ints(node, "group").unwrap_or(vec![1]) != [1]
                || attr_ints(node, "strides").unwrap_or(ones.clone()) != ones
                || node.attribute.iter().any(|a| a.name == "auto_pad" && !a.s.is_empty() && a.s != b"NOTSET")
                || b.len() != dims[0]
                || w.len() != dims.iter().product::<usize>()
            {
                return Err(bad(format!("convolution {i} is grouped, strided, auto-padded or has the wrong bias")));
            }
            let pads = attr_ints(node, "pads").unwrap_or(vec![0; 2 * (dims.len() - 2)]);
            let dil = attr_ints(node, "dilations").unwrap_or(ones);
            Ok((dims, w, b, pads, dil))
        };
        let mut convs = Vec::with_capacity(CONV2D.len());
        for (i, (node, &(co, ci, kh, kw, pads, dh))) in conv_nodes.iter().zip(&CONV2D).enumerate() {
            let (dims, w, b, p, d) = conv_of(node, i)?;
            let want_pads: Vec<i64> = pads.iter().map(|&v| v as i64).collect();
            if dims != [co, ci, kh, kw] || p != want_pads || d != [dh as i64, 1] {
                return Err(bad(format!(
                    "convolution {i} is {dims:?} pads {p:?} dilations {d:?}, where SwiftF0 0.3.0 has {:?} pads {pads:?} dilations [{dh}, 1]",
                    [co, ci, kh, kw]
                )));
            }
            // Asymmetric frequency padding (the pitch head's [1, 0]) only trims outputs, which
            // the head leaves out (95 of 96).
            convs.push(Conv::new([co, ci, kh, kw], (pads[0], pads[1]), dh, w, b));
        }
        let (c1dims, c1w, c1b, c1p, c1d) = conv_of(conv_nodes[16], 16)?;
        let (c2dims, c2w, c2b, c2p, c2d) = conv_of(conv_nodes[17], 17)?;
        if c1dims != [16, 5, 3] || c1p != [1, 1] || c1d != [1] || c2dims != [1, 16, 1] || c2p != [0, 0] || c2d != [1] {
            return Err(bad(format!("the confidence head is {c1dims:?} pads {c1p:?} and {c2dims:?} pads {c2p:?}, not [16, 5, 3] and [1, 16, 1]")));
        }
        let conf1 = Conv::new([16, 5, 1, 3], (0, 1), 1, c1w, c1b);
        let conf2 = Conv::new([1, 16, 1, 1], (0, 0), 1, c2w, c2b);

        // The pitch head reads the lowest bands: the Slice feeding its convolution.
        let slice = g.producer(&conv_nodes[13].input[0]).filter(|n| n.op_type == "Slice").ok_or_else(|| bad("the pitch head does not read a slice"))?;
        let (starts, ends) = (g.ints(&slice.input[1])?, g.ints(&slice.input[2])?);
        let axes = slice.input.get(3).map(|a| g.ints(a)).transpose()?;
        if starts != [0] || axes.as_deref() != Some(&[2]) || ends.len() != 1 || !(3..=BANDS as i64).contains(&ends[0]) {
            return Err(bad(format!("the pitch head reads bands {starts:?}..{ends:?} on axes {axes:?}")));
        }
        let head_bands = ends[0] as usize;
        if head_bands - 1 != BINS {
            return Err(bad(format!("the pitch head reads {head_bands} bands for {BINS} bins")));
        }

        // The windows: the Mul nodes by a float vector of a window's length.
        let mut windows: Vec<Vec<f32>> = Vec::new();
        for n in g.nodes.iter().filter(|n| n.op_type == "Mul") {
            for inp in &n.input {
                if let Ok(d) = g.dims(inp) {
                    if d.len() == 1 && WINDOWS.contains(&d[0]) && g.tensor(inp)?.data_type == pb::tensor_proto::DataType::Float as i32 {
                        windows.push(g.f32s(inp)?);
                    }
                }
            }
        }
        // The filterbanks: ScatterElements (indices, values) into zeros reshaped to bins x 128.
        let mut banks: Vec<(Vec<usize>, Vec<i64>, Vec<f32>)> = Vec::new();
        for n in g.nodes.iter().filter(|n| n.op_type == "ScatterElements") {
            let reshape = g.consumers(&n.output[0]).find(|r| r.op_type == "Reshape").ok_or_else(|| bad("a filterbank is not reshaped"))?;
            let shape: Vec<usize> = g.ints(&reshape.input[1])?.iter().map(|&v| v as usize).collect();
            banks.push((shape, g.ints(&n.input[1])?, g.f32s(&n.input[2])?));
        }
        if windows.iter().map(Vec::len).collect::<Vec<_>>() != WINDOWS
            || banks.iter().map(|b| b.0.clone()).collect::<Vec<_>>() != WINDOWS.map(|w| vec![w / 2 + 1, BANDS])
        {
            return Err(bad(format!(
                "windows of {:?} samples with filterbanks {:?}, where SwiftF0 has {WINDOWS:?}",
                windows.iter().map(Vec::len).collect::<Vec<_>>(),
                banks.iter().map(|b| b.0.clone()).collect::<Vec<_>>()
            )));
        }
        // The log's epsilon: the constant added before each Log.
        let mut eps = None;
        for n in g.nodes.iter().filter(|n| n.op_type == "Log") {
            let add = g.producer(&n.input[0]).filter(|a| a.op_type == "Add").ok_or_else(|| bad("a Log without its epsilon"))?;
            let e = add.input.iter().find_map(|i| g.f32s(i).ok()).ok_or_else(|| bad("a Log without its epsilon"))?;
            if e.len() != 1 || eps.is_some_and(|v| v != e[0]) {
                return Err(bad("the Logs' epsilons differ"));
            }
            eps = Some(e[0]);
        }
        let eps = eps.ok_or_else(|| bad("no Log"))?;
        // The bins: compared with fmin (GreaterOrEqual), their logs gathered (float64).
        let ge = g.nodes.iter().find(|n| n.op_type == "GreaterOrEqual").ok_or_else(|| bad("no pitch range mask"))?;
        let bin_hz = g.f32s(&ge.input[0])?;
        let bin_log_hz =
            g.nodes.iter().filter(|n| n.op_type == "Gather").find_map(|n| g.f64s(&n.input[0]).ok()).ok_or_else(|| bad("no log frequencies of the bins"))?;
        if bin_hz.len() != BINS || bin_log_hz.len() != BINS {
            return Err(bad(format!("{} / {} pitch bins where SwiftF0 has {BINS}", bin_hz.len(), bin_log_hz.len())));
        }

        let mut planner = RealFftPlanner::<f32>::new();
        let spectra = windows
            .into_iter()
            .zip(banks)
            .zip(WINDOWS)
            .map(|((w, (_, idx, val)), size)| Spectrum::new(size, w, &idx, &val, &mut planner))
            .collect::<Result<Vec<_>, _>>()?;
        let mut engine = NativeSwiftF0 {
            isa,
            spectra,
            eps,
            convs,
            conf1,
            conf2,
            head_bands,
            bin_hz,
            bin_log_hz,
            cap: 0,
            image: Vec::new(),
            a: Vec::new(),
            b: Vec::new(),
            h1: Vec::new(),
            h2: Vec::new(),
            scratch: vec![0.0; scratch_len(CH)],
            mean: Vec::new(),
            maxima: Vec::new(),
            hidden: Vec::new(),
            logits: Vec::new(),
        };
        engine.reserve(1);
        Ok(engine)
    }

    /// Planes for `n` frames (kept: a longer run grows them, a shorter one uses a part).
    fn reserve(&mut self, n: usize) {
        if n + 3 <= self.cap {
            return;
        }
        self.cap = n + 3;
        let plane = self.cap * ROW;
        self.image = vec![0.0; 3 * plane];
        self.a = vec![0.0; CH * plane];
        self.b = vec![0.0; CH * plane];
        self.h1 = vec![0.0; HEAD * plane];
        self.h2 = vec![0.0; HEAD * plane];
        self.mean = vec![0.0; n];
        self.maxima = vec![0.0; HEAD * n];
        self.hidden = vec![0.0; 16 * n];
        self.logits = vec![0.0; BINS * n];
    }

    /// The graph on `audio` (16 kHz): pitch (Hz) and confidence for `max(1, len / 256)` frames,
    /// appended to `pitch` and `confidence`.
    pub fn run(&mut self, audio: &[f32], fmin: f32, fmax: f32, pitch: &mut Vec<f32>, confidence: &mut Vec<f32>) {
        let n = (audio.len() / HOP).max(1);
        self.reserve(n);
        let plane = self.cap * ROW;
        // The zero rows after the frames (a longer run may have written them).
        for buf in [&mut self.image, &mut self.a, &mut self.b, &mut self.h1, &mut self.h2] {
            for c in 0..buf.len() / plane {
                buf[c * plane + (n + 1) * ROW..][..2 * ROW].fill(0.0);
            }
        }

        // The image, and its mean per frame over channels and bands.
        for (s, spec) in self.spectra.iter_mut().enumerate() {
            for t in 0..n {
                spec.bands(audio, t, self.eps, &mut self.image[s * plane + (t + 1) * ROW + PADF..][..BANDS]);
            }
        }
        for t in 0..n {
            let mut sum = 0.0f32;
            for s in 0..3 {
                sum += self.image[s * plane + (t + 1) * ROW + PADF..][..BANDS].iter().sum::<f32>();
            }
            self.mean[t] = sum / (3 * BANDS) as f32;
        }

        // The trunk: a convolution, then six residual blocks joined in place.
        let full = Geom { n, plane, oh: BANDS };
        conv_run(&self.convs[0], self.isa, full, &self.image, &mut self.a, Epilogue::Relu, &mut self.scratch);
        for k in 0..6 {
            conv_run(&self.convs[1 + 2 * k], self.isa, full, &self.a, &mut self.b, Epilogue::Relu, &mut self.scratch);
            conv_run(&self.convs[2 + 2 * k], self.isa, full, &self.b, &mut self.a, Epilogue::AddRelu, &mut self.scratch);
        }

        // The pitch head on the lowest bands: 95 outputs (its frequency padding is [1, 0]).
        let head = Geom { n, plane, oh: self.head_bands - 1 };
        conv_run(&self.convs[13], self.isa, head, &self.a, &mut self.h1, Epilogue::Relu, &mut self.scratch);
        conv_run(&self.convs[14], self.isa, head, &self.h1, &mut self.h2, Epilogue::Linear, &mut self.scratch);
        let (c16, row) = (&self.convs[15], |c: usize, t: usize| c * plane + (t + 1) * ROW + PADF);
        for t in 0..n {
            let logits = &mut self.logits[t * BINS..][..BINS];
            logits.fill(c16.bias[0]);
            for c in 0..HEAD {
                let w = c16.weight[c];
                for (l, &x) in logits.iter_mut().zip(&self.h1[row(c, t)..][..BINS]) {
                    *l += w * x;
                }
            }
            for c in 0..HEAD {
                self.maxima[c * n + t] = self.h2[row(c, t)..][..BINS].iter().copied().fold(f32::NEG_INFINITY, f32::max);
            }
        }

        // The confidence head: [maxima, mean] -> 1-D conv (k 3, pad 1) -> ReLU -> 1x1 -> sigmoid.
        let feature = |c: usize, t: isize| -> f32 {
            if t < 0 || t >= n as isize {
                0.0
            } else if c < HEAD {
                self.maxima[c * n + t as usize]
            } else {
                self.mean[t as usize]
            }
        };
        for t in 0..n {
            for o in 0..16 {
                let mut acc = self.conf1.bias[o];
                for c in 0..5 {
                    for j in 0..3 {
                        acc += self.conf1.weight[(o * 5 + c) * 3 + j] * feature(c, t as isize + j as isize - 1);
                    }
                }
                self.hidden[o * n + t] = acc.max(0.0);
            }
        }

        for t in 0..n {
            let mut z = self.conf2.bias[0];
            for o in 0..16 {
                z += self.conf2.weight[o] * self.hidden[o * n + t];
            }
            let logits = &self.logits[t * BINS..][..BINS];
            let inside = |k: usize| self.bin_hz[k] >= fmin && self.bin_hz[k] <= fmax;
            // ArgMax (the first maximum) over the logits in range, the others -inf.
            let masked = |k: isize| if k >= 0 && (k as usize) < BINS && inside(k as usize) { logits[k as usize] } else { f32::NEG_INFINITY };
            let mut best = 0;
            for k in 1..BINS {
                if masked(k as isize) > masked(best as isize) {
                    best = k;
                }
            }
            let three = [-1isize, 0, 1].map(|d| masked(best as isize + d) as f64);
            let top = three.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e = three.map(|v| (v - top).exp());
            let sum: f64 = e.iter().sum();
            let mut log_hz = 0.0f64;
            for (d, &ev) in e.iter().enumerate() {
                let k = (best as isize + d as isize - 1).clamp(0, BINS as isize - 1) as usize;
                log_hz += ev / sum * self.bin_log_hz[k];
            }
            pitch.push(log_hz.exp() as f32);
            let mut overall = 0;
            for k in 1..BINS {
                if logits[k] > logits[overall] {
                    overall = k;
                }
            }
            confidence.push(if inside(overall) { 1.0 / (1.0 + (-z).exp()) } else { 0.0 });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a frame costs with each build of the kernel, in windows of 26 and of 271 frames:
    /// `cargo test --release --lib pitch::native::tests::profile -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn profile() {
        let audio: Vec<f32> = (0..16000 * 20).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
        for isa in Isa::available() {
            let mut e = NativeSwiftF0::with_isa(super::super::SWIFT_F0_ONNX, isa).unwrap();
            let (mut p, mut c) = (vec![], vec![]);
            for frames in [26, 271] {
                e.run(&audio[..frames * HOP], 46.0, 2100.0, &mut p, &mut c);
                let runs = 2600 / frames;
                let t = std::time::Instant::now();
                for k in 0..runs {
                    p.clear();
                    c.clear();
                    e.run(&audio[k * 1000..k * 1000 + frames * HOP], 46.0, 2100.0, &mut p, &mut c);
                }
                eprintln!("{isa:?}, windows of {frames} frames: {:.1} us a frame", t.elapsed().as_secs_f64() * 1e6 / (runs * frames) as f64);
            }
        }
    }

    /// The definition, for tests: a `[c][n][128]` input, zero outside, into `[c_out][n][oh]`.
    fn reference(conv: &Conv, input: &[f32], n: usize, oh: usize) -> Vec<f32> {
        let mut out = vec![0.0; conv.c_out * n * oh];
        for o in 0..conv.c_out {
            for t in 0..n {
                for y in 0..oh {
                    let mut acc = conv.bias[o] as f64;
                    for c in 0..conv.c_in {
                        for i in 0..conv.kh {
                            for j in 0..conv.kw {
                                let (yy, tt) = ((y + i * conv.dil) as isize - conv.ph as isize, (t + j) as isize - conv.pw as isize);
                                if yy >= 0 && (yy as usize) < BANDS && tt >= 0 && (tt as usize) < n {
                                    acc += (conv.weight[((o * conv.c_in + c) * conv.kh + i) * conv.kw + j] * input[(c * n + tt as usize) * BANDS + yy as usize])
                                        as f64;
                                }
                            }
                        }
                    }
                    out[(o * n + t) * oh + y] = acc as f32;
                }
            }
        }
        out
    }

    #[test]
    fn each_kernel_build_matches_the_definition() {
        let mut seed = 12345u64;
        let mut rand = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for &(co, ci, kh, kw, pads, dil) in &CONV2D[..15] {
            let weight: Vec<f32> = (0..co * ci * kh * kw).map(|_| rand()).collect();
            let bias: Vec<f32> = (0..co).map(|_| rand()).collect();
            let conv = Conv::new([co, ci, kh, kw], (pads[0], pads[1]), dil, weight, bias);
            for n in [1, 3, 26] {
                let oh = if pads[2] == 0 { BANDS - 1 - 32 } else { BANDS };
                let input: Vec<f32> = (0..ci * n * BANDS).map(|_| rand()).collect();
                let want = reference(&conv, &input, n, oh);
                for isa in Isa::available() {
                    let plane = (n + 3) * ROW;
                    let mut planes = vec![0.0; ci * plane];
                    for c in 0..ci {
                        for t in 0..n {
                            planes[c * plane + (t + 1) * ROW + PADF..][..BANDS].copy_from_slice(&input[(c * n + t) * BANDS..][..BANDS]);
                        }
                    }
                    let mut out = vec![0.0; co * plane];
                    conv_run(&conv, isa, Geom { n, plane, oh }, &planes, &mut out, Epilogue::Linear, &mut vec![0.0; scratch_len(ci)]);
                    for o in 0..co {
                        for t in 0..n {
                            for y in 0..oh {
                                let (got, w) = (out[o * plane + (t + 1) * ROW + PADF + y], want[(o * n + t) * oh + y]);
                                assert!((got - w).abs() <= 1e-4 * (1.0 + w.abs()), "{isa:?} {co}x{ci}x{kh}x{kw} n {n}: {got} vs {w} at {o},{t},{y}");
                            }
                            // Nothing written outside the outputs.
                            let r = &out[o * plane + (t + 1) * ROW..][..ROW];
                            assert!(r[..PADF].iter().chain(&r[PADF + oh..]).all(|&v| v == 0.0), "{isa:?}: padding written");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_vectorised_log_is_f32_ln() {
        let mut xs: Vec<f32> = (0..200_000).map(|k| 1e-8 * 1.0001f32.powi(k)).collect();
        xs.extend([1.0, 2.0, 0.5, std::f32::consts::SQRT_2, 1.4142134, 1.4142137, 3e38, 1.2e-38]);
        let mut got = xs.clone();
        ln_in_place(&mut got);
        let mut ulps = 0;
        for (x, g) in xs.iter().zip(&got) {
            let want = x.ln();
            let d = (g.to_bits() as i64 - want.to_bits() as i64).abs();
            assert!(d <= 1, "ln {x}: {g} vs {want}");
            ulps += d;
        }
        assert!(ulps < xs.len() as i64 / 200, "{ulps} last-bit differences in {}", xs.len());
        let mut odd = vec![0.0, -1.0, f32::NAN, 1e-40, 2.0];
        ln_in_place(&mut odd);
        assert!(odd[0] == f32::NEG_INFINITY && odd[1].is_nan() && odd[2].is_nan() && (odd[3] - 1e-40f32.ln()).abs() < 1e-5 && odd[4] == 2f32.ln());
    }

    #[test]
    fn a_graph_of_another_shape_is_refused() {
        let mut model = pb::ModelProto::decode(super::super::SWIFT_F0_ONNX).unwrap();
        let graph = model.graph.as_mut().unwrap();
        let conv = graph.node.iter().find(|n| n.op_type == "Conv").unwrap().input[1].clone();
        let t = graph.initializer.iter_mut().find(|t| t.name == conv).unwrap();
        t.dims[0] = 6;
        let mut bytes = Vec::new();
        model.encode(&mut bytes).unwrap();
        let err = NativeSwiftF0::from_bytes(&bytes).err().expect("refused").to_string();
        assert!(err.contains("convolution 0"), "{err}");
        assert!(NativeSwiftF0::from_bytes(b"not a model").is_err());
    }
}
