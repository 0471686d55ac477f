//! Shared musical data types that flow between the stages: what the model hears (frames), what the
//! decoder finds (notes in seconds), and the beat grid the arranger and the timeline work on.
//! Owns no behaviour beyond small conversions, so every stage can depend on it.

/// Number of piano keys the model predicts (MIDI 21..=108).
pub const N_KEYS: usize = 88;
/// Lowest MIDI pitch of the model's note/onset outputs (A0).
pub const LOWEST_KEY: u8 = 21;
/// Contour bins: 3 per semitone over the 88 keys.
pub const N_CONTOUR_BINS: usize = 264;

// The model's geometry, defined once (the model, the engine, the decoder, the live pipeline and the
// arranger all count frames on it).

/// Sample rate the model was trained on.
pub const MODEL_SAMPLE_RATE: u32 = 22050;
/// Samples per model window (2 s minus one hop).
pub const WINDOW_SAMPLES: usize = 43844;
/// Frames the model outputs per window.
pub const FRAMES_PER_WINDOW: usize = 172;
/// Model hop in samples (86 frames per second, integer as in the reference).
pub const FFT_HOP: usize = 256;
/// Frames per second as the reference computes it (22050 // 256).
pub const FRAMES_PER_SECOND: usize = MODEL_SAMPLE_RATE as usize / FFT_HOP;
/// Seconds between two model frames.
pub const FRAME_SECONDS: f64 = FFT_HOP as f64 / MODEL_SAMPLE_RATE as f64;

/// Frame-wise model outputs for a whole song (or the part captured so far), already unwrapped from
/// the model's overlapping windows. Row-major: frame `t`, key `k` is at `t * N_KEYS + k`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrameOutputs {
    /// Posteriorgram of a note sounding, `[n_frames][88]`.
    pub note: Vec<f32>,
    /// Posteriorgram of a note starting, `[n_frames][88]`.
    pub onset: Vec<f32>,
    /// Pitch salience at 1/3-semitone resolution, `[n_frames][264]`.
    pub contour: Vec<f32>,
}

impl FrameOutputs {
    pub fn n_frames(&self) -> usize {
        self.note.len() / N_KEYS
    }
    pub fn note_row(&self, frame: usize) -> &[f32] {
        &self.note[frame * N_KEYS..(frame + 1) * N_KEYS]
    }
    pub fn onset_row(&self, frame: usize) -> &[f32] {
        &self.onset[frame * N_KEYS..(frame + 1) * N_KEYS]
    }
    pub fn contour_row(&self, frame: usize) -> &[f32] {
        &self.contour[frame * N_CONTOUR_BINS..(frame + 1) * N_CONTOUR_BINS]
    }
    /// Keeps the first `n` frames (all of them if there are fewer).
    pub fn truncate_frames(&mut self, n: usize) {
        self.note.truncate(n * N_KEYS);
        self.onset.truncate(n * N_KEYS);
        self.contour.truncate(n * N_CONTOUR_BINS);
    }
    /// Removes the first `n` frames (at most all of them).
    pub fn drop_first_frames(&mut self, n: usize) {
        let n = n.min(self.n_frames());
        self.note.drain(..n * N_KEYS);
        self.onset.drain(..n * N_KEYS);
        self.contour.drain(..n * N_CONTOUR_BINS);
    }
}

/// A transcribed note, in seconds from the start of the audio.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Note {
    pub start_s: f64,
    pub end_s: f64,
    /// MIDI pitch (21..=108).
    pub pitch: u8,
    /// Mean note posterior over the note's frames, 0..1 (basic-pitch's "amplitude").
    pub amplitude: f32,
}

/// The tempo grid the arranger quantises to and the timeline is keyed by.
/// Constant tempo: beat `b` is at `first_beat_s + b * 60 / bpm` seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BeatGrid {
    pub bpm: f64,
    /// Beats (quarter notes) per bar.
    pub beats_per_bar: u32,
    /// Time in seconds of beat 0.
    pub first_beat_s: f64,
    /// Beat position (from beat 0) of the first downbeat; bars start at `first_downbeat_beat + k * beats_per_bar`.
    pub first_downbeat_beat: f64,
}

impl BeatGrid {
    pub fn new(bpm: f64) -> Self {
        Self { bpm, beats_per_bar: 4, first_beat_s: 0.0, first_downbeat_beat: 0.0 }
    }
    pub fn seconds_per_beat(&self) -> f64 {
        60.0 / self.bpm
    }
    pub fn beat_at(&self, seconds: f64) -> f64 {
        (seconds - self.first_beat_s) / self.seconds_per_beat()
    }
    pub fn seconds_at(&self, beat: f64) -> f64 {
        self.first_beat_s + beat * self.seconds_per_beat()
    }
}

/// Which hand plays a cover note.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Hand {
    Right,
    Left,
}

/// One note of the piano cover, keyed in beats so playback is exact at any tempo.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CoverNote {
    pub start_beat: f64,
    pub end_beat: f64,
    pub pitch: u8,
    pub velocity: u8,
    pub hand: Hand,
    /// True for the melody line (always the right hand's top voice).
    pub melody: bool,
}

/// One press of the sustain pedal (CC64), keyed in beats: down at `down_beat`, up at `up_beat`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PedalSpan {
    pub down_beat: f64,
    pub up_beat: f64,
}

/// A whole cover: its notes (sorted by start, then pitch) and its sustain pedal (sorted, never
/// overlapping).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cover {
    pub notes: Vec<CoverNote>,
    pub pedal: Vec<PedalSpan>,
}

impl Cover {
    pub fn is_empty(&self) -> bool {
        self.notes.is_empty()
    }

    /// The same cover `beats` later.
    pub fn shifted(mut self, beats: f64) -> Self {
        for n in &mut self.notes {
            n.start_beat += beats;
            n.end_beat += beats;
        }
        for p in &mut self.pedal {
            p.down_beat += beats;
            p.up_beat += beats;
        }
        self
    }
}
