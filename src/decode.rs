//! Frames -> notes: a pure, deterministic port of Python basic-pitch 0.4.0's note creation
//! (`note_creation.model_output_to_notes` / `output_to_notes_polyphonic`), including
//! `constrain_frequency`, `get_infered_onsets`, onset peak picking (`scipy.signal.argrelmax`), the
//! "melodia trick", the note amplitude (`np.mean` of the float32 note posterior, with NumPy's pairwise
//! summation) and the frame -> seconds conversion `model_frames_to_time` with its window-offset quirk.
//!
//! Owns: `DecodeParams` (basic-pitch's defaults), `notes_from_frames`, `frame_to_seconds`. It does not
//! own windowing/unwrapping of model outputs (that is `engine`) nor pitch bends (not used by Pianola).
//!
//! Exactness notes (checked against `scripts/reference_fixtures.py`, see `tests/decode_parity.rs`):
//! - The reference works on float64 copies of the float32 frames (`remaining_energy`, inferred onsets);
//!   this port does the same arithmetic in f64, in the same order.
//! - Thresholds and frequencies come in as `f32` but a Python caller passes float64 literals (`0.3`),
//!   so each is widened through its shortest decimal form (`0.3f32` -> `0.3f64`), not bit-wise.
//! - Ties: onsets are visited backwards in time and, within a frame, from the highest key down
//!   (the reverse of `np.where`'s row-major order); the melodia trick repeatedly takes the global
//!   maximum of the remaining energy, first in row-major order on ties (`np.argmax`). It is done with
//!   one sort of the candidate cells instead of a full scan per note: cells only ever drop to 0, so the
//!   first still-untouched cell in (value desc, index asc) order is exactly `np.argmax`.
//! - Where the reference produces NaN (inferred onsets when the frames never rise: 0/0), no onset
//!   peaks exist, as in the reference. NaN/inf in the input are treated as 0 before decoding (the
//!   reference would propagate them). Zero frames give no notes. Nothing here panics.

use crate::notes::{FrameOutputs, Note, FFT_HOP, FRAMES_PER_WINDOW, LOWEST_KEY, MODEL_SAMPLE_RATE, N_KEYS, WINDOW_SAMPLES};

// The reference's names for the model geometry (crate::notes).
const AUDIO_SAMPLE_RATE: usize = MODEL_SAMPLE_RATE as usize;
const ANNOT_N_FRAMES: usize = FRAMES_PER_WINDOW;
const AUDIO_N_SAMPLES: usize = WINDOW_SAMPLES;

/// Highest key index (`MAX_FREQ_IDX` in the reference).
const MAX_FREQ_IDX: usize = N_KEYS - 1;

/// Decoder settings, named after basic-pitch's; `Default` is basic-pitch's `predict` defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeParams {
    /// Minimum onset activation for an onset peak to start a note (0.5).
    pub onset_threshold: f32,
    /// Minimum frame activation for a note to stay on (0.3).
    pub frame_threshold: f32,
    /// A note must be longer than this many frames (11, from 127.70 ms).
    pub min_note_len_frames: usize,
    /// Add onsets where the note posterior jumps (true).
    pub infer_onsets: bool,
    /// Also turn remaining sustained energy without an onset into notes (true).
    pub melodia_trick: bool,
    /// Keys below this frequency are zeroed (None: all keys).
    pub min_freq_hz: Option<f32>,
    /// Keys from this frequency up are zeroed (None: all keys).
    pub max_freq_hz: Option<f32>,
    /// Frames below `frame_threshold` tolerated inside a note (11).
    pub energy_tolerance: usize,
}

impl Default for DecodeParams {
    fn default() -> Self {
        Self {
            onset_threshold: 0.5,
            frame_threshold: 0.3,
            min_note_len_frames: min_note_len_frames(127.70),
            infer_onsets: true,
            melodia_trick: true,
            min_freq_hz: None,
            max_freq_hz: None,
            energy_tolerance: 11,
        }
    }
}

