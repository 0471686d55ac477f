//! Live mode's take: every block of a pass resampled into `live::LiveTake` (sliding-window
//! inference, causal decoder), and after every hop the recent notes re-arranged around the
//! playhead (`LiveArranger`: what the playhead passed stays as played). The worker runs this for
//! a Live pass, and the Live benchmark (`benches/live.rs`) drives the same type with a simulated
//! clock, so the published latency and scores describe the worker's own code.

use super::segment::{to_beats, Track};
use super::TakeError;
use crate::arrange::{ArrangeInput, ArrangeSettings};
use crate::decode::DecodeParams;
use crate::live::{self, LiveConfig, LiveTake};
use crate::model::NoteModel;
use crate::notes::{Cover, Note};
use crate::resample::StreamResampler;
use crate::ring::Stamp;

/// Seconds of frames a take keeps before the notes it re-arranges (a held note's salience comes
/// from its last half minute); older frames are never read again.
pub const KEEP_FRAMES_SECONDS: f64 = 30.0;

pub struct LiveRun {
    track: Track,
    resampler: StreamResampler,
    scratch: Vec<f32>,
    take: LiveTake,
}

impl LiveRun {
    /// A pass starting with the block at `s`.
    pub fn new(s: &Stamp, config: LiveConfig, decode: &DecodeParams) -> Result<Self, crate::resample::ResampleError> {
        Ok(Self {
            track: Track::new(s),
            resampler: StreamResampler::new(s.sample_rate.round() as u32)?,
            scratch: Vec::with_capacity(8192),
            take: LiveTake::new(config, decode),
        })
    }

    /// Whether block `s` continues this pass.
    pub fn continues(&self, s: &Stamp) -> bool {
        self.track.continues(s)
    }

    /// Adds one block; returns the number of frames committed (0: no new hop, nothing to publish).
    pub fn push(&mut self, s: &Stamp, samples: &[f32], model: &mut dyn NoteModel) -> Result<usize, TakeError> {
        self.track.advance(s, samples);
        self.scratch.clear();
        self.resampler.push(samples, &mut self.scratch)?;
        Ok(self.take.push(model, &self.scratch)?)
    }

    /// The cover to publish now: the recent notes re-arranged; notes before the playhead (the
    /// beat the host's output has reached: the input's end less `latency_s`) stay as played.
    pub fn cover(&mut self, settings: &ArrangeSettings, latency_s: f64) -> Cover {
        let tempo = self.track.tempo;
        let recent_s = self.take.decoded_s() - (live::ARRANGE_CONTEXT_BEATS + 8.0) * 60.0 / tempo;
        let notes = self.take.notes_since(recent_s);
        self.take.forget_before(recent_s - KEEP_FRAMES_SECONDS);
        let meter = self.track.meter();
        let input = ArrangeInput {
            notes: to_beats(&notes, self.take.frames(), self.take.frames_origin(), &self.track.map),
            beats_per_bar: meter.beats_per_bar,
            first_downbeat_beat: meter.first_downbeat_beat,
            seconds_per_beat: meter.seconds_per_beat,
            loudness: self.track.loudness.loudness(),
        };
        let latency_beats = latency_s * tempo / 60.0;
        self.take.arrange(&input, settings, self.track.end_beat - latency_beats, 2.0 * latency_beats)
    }

    /// Every note decoded so far, in seconds from the pass's start (the benchmark's latency).
    pub fn decoded_notes(&self) -> Vec<Note> {
        self.take.notes_since(f64::NEG_INFINITY)
    }

    /// Melody notes the arranger moved to the playhead because they were known too late.
    pub fn late_melody(&self) -> usize {
        self.take.late_melody()
    }
}
