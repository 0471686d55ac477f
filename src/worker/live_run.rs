//! Live mode's take: every block of a pass resampled into `live::LiveTake` (sliding-window
//! inference, causal decoder), and after every hop the recent notes re-arranged around the
//! playhead (`LiveArranger`: what the playhead passed stays as played). The worker runs this for
//! a Live pass, and the Live benchmark (`benches/live.rs`) drives the same type with a simulated
//! clock, so the published latency and scores describe the worker's own code.
//!
//! With a voice mode (the worker passes one for Melody from: Voice, with the voice tracker loaded;
//! the Live bench also tries Auto), the pass also streams through the pitch tracker
//! (`pitch::stream`); each cover then takes the recent sung line as its notes, timed by the note
//! model's onsets, as Capture does for a finished segment.

use super::segment::{to_beats, Track};
use super::TakeError;
use crate::arrange::{ArrangeInput, ArrangeSettings};
use crate::decode::DecodeParams;
use crate::live::{self, LiveConfig, LiveTake};
use crate::model::NoteModel;
use crate::notes::{Cover, Note};
use crate::pitch::stream::PitchStream;
use crate::pitch::{self, PitchTracker, VoiceMode};
use crate::resample::StreamResampler;
use crate::ring::Stamp;

/// Seconds of frames a take keeps before the notes it re-arranges (a held note's salience comes
/// from its last half minute); older frames are never read again.
pub const KEEP_FRAMES_SECONDS: f64 = 30.0;

/// Seconds of the sung curve before the notes re-arranged that the note finder also reads (its
/// smoothing and a glide into the first note need some past).
const CURVE_LEAD_SECONDS: f64 = 1.0;

pub struct LiveRun {
    track: Track,
    resampler: StreamResampler,
    scratch: Vec<f32>,
    take: LiveTake,
    voice: Option<LiveVoice>,
    /// The settings and latency of the last cover (None before the first), to arrange inside a
    /// long host block.
    arrange_with: Option<(ArrangeSettings, f64)>,
}

/// Samples of a host block the reported latency allows for (`live::IO_ALLOWANCE_S`): a longer
/// block is taken in pieces this long, arranged after each piece that brought news.
const BLOCK_PIECE: usize = 512;

/// What a block added: the note model's frames committed, and whether the voice's curve moved.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pushed {
    pub frames: usize,
    pub curve_changed: bool,
}

impl Pushed {
    /// Whether the cover may have changed.
    pub fn news(&self) -> bool {
        self.frames > 0 || self.curve_changed
    }
}

/// Live mode's voice: the pass's audio at the tracker's rate through the streaming tracker.
struct LiveVoice {
    mode: VoiceMode,
    resampler: StreamResampler,
    scratch: Vec<f32>,
    stream: PitchStream,
    /// Whether the last cover's melody was the voice, and why in words (changes are reported).
    chosen: Option<(bool, String)>,
}

impl LiveVoice {
    /// The notes to arrange: the sung line since `recent_s` timed by `heard`'s onsets when the
    /// pass is a lone voice (decided again each hop from the last stretch heard), else `heard`.
    /// A sung note reaching the curve's newest frame is still sounding: it lasts `open_s` more.
    fn notes(&mut self, heard: Vec<Note>, recent_s: f64, open_s: f64) -> Vec<Note> {
        let from = ((recent_s - CURVE_LEAD_SECONDS).max(0.0) / pitch::FRAME_SECONDS) as usize;
        self.stream.forget_before(from);
        let (curve, first) = self.stream.curve_since(from);
        // Decided as Capture decides a finished segment, in its words.
        let melody = pitch::choose_melody(self.mode, &curve, &heard);
        let voice = melody.sung.is_some();
        if self.chosen.as_ref().is_none_or(|(v, _)| *v != voice) {
            self.chosen = Some((voice, format!("{} (Live)", melody.why)));
        }
        let Some(sung) = melody.sung else { return heard };
        let mut sung = sung.shifted(first as f64 * pitch::FRAME_SECONDS);
        let curve_end = (first + curve.len()) as f64 * pitch::FRAME_SECONDS;
        for n in &mut sung.notes {
            if curve_end - n.end_s < 1.5 * pitch::FRAME_SECONDS {
                n.end_s += open_s;
            }
        }
        sung.notes.retain(|n| n.end_s >= recent_s);
        pitch::notes::with_model_onsets_streaming(&sung, &heard)
    }
}

