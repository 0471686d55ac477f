//! The recording's tuning: how far its reference pitch is from A440, and transcribing it against
//! that reference.
//!
//! An old recording or a detuned instrument can sit between semitones; the note model then flips
//! between neighbouring keys (C and C# in turn; 20 cents off already costs half the notes) and the
//! key finder follows the flips. The model's own contour cannot tell: its three bins per semitone
//! pull every peak toward a bin (a reading biased by up to 9 cents, periodic in the bin). So the
//! tuning is read from the audio's spectrum: long Hann-windowed frames, every strong peak between
//! 80 Hz and 2 kHz located between FFT bins by a parabola through its log magnitudes, its offset
//! from the nearest equal-tempered semitone, and the circular mean of the offsets weighted by the
//! peaks' magnitudes (librosa's `estimate_tuning` does the same with a histogram).
//!
//! When the tuning is off by [`CORRECT_CENTS`] or more, the audio is transcribed slowed or sped up
//! by exactly that interval (its sample rate relabelled: a resampling with no filter to get wrong),
//! so the model hears it in tune; note times are scaled back to the recording's.

use crate::audio_file::AudioClip;
use crate::decode::DecodeParams;
use crate::engine::{self, EngineError, Transcription};
use crate::model::NoteModel;

/// A tuning further from A440 than this is corrected: the model hears the audio in tune (the
/// estimate needs no model pass, so correcting costs nothing; and the note model is sensitive: a
/// dev-set song heard 6 cents away from where it was heard before keeps only ~0.87 of its onsets).
pub const CORRECT_CENTS: f64 = 1.0;
/// A Capture segment this far from A440 or further is heard again in tune (`worker::segment`): a
/// second model pass over the segment, so only where it matters (the note model keeps 0.52-0.77 of
/// a song's onsets 20 cents off, `tests/tuning.rs`), and the panel says so from the same point. The
/// CLI corrects from [`CORRECT_CENTS`], where its estimate is free; a plugin that re-heard a song
/// 4 cents off would only make its cover differ from the one heard as it is.
pub const CAPTURE_CORRECT_CENTS: f64 = 10.0;
/// A Capture segment's tuning counts only when its spectral peaks agree at least this much
/// ([`Tuning::agreement`]): pitched music reads 0.58-0.71 (dev-set songs), a synthetic singer
/// 0.23-0.24, a click track 0.17 (it read 37 cents flat, and was heard again for nothing).
pub const CAPTURE_MIN_AGREEMENT: f64 = 0.2;
/// Frame length and hop, in samples at the clip's rate (about 0.19 s and 0.74 s at 44.1 kHz).
const FRAME: usize = 8192;
const HOP: usize = 32768;
/// Peaks counted: within this band, and within this many dB of the frame's strongest.
const LOW_HZ: f64 = 80.0;
const HIGH_HZ: f64 = 2000.0;
const PEAK_RANGE_DB: f64 = 30.0;
/// Peaks needed for an estimate.
const MIN_PEAKS: usize = 50;

/// The tuning found: cents from A440 (-50..50) and how much the peaks agree (0..1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tuning {
    pub cents: f64,
    pub agreement: f64,
}

/// The tuning of a mono signal at `rate`, or None with too few spectral peaks to say.
pub fn estimate(mono: &[f32], rate: u32) -> Option<Tuning> {
    let rate = rate as f64;
    let mut planner = realfft::RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(FRAME);
    let window: Vec<f64> = (0..FRAME).map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / FRAME as f64).cos()).collect();
    let (mut input, mut spectrum) = (fft.make_input_vec(), fft.make_output_vec());
    let (lo, hi) = ((LOW_HZ * FRAME as f64 / rate) as usize, ((HIGH_HZ * FRAME as f64 / rate) as usize).min(FRAME / 2 - 1));
    let (mut c, mut s, mut w, mut peaks) = (0.0f64, 0.0f64, 0.0f64, 0usize);
    let mut db = vec![0.0f64; FRAME / 2 + 1];
    let mut start = 0;
    while start + FRAME <= mono.len() {
        for (i, x) in input.iter_mut().enumerate() {
            let v = mono[start + i] as f64;
            *x = if v.is_finite() { v * window[i] } else { 0.0 };
        }
        start += HOP;
        if fft.process(&mut input, &mut spectrum).is_err() {
            continue;
        }
        // Only the bins the peaks are looked for in and their neighbours: a tenth of the spectrum.
        let (from, to) = (lo.max(1) - 1, (hi + 1).min(FRAME / 2));
        for (d, z) in db[from..=to].iter_mut().zip(&spectrum[from..=to]) {
            *d = 10.0 * (z.norm_sqr() + 1e-20).log10();
        }
        let top = db[lo..=hi].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if top < -100.0 {
            continue;
        }
        for k in lo.max(1)..=hi {
            let (a, b, d) = (db[k - 1], db[k], db[k + 1]);
            if b < top - PEAK_RANGE_DB || b <= a || b < d {
                continue;
            }
            let denom = a - 2.0 * b + d;
            let delta = if denom < 0.0 { (0.5 * (a - d) / denom).clamp(-0.5, 0.5) } else { 0.0 };
            let hz = (k as f64 + delta) * rate / FRAME as f64;
            let semitones = 12.0 * (hz / 440.0).log2();
            let angle = std::f64::consts::TAU * semitones;
            let weight = 10f64.powf((b - top) / 20.0);
            c += weight * angle.cos();
            s += weight * angle.sin();
            w += weight;
            peaks += 1;
        }
    }
    if peaks < MIN_PEAKS || w <= 0.0 {
        return None;
    }
    Some(Tuning { cents: 100.0 * s.atan2(c) / std::f64::consts::TAU, agreement: (c * c + s * s).sqrt() / w })
}

