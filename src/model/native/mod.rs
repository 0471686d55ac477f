//! The native Basic Pitch engine: the whole of `nmp.onnx` computed in Rust, no graph runtime.
//!
//! Owns the arithmetic of one window, in the graph's order: the in-graph CQT (nnAudio CQT2010v2:
//! for each of 9 octaves, reflect-pad 128, 36 complex 256-tap bin filters at the octave's hop, then
//! zero-pad 127 and a stride-2 256-tap lowpass down to the next octave), the magnitude of the 309
//! kept bins with their scale, `NormalizedLog` (dB, then the window's own min and max), the batch
//! norm after it (one scale and offset, fused into the stacking pass), harmonic stacking (8 shifted
//! copies), and the six convolutions of the network with their ReLU/sigmoid fused
//! ([`kernels`]). Every constant is read from the embedded ONNX file at load ([`weights`]); the
//! buffers are sized for the longest window at load, so running a window allocates nothing.
//! Windows of any length the other backends accept ([`super::check_window`]) run; outputs agree
//! with ONNX Runtime's within 1e-4 (tests/native_parity.rs).

pub mod kernels;
pub mod stream;
pub mod weights;
#[cfg(target_arch = "x86_64")]
mod zmm;

use super::{check_window, window_samples, FrameStreamer, ModelError, NoteModel, StreamSettings, WindowFrames, FRAMES_PER_WINDOW};
use crate::notes::{N_CONTOUR_BINS, N_KEYS};
use kernels::{Act, Conv, CqtBank, Lowpass};
use std::sync::Arc;
use weights::Weights;

/// CQT bins per octave, octaves, taps of every CQT filter and of the lowpass.
const BINS: usize = 36;
const OCTAVES: usize = 9;
const TAPS: usize = 256;
/// Reflect padding before the bin filters; zero padding before the lowpass.
const REFLECT: usize = 128;
const LOWPASS_PAD: usize = 127;
/// Harmonic-stacking channels.
const HARMONICS: usize = 8;

pub struct NativeModel {
    /// The constants, shared with Live's streaming engines ([`stream::NativeStream`]).
    net: Arc<Net>,
    bufs: Buffers,
}

/// What the engine computes with: the CQT's bank and lowpass, the constants, the six convolutions.
pub(crate) struct Net {
    /// Real filters `[36][256]` then imaginary `[36][256]`.
    bank: CqtBank,
    /// The anti-aliasing lowpass: zero pad 127, stride 2.
    lowpass: Lowpass,
    bin_scale: Vec<f32>,
    w: Weights,
    onset_stack: Conv,
    contour_hidden: Conv,
    contour_out: Conv,
    note_hidden: Conv,
    note_out: Conv,
    onset_out: Conv,
}

/// Every intermediate, sized for the full window.
struct Buffers {
    signal: Vec<f32>,
    next: Vec<f32>,
    padded: Vec<f32>,
    /// `[octave][frame][re 36, im 36]`.
    cqt: Vec<f32>,
    /// Log-magnitude, normalised, `[frame][309]`.
    spec: Vec<f32>,
    /// `[8][frame][264]`.
    stack: Vec<f32>,
    /// `[8][frame][264]`.
    contour_hidden: Vec<f32>,
    /// `[32][frame][88]`.
    note_hidden: Vec<f32>,
    /// `[note, 32 x onset_stack][frame][88]`.
    cat: Vec<f32>,
    scratch: Vec<f32>,
}

