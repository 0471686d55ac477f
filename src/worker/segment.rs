//! Capture mode's segments: a run of blocks that continue one another (sample counter and beat
//! position) is one segment with its own resampler and `FrameStream` (the reference windowing). A
//! long take is cut every [`MAX_SEGMENT_SECONDS`] with [`CUT_OVERLAP_SECONDS`] of overlap; a
//! finished segment keeps its notes in beats (mapped through its tempo pieces) and compact frames
//! for re-decoding. [`Track`] (where a run stands on the beat grid) is shared with Live mode's take.

use super::{TakeError, CUT_OVERLAP_SECONDS, CUT_SAME_NOTE_SECONDS, MAX_SEGMENT_SECONDS};
use crate::arrange::dynamics::{BeatLoudness, LoudnessMeter};
use crate::arrange::{ArrangeInput, BeatNote};
use crate::compact::CompactFrames;
use crate::decode::{self, DecodeParams};
use crate::engine::FrameStream;
use crate::model::{NoteModel, MODEL_SAMPLE_RATE};
use crate::notes::{BeatGrid, FrameOutputs, Note, N_CONTOUR_BINS, N_KEYS};
use crate::params::CapturedSong;
use crate::pitch::{PitchTracker, VoiceMode};
use crate::resample::StreamResampler;
use crate::ring::{self, Stamp};

/// A stretch of constant tempo inside a segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Piece {
    /// Seconds from the segment's first sample.
    pub at_s: f64,
    pub beat: f64,
    pub tempo: f64,
}

/// Maps seconds from a segment's start to beats, piece by piece.
#[derive(Clone, Debug, Default)]
pub(super) struct BeatMap {
    pub pieces: Vec<Piece>,
}

impl BeatMap {
    /// The map of the same stretch seen from `from_s` seconds on (its time 0 at `from_s`).
    pub fn from(&self, from_s: f64) -> BeatMap {
        let i = self.pieces.partition_point(|p| p.at_s <= from_s).saturating_sub(1);
        let mut pieces = vec![Piece { at_s: 0.0, beat: self.beat_at(from_s), tempo: self.pieces.get(i).map_or(120.0, |p| p.tempo) }];
        pieces.extend(self.pieces.iter().filter(|p| p.at_s > from_s).map(|p| Piece { at_s: p.at_s - from_s, ..*p }));
        BeatMap { pieces }
    }

    pub fn beat_at(&self, s: f64) -> f64 {
        let i = self.pieces.partition_point(|p| p.at_s <= s).saturating_sub(1);
        let Some(p) = self.pieces.get(i) else { return s };
        // Same arithmetic as `BeatGrid::beat_at` for a constant tempo from the segment's start.
        (s - p.at_s) / (60.0 / p.tempo) + p.beat
    }
}

/// Notes (seconds from the segment start) -> beats through `map`, with the contour salience the
/// arranger wants from `frames` (row `r` is frame `frames_origin + r`).
pub(super) fn to_beats(notes: &[Note], frames: &FrameOutputs, frames_origin: usize, map: &BeatMap) -> Vec<BeatNote> {
    to_beats_scaled(notes, frames, frames_origin, map, 1.0)
}

/// [`to_beats`] for frames `time_scale` times as long as the notes' seconds (a segment heard in
/// tune, [`retuned`]).
fn to_beats_scaled(notes: &[Note], frames: &FrameOutputs, frames_origin: usize, map: &BeatMap, time_scale: f64) -> Vec<BeatNote> {
    // Seconds stay seconds through this grid (60 bpm from 0 s); the map then does the tempo.
    let identity = BeatGrid { bpm: 60.0, beats_per_bar: 4, first_beat_s: 0.0, first_downbeat_beat: 0.0 };
    let frame_time = |r: usize| (frames_origin + r) as f64 * crate::live::FRAME_SECONDS * time_scale;
    let mut input = ArrangeInput::from_transcription_with(notes, Some(frames), &identity, frame_time);
    for (b, n) in input.notes.iter_mut().zip(notes) {
        b.start_beat = map.beat_at(n.start_s);
        b.end_beat = map.beat_at(n.end_s);
    }
    input.notes
}

