//! The voice tracker on a stream (Live mode): SwiftF0 run on fixed windows as the audio arrives.
//!
//! Every [`CHUNK_FRAMES`] new frames the tracker runs one window of [`LEFT_FRAMES`] +
//! [`CHUNK_FRAMES`] + [`LOOKAHEAD_FRAMES`] frames ending at the newest frame. The chunk's frames
//! then have the model's whole receptive field on both sides and are *final*: the same values
//! [`PitchTracker::detect`] gives on the whole signal (tested below). The window's last
//! [`LOOKAHEAD_FRAMES`] frames are *provisional*: a little less context, replaced by the next run.
//! Reading them lets a sung note be known 160 ms sooner than waiting for them to be final. One
//! window length means one plan for the tracker, and the work per chunk is bounded. Before the
//! stream has [`LEFT_FRAMES`] frames of past, the window is padded with silence (whole hops, so
//! the frame grid is the same; the tracker gates silent hops to unvoiced).

use super::{PitchFrames, PitchTracker, FMAX, FMIN, HOP, LEFT_FRAMES, LOOKAHEAD_FRAMES};
use crate::model::ModelError;

/// Frames committed per tracker run: 80 ms, about one Live hop of the note model.
pub const CHUNK_FRAMES: usize = 5;
/// Frames of one tracker run.
pub const WINDOW_FRAMES: usize = LEFT_FRAMES + CHUNK_FRAMES + LOOKAHEAD_FRAMES;

/// A pitch curve growing as 16 kHz audio arrives; frame `k` is at `k * FRAME_SECONDS` from the
/// stream's first sample. Keeps the audio the next window needs and the frames from
/// [`Self::origin`] on.
#[derive(Default)]
pub struct PitchStream {
    /// Audio from absolute sample `audio_start` on.
    audio: Vec<f32>,
    audio_start: usize,
    received: usize,
    /// Final frames from absolute frame `origin` on.
    fin: PitchFrames,
    origin: usize,
    /// The newest run's frames after the final ones.
    provisional: PitchFrames,
    window: Vec<f32>,
}

impl PitchStream {
    pub fn new() -> Self {
        Self { window: vec![0.0; WINDOW_FRAMES * HOP], ..Self::default() }
    }

    /// Absolute frame of the first kept frame.
    pub fn origin(&self) -> usize {
        self.origin
    }

    /// Adds 16 kHz audio and runs the tracker on every window now complete. Returns the number of
    /// runs (0: the curve did not change).
    pub fn push(&mut self, tracker: &mut PitchTracker, audio: &[f32]) -> Result<usize, ModelError> {
        self.audio.extend_from_slice(audio);
        self.received += audio.len();
        let mut runs = 0;
        loop {
            let done = self.origin + self.fin.len();
            let end = done + CHUNK_FRAMES + LOOKAHEAD_FRAMES;
            if end * HOP > self.received {
                break;
            }
            // The window's audio: frames [end - WINDOW_FRAMES, end), silence before the stream.
            let first = end as isize - WINDOW_FRAMES as isize;
            let pad = (-first).max(0) as usize * HOP;
            self.window[..pad].fill(0.0);
            let from = (first.max(0) as usize) * HOP - self.audio_start;
            self.window[pad..].copy_from_slice(&self.audio[from..from + WINDOW_FRAMES * HOP - pad]);
            let part = tracker.run(&self.window, FMIN, FMAX)?;
            if part.len() != WINDOW_FRAMES {
                return Err(ModelError::Inference(format!("the pitch model gave {} frames for a {WINDOW_FRAMES}-frame window", part.len())));
            }
            let chunk = WINDOW_FRAMES - LOOKAHEAD_FRAMES - CHUNK_FRAMES;
            self.fin.extend_from(&part, chunk, chunk + CHUNK_FRAMES);
            self.provisional = PitchFrames::default();
            self.provisional.extend_from(&part, chunk + CHUNK_FRAMES, WINDOW_FRAMES);
            runs += 1;
            // Keep the audio the next window starts from.
            let keep_from = (done + CHUNK_FRAMES + CHUNK_FRAMES + LOOKAHEAD_FRAMES).saturating_sub(WINDOW_FRAMES) * HOP;
            if keep_from > self.audio_start {
                self.audio.drain(..keep_from - self.audio_start);
                self.audio_start = keep_from;
            }
        }
        Ok(runs)
    }