impl LiveRun {
    /// A pass starting with the block at `s`; `voice`: how to tell its melody when the voice
    /// tracker may run (None: the note model's notes only, nothing resampled for a tracker).
    pub fn new(s: &Stamp, config: LiveConfig, decode: &DecodeParams, voice: Option<VoiceMode>) -> Result<Self, crate::resample::ResampleError> {
        let rate = s.sample_rate.round() as u32;
        let voice = match voice {
            Some(mode) if mode != VoiceMode::Mix => Some(LiveVoice {
                mode,
                resampler: StreamResampler::to_rate(rate, pitch::SAMPLE_RATE)?,
                scratch: Vec::with_capacity(4096),
                stream: PitchStream::new(),
                chosen: None,
            }),
            _ => None,
        };
        Ok(Self {
            track: Track::new(s),
            resampler: StreamResampler::new(rate)?,
            scratch: Vec::with_capacity(8192),
            take: LiveTake::new(config, decode),
            voice,
            arrange_with: None,
        })
    }

    /// Whether the last cover's melody came from the voice, and why, in words (None before the
    /// first cover, or without the voice tracker).
    pub fn melody_choice(&self) -> Option<&(bool, String)> {
        self.voice.as_ref().and_then(|v| v.chosen.as_ref())
    }

    /// Whether block `s` continues this pass.
    pub fn continues(&self, s: &Stamp) -> bool {
        self.track.continues(s)
    }

    /// Adds one block: the note model's frames and, with a `tracker`, the voice's curve. A block
    /// longer than [`BLOCK_PIECE`] goes in pieces, the recent notes re-arranged after each piece
    /// with news: the worker arranges once per block, with the playhead at the block's end, and a
    /// note decided early in a long block (8192 samples: 170 ms at 48 kHz) would find the
    /// playhead past it and be moved there, late (the reported latency allows for 512 samples).
    pub fn push(&mut self, s: &Stamp, samples: &[f32], model: &mut dyn NoteModel, mut tracker: Option<&mut PitchTracker>) -> Result<Pushed, TakeError> {
        let Some((settings, latency_s)) = self.arrange_with.filter(|_| samples.len() > BLOCK_PIECE) else {
            return self.push_piece(s, samples, model, tracker);
        };
        let beats_per_sample = s.tempo / 60.0 / s.sample_rate as f64;
        let mut all = Pushed::default();
        let pieces = samples.len().div_ceil(BLOCK_PIECE);
        for (i, piece) in samples.chunks(BLOCK_PIECE).enumerate() {
            let at = i * BLOCK_PIECE;
            let sub = Stamp { sample_index: s.sample_index + at as u64, len: piece.len() as u32, beat: s.beat + at as f64 * beats_per_sample, ..*s };
            let p = self.push_piece(&sub, piece, model, tracker.as_deref_mut())?;
            if p.news() && i + 1 < pieces {
                self.cover(&settings, latency_s);
            }
            all.frames += p.frames;
            all.curve_changed |= p.curve_changed;
        }
        Ok(all)
    }

    fn push_piece(&mut self, s: &Stamp, samples: &[f32], model: &mut dyn NoteModel, tracker: Option<&mut PitchTracker>) -> Result<Pushed, TakeError> {
        self.track.advance(s, samples);
        self.scratch.clear();
        self.resampler.push(samples, &mut self.scratch)?;
        let frames = self.take.push(model, &self.scratch)?;
        let mut curve_changed = false;
        if let (Some(v), Some(tracker)) = (self.voice.as_mut(), tracker) {
            v.scratch.clear();
            v.resampler.push(samples, &mut v.scratch)?;
            curve_changed = v.stream.push(tracker, &v.scratch)? > 0;
        }
        Ok(Pushed { frames, curve_changed })
    }

    /// The cover to publish now: the recent notes re-arranged; notes before the playhead (the
    /// beat the host's output has reached: the input's end less `latency_s`) stay as played.
    pub fn cover(&mut self, settings: &ArrangeSettings, latency_s: f64) -> Cover {
        self.arrange_with = Some((*settings, latency_s));
        let tempo = self.track.tempo;
        let recent_s = self.take.decoded_s() - (live::ARRANGE_CONTEXT_BEATS + 8.0) * 60.0 / tempo;
        let mut notes = self.take.notes_since(recent_s);
        if let Some(v) = self.voice.as_mut() {
            notes = v.notes(notes, recent_s, self.take.open_extension_s());
        }
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

    /// Whether the note model streams (the native engine's streaming inference; known once the
    /// first hop ran).
    pub fn is_streaming(&self) -> bool {
        self.take.is_streaming()
    }

    /// Melody notes the arranger moved to the playhead because they were known too late.
    pub fn late_melody(&self) -> usize {
        self.take.late_melody()
    }
}
