//! Live mode's streaming native engine: the take's audio in, frames on the Live grid out, each run
//! computing only what the new audio changed, instead of a whole 1.5 s window every hop.
//!
//! What a run keeps and what it recomputes (frame `F` is the newest, whose window ends
//! [`TAIL`] samples after its centre, as the windowed path's does):
//! - **The downsampling chain** (`Level`): each octave's signal over the whole take, continuous (no
//!   window edges). A sample is *final* once every tap of the stride-2 lowpass reads final samples of
//!   the octave above; the provisional ones at the end (zero past the window's end, as the windowed
//!   path pads) are recomputed each run, the final ones never.
//! - **Model input columns** (the log-CQT, normalised, batch-normed and harmonically stacked): the
//!   new columns and the `refresh_frames` before them are computed from the octaves' signals,
//!   reflect-padded at the window's end as the windowed path pads; older columns are kept as last
//!   computed. The lowest octave's filters reach ~1.5 s either side of their frame, so no column is
//!   ever "final" in a useful time: the refresh is the knob between cost and closeness to offline.
//! - **`NormalizedLog`**: the window-wide min and max become those of the last `norm_frames`
//!   columns (each column's min and max kept in a ring); a column keeps the normalisation it was
//!   last computed with.
//! - **The network**: every layer's output over the recent frames (`Ring`). A layer's output is
//!   recomputed from the first frame whose receptive field reads a recomputed input through the
//!   newest frame (the 'same' convolutions' zero padding after frame `F`, as at a window's end);
//!   the frames before keep their values.
//!
//! The convolutions are the windowed engine's kernels ([`Conv::run`]) on a contiguous slice of
//! rows gathered from the rings: `ph` rows of real left context, whose outputs are dropped.
//! Everything is sized at construction; a run allocates nothing.

use super::kernels::{self, Act, Conv, Isa};
use super::{Net, BINS, HARMONICS, OCTAVES, REFLECT, TAPS};
use crate::model::{FrameStreamer, ModelError, StreamSettings, WindowFrames, FFT_HOP, FRAMES_PER_WINDOW, WINDOW_SAMPLES};
use crate::notes::{N_CONTOUR_BINS, N_KEYS};
use std::sync::Arc;

/// Samples of a window after the centre of its last frame (68; the same for every window length).
pub const TAIL: usize = WINDOW_SAMPLES - (FRAMES_PER_WINDOW - 1) * FFT_HOP;
/// Silent frames before the take (the windowed path's first windows read zeros before it): the
/// lowest octave's filters reach 128 frames back, and the first run starts a little before.
const PRE_FRAMES: usize = 256;
/// The most columns a run refreshes.
pub const MAX_REFRESH_FRAMES: usize = 64;
/// Columns the first run computes before its commit, so the first frames have left context.
const FIRST_RUN_FRAMES: usize = 32;
/// Taps either side of the lowpass's centre (256 taps, zero pad 127: output `n` reads `2n - 127 ..= 2n + 128`).
const LOWPASS_REACH: usize = 128;

/// One octave's signal from absolute (prefixed) sample `base` on.
struct Level {
    buf: Vec<f32>,
    base: usize,
    /// Samples before this are final (never recomputed).
    done: usize,
}

impl Level {
    fn end(&self) -> usize {
        self.base + self.buf.len()
    }
}

/// A layer's output over the recent frames: `[channels][k][w]`, frame `t` in row `t % k`.
struct Ring {
    c: usize,
    k: usize,
    w: usize,
    data: Vec<f32>,
}

impl Ring {
    fn new(c: usize, k: usize, w: usize, fill: f32) -> Self {
        Ring { c, k, w, data: vec![fill; c * k * w] }
    }

    fn row(&self, ch: usize, t: usize) -> &[f32] {
        &self.data[(ch * self.k + t % self.k) * self.w..][..self.w]
    }

    fn row_mut(&mut self, ch: usize, t: usize) -> &mut [f32] {
        &mut self.data[(ch * self.k + t % self.k) * self.w..][..self.w]
    }