    /// The curve from absolute frame `from` (at least [`Self::origin`]) to the newest frame,
    /// provisional frames included; returns it with its first frame's absolute index.
    pub fn curve_since(&self, from: usize) -> (PitchFrames, usize) {
        let from = from.max(self.origin);
        let skip = (from - self.origin).min(self.fin.len());
        let mut out = PitchFrames::default();
        out.extend_from(&self.fin, skip, self.fin.len());
        out.extend_from(&self.provisional, 0, self.provisional.len());
        (out, self.origin + skip)
    }

    /// Forgets the final frames before absolute frame `frame`.
    pub fn forget_before(&mut self, frame: usize) {
        let drop = frame.saturating_sub(self.origin).min(self.fin.len());
        if drop > 0 {
            self.fin.pitch_hz.drain(..drop);
            self.fin.confidence.drain(..drop);
            self.fin.loudness_db.drain(..drop);
            self.origin += drop;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pitch::SAMPLE_RATE;

    /// A voice-like line: three notes with vibrato and a breath, then silence.
    fn sung(seconds: f64) -> Vec<f32> {
        let n = (seconds * SAMPLE_RATE as f64) as usize;
        let mut phase = 0.0f64;
        (0..n)
            .map(|i| {
                let t = i as f64 / SAMPLE_RATE as f64;
                let midi = [57.0, 60.0, 64.0][((t / 0.6) as usize) % 3] + 0.3 * (2.0 * std::f64::consts::PI * 5.5 * t).sin();
                let hz = 440.0 * 2f64.powf((midi - 69.0) / 12.0);
                phase += 2.0 * std::f64::consts::PI * hz / SAMPLE_RATE as f64;
                let breath = if (t % 1.8) > 1.7 { 0.0 } else { 1.0 };
                (breath * (1..5).map(|h| (phase * h as f64).sin() * 0.25 / h as f64).sum::<f64>()) as f32
            })
            .collect()
    }

    #[test]
    fn final_frames_are_the_whole_signal_frames_in_any_blocks() {
        let audio = sung(3.0);
        let mut tracker = PitchTracker::load().unwrap();
        let whole = tracker.detect(&audio).unwrap();
        for block in [160, 1000, 4096] {
            let mut stream = PitchStream::new();
            for b in audio.chunks(block) {
                stream.push(&mut tracker, b).unwrap();
            }
            let (curve, first) = stream.curve_since(0);
            assert_eq!(first, 0);
            let fin = stream.fin.len();
            assert!(fin + CHUNK_FRAMES + LOOKAHEAD_FRAMES > whole.len() && fin <= whole.len(), "{fin} final of {}", whole.len());
            // Past the silence-padded start, every final frame is the whole signal's.
            for k in LEFT_FRAMES..fin {
                assert!((curve.confidence[k] - whole.confidence[k]).abs() < 1e-4, "frame {k} confidence {} vs {}", curve.confidence[k], whole.confidence[k]);
                if whole.confidence[k] >= crate::pitch::VOICED {
                    let cents = 1200.0 * (curve.pitch_hz[k] / whole.pitch_hz[k]).log2();
                    assert!(cents.abs() < 1.0, "frame {k}: {cents} cents off");
                }
            }
            assert_eq!(curve.len(), fin + LOOKAHEAD_FRAMES);
        }
    }

    #[test]
    fn forgetting_keeps_the_frame_indices() {
        let audio = sung(2.0);
        let mut tracker = PitchTracker::load().unwrap();
        let mut stream = PitchStream::new();
        stream.push(&mut tracker, &audio).unwrap();
        let (all, _) = stream.curve_since(0);
        stream.forget_before(40);
        assert_eq!(stream.origin(), 40);
        let (rest, first) = stream.curve_since(10);
        assert_eq!(first, 40);
        assert_eq!(rest.pitch_hz[..], all.pitch_hz[40..]);
        // The audio kept stays bounded by one window.
        assert!(stream.audio.len() <= WINDOW_FRAMES * HOP + HOP, "{} samples kept", stream.audio.len());
    }
}