impl NativeModel {
    pub fn from_bytes(onnx: &[u8]) -> Result<Self, ModelError> {
        let w = Weights::from_onnx(onnx)?;
        let n_bins = w.bin_scale.len();
        if n_bins + w.harmonic_shifts.iter().copied().filter(|&s| s > 0).max().unwrap_or(0) as usize <= N_CONTOUR_BINS {
            return Err(ModelError::Load("native engine: the CQT is narrower than the contour".into()));
        }
        let mut bank = w.cqt_real.data.clone();
        bank.extend_from_slice(&w.cqt_imag.data);
        let bank = CqtBank::new(&bank);
        let lowpass = Lowpass::new(&w.lowpass, LOWPASS_PAD);
        let convs = [&w.onset_stack, &w.contour_hidden, &w.contour_out, &w.note_hidden, &w.note_out, &w.onset_out].map(Conv::new);
        let [onset_stack, contour_hidden, contour_out, note_hidden, note_out, onset_out] = convs;
        // The channel counts chain as the graph chains them.
        let chain_ok = onset_stack.c_in() == HARMONICS
            && contour_hidden.c_in() == HARMONICS
            && contour_out.c_in() == contour_hidden.c_out()
            && contour_out.c_out() == 1
            && note_hidden.c_in() == 1
            && note_out.c_in() == note_hidden.c_out()
            && note_out.c_out() == 1
            && onset_out.c_in() == 1 + onset_stack.c_out()
            && onset_out.c_out() == 1
            && onset_stack.out_w(N_CONTOUR_BINS) == N_KEYS
            && note_hidden.out_w(N_CONTOUR_BINS) == N_KEYS;
        if !chain_ok {
            return Err(ModelError::Load("native engine: the network's layers do not chain as Basic Pitch's".into()));
        }
        let t = FRAMES_PER_WINDOW;
        let n = window_samples(t);
        let scratch = [
            onset_stack.scratch_len(t, N_CONTOUR_BINS),
            contour_hidden.scratch_len(t, N_CONTOUR_BINS),
            contour_out.scratch_len(t, N_CONTOUR_BINS),
            note_hidden.scratch_len(t, N_CONTOUR_BINS),
            note_out.scratch_len(t, N_KEYS),
            onset_out.scratch_len(t, N_KEYS),
            lowpass.scratch_len(n),
        ]
        .into_iter()
        .max()
        .unwrap();
        let bufs = Buffers {
            signal: vec![0.0; n],
            next: vec![0.0; n],
            padded: vec![0.0; n + 2 * REFLECT],
            cqt: vec![0.0; OCTAVES * t * 2 * BINS],
            spec: vec![0.0; t * n_bins],
            stack: vec![0.0; HARMONICS * t * N_CONTOUR_BINS],
            contour_hidden: vec![0.0; contour_hidden.c_out() * t * N_CONTOUR_BINS],
            note_hidden: vec![0.0; note_hidden.c_out() * t * N_KEYS],
            cat: vec![0.0; onset_out.c_in() * t * N_KEYS],
            scratch: vec![0.0; scratch],
        };
        let net = Net { bank, lowpass, bin_scale: w.bin_scale.clone(), w, onset_stack, contour_hidden, contour_out, note_hidden, note_out, onset_out };
        Ok(NativeModel { net: Arc::new(net), bufs })
    }

    /// The CQT of `window` into `bufs.cqt`, octave 0 (highest) first.
    fn cqt(&mut self, window: &[f32], frames: usize) -> Result<(), ModelError> {
        let b = &mut self.bufs;
        let mut len = window.len();
        b.signal[..len].copy_from_slice(window);
        for octave in 0..OCTAVES {
            let hop = TAPS >> octave;
            if len <= REFLECT || len / hop + 1 != frames {
                return Err(ModelError::Inference(format!("native engine: octave {octave} has {len} samples for {frames} frames")));
            }
            let sig = &b.signal[..len];
            // Reflect padding: padded[REFLECT + j] = sig[j], mirrored about the first and last sample.
            let padded = &mut b.padded[..len + 2 * REFLECT];
            let (left, rest) = padded.split_at_mut(REFLECT);
            let (mid, right) = rest.split_at_mut(len);
            mid.copy_from_slice(sig);
            for (i, p) in left.iter_mut().enumerate() {
                *p = sig[REFLECT - i];
            }
            for (i, p) in right.iter_mut().enumerate() {
                *p = sig[len - 2 - i];
            }
            let out = &mut b.cqt[octave * frames * 2 * BINS..][..frames * 2 * BINS];
            self.net.bank.run(padded, hop, frames, out);
            if octave + 1 < OCTAVES {
                let down = self.net.lowpass.out_len(len);
                self.net.lowpass.run(sig, &mut b.scratch, &mut b.next[..down]);
                std::mem::swap(&mut b.signal, &mut b.next);
                len = down;
            }
        }
        Ok(())
    }