    /// Frames `from..from + rows` into `dst` as a dense `[c][rows][w]` plane.
    fn gather(&self, from: usize, rows: usize, dst: &mut [f32]) {
        for ch in 0..self.c {
            for r in 0..rows {
                dst[(ch * rows + r) * self.w..][..self.w].copy_from_slice(self.row(ch, from + r));
            }
        }
    }

    /// Rows `skip..rows` of the dense `[c][rows][w]` plane `src` (frames `from + skip..`) into the ring.
    fn scatter(&mut self, src: &[f32], rows: usize, skip: usize, from: usize) {
        for ch in 0..self.c {
            for r in skip..rows {
                let w = self.w;
                self.row_mut(ch, from + r).copy_from_slice(&src[(ch * rows + r) * w..][..w]);
            }
        }
    }
}

/// The streaming engine of one Live take (made by [`super::NativeModel`]'s `streamer`).
pub struct NativeStream {
    net: Arc<Net>,
    isa: Isa,
    hop: usize,
    refresh: usize,
    /// Most columns one run computes.
    max_cols: usize,
    levels: Vec<Level>,
    /// Absolute (prefixed) end of the audio pushed (the level-0 signal may hold zeros after it).
    pushed: usize,
    /// The newest frame of the last run (prefixed).
    last: Option<usize>,
    /// Per column, the least and greatest dB (a ring of `norm_frames` columns).
    col_lo: Vec<f32>,
    col_hi: Vec<f32>,
    // Layer outputs.
    stack: Ring,
    onset_stack: Ring,
    contour_hidden: Ring,
    contour: Ring,
    note_hidden: Ring,
    note: Ring,
    onset: Ring,
    /// Scratch: the lowpass, the padded octave signal, the CQT `[octave][col][72]`, dB `[col][bins]`,
    /// a layer's gathered input and its output, the convolution's own.
    lp_scratch: Vec<f32>,
    lp_out: Vec<f32>,
    padded: Vec<f32>,
    cqt: Vec<f32>,
    spec: Vec<f32>,
    tin: Vec<f32>,
    tout: Vec<f32>,
    conv_scratch: Vec<f32>,
}

/// Samples of an octave's history dropped at once (the rest moves to the front).
fn drain_at(octave: usize) -> usize {
    (8192 >> octave).max(64)
}

/// The 'same' padding along time of a layer (its kernel is `2 * ph + 1` rows, checked).
fn time_pad(spec: &super::weights::ConvSpec) -> usize {
    spec.pad.0
}