impl DecodeParams {
    /// Sets the minimum note length from milliseconds, with basic-pitch's rule
    /// `int(np.round(ms / 1000 * (22050 / 256)))` (round half to even; negative -> 0).
    pub fn with_min_note_ms(self, ms: f32) -> Self {
        Self { min_note_len_frames: min_note_len_frames(ms), ..self }
    }
}

/// basic-pitch's milliseconds -> frames rule for the minimum note length.
pub fn min_note_len_frames(ms: f32) -> usize {
    let frames = (py_f64(ms) / 1000.0 * (AUDIO_SAMPLE_RATE as f64 / FFT_HOP as f64)).round_ties_even();
    if frames.is_nan() || frames <= 0.0 {
        0
    } else {
        frames as usize
    }
}

/// Start time in seconds of output frame `frame`, exactly as basic-pitch's `model_frames_to_time`:
/// `frame * 256 / 22050` minus `0.010326..` s for every full 172-frame window before it (the model's
/// windows hold 171.27 hops of audio, not 172; the reference's constant includes a 1.8 ms fudge).
pub fn frame_to_seconds(frame: usize) -> f64 {
    let window_offset = (FFT_HOP as f64 / AUDIO_SAMPLE_RATE as f64) * (ANNOT_N_FRAMES as f64 - (AUDIO_N_SAMPLES as f64 / FFT_HOP as f64)) + 0.0018;
    let original = (frame * FFT_HOP) as f64 / AUDIO_SAMPLE_RATE as f64;
    let window_number = (frame / ANNOT_N_FRAMES) as f64;
    original - window_offset * window_number
}

/// Decodes frame-wise model outputs into notes, exactly as basic-pitch 0.4.0's
/// `model_output_to_notes` (without pitch bends). Sorted by start, then pitch (then end, amplitude).
pub fn notes_from_frames(frames: &FrameOutputs, params: &DecodeParams) -> Vec<Note> {
    let n_frames = frames.note.len().min(frames.onset.len()) / N_KEYS;
    let mut events = decode_frames(&frames.note[..n_frames * N_KEYS], &frames.onset[..n_frames * N_KEYS], n_frames, params);
    events.sort_by(|a, b| (a.start, a.pitch, a.end).cmp(&(b.start, b.pitch, b.end)).then(a.amplitude.total_cmp(&b.amplitude)));
    events.into_iter().map(|e| Note { start_s: frame_to_seconds(e.start), end_s: frame_to_seconds(e.end), pitch: e.pitch, amplitude: e.amplitude }).collect()
}

/// Notes sounding less than this share of the time the audio has sound means the thresholds do
/// not fit the song: a quiet mix, or sounds the model is unsure of. (At basic-pitch's defaults the
/// notes of the dev sets' songs sound 55-100% of the time, a slow sung line's too; three quiet or
/// synth-heavy game soundtracks of the real dev set 1-23%. At 0.4 lincity_theme is decoded at
/// 0.3/0.2 rather than 0.4/0.25: harmony_margin 0.133 -> 0.157.)
pub const SPARSE_SOUNDING_SHARE: f64 = 0.4;
/// Lower (onset, frame) thresholds tried one after another on a sparse song, until one finds
/// enough notes.
pub const SPARSE_STEPS: [(f32, f32); 3] = [(0.4, 0.25), (0.3, 0.2), (0.2, 0.15)];