fn truncated(frames: &FrameOutputs, n: usize) -> FrameOutputs {
    let n = n.min(frames.n_frames());
    FrameOutputs {
        note: frames.note[..n * N_KEYS].to_vec(),
        onset: frames.onset[..n * N_KEYS].to_vec(),
        contour: frames.contour[..(n * N_CONTOUR_BINS).min(frames.contour.len())].to_vec(),
    }
}

/// Where a run of blocks stands on the host's beat grid: what both kinds of take follow block by
/// block (the continuity check, the tempo pieces, the meter).
#[derive(Clone)]
pub(super) struct Track {
    pub rate: f32,
    /// Expected `sample_index` of the next block.
    pub next_index: u64,
    /// Input samples recorded.
    pub recorded: u64,
    pub start_beat: f64,
    /// Beat just past the last block (by its own tempo), and that tempo.
    pub end_beat: f64,
    pub tempo: f64,
    pub map: BeatMap,
    pub beats_per_bar: u32,
    pub bar_start_beat: f64,
    /// The audio's loudness per beat, for the cover's dynamics.
    pub loudness: LoudnessMeter,
}

impl Track {
    pub fn new(s: &Stamp) -> Self {
        Self {
            rate: s.sample_rate,
            next_index: s.sample_index,
            recorded: 0,
            start_beat: s.beat,
            end_beat: s.beat,
            tempo: s.tempo,
            map: BeatMap { pieces: vec![Piece { at_s: 0.0, beat: s.beat, tempo: s.tempo }] },
            beats_per_bar: s.beats_per_bar,
            bar_start_beat: s.bar_start_beat,
            loudness: LoudnessMeter::default(),
        }
    }

    /// Whether block `s` continues this run (sample counter and beat position).
    pub fn continues(&self, s: &Stamp) -> bool {
        s.sample_index == self.next_index && ring::continues(self.end_beat, self.tempo, self.rate, s)
    }

    /// Follows block `s` (its mono `samples`): a tempo change starts a new piece of the beat map;
    /// the block's loudness is measured.
    pub fn advance(&mut self, s: &Stamp, samples: &[f32]) {
        let len = samples.len();
        self.loudness.push(samples, s.beat, s.tempo / 60.0 / s.sample_rate as f64);
        if s.tempo != self.tempo {
            let at_s = self.recorded as f64 / self.rate as f64;
            self.map.pieces.push(Piece { at_s, beat: s.beat, tempo: s.tempo });
        }
        self.tempo = s.tempo;
        self.end_beat = s.end_beat();
        self.next_index = s.sample_index + s.len as u64;
        self.recorded += len as u64;
    }

    /// The meter and first tempo as the arranger wants them.
    pub fn meter(&self) -> CapturedSong {
        let bpb = self.beats_per_bar.max(1);
        CapturedSong {
            beats_per_bar: bpb,
            first_downbeat_beat: self.bar_start_beat.rem_euclid(bpb as f64),
            seconds_per_beat: 60.0 / self.map.pieces[0].tempo,
            ..CapturedSong::default()
        }
    }
}

