//! What the threads of one instance tell each other and the editor: errors, progress, the newest
//! cover (written by the worker) and the host's transport as the audio thread last saw it (relaxed
//! atomics, no lock on the audio thread). Lives as long as the plugin instance; owned by none of the
//! threads, so the editor depends on it and not on the worker.

use crate::timeline::Timeline;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Capture stops listening after this much silence once the song has been heard (the host plays
/// on past the song's end; recording silence would only grow the capture). It listens again on
/// the first block with sound.
pub const SILENCE_STOP_SECONDS: f64 = 8.0;

/// What the worker tells the editor (and tests). Lives as long as the plugin instance.
#[derive(Debug, Default)]
pub struct Status {
    /// Model load failure or a caught panic; the plugin keeps passing audio through.
    pub error: Mutex<Option<String>>,
    pub has_error: AtomicBool,
    /// A segment is being recorded.
    pub recording: AtomicBool,
    /// Capture stopped listening: a stretch of silence followed the song (it listens again when
    /// sound returns).
    pub resting_on_silence: AtomicBool,
    /// The newest cover, including what is still being recorded (the editor's piano roll).
    pub cover: Mutex<Arc<Timeline>>,
    /// Notes in the captured transcription.
    pub captured_notes: AtomicUsize,
    /// Model windows run since the plugin was created.
    pub windows: AtomicU64,
    /// Segments finished since the plugin was created.
    pub segments: AtomicU64,
    /// Bytes of frames the worker keeps for re-decoding finished segments (at most
    /// [`crate::worker::REDECODE_BUDGET_BYTES`]).
    pub redecode_bytes: AtomicU64,
    /// What the audio thread last saw of the host (the editor's playhead and meter).
    pub host: HostView,
    /// The note model is loaded (the editor tells "loading" from "failed" with it).
    pub model_ready: AtomicBool,
    /// Set by the editor's "Re-arrange" button; the worker re-arranges and clears it.
    pub rearrange: AtomicBool,
    /// The note model's backend and why (set by the worker when it loads the model).
    pub backend: Mutex<Option<crate::model::BackendChoice>>,
    /// Where the melody of the last captured stretch came from, in words.
    pub melody: Mutex<Option<String>>,
    /// When the captured song does not follow the host's grid: what differs, in words (the cover
    /// follows the song's own beat).
    pub song_grid: Mutex<Option<String>>,
    /// When Capture lowered the decoder's thresholds for a quiet or sparse song: how, in words.
    pub quiet_song: Mutex<Option<String>>,
    /// The captured recording's tuning, cents from A440 (the newest segment that could tell).
    pub tuning_cents: Mutex<Option<f64>>,
}

/// The host's transport and the plugin's latency as of the last processed block, written by the audio
/// thread with relaxed atomic stores (no lock) and read by the editor.
#[derive(Debug, Default)]
pub struct HostView {
    beat_bits: AtomicU64,
    tempo_bits: AtomicU64,
    sample_rate_bits: AtomicU32,
    /// 0 when the host gives no beat position.
    has_beat: AtomicBool,
    pub playing: AtomicBool,
    pub beats_per_bar: AtomicU32,
    /// Latency reported to the host (Live mode), in samples.
    pub latency_samples: AtomicU32,
}

impl HostView {
    /// Audio thread: the block's transport.
    pub fn store(&self, playing: bool, beat: Option<f64>, tempo: Option<f64>, beats_per_bar: u32, sample_rate: f32) {
        self.playing.store(playing, Ordering::Relaxed);
        self.has_beat.store(beat.is_some(), Ordering::Relaxed);
        self.beat_bits.store(beat.unwrap_or(0.0).to_bits(), Ordering::Relaxed);
        self.tempo_bits.store(tempo.unwrap_or(0.0).to_bits(), Ordering::Relaxed);
        self.beats_per_bar.store(beats_per_bar, Ordering::Relaxed);
        self.sample_rate_bits.store(sample_rate.to_bits(), Ordering::Relaxed);
    }

    /// The host's beat position at the last block, if it gives one.
    pub fn beat(&self) -> Option<f64> {
        self.has_beat.load(Ordering::Relaxed).then(|| f64::from_bits(self.beat_bits.load(Ordering::Relaxed)))
    }

    /// Tempo in bpm at the last block (0 if unknown).
    pub fn tempo(&self) -> f64 {
        f64::from_bits(self.tempo_bits.load(Ordering::Relaxed))
    }

    pub fn sample_rate(&self) -> f32 {
        f32::from_bits(self.sample_rate_bits.load(Ordering::Relaxed))
    }
}

impl Status {
    pub fn set_error(&self, message: impl Into<String>) {
        if let Ok(mut e) = self.error.lock() {
            *e = Some(message.into());
        }
        self.has_error.store(true, Ordering::Release);
    }

    pub fn set_backend(&self, choice: &crate::model::BackendChoice) {
        if let Ok(mut b) = self.backend.lock() {
            *b = Some(choice.clone());
        }
    }

    pub fn backend(&self) -> Option<crate::model::BackendChoice> {
        self.backend.lock().ok().and_then(|b| b.clone())
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
}
