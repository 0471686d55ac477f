//! The per-instance worker thread: capture ring -> resampler -> model (FrameStream) -> decoder ->
//! notes in beats -> arranger -> timeline. One `std::thread` per plugin instance, started in
//! `activate` and joined in `deactivate` (long work has no place on the host-wide executor).
//!
//! Capture segments: a run of blocks that continue one another (sample counter and beat position)
//! is one segment with its own resampler and `FrameStream`. A seek, a loop wrap, a stop, a dropped
//! block or (in Capture mode) reaching beats already captured ends it: its stream is flushed, its
//! notes decoded and mapped from seconds to beats through the segment's tempo pieces (so tempo
//! changes during the capture are right), and the cover re-arranged and published.
//!
//! Modes: Capture records only beats not yet covered and publishes the cover of finished segments
//! (what a later pass plays); Live streams every segment through `live::LiveTake` (sliding-window
//! inference, causal decoder, incremental arrangement) and publishes after every hop (the plugin
//! plays it `live_latency_seconds()` late).
//!
//! Failures never reach the host: a model that cannot load leaves the worker draining the ring
//! (audio still passes through) with the error in [`Status`]; a panic in one step is caught, reported
//! and the worker goes on.

use crate::arrange::{self, ArrangeInput, ArrangeSettings, BeatNote};
use crate::audio_thread::capture::{self, CaptureReader, CaptureShared, RingLink, Stamp};
use crate::status::Status;
use crate::compact::CompactFrames;
use crate::decode::{self, DecodeParams};
use crate::engine::FrameStream;
use crate::live::{self, LiveTake};
use crate::model::{ModelError, NoteModel};
use crate::notes::{BeatGrid, CoverNote, FrameOutputs, Note, N_CONTOUR_BINS, N_KEYS};
use crate::params::{CapturedSong, Mode, PianolaParams, SavedNote};
use crate::resample::StreamResampler;
use crate::timeline::{Publisher, Timeline};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

/// How Live mode delays its notes behind the audio: the live pipeline's worst case for the plugin's
/// backend (`model::plugin_backend`), see `live::latency_for`: the model's right context, the hop,
/// the decoder's lookahead, one inference and the host block.
pub fn live_latency_seconds() -> f64 {
    live::latency_for(crate::model::plugin_backend().name())
}

/// The Live settings [`live_latency_seconds`] is computed for.
fn live_config() -> live::LiveConfig {
    live::config_for(crate::model::plugin_backend().name()).sanitized()
}
/// In offline Live rendering the audio thread lets the worker fall this far behind before it waits:
/// less than the latency's allowance for compute and I/O, so a bounce hears every note in time.
pub const LIVE_MAX_LAG_SECONDS: f64 = 0.1;
/// Capture mode ends a segment after this much audio and goes straight on with a new one, so the
/// model frames a segment holds until it is decoded (~151 kB/s) and the decoder's working copies
/// stay bounded in a long take. The next segment starts [`CUT_OVERLAP_SECONDS`] before the cut (the
/// model and the decoder get context on both sides). Both segments' notes in the overlap are kept,
/// a note both heard once ([`join_at_cut`]): neither edge is trusted alone (a split at the middle
/// lost the click just before it at 2 of 5 cuts, missing from the old segment's last second).
pub const MAX_SEGMENT_SECONDS: f64 = 120.0;
pub const CUT_OVERLAP_SECONDS: f64 = 1.0;
/// Two onsets of one pitch this close, one from each side of a cut, are the same note (a model
/// frame is 11.6 ms; the two segments' frame grids differ).
pub const CUT_SAME_NOTE_SECONDS: f64 = 0.05;
/// Most bytes of compact frames kept for re-decoding finished segments on a sensitivity change
/// (~163 MB per captured hour, see `compact`): past it the oldest segments keep only their notes.
pub const REDECODE_BUDGET_BYTES: usize = 128 << 20;

/// The cover of the saved capture with the current settings (what Capture mode plays), computed in
/// `activate` so the first block after an activation already has it. A panic in the arranger is
/// an error to show, not an empty cover without a word.
pub fn saved_cover(params: &PianolaParams) -> Result<Vec<CoverNote>, String> {
    if params.mode.value() != Mode::Capture {
        return Ok(vec![]);
    }
    let song = params.capture.get();
    if song.notes.is_empty() {
        return Ok(vec![]);
    }
    catch_unwind(AssertUnwindSafe(|| arrange::arrange(&song.arrange_input(), &params.arrange_settings())))
        .map_err(|p| format!("arranging the saved capture failed ({}); the worker arranges it again", panic_message(p.as_ref())))
}

/// Loads a model (the plugin passes `model::load(model::plugin_backend())`; tests pass failures).
pub type ModelLoader = Box<dyn FnOnce() -> Result<Box<dyn NoteModel>, ModelError> + Send>;