/// Seconds during which at least one of `notes` sounds.
pub fn sounding_seconds(notes: &[Note]) -> f64 {
    let mut spans: Vec<(f64, f64)> = notes.iter().filter(|n| n.end_s > n.start_s).map(|n| (n.start_s, n.end_s)).collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut total = 0.0;
    let mut cur: Option<(f64, f64)> = None;
    for (a, b) in spans {
        cur = match cur {
            Some((s, e)) if a <= e => Some((s, e.max(b))),
            Some((s, e)) => {
                total += e - s;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    total + cur.map_or(0.0, |(s, e)| e - s)
}

/// What [`notes_for_level`] decided.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelDecision {
    /// The settings the notes were decoded with.
    pub params: DecodeParams,
    /// How many notes the given settings found, and for how many seconds they sound.
    pub found_at_given: usize,
    pub sounding_at_given: f64,
    pub audible_s: f64,
}

impl LevelDecision {
    /// Whether the thresholds were lowered.
    pub fn lowered(&self, given: &DecodeParams) -> bool {
        self.params != *given
    }

    /// The decision in words, for a log line.
    pub fn describe(&self, given: &DecodeParams, notes: usize) -> String {
        if self.lowered(given) {
            format!(
                "decoding: {} notes at onset {} / frame {} sound {:.0} s of {:.0} s with sound, too little; onset {} / frame {} finds {notes}",
                self.found_at_given,
                given.onset_threshold,
                given.frame_threshold,
                self.sounding_at_given,
                self.audible_s,
                self.params.onset_threshold,
                self.params.frame_threshold
            )
        } else {
            format!("decoding: onset {} / frame {}", given.onset_threshold, given.frame_threshold)
        }
    }
}

/// Notes decoded at thresholds that fit the song: `params` first; if those notes sound less than
/// [`SPARSE_SOUNDING_SHARE`] of the seconds with sound (`audible_s`, from [`audible_seconds`]),
/// each of [`SPARSE_STEPS`] in turn (never above the given thresholds), keeping the first whose
/// notes sound enough, or the one with the most notes. Silence stays silent: nothing is lowered
/// without sound.
pub fn notes_for_level(frames: &FrameOutputs, params: &DecodeParams, audible_s: f64) -> (Vec<Note>, LevelDecision) {
    let notes = notes_from_frames(frames, params);
    let sounding = sounding_seconds(&notes);
    let mut decision = LevelDecision { params: *params, found_at_given: notes.len(), sounding_at_given: sounding, audible_s };
    let enough = |notes: &[Note]| sounding_seconds(notes) >= SPARSE_SOUNDING_SHARE * audible_s;
    if audible_s < 1.0 || enough(&notes) {
        return (notes, decision);
    }
    let mut best = notes;
    for &(onset, frame) in &SPARSE_STEPS {
        let p = DecodeParams { onset_threshold: onset.min(params.onset_threshold), frame_threshold: frame.min(params.frame_threshold), ..*params };
        if p == decision.params {
            continue;
        }
        let notes = notes_from_frames(frames, &p);
        if notes.len() > best.len() {
            (best, decision.params) = (notes, p);
        }
        if enough(&best) {
            break;
        }
    }
    (best, decision)
}

/// Seconds of `mono` with sound: 50 ms blocks within 40 dB of the loudest block and above
/// -70 dBFS.
pub fn audible_seconds(mono: &[f32], sample_rate: u32) -> f64 {
    let mut meter = AudibleMeter::new(sample_rate);
    meter.push(mono);
    meter.seconds()
}

/// [`audible_seconds`] of audio that arrives block by block (a Capture segment): the RMS of every
/// 50 ms (20 numbers a second are kept).
#[derive(Clone, Debug)]
pub struct AudibleMeter {
    block: usize,
    sample_rate: u32,
    sum: f64,
    n: usize,
    rms: Vec<f32>,
}

impl AudibleMeter {
    pub fn new(sample_rate: u32) -> Self {
        Self { block: (sample_rate as usize / 20).max(1), sample_rate: sample_rate.max(1), sum: 0.0, n: 0, rms: Vec::new() }
    }

    pub fn push(&mut self, mono: &[f32]) {
        for &x in mono {
            self.sum += if x.is_finite() { (x as f64).powi(2) } else { 0.0 };
            self.n += 1;
            if self.n == self.block {
                self.rms.push((self.sum / self.n as f64).sqrt() as f32);
                (self.sum, self.n) = (0.0, 0);
            }
        }
    }

    /// Seconds with sound so far (a last partial block counts by its length).
    pub fn seconds(&self) -> f64 {
        let last = (self.n > 0).then(|| (self.sum / self.n as f64).sqrt() as f32);
        let all = || self.rms.iter().copied().chain(last);
        let loudest = all().fold(0.0f32, f32::max) as f64;
        let floor = (loudest * 0.01).max(10f64.powf(-70.0 / 20.0));
        let full = self.rms.iter().filter(|&&v| v as f64 > floor).count() * self.block;
        let partial = last.filter(|&v| v as f64 > floor).map_or(0, |_| self.n);
        (full + partial) as f64 / self.sample_rate as f64
    }
}

/// A note in frames, as `output_to_notes_polyphonic` returns it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct FrameNote {
    start: usize,
    end: usize,
    pitch: u8,
    amplitude: f32,
}

/// `output_to_notes_polyphonic`, in the reference's order of discovery.
fn decode_frames(note: &[f32], onset: &[f32], n_frames: usize, params: &DecodeParams) -> Vec<FrameNote> {
    if n_frames == 0 {
        return Vec::new();
    }
    let sanitize = |x: &f32| if x.is_finite() { *x } else { 0.0 };
    let mut frames: Vec<f32> = note.iter().map(sanitize).collect();
    let mut onsets: Vec<f32> = onset.iter().map(sanitize).collect();

    constrain_frequency(&mut onsets, &mut frames, params.max_freq_hz, params.min_freq_hz);

    // Onset activations in f64 (None: the reference's inferred onsets are all NaN).
    let onsets: Option<Vec<f64>> =
        if params.infer_onsets { inferred_onsets(&onsets, &frames, n_frames) } else { Some(onsets.iter().map(|&x| x as f64).collect()) };

    let onset_thresh = py_f64(params.onset_threshold);
    let frame_thresh = py_f64(params.frame_threshold);
    let min_note_len = params.min_note_len_frames;
    let energy_tol = params.energy_tolerance;

    // peak_thresh_mat: onset value at strict local maxima in time (argrelmax, mode 'clip': the first
    // and last frames are never peaks), 0 elsewhere; onsets are cells >= onset_thresh.
    let mut onset_cells: Vec<(usize, usize)> = Vec::new();
    for t in 0..n_frames {
        for f in 0..N_KEYS {
            let peak_value = match &onsets {
                Some(o) if t > 0 && t + 1 < n_frames => {
                    let v = o[t * N_KEYS + f];
                    if v > o[(t - 1) * N_KEYS + f] && v > o[(t + 1) * N_KEYS + f] {
                        v
                    } else {
                        0.0
                    }
                }
                _ => 0.0,
            };
            if peak_value >= onset_thresh {
                onset_cells.push((t, f));
            }
        }
    }

    let mut remaining: Vec<f64> = frames.iter().map(|&x| x as f64).collect();
    let at = |t: usize, f: usize| t * N_KEYS + f;
    let mut events = Vec::new();

    // Onsets, backwards in time (and from the highest key down within a frame).
    for &(start, f) in onset_cells.iter().rev() {
        if start >= n_frames - 1 {
            continue;
        }
        let mut i = start + 1;
        let mut k = 0usize;
        while i < n_frames - 1 && k < energy_tol {
            if remaining[at(i, f)] < frame_thresh {
                k += 1;
            } else {
                k = 0;
            }
            i += 1;
        }
        i -= k;
        if i - start <= min_note_len {
            continue;
        }
        for t in start..i {
            remaining[at(t, f)] = 0.0;
            if f < MAX_FREQ_IDX {
                remaining[at(t, f + 1)] = 0.0;
            }
            if f > 0 {
                remaining[at(t, f - 1)] = 0.0;
            }
        }
        events.push(FrameNote { start, end: i, pitch: LOWEST_KEY + f as u8, amplitude: column_mean(&frames, start, i, f) });
    }

    if params.melodia_trick {
        // Global maxima of the remaining energy, one after another (np.argmax: first on ties).
        let mut candidates: Vec<(f64, usize)> = remaining.iter().enumerate().filter(|(_, &v)| v > frame_thresh).map(|(idx, &v)| (v, idx)).collect();
        candidates.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));

        let n = n_frames as isize;
        for &(_, idx) in &candidates {
            if remaining[idx] == 0.0 {
                continue; // zeroed by an earlier note: no longer the maximum
            }
            let (i_mid, f) = (idx / N_KEYS, idx % N_KEYS);
            remaining[idx] = 0.0;
            let clear = |remaining: &mut Vec<f64>, t: usize| {
                remaining[at(t, f)] = 0.0;
                if f < MAX_FREQ_IDX {
                    remaining[at(t, f + 1)] = 0.0;
                }
                if f > 0 {
                    remaining[at(t, f - 1)] = 0.0;
                }
            };

            // forward pass
            let mut i = i_mid as isize + 1;
            let mut k = 0usize;
            while i < n - 1 && k < energy_tol {
                if remaining[at(i as usize, f)] < frame_thresh {
                    k += 1;
                } else {
                    k = 0;
                }
                clear(&mut remaining, i as usize);
                i += 1;
            }
            let i_end = i - 1 - k as isize;

            // backward pass
            let mut i = i_mid as isize - 1;
            let mut k = 0usize;
            while i > 0 && k < energy_tol {
                if remaining[at(i as usize, f)] < frame_thresh {
                    k += 1;
                } else {
                    k = 0;
                }
                clear(&mut remaining, i as usize);
                i -= 1;
            }
            let i_start = i + 1 + k as isize;

            if i_end - i_start <= min_note_len as isize {
                continue;
            }
            let (i_start, i_end) = (i_start as usize, i_end as usize);
            events.push(FrameNote { start: i_start, end: i_end, pitch: LOWEST_KEY + f as u8, amplitude: column_mean(&frames, i_start, i_end, f) });
        }
    }
    events
}

