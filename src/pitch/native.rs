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
//! on both sides of the 128 bands and whose planes carry a zero row before and after the frames,
//! so every tap of a block of outputs is one contiguous load. The kernel is a loop over fixed-size
//! arrays that the compiler vectorises; on x86-64 it is compiled again for AVX2 + FMA and for
//! AVX-512 and chosen at run time (the only `unsafe`, after the CPU was seen to have the
//! features); each build is tested against a scalar reference below.

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

/// Which build of the convolution kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Baseline,
    Avx2,
    Avx512,
}

impl Isa {
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

    pub fn best() -> Isa {
        static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| *Isa::available().last().expect("the baseline is always there"))
    }
}

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
}

/// Output channels computed together (every convolution run by the kernel has a multiple).
const OB: usize = 4;

impl Conv {
    fn new(c_out: usize, c_in: usize, kh: usize, kw: usize, ph: usize, pw: usize, dil: usize, weight: Vec<f32>, bias: Vec<f32>) -> Self {
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
        Conv { c_out, c_in, kh, kw, ph, pw, dil, weight, bias, packed }
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

/// The geometry of one run over planes of `cap` rows (`n` frames and two zero rows used).
#[derive(Clone, Copy)]
struct Geom {
    n: usize,
    plane: usize,
    /// Frequency outputs (128, or 95 in the pitch head).
    oh: usize,
}

/// Runs `conv` over the planes `input` into `out` with the best build of the kernel.
fn conv_run(conv: &Conv, isa: Isa, g: Geom, input: &[f32], out: &mut [f32], ep: Epilogue) {
    assert!(conv.c_out.is_multiple_of(OB), "the kernel runs blocks of {OB} output channels");
    assert!(input.len() >= conv.c_in * g.plane && out.len() >= conv.c_out * g.plane, "plane sizes");
    assert!(conv.ph <= PADF && g.oh <= BANDS && conv.pw <= 1 && conv.kw <= 3);
    match isa {
        // SAFETY: `Isa::Avx2`/`Avx512` are chosen only where the CPU has the features
        // (`NativeSwiftF0::with_isa` checks `Isa::supported`).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { conv_avx512(conv, g, input, out, ep) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { conv_avx2(conv, g, input, out, ep) },
        _ => conv_planes::<16, { cfg!(target_arch = "aarch64") }>(conv, g, input, out, ep),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv_avx2(conv: &Conv, g: Geom, input: &[f32], out: &mut [f32], ep: Epilogue) {
    conv_planes::<16, true>(conv, g, input, out, ep)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn conv_avx512(conv: &Conv, g: Geom, input: &[f32], out: &mut [f32], ep: Epilogue) {
    conv_planes::<64, true>(conv, g, input, out, ep)
}

#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
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
                        for (i, w) in wts.chunks_exact(OB).enumerate() {
                            let w: &[f32; OB] = w.try_into().unwrap();
                            let src: &[f32; WB] = win[i * conv.dil..i * conv.dil + WB].try_into().unwrap();
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
        for (j, f) in self.frame.iter_mut().enumerate() {
            let k = start + j as isize;
            *f = if k >= 0 && (k as usize) < audio.len() { audio[k as usize] * self.window[j] } else { 0.0 };
        }
        self.fft.process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch).expect("buffers sized by the plan");
        for (m, c) in self.magnitude.iter_mut().zip(&self.spectrum) {
            *m = (c.re * c.re + c.im * c.im).sqrt();
        }
        for (b, out) in bands.iter_mut().enumerate() {
            let mut acc = 0.0f32;
            for k in self.band_start[b]..self.band_start[b + 1] {
                acc += self.magnitude[self.bins[k]] * self.weights[k];
            }
            *out = (acc + eps).ln();
        }
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
        let conv_of = |node: &pb::NodeProto, i: usize| -> Result<(Vec<usize>, Vec<f32>, Vec<f32>, Vec<i64>, Vec<i64>), ModelError> {
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
            convs.push(Conv::new(co, ci, kh, kw, pads[0], pads[1], dh, w, b));
        }
        let (c1dims, c1w, c1b, c1p, c1d) = conv_of(conv_nodes[16], 16)?;
        let (c2dims, c2w, c2b, c2p, c2d) = conv_of(conv_nodes[17], 17)?;
        if c1dims != [16, 5, 3] || c1p != [1, 1] || c1d != [1] || c2dims != [1, 16, 1] || c2p != [0, 0] || c2d != [1] {
            return Err(bad(format!("the confidence head is {c1dims:?} pads {c1p:?} and {c2dims:?} pads {c2p:?}, not [16, 5, 3] and [1, 16, 1]")));
        }
        let conf1 = Conv::new(16, 5, 1, 3, 0, 1, 1, c1w, c1b);
        let conf2 = Conv::new(1, 16, 1, 1, 0, 0, 1, c2w, c2b);

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
        if n + 2 <= self.cap {
            return;
        }
        self.cap = n + 2;
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
        // The zero row after the frames (a longer run may have written it).
        for buf in [&mut self.image, &mut self.a, &mut self.b, &mut self.h1, &mut self.h2] {
            for c in 0..buf.len() / plane {
                buf[c * plane + (n + 1) * ROW..][..ROW].fill(0.0);
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
        conv_run(&self.convs[0], self.isa, full, &self.image, &mut self.a, Epilogue::Relu);
        for k in 0..6 {
            conv_run(&self.convs[1 + 2 * k], self.isa, full, &self.a, &mut self.b, Epilogue::Relu);
            conv_run(&self.convs[2 + 2 * k], self.isa, full, &self.b, &mut self.a, Epilogue::AddRelu);
        }

        // The pitch head on the lowest bands: 95 outputs (its frequency padding is [1, 0]).
        let head = Geom { n, plane, oh: self.head_bands - 1 };
        conv_run(&self.convs[13], self.isa, head, &self.a, &mut self.h1, Epilogue::Relu);
        conv_run(&self.convs[14], self.isa, head, &self.h1, &mut self.h2, Epilogue::Linear);
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
            let conv = Conv::new(co, ci, kh, kw, pads[0], pads[1], dil, weight, bias);
            for n in [1, 3, 26] {
                let oh = if pads[2] == 0 { BANDS - 1 - 32 } else { BANDS };
                let input: Vec<f32> = (0..ci * n * BANDS).map(|_| rand()).collect();
                let want = reference(&conv, &input, n, oh);
                for isa in Isa::available() {
                    let plane = (n + 2) * ROW;
                    let mut planes = vec![0.0; ci * plane];
                    for c in 0..ci {
                        for t in 0..n {
                            planes[c * plane + (t + 1) * ROW + PADF..][..BANDS].copy_from_slice(&input[(c * n + t) * BANDS..][..BANDS]);
                        }
                    }
                    let mut out = vec![0.0; co * plane];
                    conv_run(&conv, isa, Geom { n, plane, oh }, &planes, &mut out, Epilogue::Linear);
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