/// Where a new worker gets its note model. Loading (a second or two) and waiting for a retiring
/// worker both happen on the new worker's thread, never in the host's `activate()`.
pub enum ModelSource {
    Ready(Box<dyn NoteModel>),
    Load(ModelLoader),
    /// The previous activation's worker, still finishing its audio after a deactivate: the new
    /// worker waits for it (so the capture it stores is the one restored) and takes its model, or
    /// loads one with `load` when it had none (its model had failed to load).
    AfterRetired { previous: RetiredWorker, load: ModelLoader },
}

/// Everything a worker thread needs.
pub struct WorkerSetup {
    pub params: Arc<PianolaParams>,
    pub status: Arc<Status>,
    pub capture: Arc<CaptureShared>,
    pub reader: CaptureReader,
    pub publisher: Publisher,
    pub model: ModelSource,
}

/// Flags the owner sets for its worker thread.
#[derive(Debug, Default)]
struct Control {
    /// Finish: handle what is left in the ring, end the segment (its notes stored), then exit.
    stop: AtomicBool,
    /// Exit as soon as possible, dropping unfinished work (the plugin is being destroyed).
    abandon: AtomicBool,
}

type WorkerThread = JoinHandle<Option<Box<dyn NoteModel>>>;

/// The running thread. Dropping it abandons its work and joins it (see [`RetiredWorker`]).
pub struct WorkerHandle {
    thread: Option<WorkerThread>,
    control: Arc<Control>,
    link: Arc<RingLink>,
}

impl WorkerHandle {
    pub fn spawn(setup: WorkerSetup) -> std::io::Result<Self> {
        let control = Arc::new(Control::default());
        let link = setup.reader.link().clone();
        link.worker_gone.store(false, Ordering::Release);
        let control2 = control.clone();
        let thread = std::thread::Builder::new().name("pianola-worker".into()).spawn(move || run(setup, control2))?;
        Ok(Self { thread: Some(thread), control, link })
    }

    /// The thread, for `unpark` from the audio thread in offline rendering.
    pub fn thread(&self) -> Option<Thread> {
        self.thread.as_ref().map(|t| t.thread().clone())
    }

    /// Stops the thread, waits until it has handled what was captured and ended its segment, and
    /// returns its model.
    pub fn stop(mut self) -> Option<Box<dyn NoteModel>> {
        self.control.stop.store(true, Ordering::Release);
        let t = self.thread.take()?;
        t.thread().unpark();
        let model = t.join().ok().flatten();
        self.link.worker_gone.store(true, Ordering::Release);
        model
    }

    /// Returns at once (the host's `deactivate()` must not wait on the model): the thread goes on
    /// alone until it has handled what was captured, ended its segment and stored the capture; the
    /// next worker takes its model from the returned handle ([`ModelSource::AfterRetired`]).
    pub fn retire(mut self) -> RetiredWorker {
        self.control.stop.store(true, Ordering::Release);
        // The writer of this activation is gone: an offline writer must never wait on this thread.
        self.link.worker_gone.store(true, Ordering::Release);
        let thread = self.thread.take();
        if let Some(t) = &thread {
            t.thread().unpark();
        }
        RetiredWorker { thread, control: self.control.clone() }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            drop(RetiredWorker { thread: Some(t), control: self.control.clone() });
        }
        self.link.worker_gone.store(true, Ordering::Release);
    }
}

/// A worker finishing the audio of an activation that ended. Dropping it (the plugin destroyed
/// with no activation after) abandons what is left and waits for the thread, which then ends
/// within one model window: a host may unload the library right after, and no thread of ours may
/// still run its code.
pub struct RetiredWorker {
    thread: Option<WorkerThread>,
    control: Arc<Control>,
}