/// `constrain_frequency`: zero keys from `max_freq` up and below `min_freq`, with the reference's
/// index rule `int(np.round(hz_to_midi(f) - 21))` and Python slice semantics (negative from the end).
fn constrain_frequency(onsets: &mut [f32], frames: &mut [f32], max_freq: Option<f32>, min_freq: Option<f32>) {
    let key_index = |hz: f32| -> i64 {
        let midi = 12.0 * (py_f64(hz).log2() - 440f64.log2()) + 69.0;
        (midi - LOWEST_KEY as f64).round_ties_even() as i64 // saturating; NaN -> 0
    };
    let mut zero_cols = |lo: usize, hi: usize| {
        if lo >= hi {
            return;
        }
        for row in onsets.chunks_exact_mut(N_KEYS).chain(frames.chunks_exact_mut(N_KEYS)) {
            row[lo..hi].iter_mut().for_each(|x| *x = 0.0);
        }
    };
    if let Some(hz) = max_freq {
        zero_cols(py_slice_index(key_index(hz), N_KEYS), N_KEYS);
    }
    if let Some(hz) = min_freq {
        zero_cols(0, py_slice_index(key_index(hz), N_KEYS));
    }
}

/// A Python slice bound `i` on a sequence of `len`, resolved to `0..=len`.
fn py_slice_index(i: i64, len: usize) -> usize {
    let len = len as i64;
    (if i < 0 { (i + len).max(0) } else { i.min(len) }) as usize
}