/// A Capture-mode segment being recorded: the reference windowing over its audio.
pub(super) struct Segment {
    pub track: Track,
    resampler: StreamResampler,
    /// The segment's audio at the pitch tracker's rate (at most ~7.7 MB for a
    /// [`MAX_SEGMENT_SECONDS`] segment), for the sung line when it is a voice; None when the melody
    /// comes from the mix (nothing resampled or kept for a tracker that will not run).
    voice: Option<(StreamResampler, Vec<f32>)>,
    stream: FrameStream,
    scratch: Vec<f32>,
    /// The segment's audio at the model's rate (at most ~10.6 MB for a [`MAX_SEGMENT_SECONDS`]
    /// segment): its tuning is read from it when it ends, and a detuned segment is heard again
    /// from it in tune ([`retuned`]).
    heard: Vec<f32>,
    /// Input samples after which the segment is cut (see [`MAX_SEGMENT_SECONDS`]).
    cut_at: Option<u64>,
    /// The input audio of the last [`CUT_OVERLAP_SECONDS`] before the cut, for the next segment.
    tail: Vec<f32>,
    /// Set when this segment resumed after a cut.
    pub joins: Option<Join>,
    /// How long the segment's audio has sound (for decoding a quiet song more closely).
    audible: crate::decode::AudibleMeter,
}

/// What a cut segment hands to the one that continues it.
pub(super) struct Carry {
    tail: Vec<f32>,
    /// The run as seen from the start of the tail.
    track: Track,
    /// Where the old and the new segment meet.
    join: Join,
    /// The segment kept its audio for the voice tracker; so does the one after it.
    for_voice: bool,
}

impl Carry {
    pub fn continues(&self, s: &Stamp) -> bool {
        s.playing && self.track.continues(s)
    }
}

impl Segment {
    /// A segment from block `s`; `for_voice`: keep its audio for the voice tracker.
    pub fn new(s: &Stamp, for_voice: bool) -> Result<Self, crate::resample::ResampleError> {
        Ok(Self {
            track: Track::new(s),
            resampler: StreamResampler::new(s.sample_rate.round() as u32)?,
            voice: if for_voice { Some((StreamResampler::to_rate(s.sample_rate.round() as u32, crate::pitch::SAMPLE_RATE)?, Vec::new())) } else { None },
            stream: FrameStream::new(),
            scratch: Vec::with_capacity(8192),
            heard: Vec::new(),
            cut_at: None,
            tail: vec![],
            joins: None,
            audible: crate::decode::AudibleMeter::new(s.sample_rate.round() as u32),
        })
    }

    /// Cut after [`MAX_SEGMENT_SECONDS`] of audio.
    pub fn cut_after_max(mut self) -> Self {
        self.cut_at = Some((MAX_SEGMENT_SECONDS * self.track.rate as f64) as u64);
        self
    }

    /// The segment that goes on after a cut: it starts with the cut segment's last audio.
    pub fn resume(c: Carry, model: &mut dyn NoteModel) -> Result<Self, TakeError> {
        let first = c.track.map.pieces[0];
        let start = Stamp { sample_rate: c.track.rate, beat: first.beat, tempo: first.tempo, ..Stamp::default() };
        let mut seg = Segment::new(&start, c.for_voice)?.cut_after_max();
        seg.track = c.track;
        seg.track.recorded = c.tail.len() as u64;
        seg.track.start_beat = first.beat;
        seg.joins = Some(c.join);
        seg.resampler.push(&c.tail, &mut seg.scratch)?;
        seg.audible.push(&c.tail);
        if let Some((resampler, audio)) = seg.voice.as_mut() {
            resampler.push(&c.tail, audio)?;
        }
        seg.stream.push(model, &seg.scratch)?;
        seg.heard.extend_from_slice(&seg.scratch);
        Ok(seg)
    }

    pub fn cut_due(&self) -> bool {
        self.cut_at.is_some_and(|at| self.track.recorded >= at)
    }

    /// Takes what the next segment needs; the segment itself is then finished as usual.
    pub fn carry(&mut self) -> Carry {
        let tail = std::mem::take(&mut self.tail);
        let rate = self.track.rate as f64;
        let cut_s = self.track.recorded as f64 / rate;
        let from_s = cut_s - tail.len() as f64 / rate;
        let mut track = Track { map: self.track.map.from(from_s), ..self.track.clone() };
        track.start_beat = track.map.pieces[0].beat;
        Carry {
            join: Join { until_beat: self.track.map.beat_at(cut_s), tolerance_beats: CUT_SAME_NOTE_SECONDS * self.track.tempo / 60.0 },
            tail,
            track,
            for_voice: self.voice.is_some(),
        }
    }