impl NativeStream {
    pub(crate) fn new(net: Arc<Net>, s: &StreamSettings) -> Result<Self, ModelError> {
        let w = &net.w;
        for spec in [&w.onset_stack, &w.contour_hidden, &w.contour_out, &w.note_hidden, &w.note_out, &w.onset_out] {
            if spec.weight.dims[2] != 2 * spec.pad.0 + 1 {
                return Err(ModelError::Load("native streaming: a convolution is not 'same' along time".into()));
            }
        }
        let hop = s.hop_frames.max(1);
        let refresh = s.refresh_frames.min(MAX_REFRESH_FRAMES);
        let max_cols = refresh + hop.max(FIRST_RUN_FRAMES);
        // Rows a layer reads: its columns plus every layer's time padding before them.
        let chain = [&w.contour_hidden, &w.contour_out, &w.note_hidden, &w.note_out, &w.onset_out].iter().map(|s| time_pad(s)).sum::<usize>()
            + time_pad(&w.onset_stack)
            + time_pad(&w.onset_out);
        let max_rows = max_cols + chain + 2;
        let k = max_rows + s.right_context_frames + hop + 8;
        let n_bins = net.bin_scale.len();
        let norm = s.norm_frames.max(max_cols);
        let mut silence = [w.log_eps];
        let isa = Isa::best();
        kernels::scaled_ln_in_place(isa, &mut silence, w.log10_e, w.log_ten);
        let first_samples = (PRE_FRAMES + max_cols + s.right_context_frames + hop) * FFT_HOP + TAIL;
        let lp_n = first_samples.max(max_cols * FFT_HOP + 4 * TAPS);
        let c_in_max = [&net.onset_stack, &net.contour_hidden, &net.contour_out, &net.note_hidden, &net.note_out, &net.onset_out]
            .iter()
            .zip([N_CONTOUR_BINS, N_CONTOUR_BINS, N_CONTOUR_BINS, N_CONTOUR_BINS, N_KEYS, N_KEYS])
            .map(|(c, w)| c.c_in() * w)
            .max()
            .unwrap();
        let c_out_max = [
            (&net.onset_stack, N_CONTOUR_BINS),
            (&net.contour_hidden, N_CONTOUR_BINS),
            (&net.contour_out, N_CONTOUR_BINS),
            (&net.note_hidden, N_CONTOUR_BINS),
            (&net.note_out, N_KEYS),
            (&net.onset_out, N_KEYS),
        ]
        .iter()
        .map(|(c, w)| c.c_out() * c.out_w(*w))
        .max()
        .unwrap();
        let conv_scratch = [
            net.onset_stack.scratch_len(max_rows, N_CONTOUR_BINS),
            net.contour_hidden.scratch_len(max_rows, N_CONTOUR_BINS),
            net.contour_out.scratch_len(max_rows, N_CONTOUR_BINS),
            net.note_hidden.scratch_len(max_rows, N_CONTOUR_BINS),
            net.note_out.scratch_len(max_rows, N_KEYS),
            net.onset_out.scratch_len(max_rows, N_KEYS),
        ]
        .into_iter()
        .max()
        .unwrap();
        let levels = (0..OCTAVES)
            .map(|o| {
                // Room for the first run's signal and a few seconds of pushed audio between compactions.
                let cap = (first_samples >> o) + (1 << 18 >> o) + 2 * drain_at(o) + 4 * TAPS;
                let mut buf = Vec::with_capacity(cap);
                if o == 0 {
                    buf.resize(PRE_FRAMES * FFT_HOP, 0.0);
                }
                Level { buf, base: 0, done: 0 }
            })
            .collect();
        Ok(NativeStream {
            isa,
            hop,
            refresh,
            max_cols,
            levels,
            pushed: PRE_FRAMES * FFT_HOP,
            last: None,
            col_lo: vec![silence[0]; norm],
            col_hi: vec![silence[0]; norm],
            stack: Ring::new(HARMONICS, k, N_CONTOUR_BINS, 0.0),
            onset_stack: Ring::new(net.onset_stack.c_out(), k, N_KEYS, 0.0),
            contour_hidden: Ring::new(net.contour_hidden.c_out(), k, N_CONTOUR_BINS, 0.0),
            contour: Ring::new(1, k, N_CONTOUR_BINS, 0.0),
            note_hidden: Ring::new(net.note_hidden.c_out(), k, N_KEYS, 0.0),
            note: Ring::new(1, k, N_KEYS, 0.0),
            onset: Ring::new(1, k, N_KEYS, 0.0),
            lp_scratch: vec![0.0; net.lowpass.scratch_len(lp_n)],
            lp_out: vec![0.0; net.lowpass.out_len(lp_n)],
            padded: vec![0.0; max_cols * FFT_HOP + TAPS],
            cqt: vec![0.0; OCTAVES * max_cols * 2 * BINS],
            spec: vec![0.0; max_cols * n_bins],
            tin: vec![0.0; c_in_max * max_rows],
            tout: vec![0.0; c_out_max * max_rows],
            conv_scratch: vec![0.0; conv_scratch],
            net,
        })
    }