/// `get_infered_onsets` with `n_diff = 2`, in f64 like the reference. None where the reference
/// yields NaN everywhere (the frames never rise over two frames: 0 / 0).
fn inferred_onsets(onsets: &[f32], frames: &[f32], n_frames: usize) -> Option<Vec<f64>> {
    let n_diff = 2;
    let frame = |t: isize, f: usize| {
        if t < 0 {
            0.0
        } else {
            frames[t as usize * N_KEYS + f] as f64
        }
    };
    let mut frame_diff = vec![0.0f64; n_frames * N_KEYS];
    for t in n_diff..n_frames {
        for f in 0..N_KEYS {
            let cur = frame(t as isize, f);
            let d1 = cur - frame(t as isize - 1, f);
            let d2 = cur - frame(t as isize - 2, f);
            let d = if d2 < d1 { d2 } else { d1 };
            frame_diff[t * N_KEYS + f] = if d < 0.0 { 0.0 } else { d };
        }
    }
    let max_onset = onsets.iter().fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m }) as f64;
    let max_diff = frame_diff.iter().fold(f64::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    if max_diff.is_nan() || max_diff <= 0.0 {
        return None;
    }
    Some(
        onsets
            .iter()
            .zip(&frame_diff)
            .map(|(&o, &d)| {
                let o = o as f64;
                let scaled = max_onset * d / max_diff;
                if scaled > o {
                    scaled
                } else {
                    o
                }
            })
            .collect(),
    )
}