    /// Adds one block; returns the number of new frames.
    pub fn push(&mut self, s: &Stamp, samples: &[f32], model: &mut dyn NoteModel) -> Result<usize, TakeError> {
        if let Some(at) = self.cut_at {
            // Keep the audio from CUT_OVERLAP_SECONDS before the cut on.
            let from = at.saturating_sub((CUT_OVERLAP_SECONDS * self.track.rate as f64) as u64);
            let skip = from.saturating_sub(self.track.recorded).min(samples.len() as u64) as usize;
            self.tail.extend_from_slice(&samples[skip..]);
        }
        self.track.advance(s, samples);
        self.audible.push(samples);
        self.scratch.clear();
        self.resampler.push(samples, &mut self.scratch)?;
        if let Some((resampler, audio)) = self.voice.as_mut() {
            resampler.push(samples, audio)?;
        }
        self.heard.extend_from_slice(&self.scratch);
        Ok(self.stream.push(model, &self.scratch)?)
    }

    /// Notes so far (only final frames).
    pub fn provisional(&self, params: &DecodeParams) -> Vec<BeatNote> {
        let frames = truncated(self.stream.frames(), self.stream.final_frames());
        to_beats(&decode::notes_from_frames(&frames, params), &frames, 0, &self.track.map)
    }

    /// Flushes the resampler and the stream: all frames of the segment. With a pitch tracker and
    /// a mode that allows it, the sung line too, kept when the segment is a lone voice (the
    /// returned words say what was chosen and why).
    pub fn finish(mut self, model: &mut dyn NoteModel, voice: Option<(&mut PitchTracker, VoiceMode)>) -> Result<(FinishedSegment, Option<String>), TakeError> {
        self.scratch.clear();
        self.resampler.finish(&mut self.scratch)?;
        self.stream.push(model, &self.scratch)?;
        self.heard.extend_from_slice(&self.scratch);
        let frames = self.stream.finish(model)?;
        // The recording's reference pitch (the spectrum's peaks up to 2 kHz); a segment off by
        // CAPTURE_CORRECT_CENTS or more is heard again in tune, as `pianola cover` hears a file.
        let tuning = crate::tuning::estimate(&self.heard, MODEL_SAMPLE_RATE).filter(|t| t.agreement >= crate::tuning::CAPTURE_MIN_AGREEMENT);
        let (frames, time_scale) = match tuning.filter(|t| t.cents.abs() >= crate::tuning::CAPTURE_CORRECT_CENTS) {
            Some(t) => retuned(&self.heard, t.cents, model)?,
            None => (frames, 1.0),
        };
        self.heard = Vec::new();
        let (sung, why) = match voice {
            Some((tracker, mode)) if mode != VoiceMode::Mix && self.voice.is_some() => {
                let (mut resampler, mut audio) = self.voice.take().expect("checked");
                resampler.finish(&mut audio)?;
                let curve = tracker.detect(&audio)?;
                let heard = scaled(decode::notes_from_frames(&frames, &DecodeParams::default()), time_scale);
                let melody = crate::pitch::choose_melody(mode, &curve, &heard);
                (melody.sung, Some(melody.why))
            }
            _ => (None, None),
        };
        let range = [self.track.start_beat, self.track.end_beat];
        let loudness = self.track.loudness.loudness();
        let audible_s = self.audible.seconds();
        let finished = FinishedSegment {
            raw: None,
            frames: None,
            map: self.track.map,
            range,
            joins: self.joins,
            notes: vec![],
            sung,
            loudness,
            audible_s,
            level: None,
            tuning,
            time_scale,
        }
        .decoded_from(frames);
        Ok((finished, why))
    }
}