    /// Brings every octave's signal to the window ending at prefixed sample `e0`: recomputes each
    /// octave from its first provisional sample.
    fn levels_to(&mut self, e0: usize) -> Result<(), ModelError> {
        let (mut p_prev, mut e_prev) = (e0, e0);
        for k in 1..OCTAVES {
            let (above, below) = self.levels.split_at_mut(k);
            let (src, dst) = (&above[k - 1], &mut below[0]);
            let e_k = e_prev / 2;
            // Output `n` of the lowpass on `src[a..]` is sample `a / 2 + n`; from `dst.done` on its
            // taps lie in `a..` (zeros before 0, as the zero-padded chain of a window has).
            let a = (2 * dst.done).saturating_sub(LOWPASS_REACH);
            if a < src.base || e_prev > src.end() || dst.done < dst.base {
                return Err(ModelError::Inference(format!("native streaming: octave {k} lost its history")));
            }
            let x = &src.buf[a - src.base..e_prev - src.base];
            let m = self.net.lowpass.out_len(x.len());
            if m > self.lp_out.len() || self.net.lowpass.scratch_len(x.len()) > self.lp_scratch.len() {
                return Err(ModelError::Inference("native streaming: a run past its buffers".into()));
            }
            self.net.lowpass.run(x, &mut self.lp_scratch, &mut self.lp_out[..m]);
            dst.buf.truncate(dst.done - dst.base);
            dst.buf.extend_from_slice(&self.lp_out[dst.done - a / 2..m]);
            debug_assert_eq!(dst.end(), e_k);
            // Final: every tap (up to 2n + 128) reads a final sample of the octave above.
            dst.done = (p_prev.saturating_sub(LOWPASS_REACH - 1) / 2).clamp(dst.done, e_k);
            p_prev = dst.done;
            e_prev = e_k;
        }
        Ok(())
    }