/// `np.mean(frames[start:end, f])` on float32: NumPy's pairwise float32 sum, then the division.
fn column_mean(frames: &[f32], start: usize, end: usize, f: usize) -> f32 {
    let column: Vec<f32> = (start..end).map(|t| frames[t * N_KEYS + f]).collect();
    if column.is_empty() {
        return f32::NAN;
    }
    (pairwise_sum_f32(&column) as f64 / column.len() as f64) as f32
}

/// NumPy's `pairwise_sum` for float32 (blocks of 128, 8 accumulators).
fn pairwise_sum_f32(a: &[f32]) -> f32 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0f32;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f32; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for (acc, &x) in r.iter_mut().zip(&a[i..i + 8]) {
                *acc += x;
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum_f32(&a[..n2]) + pairwise_sum_f32(&a[n2..])
    }
}

/// Widens an `f32` setting to the f64 a Python caller would have written (shortest decimal form).
fn py_f64(x: f32) -> f64 {
    if !x.is_finite() {
        return x as f64;
    }
    format!("{x}").parse::<f64>().unwrap_or(x as f64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sparse_song_is_decoded_at_lower_thresholds_and_a_busy_one_is_not() {
        use super::*;
        // 10 s of frames: one key with onsets every 20 frames, sustained at `note`.
        let frames = |note: f32, onset: f32| {
            let n = 862;
            let mut f = FrameOutputs { note: vec![0.0; n * N_KEYS], onset: vec![0.0; n * N_KEYS], contour: vec![] };
            for t in 0..n {
                f.note[t * N_KEYS + 39] = note;
                if t % 20 == 5 {
                    f.onset[t * N_KEYS + 39] = onset;
                }
            }
            f
        };
        // Soft: nothing at the defaults.
        let f = frames(0.28, 0.35);
        let given = DecodeParams::default();
        let (notes, d) = notes_for_level(&f, &given, 10.0);
        assert_eq!(d.found_at_given, notes_from_frames(&f, &given).len());
        assert!(d.sounding_at_given < 3.0, "{d:?}");
        assert!(d.lowered(&given) && d.params.onset_threshold < 0.5, "{d:?}");
        assert!(sounding_seconds(&notes) >= 3.0, "{}", notes.len());
        assert!(d.describe(&given, notes.len()).contains("too little"));
        // The same frames in silence (no sound measured): untouched.
        assert!(!notes_for_level(&f, &given, 0.0).1.lowered(&given));
        let own = DecodeParams { onset_threshold: 0.3, frame_threshold: 0.2, ..given };
        assert!(!notes_for_level(&f, &own, 10.0).1.lowered(&own), "a low threshold that finds the notes stays");
        // Enough notes for the sound: nothing changes.
        let (_, d) = notes_for_level(&frames(0.6, 0.8), &given, 10.0);
        assert!(d.sounding_at_given >= 3.0 && !d.lowered(&given), "{d:?}");
        let two = [Note { start_s: 0.0, end_s: 2.0, pitch: 60, amplitude: 0.5 }, Note { start_s: 1.0, end_s: 3.0, pitch: 64, amplitude: 0.5 }];
        assert_eq!(sounding_seconds(&two), 3.0);
    }

    #[test]
    fn audible_seconds_counts_sound_not_silence() {
        let rate = 1000;
        let mut x = vec![0.0f32; 4000];
        for (i, s) in x.iter_mut().enumerate().take(1000) {
            *s = 0.5 * ((i as f32) * 0.3).sin();
        }
        // 1 s loud, 1 s at -30 dB (counts), 2 s of silence.
        for (i, s) in x.iter_mut().enumerate().skip(1000).take(1000) {
            *s = 0.016 * ((i as f32) * 0.3).sin();
        }
        let a = super::audible_seconds(&x, rate);
        assert!((a - 2.0).abs() < 0.06, "{a}");
        assert_eq!(super::audible_seconds(&[0.0; 500], rate), 0.0);
        // Block by block, in any block sizes, the same.
        for size in [1, 37, 512] {
            let mut m = super::AudibleMeter::new(rate);
            for c in x.chunks(size) {
                m.push(c);
            }
            assert_eq!(m.seconds(), a, "blocks of {size}");
        }
    }

    use super::*;

    fn empty_frames(n: usize) -> FrameOutputs {
        FrameOutputs { note: vec![0.0; n * N_KEYS], onset: vec![0.0; n * N_KEYS], contour: vec![0.0; n * crate::notes::N_CONTOUR_BINS] }
    }

    /// One key held from `start` to `end` (exclusive) with an onset peak at `start`.
    fn with_note(mut fr: FrameOutputs, key: usize, start: usize, end: usize, level: f32) -> FrameOutputs {
        for t in start..end {
            fr.note[t * N_KEYS + key] = level;
        }
        fr.onset[start * N_KEYS + key] = 0.9;
        fr
    }

    #[test]
    fn isolated_onset_and_sustain_give_one_note() {
        let fr = with_note(empty_frames(100), 39, 10, 40, 0.8); // key 39 = MIDI 60
        let notes = notes_from_frames(&fr, &DecodeParams::default());
        assert_eq!(notes.len(), 1, "{notes:?}");
        let n = notes[0];
        assert_eq!(n.pitch, 60);
        assert_eq!(n.start_s, frame_to_seconds(10));
        assert_eq!(n.end_s, frame_to_seconds(40));
        assert!((n.amplitude - 0.8).abs() < 1e-6);
    }

    #[test]
    fn below_threshold_gives_nothing() {
        let mut fr = empty_frames(100);
        for t in 10..60 {
            fr.note[t * N_KEYS + 20] = 0.25;
        }
        fr.onset[10 * N_KEYS + 20] = 0.4;
        assert!(notes_from_frames(&fr, &DecodeParams::default()).is_empty());
    }

    #[test]
    fn short_note_is_dropped() {
        let fr = with_note(empty_frames(100), 50, 10, 21, 0.9); // 11 frames: not > 11
        assert!(notes_from_frames(&fr, &DecodeParams::default()).is_empty());
        let fr = with_note(empty_frames(100), 50, 10, 22, 0.9); // 12 frames: kept
        assert_eq!(notes_from_frames(&fr, &DecodeParams::default()).len(), 1);
    }

    #[test]
    fn melodia_finds_sustain_without_onset() {
        let mut fr = empty_frames(100);
        for t in 30..70 {
            fr.note[t * N_KEYS + 5] = 0.6;
        }
        fr.note[20 * N_KEYS + 70] = 0.01; // something rises elsewhere; no onset peaks anywhere
        let p = DecodeParams { infer_onsets: false, ..DecodeParams::default() };
        let notes = notes_from_frames(&fr, &p);
        assert_eq!(notes.len(), 1);
        // The reference's melodia pass ends one frame early (`i_end = i - 1 - k`): frame 69, not 70.
        assert_eq!((notes[0].pitch, notes[0].start_s, notes[0].end_s), (26, frame_to_seconds(30), frame_to_seconds(69)));
        let p = DecodeParams { melodia_trick: false, infer_onsets: false, ..DecodeParams::default() };
        assert!(notes_from_frames(&fr, &p).is_empty());
    }

    #[test]
    fn nan_inf_and_empty_input_do_not_panic() {
        let mut fr = with_note(empty_frames(60), 39, 10, 40, 0.8);
        for (i, x) in fr.note.iter_mut().enumerate().filter(|(i, _)| i % 7 == 0) {
            *x = if i % 2 == 0 { f32::NAN } else { f32::INFINITY };
        }
        fr.onset.iter_mut().step_by(5).for_each(|x| *x = f32::NAN);
        let _ = notes_from_frames(&fr, &DecodeParams::default());
        let nan = FrameOutputs { note: vec![f32::NAN; 50 * N_KEYS], onset: vec![f32::NAN; 50 * N_KEYS], contour: vec![] };
        assert!(notes_from_frames(&nan, &DecodeParams::default()).is_empty());
        assert!(notes_from_frames(&FrameOutputs::default(), &DecodeParams::default()).is_empty());
        assert!(notes_from_frames(&empty_frames(1), &DecodeParams::default()).is_empty());
        let one = FrameOutputs { note: vec![0.9; N_KEYS], onset: vec![0.9; N_KEYS], contour: vec![] };
        assert!(notes_from_frames(&one, &DecodeParams::default()).is_empty());
    }

    #[test]
    fn sorted_by_start_then_pitch() {
        let fr = with_note(empty_frames(120), 60, 10, 40, 0.8);
        let fr = with_note(fr, 30, 10, 50, 0.7);
        let fr = with_note(fr, 45, 5, 30, 0.7);
        let notes = notes_from_frames(&fr, &DecodeParams::default());
        let keys: Vec<(f64, u8)> = notes.iter().map(|n| (n.start_s, n.pitch)).collect();
        assert_eq!(keys, vec![(frame_to_seconds(5), 66), (frame_to_seconds(10), 51), (frame_to_seconds(10), 81)]);
    }

    #[test]
    fn frequency_limits_zero_keys() {
        let fr = with_note(empty_frames(100), 39, 10, 40, 0.8); // MIDI 60, 261.6 Hz
        let p = DecodeParams { max_freq_hz: Some(200.0), ..DecodeParams::default() };
        assert!(notes_from_frames(&fr, &p).is_empty());
        let p = DecodeParams { min_freq_hz: Some(300.0), ..DecodeParams::default() };
        assert!(notes_from_frames(&fr, &p).is_empty());
        let p = DecodeParams { min_freq_hz: Some(200.0), max_freq_hz: Some(300.0), ..DecodeParams::default() };
        assert_eq!(notes_from_frames(&fr, &p).len(), 1);
    }

    #[test]
    fn reference_conversions() {
        assert_eq!(DecodeParams::default().min_note_len_frames, 11);
        assert_eq!(DecodeParams::default().with_min_note_ms(58.0).min_note_len_frames, 5);
        assert_eq!(DecodeParams::default().with_min_note_ms(-3.0).min_note_len_frames, 0);
        // librosa frames_to_time minus 0.010326.. s per full window
        assert_eq!(frame_to_seconds(0), 0.0);
        assert_eq!(frame_to_seconds(1), 256.0 / 22050.0);
        let w = (256.0 / 22050.0) * (172.0 - 43844.0 / 256.0) + 0.0018;
        assert_eq!(frame_to_seconds(172), 172.0 * 256.0 / 22050.0 - w);
        assert!((w - 0.010326077097505668f64).abs() < 1e-15);
        assert_eq!(frame_to_seconds(400), 400.0 * 256.0 / 22050.0 - 2.0 * w);
    }

    #[test]
    fn pairwise_sum_matches_numpy_blocking() {
        // 1..=300 as f32 sums exactly either way; check the block structure on a value that rounds.
        let v: Vec<f32> = (0..300).map(|i| 0.1 + i as f32 * 1e-3).collect();
        let naive: f32 = v.iter().sum();
        let pw = pairwise_sum_f32(&v);
        assert!((pw - naive).abs() < 1e-2);
        assert_eq!(pairwise_sum_f32(&[1.0, 2.0, 3.0]), 6.0);
    }
}