/// A recorded segment: its notes, and compact frames so a sensitivity change can re-decode it
/// (dropped for the oldest segments past [`REDECODE_BUDGET_BYTES`]).
pub(super) struct FinishedSegment {
    /// The segment's raw frames until its first decode.
    raw: Option<FrameOutputs>,
    pub frames: Option<CompactFrames>,
    map: BeatMap,
    pub range: [f64; 2],
    /// Continues the previous finished segment after a cut.
    pub joins: Option<Join>,
    pub notes: Vec<BeatNote>,
    /// The sung line (seconds from the segment's start) when the segment is a lone voice: its
    /// notes replace the note model's, timed by them (`pitch::notes::with_model_onsets`).
    sung: Option<crate::pitch::notes::SungLine>,
    /// The segment's loudness per beat.
    pub loudness: BeatLoudness,
    /// Seconds of the segment's audio with sound.
    audible_s: f64,
    /// The last decode's thresholds in words, when they were lowered for a quiet song.
    pub level: Option<String>,
    /// The recording's tuning (None with too little pitched sound to tell, or peaks that agree
    /// less than `tuning::CAPTURE_MIN_AGREEMENT`).
    pub tuning: Option<crate::tuning::Tuning>,
    /// Seconds of the segment per second of its frames: not 1 when it was heard in tune
    /// ([`retuned`]).
    time_scale: f64,
}

/// A segment's frames heard in tune: its model-rate audio `heard`, `cents` sharp of A440, played
/// slower by that interval (its rate relabelled, then resampled back to the model's rate), as
/// `tuning::transcribe_in_tune` does for a file; with the segment seconds per frame second.
fn retuned(heard: &[f32], cents: f64, model: &mut dyn NoteModel) -> Result<(FrameOutputs, f64), TakeError> {
    let r = 2f64.powf(cents / 1200.0);
    let relabelled = (MODEL_SAMPLE_RATE as f64 / r).round() as u32;
    let mut resampler = StreamResampler::to_rate(relabelled, MODEL_SAMPLE_RATE)?;
    let mut audio = Vec::with_capacity((heard.len() as f64 * r) as usize + 4096);
    resampler.push(heard, &mut audio)?;
    resampler.finish(&mut audio)?;
    let mut stream = FrameStream::new();
    stream.push(model, &audio)?;
    Ok((stream.finish(model)?, relabelled as f64 / MODEL_SAMPLE_RATE as f64))
}

/// Notes with their times multiplied by `scale`.
fn scaled(mut notes: Vec<Note>, scale: f64) -> Vec<Note> {
    if scale != 1.0 {
        for n in &mut notes {
            n.start_s *= scale;
            n.end_s *= scale;
        }
    }
    notes
}

/// Where a segment resumed after a cut meets the one before it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Join {
    /// Notes of the new segment starting before this beat may also be in the old one.
    pub until_beat: f64,
    /// Two onsets of one pitch this close (in beats) are the same note heard by both segments.
    pub tolerance_beats: f64,
}

/// Joins a segment resumed after a cut to the old one: a note of the new segment in the shared
/// stretch (before `join.until_beat`) that the old one also started (same pitch, onsets within the
/// tolerance) is the same note: the old one's copy takes the later end (the old segment cut it at
/// the cut); the new segment's other notes are returned, to follow the old ones.
pub(super) fn join_at_cut(old: &mut [BeatNote], new: &[BeatNote], join: Join) -> Vec<BeatNote> {
    let mut rest = Vec::with_capacity(new.len());
    for n in new {
        let same = (n.start_beat < join.until_beat)
            .then(|| old.iter_mut().find(|o| o.pitch == n.pitch && (o.start_beat - n.start_beat).abs() <= join.tolerance_beats))
            .flatten();
        match same {
            Some(o) => o.end_beat = o.end_beat.max(n.end_beat),
            None => rest.push(*n),
        }
    }
    rest
}