    /// Input columns `d..=f` (prefixed frames) of the window ending at prefixed sample `e0`: the
    /// CQT of each octave reflect-padded at the window's end, dB, the running normalisation, the
    /// batch norm and the harmonic stack, into `self.stack`.
    fn columns(&mut self, d: usize, f: usize, e0: usize) {
        let n = f - d + 1;
        let n_bins = self.net.bin_scale.len();
        for (k, lv) in self.levels.iter().enumerate() {
            let hop_k = TAPS >> k;
            let e_k = if k == 0 { e0 } else { lv.end() };
            let start = d * hop_k - REFLECT;
            let plen = (n - 1) * hop_k + TAPS;
            let pad = &mut self.padded[..plen];
            let direct = e_k.saturating_sub(start).min(plen);
            pad[..direct].copy_from_slice(&lv.buf[start - lv.base..][..direct]);
            // Mirrored about the window's last sample, as the windowed path's reflect padding.
            for (i, p) in pad[direct..].iter_mut().enumerate() {
                *p = lv.buf[e_k - 2 - i - lv.base];
            }
            self.net.bank.run(pad, hop_k, n, &mut self.cqt[k * n * 2 * BINS..][..n * 2 * BINS]);
        }
        let w = &self.net.w;
        let dropped = OCTAVES * BINS - n_bins;
        let spec = &mut self.spec[..n * n_bins];
        for t in 0..n {
            let spec_t = &mut spec[t * n_bins..(t + 1) * n_bins];
            for octave in (0..OCTAVES).rev() {
                let g0 = (OCTAVES - 1 - octave) * BINS;
                let first = dropped.saturating_sub(g0).min(BINS);
                if first == BINS {
                    continue;
                }
                let f0 = g0 + first - dropped;
                let row = &self.cqt[(octave * n + t) * 2 * BINS..][..2 * BINS];
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
        kernels::scaled_ln_in_place(self.isa, spec, w.log10_e, w.log_ten);
        let norm = self.col_lo.len();
        for t in 0..n {
            let row = &spec[t * n_bins..(t + 1) * n_bins];
            let (lo, hi) = row.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            self.col_lo[(d + t) % norm] = lo;
            self.col_hi[(d + t) % norm] = hi;
        }
        let lo = self.col_lo.iter().fold(f32::INFINITY, |m, &v| m.min(v));
        let hi = self.col_hi.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) - lo;
        for s in spec.iter_mut() {
            let v = if hi == 0.0 { 0.0 } else { (*s - lo) / hi };
            *s = v * w.bn_scale + w.bn_offset;
        }
        for (c, &shift) in w.harmonic_shifts.iter().enumerate() {
            for t in 0..n {
                let dst = self.stack.row_mut(c, d + t);
                let src = &spec[t * n_bins..(t + 1) * n_bins];
                let first = (-shift).clamp(0, N_CONTOUR_BINS as isize) as usize;
                let last = (n_bins as isize - shift).clamp(first as isize, N_CONTOUR_BINS as isize) as usize;
                dst[..first].fill(0.0);
                dst[first..last].copy_from_slice(&src[(first as isize + shift) as usize..(last as isize + shift) as usize]);
                dst[last..].fill(0.0);
            }
        }
    }

    /// The network on the frames whose inputs changed (input columns from `d`) through `f`.
    fn network(&mut self, d: usize, f: usize) {
        let net = &*self.net;
        let w = &net.w;
        let (tin, tout, scratch) = (&mut self.tin, &mut self.tout, &mut self.conv_scratch);
        // Output frames `from..=f` of `conv` on `input`: rows from `from - ph` gathered (real left
        // context; zeros after `f`, the windowed path's padding at a window's end).
        let layer = |conv: &Conv,
                     ph: usize,
                     inputs: &[&Ring],
                     output: &mut Ring,
                     from: usize,
                     act: Act,
                     tin: &mut Vec<f32>,
                     tout: &mut Vec<f32>,
                     scratch: &mut Vec<f32>| {
            let first = from - ph;
            let rows = f + 1 - first;
            let w_in = inputs[0].w;
            let mut at = 0;
            for ring in inputs {
                let len = ring.c * rows * ring.w;
                ring.gather(first, rows, &mut tin[at..at + len]);
                at += len;
            }
            let out_len = conv.c_out() * rows * output.w;
            conv.run(&tin[..at], rows, w_in, scratch, &mut tout[..out_len], act);
            output.scatter(&tout[..out_len], rows, ph, first);
        };
        let d_os = d - time_pad(&w.onset_stack);
        layer(&net.onset_stack, time_pad(&w.onset_stack), &[&self.stack], &mut self.onset_stack, d_os, Act::Relu, tin, tout, scratch);
        let d_ch = d - time_pad(&w.contour_hidden);
        layer(&net.contour_hidden, time_pad(&w.contour_hidden), &[&self.stack], &mut self.contour_hidden, d_ch, Act::Relu, tin, tout, scratch);
        let d_c = d_ch - time_pad(&w.contour_out);
        layer(&net.contour_out, time_pad(&w.contour_out), &[&self.contour_hidden], &mut self.contour, d_c, Act::Sigmoid, tin, tout, scratch);
        let d_nh = d_c - time_pad(&w.note_hidden);
        layer(&net.note_hidden, time_pad(&w.note_hidden), &[&self.contour], &mut self.note_hidden, d_nh, Act::Relu, tin, tout, scratch);
        let d_n = d_nh - time_pad(&w.note_out);
        layer(&net.note_out, time_pad(&w.note_out), &[&self.note_hidden], &mut self.note, d_n, Act::Sigmoid, tin, tout, scratch);
        let d_o = d_n.min(d_os) - time_pad(&w.onset_out);
        layer(&net.onset_out, time_pad(&w.onset_out), &[&self.note, &self.onset_stack], &mut self.onset, d_o, Act::Sigmoid, tin, tout, scratch);
    }

    /// Drops what no later run reads: the columns from `next_d` on and the lowpass's reach.
    fn compact(&mut self, next_d: usize) {
        for k in 0..OCTAVES {
            let hop_k = TAPS >> k;
            // The reflect padding at the window's end reads up to 2 samples before the reach.
            let mut keep = (next_d * hop_k).saturating_sub(REFLECT + 8);
            if k + 1 < OCTAVES {
                keep = keep.min((2 * self.levels[k + 1].done).saturating_sub(LOWPASS_REACH));
            }
            let lv = &mut self.levels[k];
            if k > 0 {
                // `levels_to` recomputes from `done` on.
                keep = keep.min(lv.done);
            }
            if keep > lv.base + drain_at(k) {
                lv.buf.drain(..keep - lv.base);
                lv.base = keep;
            }
        }
    }
}

impl FrameStreamer for NativeStream {
    fn push_audio(&mut self, audio: &[f32]) {
        let lv = &mut self.levels[0];
        // A run past the audio pushed read zeros there; later audio replaces them.
        let overlap = (lv.end() - self.pushed).min(audio.len());
        let at = self.pushed - lv.base;
        lv.buf[at..at + overlap].copy_from_slice(&audio[..overlap]);
        lv.buf.extend_from_slice(&audio[overlap..]);
        self.pushed += audio.len();
    }