impl RetiredWorker {
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits for the thread to finish its work (on the next worker's thread) and returns its
    /// model; gives up the work when `abandon` is set meanwhile.
    fn join(mut self, abandon: &AtomicBool) -> Option<Box<dyn NoteModel>> {
        while !self.is_finished() {
            if abandon.load(Ordering::Acquire) {
                self.control.abandon.store(true, Ordering::Release);
            }
            std::thread::park_timeout(Duration::from_millis(5));
        }
        self.thread.take().and_then(|t| t.join().ok().flatten())
    }
}

impl Drop for RetiredWorker {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.control.abandon.store(true, Ordering::Release);
            self.control.stop.store(true, Ordering::Release);
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_else(|| "unknown panic".into())
}

fn acquire_model(source: ModelSource, control: &Control) -> Result<Box<dyn NoteModel>, ModelError> {
    match source {
        ModelSource::Ready(m) => Ok(m),
        ModelSource::Load(load) => load(),
        ModelSource::AfterRetired { previous, load } => match previous.join(&control.abandon) {
            Some(m) => Ok(m),
            None => load(),
        },
    }
}

fn run(setup: WorkerSetup, control: Arc<Control>) -> Option<Box<dyn NoteModel>> {
    let WorkerSetup { params, status, capture, reader, publisher, model } = setup;
    let link = reader.link().clone();
    let status2 = status.clone();
    let model = match catch_unwind(AssertUnwindSafe(|| acquire_model(model, &control))) {
        Ok(Ok(mut m)) => {
            // Plan Live mode's shorter window now, while the panel says the model is loading, so
            // switching to Live does not stall its first notes (a failure is handled when Live starts).
            let _ = catch_unwind(AssertUnwindSafe(|| m.prepare_window(live_config().window_frames)));
            status.model_ready.store(true, Ordering::Release);
            Some(m)
        }
        Ok(Err(e)) => {
            status.set_error(format!("{e}; Pianola passes the audio through but cannot transcribe"));
            None
        }
        Err(p) => {
            status.set_error(format!("loading the model panicked: {}", panic_message(p.as_ref())));
            None
        }
    };
    let mut w = Worker::new(params, status, capture, reader, publisher, model);
    if let Err(p) = catch_unwind(AssertUnwindSafe(|| w.restore())) {
        w.status.set_error(format!("restoring the capture panicked: {}", panic_message(p.as_ref())));
    }
    loop {
        if control.abandon.load(Ordering::Acquire) {
            break;
        }
        let stopping = control.stop.load(Ordering::Acquire);
        match catch_unwind(AssertUnwindSafe(|| w.step(&control.abandon))) {
            Ok(true) => {}
            // Stopping and nothing left in the ring: whatever was being recorded is kept (Capture mode).
            Ok(false) if stopping => {
                let _ = catch_unwind(AssertUnwindSafe(|| w.end_segment()));
                break;
            }
            Ok(false) => std::thread::park_timeout(Duration::from_millis(5)),
            Err(p) => {
                w.status.set_error(format!("the worker recovered from a panic: {}", panic_message(p.as_ref())));
                w.recover();
            }
        }
    }
    link.worker_gone.store(true, Ordering::Release);
    status2.recording.store(false, Ordering::Release);
    w.model.take()
}

/// A stretch of constant tempo inside a segment.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Piece {
    /// Seconds from the segment's first sample.
    at_s: f64,
    beat: f64,
    tempo: f64,
}

/// Maps seconds from a segment's start to beats, piece by piece.
#[derive(Clone, Debug, Default)]
struct BeatMap {
    pieces: Vec<Piece>,
}

impl BeatMap {
    /// The map of the same stretch seen from `from_s` seconds on (its time 0 at `from_s`).
    fn from(&self, from_s: f64) -> BeatMap {
        let i = self.pieces.partition_point(|p| p.at_s <= from_s).saturating_sub(1);
        let mut pieces = vec![Piece { at_s: 0.0, beat: self.beat_at(from_s), tempo: self.pieces.get(i).map_or(120.0, |p| p.tempo) }];
        pieces.extend(self.pieces.iter().filter(|p| p.at_s > from_s).map(|p| Piece { at_s: p.at_s - from_s, ..*p }));
        BeatMap { pieces }
    }

    fn beat_at(&self, s: f64) -> f64 {
        let i = self.pieces.partition_point(|p| p.at_s <= s).saturating_sub(1);
        let Some(p) = self.pieces.get(i) else { return s };
        // Same arithmetic as `BeatGrid::beat_at` for a constant tempo from the segment's start.
        (s - p.at_s) / (60.0 / p.tempo) + p.beat
    }
}