impl FinishedSegment {
    /// Keeps the raw frames only as long as the first decode (with the current parameters, done by
    /// `end_segment`) needs them, then compactly.
    fn decoded_from(mut self, frames: FrameOutputs) -> Self {
        self.frames = Some(CompactFrames::from_frames(&frames));
        self.raw = Some(frames);
        self
    }

    /// Decodes the notes with `params`; with `follow_level` (the user left Sensitivity alone) the
    /// thresholds are lowered for a quiet or sparse segment, as `pianola cover` does
    /// (`decode::notes_for_level`), and [`Self::level`] says so.
    pub fn decode(&mut self, params: &DecodeParams, follow_level: bool) {
        let frames = match (self.raw.take(), &self.frames) {
            (Some(raw), _) => raw,
            (None, Some(c)) => c.to_frames(),
            (None, None) => return,
        };
        let heard = if follow_level {
            let (notes, decision) = decode::notes_for_level(&frames, params, self.audible_s);
            self.level = decision.lowered(params).then(|| decision.describe(params, notes.len()));
            notes
        } else {
            self.level = None;
            decode::notes_from_frames(&frames, params)
        };
        let heard = scaled(heard, self.time_scale);
        let notes = match &self.sung {
            Some(sung) => crate::pitch::notes::with_model_onsets(sung, &heard),
            None => heard,
        };
        self.notes = to_beats_scaled(&notes, &frames, 0, &self.map, self.time_scale);
    }

    pub fn redecode_bytes(&self) -> usize {
        self.frames.as_ref().map_or(0, CompactFrames::bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finished segment of `seconds` whose frames hold one soft note every second (onset 0.35
    /// and note 0.28, under basic-pitch's thresholds of 0.5 and 0.3), with `audible_s` of sound.
    fn soft(seconds: f64, audible_s: f64) -> FinishedSegment {
        let n = (seconds / crate::notes::FRAME_SECONDS) as usize;
        let mut frames = FrameOutputs { note: vec![0.0; n * N_KEYS], onset: vec![0.0; n * N_KEYS], contour: vec![0.0; n * N_CONTOUR_BINS] };
        let per_second = (1.0 / crate::notes::FRAME_SECONDS) as usize;
        for start in (0..n.saturating_sub(per_second)).step_by(per_second) {
            let key = 39 + (start / per_second) % 12;
            frames.onset[start * N_KEYS + key] = 0.35;
            for f in start..start + per_second * 8 / 10 {
                frames.note[f * N_KEYS + key] = 0.28;
            }
        }
        let map = BeatMap { pieces: vec![Piece { at_s: 0.0, beat: 0.0, tempo: 120.0 }] };
        FinishedSegment {
            raw: None,
            frames: None,
            map,
            range: [0.0, seconds * 2.0],
            joins: None,
            notes: vec![],
            sung: None,
            loudness: BeatLoudness::default(),
            audible_s,
            level: None,
            tuning: None,
            time_scale: 1.0,
        }
        .decoded_from(frames)
    }

    #[test]
    fn a_quiet_segment_is_decoded_more_closely_unless_the_user_set_sensitivity() {
        let given = DecodeParams::default();
        let mut quiet = soft(10.0, 10.0);
        quiet.decode(&given, true);
        assert!(quiet.notes.len() >= 8, "{} notes", quiet.notes.len());
        let words = quiet.level.clone().expect("the lowered thresholds are reported");
        assert!(words.contains("too little"), "{words}");
        // The user's own sensitivity is kept: nothing found, nothing reported.
        quiet.decode(&given, false);
        assert!(quiet.notes.is_empty() && quiet.level.is_none());
        // Silence stays silent: no sound, nothing lowered.
        let mut silent = soft(10.0, 0.0);
        silent.decode(&given, true);
        assert!(silent.notes.is_empty() && silent.level.is_none());
    }
}