    /// Magnitude, `NormalizedLog` and the batch norm, then harmonic stacking into `bufs.stack`.
    fn log_spectrum_and_stack(&mut self, frames: usize) {
        let w = &self.net.w;
        let b = &mut self.bufs;
        let n_bins = self.net.bin_scale.len();
        let dropped = OCTAVES * BINS - n_bins;
        let spec = &mut b.spec[..frames * n_bins];
        for t in 0..frames {
            let spec_t = &mut spec[t * n_bins..(t + 1) * n_bins];
            // Bins run from the lowest octave (8) up; the lowest `dropped` are not kept. Each
            // octave's kept bins are one contiguous run of its row (re 36, im 36).
            for octave in (0..OCTAVES).rev() {
                let g0 = (OCTAVES - 1 - octave) * BINS;
                let first = dropped.saturating_sub(g0).min(BINS);
                if first == BINS {
                    continue;
                }
                let f0 = g0 + first - dropped;
                let row = &b.cqt[(octave * frames + t) * 2 * BINS..][..2 * BINS];
                let (re_row, im_row) = (&row[first..BINS], &row[BINS + first..]);
                let out = &mut spec_t[f0..f0 + BINS - first];
                let scale = &self.net.bin_scale[f0..f0 + BINS - first];
                for (((s, &re), &im), &scale) in out.iter_mut().zip(re_row).zip(im_row).zip(scale) {
                    let (re, im) = (re * scale, -im * scale);
                    let mag = (re * re + im * im).sqrt();
                    *s = mag * mag + w.log_eps;
                }
            }
        }
        let lo = kernels::scaled_ln_in_place(kernels::Isa::best(), spec, w.log10_e, w.log_ten);
        let mut hi = f32::NEG_INFINITY;
        for s in spec.iter_mut() {
            *s -= lo;
            hi = hi.max(*s);
        }
        for s in spec.iter_mut() {
            let v = if hi == 0.0 { 0.0 } else { *s / hi };
            *s = v * w.bn_scale + w.bn_offset;
        }
        let stack = &mut b.stack[..HARMONICS * frames * N_CONTOUR_BINS];
        for (c, &shift) in w.harmonic_shifts.iter().enumerate() {
            for t in 0..frames {
                let dst = &mut stack[(c * frames + t) * N_CONTOUR_BINS..][..N_CONTOUR_BINS];
                let src = &spec[t * n_bins..(t + 1) * n_bins];
                // dst[f] = src[f + shift] where that is a bin, else 0.
                let first = (-shift).clamp(0, N_CONTOUR_BINS as isize) as usize;
                let last = (n_bins as isize - shift).clamp(first as isize, N_CONTOUR_BINS as isize) as usize;
                dst[..first].fill(0.0);
                dst[first..last].copy_from_slice(&src[(first as isize + shift) as usize..(last as isize + shift) as usize]);
                dst[last..].fill(0.0);
            }
        }
    }

    /// The network on `bufs.stack`, writing the three outputs; `lap` is called after each layer.
    fn network(&mut self, frames: usize, out: &mut WindowFrames, lap: &mut impl FnMut(&'static str)) {
        let b = &mut self.bufs;
        let t = frames;
        let stack = &b.stack[..HARMONICS * t * N_CONTOUR_BINS];
        let (note_plane, onset_planes) = b.cat[..self.net.onset_out.c_in() * t * N_KEYS].split_at_mut(t * N_KEYS);
        self.net.onset_stack.run(stack, t, N_CONTOUR_BINS, &mut b.scratch, onset_planes, Act::Relu);
        lap("conv2d_4 (onset stack)");
        let hidden = &mut b.contour_hidden[..self.net.contour_hidden.c_out() * t * N_CONTOUR_BINS];
        self.net.contour_hidden.run(stack, t, N_CONTOUR_BINS, &mut b.scratch, hidden, Act::Relu);
        lap("conv2d_1 (contour hidden)");
        self.net.contour_out.run(hidden, t, N_CONTOUR_BINS, &mut b.scratch, &mut out.contour, Act::Sigmoid);
        lap("contours-reduced");
        let note_hidden = &mut b.note_hidden[..self.net.note_hidden.c_out() * t * N_KEYS];
        self.net.note_hidden.run(&out.contour, t, N_CONTOUR_BINS, &mut b.scratch, note_hidden, Act::Relu);
        lap("conv2d_2 (note hidden)");
        self.net.note_out.run(note_hidden, t, N_KEYS, &mut b.scratch, &mut out.note, Act::Sigmoid);
        note_plane.copy_from_slice(&out.note);
        lap("conv2d_3 (note)");
        self.net.onset_out.run(&b.cat[..self.net.onset_out.c_in() * t * N_KEYS], t, N_KEYS, &mut b.scratch, &mut out.onset, Act::Sigmoid);
        lap("conv2d_5 (onset)");
    }

    /// Runs a window like [`NoteModel::run_window`], timing each stage (ms), for the benchmark.
    pub fn run_window_timed(&mut self, window: &[f32], out: &mut WindowFrames) -> Result<Vec<(&'static str, f64)>, ModelError> {
        let mut times = Vec::with_capacity(10);
        let mut t = std::time::Instant::now();
        let mut lap = |name: &'static str| {
            times.push((name, t.elapsed().as_secs_f64() * 1e3));
            t = std::time::Instant::now();
        };
        let frames = check_window(window)?;
        out.set_frames(frames);
        self.cqt(window, frames)?;
        lap("CQT");
        self.log_spectrum_and_stack(frames);
        lap("log, normalise, stack");
        self.network(frames, out, &mut lap);
        Ok(times)
    }
}

impl NoteModel for NativeModel {
    fn backend(&self) -> &'static str {
        "native"
    }

    fn run_window(&mut self, window: &[f32], out: &mut WindowFrames) -> Result<(), ModelError> {
        let frames = check_window(window)?;
        out.set_frames(frames);
        self.cqt(window, frames)?;
        self.log_spectrum_and_stack(frames);
        self.network(frames, out, &mut |_| {});
        Ok(())
    }

    fn streamer(&self, settings: &StreamSettings) -> Option<Box<dyn FrameStreamer>> {
        let stream = stream::NativeStream::new(Arc::clone(&self.net), settings).ok()?;
        Some(Box::new(stream))
    }
}