/// Notes (seconds from the segment start) -> beats through `map`, with the contour salience the
/// arranger wants from `frames` (row `r` is frame `frames_origin + r`).
fn to_beats(notes: &[Note], frames: &FrameOutputs, frames_origin: usize, map: &BeatMap) -> Vec<BeatNote> {
    // Seconds stay seconds through this grid (60 bpm from 0 s); the map then does the tempo.
    let identity = BeatGrid { bpm: 60.0, beats_per_bar: 4, first_beat_s: 0.0, first_downbeat_beat: 0.0 };
    let frame_time = |r: usize| (frames_origin + r) as f64 * crate::live::FRAME_SECONDS;
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

/// The segment being recorded.
struct Segment {
    resampler: StreamResampler,
    stream: FrameStream,
    scratch: Vec<f32>,
    rate: f32,
    /// Expected `sample_index` of the next block.
    next_index: u64,
    /// Input samples recorded.
    recorded: u64,
    start_beat: f64,
    /// Beat just past the last block (by its own tempo), and that tempo.
    end_beat: f64,
    tempo: f64,
    map: BeatMap,
    beats_per_bar: u32,
    bar_start_beat: f64,
    /// Capture mode: input samples after which the segment is cut (see [`MAX_SEGMENT_SECONDS`]).
    cut_at: Option<u64>,
    /// The input audio of the last [`CUT_OVERLAP_SECONDS`] before the cut, for the next segment.
    tail: Vec<f32>,
    /// Set when this segment resumed after a cut.
    joins: Option<Join>,
    /// Live mode: the streaming pipeline instead of the reference windowing.
    live: Option<LiveTake>,
}

/// What a cut segment hands to the one that continues it.
struct Carry {
    tail: Vec<f32>,
    map: BeatMap,
    rate: f32,
    tempo: f64,
    next_index: u64,
    end_beat: f64,
    beats_per_bar: u32,
    bar_start_beat: f64,
    /// Where the old and the new segment meet.
    join: Join,
}

impl Carry {
    fn continues(&self, s: &Stamp) -> bool {
        s.playing && s.sample_index == self.next_index && capture::continues(self.end_beat, self.tempo, self.rate, s)
    }
}

impl Segment {
    fn new(s: &Stamp, live: Option<LiveTake>) -> Result<Self, crate::resample::ResampleError> {
        Ok(Self {
            resampler: StreamResampler::new(s.sample_rate.round() as u32)?,
            stream: FrameStream::new(),
            scratch: Vec::with_capacity(8192),
            rate: s.sample_rate,
            next_index: s.sample_index,
            recorded: 0,
            start_beat: s.beat,
            end_beat: s.beat,
            tempo: s.tempo,
            map: BeatMap { pieces: vec![Piece { at_s: 0.0, beat: s.beat, tempo: s.tempo }] },
            beats_per_bar: s.beats_per_bar,
            bar_start_beat: s.bar_start_beat,
            cut_at: None,
            tail: vec![],
            joins: None,
            live,
        })
    }

    /// Capture mode: cut after [`MAX_SEGMENT_SECONDS`] of audio.
    fn cut_after_max(mut self) -> Self {
        self.cut_at = Some((MAX_SEGMENT_SECONDS * self.rate as f64) as u64);
        self
    }

    /// The segment that goes on after a cut: it starts with the cut segment's last audio.
    fn resume(c: Carry, model: &mut dyn NoteModel) -> Result<Self, String> {
        let first = c.map.pieces[0];
        let start = Stamp {
            sample_rate: c.rate,
            beat: first.beat,
            tempo: first.tempo,
            beats_per_bar: c.beats_per_bar,
            bar_start_beat: c.bar_start_beat,
            ..Stamp::default()
        };
        let mut seg = Segment::new(&start, None).map_err(|e| e.to_string())?.cut_after_max();
        seg.map = c.map;
        seg.tempo = c.tempo;
        seg.end_beat = c.end_beat;
        seg.next_index = c.next_index;
        seg.joins = Some(c.join);
        seg.recorded = c.tail.len() as u64;
        seg.resampler.push(&c.tail, &mut seg.scratch).map_err(|e| e.to_string())?;
        seg.stream.push(model, &seg.scratch).map_err(|e| e.to_string())?;
        Ok(seg)
    }

    fn cut_due(&self) -> bool {
        self.cut_at.is_some_and(|at| self.recorded >= at)
    }

    /// Takes what the next segment needs; the segment itself is then finished as usual.
    fn carry(&mut self) -> Carry {
        let tail = std::mem::take(&mut self.tail);
        let rate = self.rate as f64;
        let cut_s = self.recorded as f64 / rate;
        let from_s = cut_s - tail.len() as f64 / rate;
        Carry {
            map: self.map.from(from_s),
            join: Join { until_beat: self.map.beat_at(cut_s), tolerance_beats: CUT_SAME_NOTE_SECONDS * self.tempo / 60.0 },
            tail,
            rate: self.rate,
            tempo: self.tempo,
            next_index: self.next_index,
            end_beat: self.end_beat,
            beats_per_bar: self.beats_per_bar,
            bar_start_beat: self.bar_start_beat,
        }
    }

    fn continues(&self, s: &Stamp) -> bool {
        s.sample_index == self.next_index && capture::continues(self.end_beat, self.tempo, self.rate, s)
    }

    /// Adds one block; returns the number of new frames.
    fn push(&mut self, s: &Stamp, samples: &[f32], model: &mut dyn NoteModel) -> Result<usize, String> {
        if s.tempo != self.tempo {
            let at_s = self.recorded as f64 / self.rate as f64;
            self.map.pieces.push(Piece { at_s, beat: s.beat, tempo: s.tempo });
        }
        self.tempo = s.tempo;
        self.end_beat = s.end_beat();
        self.next_index = s.sample_index + s.len as u64;
        if let Some(at) = self.cut_at {
            // Keep the audio from CUT_OVERLAP_SECONDS before the cut on.
            let from = at.saturating_sub((CUT_OVERLAP_SECONDS * self.rate as f64) as u64);
            let skip = from.saturating_sub(self.recorded).min(samples.len() as u64) as usize;
            self.tail.extend_from_slice(&samples[skip..]);
        }
        self.recorded += samples.len() as u64;
        self.scratch.clear();
        self.resampler.push(samples, &mut self.scratch).map_err(|e| e.to_string())?;
        if let Some(take) = self.live.as_mut() {
            return take.push(model, &self.scratch).map_err(|e| e.to_string());
        }
        self.stream.push(model, &self.scratch).map_err(|e| e.to_string())
    }

    /// Notes so far (only final frames).
    fn provisional(&self, params: &DecodeParams) -> Vec<BeatNote> {
        let frames = truncated(self.stream.frames(), self.stream.final_frames());
        to_beats(&decode::notes_from_frames(&frames, params), &frames, 0, &self.map)
    }

    /// Flushes the resampler and the stream: all frames of the segment.
    fn finish(mut self, model: &mut dyn NoteModel) -> Result<FinishedSegment, String> {
        self.scratch.clear();
        self.resampler.finish(&mut self.scratch).map_err(|e| e.to_string())?;
        self.stream.push(model, &self.scratch).map_err(|e| e.to_string())?;
        let frames = self.stream.finish(model).map_err(|e| e.to_string())?;
        Ok(FinishedSegment { raw: None, frames: None, map: self.map, range: [self.start_beat, self.end_beat], joins: self.joins, notes: vec![] }
            .decoded_from(frames))
    }
}

/// A recorded segment: its notes, and compact frames so a sensitivity change can re-decode it
/// (dropped for the oldest segments past [`REDECODE_BUDGET_BYTES`]).
struct FinishedSegment {
    /// The segment's raw frames until its first decode.
    raw: Option<FrameOutputs>,
    frames: Option<CompactFrames>,
    map: BeatMap,
    range: [f64; 2],
    /// Continues the previous finished segment after a cut.
    joins: Option<Join>,
    notes: Vec<BeatNote>,
}

/// Where a segment resumed after a cut meets the one before it.
#[derive(Clone, Copy, Debug)]
struct Join {
    /// Notes of the new segment starting before this beat may also be in the old one.
    until_beat: f64,
    /// Two onsets of one pitch this close (in beats) are the same note heard by both segments.
    tolerance_beats: f64,
}

/// Joins a segment resumed after a cut to the old one: a note of the new segment in the shared
/// stretch (before `join.until_beat`) that the old one also started (same pitch, onsets within the
/// tolerance) is the same note: the old one's copy takes the later end (the old segment cut it at
/// the cut); the new segment's other notes are returned, to follow the old ones.
fn join_at_cut(old: &mut [BeatNote], new: &[BeatNote], join: Join) -> Vec<BeatNote> {
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

    fn decode(&mut self, params: &DecodeParams) {
        if let Some(raw) = self.raw.take() {
            self.notes = to_beats(&decode::notes_from_frames(&raw, params), &raw, 0, &self.map);
        } else if let Some(c) = &self.frames {
            let frames = c.to_frames();
            self.notes = to_beats(&decode::notes_from_frames(&frames, params), &frames, 0, &self.map);
        }
    }

    fn redecode_bytes(&self) -> usize {
        self.frames.as_ref().map_or(0, CompactFrames::bytes)
    }
}

struct Worker {
    params: Arc<PianolaParams>,
    status: Arc<Status>,
    capture: Arc<CaptureShared>,
    reader: CaptureReader,
    publisher: Publisher,
    model: Option<Box<dyn NoteModel>>,
    samples: Vec<f32>,

    /// Capture mode: the saved transcription this session started from (no frames).
    restored: CapturedSong,
    finished: Vec<FinishedSegment>,
    segment: Option<Segment>,
    /// A segment just cut for length, waiting for the block that continues it.
    carry: Option<Carry>,
    /// Mode the current segment records for.
    segment_mode: Mode,
    loaded_generation: u64,
    settings: ArrangeSettings,
    decode: DecodeParams,
    mode: Mode,
    last_seq: u64,
}

impl Worker {
    fn new(
        params: Arc<PianolaParams>,
        status: Arc<Status>,
        capture: Arc<CaptureShared>,
        reader: CaptureReader,
        publisher: Publisher,
        model: Option<Box<dyn NoteModel>>,
    ) -> Self {
        let settings = params.arrange_settings();
        let decode = params.decode_params();
        let mode = params.mode.value();
        Self {
            params,
            status,
            capture,
            reader,
            publisher,
            model,
            samples: Vec::with_capacity(1 << 16),
            restored: CapturedSong::default(),
            finished: vec![],
            segment: None,
            carry: None,
            segment_mode: mode,
            loaded_generation: 0,
            settings,
            decode,
            mode,
            last_seq: 0,
        }
    }

    /// Starts from the saved capture (project reopened, or a re-activation).
    fn restore(&mut self) {
        self.loaded_generation = self.params.capture.loaded_generation();
        self.restored = self.params.capture.get();
        self.finished.clear();
        self.status.redecode_bytes.store(0, Ordering::Relaxed);
        self.status.captured_notes.store(self.restored.notes.len(), Ordering::Relaxed);
        self.publish_current();
    }

    /// One round: settings, then every stamp waiting. Returns whether anything happened.
    fn step(&mut self, abandon: &AtomicBool) -> bool {
        self.publisher.flush();
        let mut busy = false;
        if self.params.capture.loaded_generation() != self.loaded_generation {
            // A project load or a clear replaced the capture: drop what is being recorded.
            self.segment = None;
            self.restore();
            busy = true;
        }
        let (settings, decode, mode) = (self.params.arrange_settings(), self.params.decode_params(), self.params.mode.value());
        if mode != self.mode {
            self.end_segment();
            self.mode = mode;
            self.publish_current();
            busy = true;
        }
        if decode != self.decode {
            self.decode = decode;
            for f in &mut self.finished {
                f.decode(&decode);
            }
            self.store_capture();
            self.publish_current();
            busy = true;
        } else if settings != self.settings || self.status.rearrange.swap(false, Ordering::AcqRel) {
            self.settings = settings;
            self.publish_current();
            busy = true;
        }
        let mut samples = std::mem::take(&mut self.samples);
        self.capture.note_backlog();
        while let Some(stamp) = (!abandon.load(Ordering::Relaxed)).then(|| self.reader.pop(&mut samples)).flatten() {
            busy = true;
            self.capture.note_backlog();
            self.last_seq = stamp.seq;
            self.handle(&stamp, &samples);
            self.capture.handled_samples.fetch_add(stamp.len as u64, Ordering::Release);
            samples.clear();
            self.reader.link().done_seq.store(stamp.seq, Ordering::Release);
        }
        self.samples = samples;
        busy
    }

    /// After a caught panic: forget the segment, mark what was popped as handled.
    fn recover(&mut self) {
        self.segment = None;
        self.status.recording.store(false, Ordering::Release);
        self.samples.clear();
        self.reader.link().done_seq.store(self.last_seq, Ordering::Release);
    }

    /// Whether the block at `stamp` starts inside beats already captured. A block that starts within
    /// the host's rounding slack of a range's end continues it (after a segment cut, or a stop and
    /// restart in a host that rounds its position) and is not covered.
    fn covered(&self, stamp: &Stamp) -> bool {
        const TOL: f64 = 1e-6;
        let beat = stamp.beat;
        let slack = capture::continuity_slack_beats(stamp.sample_rate as f64 * 60.0 / stamp.tempo);
        let inside = |r: &[f64; 2]| r[0] - TOL <= beat && beat < r[1] - slack;
        self.restored.covered.iter().any(inside) || self.finished.iter().any(|f| inside(&f.range))
    }

    fn handle(&mut self, stamp: &Stamp, samples: &[f32]) {
        let carry = self.carry.take().filter(|c| c.continues(stamp));
        if !stamp.playing || stamp.len == 0 {
            self.end_segment();
            return;
        }
        if self.segment.as_ref().is_some_and(|s| !s.continues(stamp)) {
            self.end_segment();
        }
        let record = self.model.is_some() && (self.mode == Mode::Live || !self.covered(stamp));
        if !record {
            self.end_segment();
            return;
        }
        if self.segment.is_none() {
            let live = match (self.mode, self.model.as_mut()) {
                (Mode::Live, Some(m)) => {
                    let mut config = live_config();
                    // The Live window gets its own plan once; if the model cannot run it, the full
                    // window still works (the same notes, more compute per hop).
                    if let Err(e) = m.prepare_window(config.window_frames) {
                        self.status.set_error(format!("Live mode runs the full model window: {e}"));
                        config.window_frames = crate::model::FRAMES_PER_WINDOW;
                    }
                    Some(LiveTake::new(config, &self.decode))
                }
                _ => None,
            };
            let resumed = match (carry, self.model.as_mut()) {
                (Some(c), Some(model)) if self.mode == Mode::Capture => Some(Segment::resume(c, model.as_mut())),
                _ => None,
            };
            let new = match resumed {
                Some(r) => r,
                None => Segment::new(stamp, live).map(|s| if self.mode == Mode::Capture { s.cut_after_max() } else { s }).map_err(|e| e.to_string()),
            };
            match new {
                Ok(s) => {
                    self.segment = Some(s);
                    self.segment_mode = self.mode;
                    self.status.recording.store(true, Ordering::Release);
                    if self.mode == Mode::Live {
                        // A new pass: the previous pass's notes are not this one's.
                        self.publish(vec![]);
                    }
                }
                Err(e) => {
                    self.status.set_error(format!("cannot record: {e}"));
                    return;
                }
            }
        }
        let (Some(seg), Some(model)) = (self.segment.as_mut(), self.model.as_mut()) else { return };
        match seg.push(stamp, samples, model.as_mut()) {
            Ok(n) => {
                if seg.cut_due() {
                    // A long take: finish this stretch; the next block goes on in a new segment.
                    let carry = seg.carry();
                    self.end_segment();
                    self.carry = Some(carry);
                } else if n > 0 {
                    self.status.windows.fetch_add((n / crate::engine::KEPT_FRAMES).max(1) as u64, Ordering::Relaxed);
                    self.publish_provisional();
                }
            }
            Err(e) => {
                self.status.set_error(format!("transcription failed: {e}"));
                self.segment = None;
                self.status.recording.store(false, Ordering::Release);
            }
        }
    }

    /// Ends the current segment (if any): final frames, notes, store, arrange, publish.
    fn end_segment(&mut self) {
        let Some(seg) = self.segment.take() else { return };
        self.status.recording.store(false, Ordering::Release);
        if seg.live.is_some() {
            // A live take has been played as it came; its cover stays up until the next pass.
            return;
        }
        let Some(model) = self.model.as_mut() else { return };
        let (bpb, bar_start, tempo) = (seg.beats_per_bar, seg.bar_start_beat, seg.map.pieces[0].tempo);
        match seg.finish(model.as_mut()) {
            Ok(mut f) => {
                f.decode(&self.decode);
                self.status.segments.fetch_add(1, Ordering::Relaxed);
                if self.segment_mode == Mode::Capture {
                    if self.restored.is_empty() && self.finished.is_empty() {
                        // The first capture sets the meter the arranger works with.
                        self.restored.beats_per_bar = bpb.max(1);
                        self.restored.first_downbeat_beat = bar_start.rem_euclid(bpb.max(1) as f64);
                        self.restored.seconds_per_beat = 60.0 / tempo;
                    }
                    self.finished.push(f);
                    self.limit_redecode_frames();
                    self.store_capture();
                    if self.mode == Mode::Capture {
                        self.publish_current();
                    }
                } else if self.mode == Mode::Live {
                    let song = CapturedSong { notes: f.notes.iter().map(SavedNote::from).collect(), ..self.meter_of(bpb, bar_start, tempo) };
                    let cover = arrange::arrange(&song.arrange_input(), &self.settings);
                    self.publish(cover);
                }
            }
            Err(e) => self.status.set_error(format!("transcription failed: {e}")),
        }
    }

    /// Drops the re-decode frames of the oldest segments past [`REDECODE_BUDGET_BYTES`].
    fn limit_redecode_frames(&mut self) {
        let mut total: usize = self.finished.iter().map(FinishedSegment::redecode_bytes).sum();
        for f in self.finished.iter_mut() {
            if total <= REDECODE_BUDGET_BYTES {
                break;
            }
            total -= f.redecode_bytes();
            f.frames = None;
        }
        self.status.redecode_bytes.store(total as u64, Ordering::Relaxed);
    }

    fn meter_of(&self, bpb: u32, bar_start: f64, tempo: f64) -> CapturedSong {
        CapturedSong {
            beats_per_bar: bpb.max(1),
            first_downbeat_beat: bar_start.rem_euclid(bpb.max(1) as f64),
            seconds_per_beat: 60.0 / tempo,
            ..CapturedSong::default()
        }
    }

    /// The capture as saved: restored notes, then each finished segment's, in capture order.
    fn song(&self) -> CapturedSong {
        let mut song = self.restored.clone();
        let mut notes: Vec<BeatNote> = Vec::new();
        // Where the previous segment's notes begin in `notes`.
        let mut previous = 0;
        for (k, f) in self.finished.iter().enumerate() {
            let here = notes.len();
            match f.joins {
                Some(join) if k > 0 => {
                    let rest = join_at_cut(&mut notes[previous..], &f.notes, join);
                    notes.extend(rest);
                }
                _ => notes.extend_from_slice(&f.notes),
            }
            previous = here;
            song.covered.push(f.range);
        }
        song.notes.extend(notes.iter().map(SavedNote::from));
        song
    }

    fn store_capture(&mut self) {
        let song = self.song();
        self.status.captured_notes.store(song.notes.len(), Ordering::Relaxed);
        self.params.capture.store(song);
    }

    /// Publishes the cover that the current mode plays.
    fn publish_current(&mut self) {
        let cover = match self.mode {
            Mode::Capture => {
                let song = self.song();
                if song.notes.is_empty() {
                    vec![]
                } else {
                    arrange::arrange(&song.arrange_input(), &self.settings)
                }
            }
            Mode::Live if self.segment.as_ref().is_some_and(|s| s.live.is_some()) => {
                self.publish_live();
                return;
            }
            Mode::Live => {
                let notes = self.segment.as_ref().map(|s| s.provisional(&self.decode)).unwrap_or_default();
                self.arrange_live(notes)
            }
        };
        self.publish(cover);
    }

    fn arrange_live(&self, notes: Vec<BeatNote>) -> Vec<CoverNote> {
        let Some(seg) = self.segment.as_ref() else { return vec![] };
        let mut song = self.meter_of(seg.beats_per_bar, seg.bar_start_beat, seg.map.pieces[0].tempo);
        song.notes = notes.iter().map(SavedNote::from).collect();
        arrange::arrange(&song.arrange_input(), &self.settings)
    }

    /// New frames arrived: Live mode publishes them; Capture mode shows them to the editor only.
    fn publish_provisional(&mut self) {
        let Some(seg) = self.segment.as_ref() else { return };
        if seg.live.is_some() && self.mode == Mode::Live {
            self.publish_live();
            return;
        }
        let notes = seg.provisional(&self.decode);
        match self.mode {
            Mode::Live => {
                let cover = self.arrange_live(notes);
                self.publish(cover);
            }
            Mode::Capture => {
                let mut song = self.song();
                if song.notes.is_empty() && self.finished.is_empty() {
                    song = CapturedSong { ..self.meter_of(seg.beats_per_bar, seg.bar_start_beat, seg.map.pieces[0].tempo) };
                }
                match (seg.joins, self.finished.last()) {
                    (Some(join), Some(old)) => song.notes.extend(join_at_cut(&mut old.notes.clone(), &notes, join).iter().map(SavedNote::from)),
                    _ => song.notes.extend(notes.iter().map(SavedNote::from)),
                }
                let cover = arrange::arrange(&song.arrange_input(), &self.settings);
                if let Ok(mut c) = self.status.cover.lock() {
                    *c = Arc::new(Timeline::new(cover, 0));
                }
            }
        }
    }

    /// Live take: the recent notes re-arranged; what the (latency-shifted) playhead has passed stays.
    fn publish_live(&mut self) {
        let Some(seg) = self.segment.as_mut() else { return };
        let Some(take) = seg.live.as_mut() else { return };
        let bpb = seg.beats_per_bar.max(1);
        let tempo = seg.tempo;
        let recent_s = take.decoded_s() - (live::ARRANGE_CONTEXT_BEATS + 8.0) * 60.0 / tempo;
        let notes = take.notes_since(recent_s);
        // Frames older than the notes re-arranged are never read again (a held note's salience
        // then comes from its last half minute).
        take.forget_before(recent_s - 30.0);
        let input = ArrangeInput {
            notes: to_beats(&notes, take.frames(), take.frames_origin(), &seg.map),
            beats_per_bar: bpb,
            first_downbeat_beat: seg.bar_start_beat.rem_euclid(bpb as f64),
            seconds_per_beat: 60.0 / seg.map.pieces[0].tempo,
        };
        let latency_beats = live_latency_seconds() * tempo / 60.0;
        let cover = take.arrange(&input, &self.settings, seg.end_beat - latency_beats, 2.0 * latency_beats);
        self.publish(cover);
    }

    fn publish(&mut self, cover: Vec<CoverNote>) {
        let snapshot = self.publisher.publish(cover);
        if let Ok(mut c) = self.status.cover.lock() {
            *c = snapshot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_heard_by_both_segments_at_a_cut_is_kept_once() {
        let n = |start: f64, end: f64, pitch: u8| BeatNote { start_beat: start, end_beat: end, pitch, amplitude: 0.5, salience: 0.5 };
        // The shared stretch ends at the cut, beat 240. The old segment heard a click a frame late
        // and cut a held note at the cut; the new one heard both (the held note to its end), a
        // note the old one missed, and goes on after the cut.
        let join = Join { until_beat: 240.0, tolerance_beats: 0.1 };
        let mut old = [n(238.5, 239.0, 60), n(239.02, 239.5, 64), n(239.5, 240.0, 67)];
        let new = [n(238.99, 239.5, 64), n(239.0, 239.3, 72), n(239.52, 241.0, 67), n(239.7, 240.2, 60), n(240.5, 241.0, 64)];
        let rest: Vec<(f64, u8)> = join_at_cut(&mut old, &new, join).iter().map(|b| (b.start_beat, b.pitch)).collect();
        assert_eq!(rest, vec![(239.0, 72), (239.7, 60), (240.5, 64)]);
        assert_eq!(old.map(|o| o.end_beat), [239.0, 239.5, 241.0], "the held note takes its end from the new segment");
    }

    #[test]
    fn a_model_that_cannot_load_is_reported_and_the_ring_still_drains() {
        let params = Arc::new(PianolaParams::default());
        let status = Arc::new(Status::default());
        let shared = Arc::new(CaptureShared::default());
        let (mut writer, reader) = capture::channel(shared.clone());
        let (publisher, _timeline) = crate::timeline::channel(Arc::new(Timeline::default()));
        let loader: ModelLoader = Box::new(|| crate::model::load_from_bytes(crate::model::Backend::Tract, b"not a model"));
        let worker =
            WorkerHandle::spawn(WorkerSetup { params, status: status.clone(), capture: shared.clone(), reader, publisher, model: ModelSource::Load(loader) }).unwrap();
        writer.set_worker(worker.thread());
        let block = vec![0.25f32; 512];
        let t = capture::TransportInfo {
            playing: true,
            beat: Some(0.0),
            tempo: Some(120.0),
            time_sig: Some((4, 4)),
            bar_start_beat: Some(0.0),
            sample_rate: 48000.0,
        };
        // Offline: waits until the worker has handled the block.
        assert!(matches!(writer.push_block(&[&block[..]], 512, &t, true), capture::Pushed::Stamp { seq: 1, .. }));
        assert_eq!(writer.link().done_seq.load(Ordering::Acquire), 1);
        let error = status.error().expect("the load error is shown");
        assert!(error.contains("could not be loaded"), "{error}");
        assert!(worker.stop().is_none());
        assert!(writer.link().worker_gone.load(Ordering::Acquire));
    }

    #[test]
    fn beat_map_follows_tempo_changes() {
        let map = BeatMap { pieces: vec![Piece { at_s: 0.0, beat: 8.0, tempo: 120.0 }, Piece { at_s: 2.0, beat: 12.0, tempo: 60.0 }] };
        assert_eq!(map.beat_at(0.0), 8.0);
        assert_eq!(map.beat_at(1.0), 10.0);
        assert_eq!(map.beat_at(2.0), 12.0);
        assert_eq!(map.beat_at(3.0), 13.0);
    }

    #[test]
    fn constant_tempo_map_matches_the_cli_grid_exactly() {
        let map = BeatMap { pieces: vec![Piece { at_s: 0.0, beat: 0.0, tempo: 116.0 }] };
        let grid = BeatGrid::new(116.0);
        for k in 0..10_000 {
            let s = k as f64 * 0.00317;
            assert_eq!(map.beat_at(s).to_bits(), grid.beat_at(s).to_bits());
        }
    }
}