/// What [`transcribe_in_tune`] found and did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TuningReport {
    pub tuning: Option<Tuning>,
    /// The audio was heard against the tuning.
    pub corrected: bool,
    /// Seconds of the recording per second of what the model heard: the transcription's notes
    /// are already scaled by it; its frames are not (frame `t` is at `t * FRAME_SECONDS * time_scale` s).
    pub time_scale: f64,
}

impl TuningReport {
    /// In words, for the CLI and the panel.
    pub fn describe(&self) -> String {
        match self.tuning {
            None => "tuning: too little pitched sound to tell".into(),
            Some(t) if self.corrected => format!("tuning {:+.0} cents from A440, heard in tune", t.cents),
            Some(t) => format!("tuning {:+.0} cents from A440", t.cents),
        }
    }
}

/// Transcribes `clip`; if its tuning is off by [`CORRECT_CENTS`] or more, transcribes it again heard
/// in tune (note times in the recording's seconds either way).
pub fn transcribe_in_tune(models: &mut [Box<dyn NoteModel>], clip: &AudioClip, params: &DecodeParams) -> Result<(Transcription, TuningReport), EngineError> {
    transcribe_mono_in_tune(models, &clip.mono(), clip.sample_rate, params)
}

/// [`transcribe_in_tune`] on a clip's mono mix (`AudioClip::mono`) at `sample_rate`: one mix for
/// the estimate and the transcription (the CLI reads it straight from the file).
pub fn transcribe_mono_in_tune(
    models: &mut [Box<dyn NoteModel>],
    mono: &[f32],
    sample_rate: u32,
    params: &DecodeParams,
) -> Result<(Transcription, TuningReport), EngineError> {
    let tuning = estimate(mono, sample_rate);
    let Some(t) = tuning.filter(|t| t.cents.abs() >= CORRECT_CENTS) else {
        return Ok((engine::transcribe_mono_parallel(models, mono, sample_rate, params)?, TuningReport { tuning, corrected: false, time_scale: 1.0 }));
    };
    // Sharp by `cents`: played slower by that interval it is in tune. Relabelling the rate as
    // rate / r makes every sample r times longer: pitches fall by r, times grow by r.
    let r = 2f64.powf(t.cents / 1200.0);
    let relabelled_rate = (sample_rate as f64 / r).round() as u32;
    let mut heard = engine::transcribe_mono_parallel(models, mono, relabelled_rate, params)?;
    let scale = relabelled_rate as f64 / sample_rate as f64;
    for n in &mut heard.notes {
        n.start_s *= scale;
        n.end_s *= scale;
    }
    heard.duration_s *= scale;
    Ok((heard, TuningReport { tuning, corrected: true, time_scale: scale }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chord of sines with a few harmonics, `cents` off A440, `seconds` long at 44.1 kHz.
    fn chord(cents: f64, seconds: f64) -> Vec<f32> {
        let rate = 44100.0;
        let notes = [57.0, 61.0, 64.0, 69.0];
        (0..(seconds * rate) as usize)
            .map(|i| {
                let t = i as f64 / rate;
                notes
                    .iter()
                    .map(|&m| {
                        let f = 440.0 * 2f64.powf((m - 69.0 + cents / 100.0) / 12.0);
                        (1..=3).map(|h| (std::f64::consts::TAU * f * h as f64 * t).sin() / h as f64).sum::<f64>()
                    })
                    .sum::<f64>() as f32
                    * 0.1
            })
            .collect()
    }

    #[test]
    fn finds_the_offset_of_a_detuned_chord() {
        for cents in [-40.0, -20.0, 0.0, 7.0, 20.0, 40.0] {
            let t = estimate(&chord(cents, 20.0), 44100).unwrap();
            assert!((t.cents - cents).abs() < 2.0, "{cents}: found {}", t.cents);
        }
    }

    #[test]
    fn silence_has_no_tuning() {
        assert_eq!(estimate(&vec![0.0; 44100 * 10], 44100), None);
        assert_eq!(estimate(&[], 44100), None);
    }
}