    fn run(&mut self, last_frame: usize, commit: std::ops::Range<usize>, out: &mut WindowFrames) -> Result<(), ModelError> {
        let f = last_frame + PRE_FRAMES;
        let prev = match self.last {
            Some(l) if f <= l => return Err(ModelError::Inference(format!("native streaming: frame {last_frame} after frame {}", l - PRE_FRAMES))),
            Some(l) => l,
            None => f - self.hop.max(FIRST_RUN_FRAMES),
        };
        let d = (prev + 1).saturating_sub(self.refresh);
        if f + 1 - d > self.max_cols {
            return Err(ModelError::Inference(format!("native streaming: {} frames in one run (hop {})", f - prev, self.hop)));
        }
        let (c0, c1) = (commit.start + PRE_FRAMES, commit.end + PRE_FRAMES);
        if c0 > c1 || c1 > f + 1 || f + 1 - c0 > self.onset.k {
            return Err(ModelError::Inference(format!("native streaming: frames {commit:?} are not in the run through frame {last_frame}")));
        }
        let e0 = f * FFT_HOP + TAIL;
        let lv = &mut self.levels[0];
        if lv.end() < e0 {
            // Past the audio pushed (the end of a take): zeros, as a window reads there.
            lv.buf.resize(e0 - lv.base, 0.0);
        }
        self.levels_to(e0)?;
        self.columns(d, f, e0);
        self.network(d, f);
        out.set_frames(c1 - c0);
        for (r, t) in (c0..c1).enumerate() {
            out.note[r * N_KEYS..][..N_KEYS].copy_from_slice(self.note.row(0, t));
            out.onset[r * N_KEYS..][..N_KEYS].copy_from_slice(self.onset.row(0, t));
            out.contour[r * N_CONTOUR_BINS..][..N_CONTOUR_BINS].copy_from_slice(self.contour.row(0, t));
        }
        self.last = Some(f);
        self.compact(f + 1 - self.refresh.min(f));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::native::NativeModel;
    use crate::model::BASIC_PITCH_ONNX;

    fn signal(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 * 0.031).sin() + 0.5 * (i as f32 * 0.0071).sin() * (i as f32 * 0.00013).cos()) * 0.3).collect()
    }

    /// The octaves' final samples are the whole take's downsampling chain, bit for bit: what a run
    /// keeps is never an approximation, only the provisional end is recomputed.
    #[test]
    fn kept_octave_samples_equal_the_whole_chain() {
        let model = NativeModel::from_bytes(BASIC_PITCH_ONNX).unwrap();
        let settings = StreamSettings { hop_frames: 2, right_context_frames: 6, refresh_frames: 8, norm_frames: 130 };
        let mut stream = NativeStream::new(Arc::clone(&model.net), &settings).unwrap();
        let audio = signal(22050 * 4);
        let mut out = WindowFrames::with_frames(2);
        let mut m = 0;
        for piece in audio.chunks(300) {
            stream.push_audio(piece);
            while ((m + 1) * 2 - 1 + 6) * FFT_HOP + TAIL <= stream.pushed - PRE_FRAMES * FFT_HOP {
                stream.run((m + 1) * 2 - 1 + 6, m * 2..(m + 1) * 2, &mut out).unwrap();
                m += 1;
            }
        }
        // The whole chain over the prefixed take through the last run's window.
        let e0 = stream.last.unwrap() * FFT_HOP + TAIL;
        let mut x: Vec<f32> = vec![0.0; PRE_FRAMES * FFT_HOP];
        x.extend_from_slice(&audio);
        x.truncate(e0);
        for k in 1..OCTAVES {
            let mut scratch = vec![0.0; model.net.lowpass.scratch_len(x.len())];
            let mut y = vec![0.0; model.net.lowpass.out_len(x.len())];
            model.net.lowpass.run(&x, &mut scratch, &mut y);
            let lv = &stream.levels[k];
            assert_eq!(lv.end(), y.len(), "octave {k} ends where the window's does");
            assert!(lv.done > lv.base && lv.done < lv.end(), "octave {k}: final {} of {}..{}", lv.done, lv.base, lv.end());
            let kept = &lv.buf[..lv.done - lv.base];
            assert!(kept == &y[lv.base..lv.done], "octave {k}: a kept sample differs from the whole chain's");
            x = y;
        }
    }
}
