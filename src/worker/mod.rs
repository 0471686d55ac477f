//! The per-instance worker: capture ring -> resampler -> model -> decoder -> notes in beats ->
//! arranger -> timeline. One `std::thread` per plugin instance (`thread`: started in `activate`,
//! retired without a join in `deactivate`; long work has no place on the host-wide executor).
//!
//! What a run of continuing blocks (sample counter and beat position) records is a [`Take`]:
//! - Capture mode (`segment`): records only beats not yet covered, through the reference
//!   windowing; a seek, a loop wrap, a stop, a dropped block or reaching beats already captured
//!   ends the segment: its notes are decoded, mapped to beats through its tempo pieces, stored
//!   with the project, and the cover of everything captured is arranged and published (what a
//!   later pass plays).
//! - Live mode (`live_run`): streams every pass through the sliding-window model and the causal
//!   decoder and publishes the re-arranged cover after every hop (the audio thread plays it on
//!   the host's beats; see `audio_thread::core` for the latency).
//!
//! Failures never reach the host: a model that cannot load leaves the worker draining the ring
//! (audio still passes through) with the error in [`Status`]; a panic in one step is caught, reported
//! and the worker goes on.

mod live_run;
mod segment;
mod thread;

pub use live_run::{LiveRun, Pushed};
pub use thread::{ModelLoader, ModelSource, RetiredWorker, WorkerHandle, WorkerSetup};

use crate::arrange::{ArrangeSettings, BeatNote};
use crate::decode::DecodeParams;
use crate::live;
use crate::model::NoteModel;
use crate::notes::Cover;
use crate::params::{CapturedSong, Mode, PianolaParams, SavedNote};
use crate::pitch::{PitchTracker, VoiceMode};
use crate::ring::{self, CaptureReader, CaptureShared, Stamp};
use crate::status::Status;
use crate::timeline::{Publisher, Timeline};
use segment::{join_at_cut, Carry, FinishedSegment, Segment};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How Live mode delays its notes behind the audio: the live pipeline's worst case for the plugin's
/// backend (`model::plugin_backend`) and the melody's source (`voice`: the streamed voice tracker,
/// "Melody from: Voice"), see `live::latency_for`: the model's right context, the hop, the
/// decoder's lookahead, one inference and the host block.
pub fn live_latency_seconds(voice: bool) -> f64 {
    live::latency_for(crate::model::plugin_backend().name(), voice)
}

/// Whether Capture may lower the decoder's thresholds for a quiet song: only while the user has
/// left Sensitivity at its default (their own setting is never overridden).
fn follows_level(decode: &DecodeParams) -> bool {
    (decode.onset_threshold - DecodeParams::default().onset_threshold).abs() < 1e-4
}

/// The Live settings [`live_latency_seconds`] is computed for.
pub(crate) fn live_config(voice: bool) -> live::LiveConfig {
    live::config_for(crate::model::plugin_backend().name(), voice).sanitized()
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
pub use crate::status::SILENCE_STOP_SECONDS;
/// A block whose peak is under this (-60 dBFS) is silence.
pub const SILENCE_PEAK: f32 = 1.0e-3;

/// The cover of the saved capture with the current settings (what Capture mode plays), computed in
/// `activate` so the first block after an activation already has it. A panic in the arranger is
/// an error to show, not an empty cover without a word.
pub fn saved_cover(params: &PianolaParams) -> Result<Cover, String> {
    if params.mode.value() != Mode::Capture {
        return Ok(Cover::default());
    }
    let song = params.capture.get();
    if song.notes.is_empty() {
        return Ok(Cover::default());
    }
    catch_unwind(AssertUnwindSafe(|| song.cover(&params.arrange_settings()).0))
        .map_err(|p| format!("arranging the saved capture failed ({}); the worker arranges it again", thread::panic_message(p.as_ref())))
}

/// Why a take cannot go on (the worker says it in the panel, drops the take and goes on).
#[derive(Debug, thiserror::Error)]
pub enum TakeError {
    #[error("resampling failed: {0}")]
    Resample(#[from] crate::resample::ResampleError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
}

/// What the worker is recording: one run of continuing blocks, in the mode it started in.
enum Take {
    Capture(Box<Segment>),
    Live(Box<LiveRun>),
}

struct Worker {
    params: Arc<PianolaParams>,
    status: Arc<Status>,
    capture: Arc<CaptureShared>,
    reader: CaptureReader,
    publisher: Publisher,
    model: Option<Box<dyn NoteModel>>,
    /// The voice pitch tracker (Capture mode's melody of a lone voice); None if it did not load.
    tracker: Option<PitchTracker>,
    samples: Vec<f32>,

    /// Capture mode: the saved transcription this session started from (no frames).
    restored: CapturedSong,
    finished: Vec<FinishedSegment>,
    take: Option<Take>,
    /// A segment just cut for length, waiting for the block that continues it.
    carry: Option<Carry>,
    loaded_generation: u64,
    settings: ArrangeSettings,
    decode: DecodeParams,
    /// The mode as of the last step (a change ends the take).
    mode: Mode,
    /// The Live pass asked for the voice ("Melody from: Voice" when it started): its settings and
    /// latency are the voice's (`live::config_for`), as the audio thread reports them.
    live_voice: bool,
    last_seq: u64,
    /// Capture: input samples of silence in a row (at the block's rate), and whether sound was
    /// heard since the capture began.
    silent_samples: u64,
    heard_sound: bool,
}

impl Worker {
    /// The worker of `setup`, still without its model (acquired on the thread: see `thread`).
    fn new(setup: WorkerSetup) -> (Self, ModelSource) {
        let WorkerSetup { params, status, capture, reader, publisher, model } = setup;
        let (settings, decode, mode) = (params.arrange_settings(), params.decode_params(), params.mode.value());
        let worker = Self {
            params,
            status,
            capture,
            reader,
            publisher,
            model: None,
            tracker: None,
            samples: Vec::with_capacity(1 << 16),
            restored: CapturedSong::default(),
            finished: vec![],
            take: None,
            carry: None,
            loaded_generation: 0,
            settings,
            decode,
            mode,
            live_voice: false,
            last_seq: 0,
            silent_samples: 0,
            heard_sound: false,
        };
        (worker, model)
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

    /// One round: settings, then every stamp waiting (until `abandon`). Returns whether anything
    /// happened.
    fn step(&mut self, abandon: &AtomicBool) -> bool {
        self.publisher.flush();
        let mut busy = false;
        if self.params.capture.loaded_generation() != self.loaded_generation {
            // A project load or a clear replaced the capture: drop what is being recorded.
            self.take = None;
            self.restore();
            busy = true;
        }
        let (settings, decode, mode) = (self.params.arrange_settings(), self.params.decode_params(), self.params.mode.value());
        if mode != self.mode {
            self.end_take();
            self.mode = mode;
            self.publish_current();
            busy = true;
        }
        if decode != self.decode {
            self.decode = decode;
            for f in &mut self.finished {
                f.decode(&decode, follows_level(&decode));
            }
            self.report_findings();
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

    /// After a caught panic: forget the take, mark what was popped as handled.
    fn recover(&mut self) {
        self.take = None;
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
        let slack = ring::continuity_slack_beats(stamp.sample_rate as f64 * 60.0 / stamp.tempo);
        let inside = |r: &[f64; 2]| r[0] - TOL <= beat && beat < r[1] - slack;
        self.restored.covered.iter().any(inside) || self.finished.iter().any(|f| inside(&f.range))
    }

    fn handle(&mut self, stamp: &Stamp, samples: &[f32]) {
        let carry = self.carry.take().filter(|c| c.continues(stamp));
        if !stamp.playing || stamp.len == 0 {
            self.end_take();
            return;
        }
        let continues = match &self.take {
            Some(Take::Capture(seg)) => seg.track.continues(stamp),
            Some(Take::Live(run)) => run.continues(stamp),
            None => true,
        };
        if !continues {
            self.end_take();
        }
        let record = self.model.is_some() && (self.mode == Mode::Live || !self.covered(stamp));
        if !record {
            self.end_take();
            return;
        }
        if self.mode == Mode::Capture && self.rests_on_silence(stamp, samples) {
            return;
        }
        if self.take.is_none() && !self.start_take(stamp, carry) {
            return;
        }
        let (Some(take), Some(model)) = (self.take.as_mut(), self.model.as_mut()) else { return };
        let mut live_news = false;
        let pushed = match take {
            Take::Capture(seg) => seg.push(stamp, samples, model.as_mut()),
            Take::Live(run) => run.push(stamp, samples, model.as_mut(), self.tracker.as_mut()).map(|p| {
                // A move of the voice's curve alone publishes too, counting no window.
                live_news = p.news();
                p.frames
            }),
        };
        match pushed {
            Ok(n) => {
                if matches!(self.take, Some(Take::Capture(ref seg)) if seg.cut_due()) {
                    // A long take: finish this stretch; the next block goes on in a new segment.
                    let Some(Take::Capture(seg)) = self.take.as_mut() else { unreachable!() };
                    let carry = seg.carry();
                    self.end_take();
                    self.carry = Some(carry);
                } else if n > 0 || live_news {
                    if n > 0 {
                        self.status.windows.fetch_add((n / crate::engine::KEPT_FRAMES).max(1) as u64, Ordering::Relaxed);
                    }
                    self.publish_provisional();
                }
            }
            Err(e) => {
                self.status.set_error(format!("transcription failed: {e}"));
                self.take = None;
                self.status.recording.store(false, Ordering::Release);
            }
        }
    }

    /// Capture past the song's end: after [`SILENCE_STOP_SECONDS`] of silence following sound, the
    /// take ends and silent blocks are not recorded; the first block with sound listens again.
    /// Returns whether this block is skipped.
    fn rests_on_silence(&mut self, stamp: &Stamp, samples: &[f32]) -> bool {
        let peak = samples.iter().fold(0.0f32, |m, &x| if x.is_finite() { m.max(x.abs()) } else { m });
        if peak >= SILENCE_PEAK {
            self.silent_samples = 0;
            self.heard_sound = true;
            self.status.resting_on_silence.store(false, Ordering::Relaxed);
            return false;
        }
        self.silent_samples += samples.len() as u64;
        let heard = self.heard_sound || !self.restored.notes.is_empty() || !self.finished.is_empty();
        if heard && self.silent_samples as f64 >= SILENCE_STOP_SECONDS * stamp.sample_rate as f64 {
            if self.take.is_some() {
                self.end_take();
            }
            self.status.resting_on_silence.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Starts a take in the current mode at `stamp` (a Capture segment resumes after a cut when
    /// `carry` continues it). Returns whether one was started.
    fn start_take(&mut self, stamp: &Stamp, carry: Option<Carry>) -> bool {
        let Some(model) = self.model.as_mut() else { return false };
        let started = match self.mode {
            Mode::Live => {
                // "Melody from: Voice" sets the Live settings and latency the audio thread reports
                // (even if the voice tracker did not load: the latency is the host's to know).
                self.live_voice = self.params.melody.value() == crate::params::MelodyParam::Voice;
                let mut config = live_config(self.live_voice);
                // The Live window gets its own plan once; if the model cannot run it, the full
                // window still works (the same notes, more compute per hop).
                if let Err(e) = model.prepare_window(config.window_frames) {
                    self.status.set_error(format!("Live mode runs the full model window: {e}"));
                    config.window_frames = crate::model::FRAMES_PER_WINDOW;
                }
                // The voice tracker streams too when "Melody from" is Voice (a change takes effect
                // from the next pass). Auto keeps the note model's notes in Live: on the dev set's
                // sung lines the streamed voice's notes are known later than Live's latency
                // allows (28% of the melody moved late against 8%; melody_f1 0.808 against 0.870,
                // `cargo bench --bench live`), while Capture's whole-segment voice is not.
                let voice = (self.tracker.is_some() && self.live_voice).then_some(VoiceMode::Voice);
                LiveRun::new(stamp, config, &self.decode, voice).map(|r| Take::Live(Box::new(r))).map_err(TakeError::from)
            }
            Mode::Capture => match carry {
                Some(c) => Segment::resume(c, model.as_mut()).map(|s| Take::Capture(Box::new(s))),
                // Audio for the voice tracker only when it may run: a tracker, and "Melody from" not Mix
                // (switching to Auto or Voice mid-segment takes effect from the next segment).
                None => {
                    let for_voice = self.tracker.is_some() && self.params.melody.value() != crate::params::MelodyParam::Mix;
                    Segment::new(stamp, for_voice).map(|s| Take::Capture(Box::new(s.cut_after_max()))).map_err(TakeError::from)
                }
            },
        };
        match started {
            Ok(take) => {
                let live = matches!(take, Take::Live(_));
                self.take = Some(take);
                self.status.recording.store(true, Ordering::Release);
                if live {
                    // A new pass: the previous pass's notes are not this one's.
                    self.publish(Cover::default());
                }
                true
            }
            Err(e) => {
                self.status.set_error(format!("cannot record: {e}"));
                false
            }
        }
    }

    /// Ends the current take (if any). A Live pass has been played as it came: its cover stays up
    /// until the next pass. A Capture segment: final frames, notes, store, arrange, publish.
    fn end_take(&mut self) {
        let Some(take) = self.take.take() else { return };
        self.status.recording.store(false, Ordering::Release);
        let Take::Capture(seg) = take else { return };
        let Some(model) = self.model.as_mut() else { return };
        let meter = seg.track.meter();
        let voice = self.tracker.as_mut().map(|t| (t, self.params.melody.value().into()));
        match seg.finish(model.as_mut(), voice) {
            Ok((mut f, melody)) => {
                if let (Some(why), Ok(mut m)) = (melody, self.status.melody.lock()) {
                    *m = Some(why);
                }
                f.decode(&self.decode, follows_level(&self.decode));
                self.status.segments.fetch_add(1, Ordering::Relaxed);
                if self.restored.is_empty() && self.finished.is_empty() {
                    // The first capture sets the meter the arranger works with.
                    self.restored.beats_per_bar = meter.beats_per_bar;
                    self.restored.first_downbeat_beat = meter.first_downbeat_beat;
                    self.restored.seconds_per_beat = meter.seconds_per_beat;
                }
                self.finished.push(f);
                self.report_findings();
                self.limit_redecode_frames();
                self.store_capture();
                if self.mode == Mode::Capture {
                    self.publish_current();
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
            song.loudness = song.loudness.merged(&f.loudness);
        }
        song.notes.extend(notes.iter().map(SavedNote::from));
        song
    }

    /// Tells the panel what the finished segments found: whether one was decoded more closely for
    /// a quiet song (the latest such one's words), and the recording's tuning (the latest reading).
    fn report_findings(&mut self) {
        let words = self.finished.iter().rev().find_map(|f| f.level.clone());
        if let Ok(mut q) = self.status.quiet_song.lock() {
            *q = words;
        }
        let cents = self.finished.iter().rev().find_map(|f| f.tuning.map(|t| t.cents));
        if let Ok(mut t) = self.status.tuning_cents.lock() {
            *t = cents;
        }
    }

    fn store_capture(&mut self) {
        let song = self.song();
        self.status.captured_notes.store(song.notes.len(), Ordering::Relaxed);
        self.params.capture.store(song);
    }

    /// Publishes the cover that the current mode plays.
    fn publish_current(&mut self) {
        let cover = match (self.mode, self.take.as_mut()) {
            (Mode::Live, Some(Take::Live(run))) => run.cover(&self.settings, live_latency_seconds(self.live_voice)),
            // Live, between passes: nothing heard yet.
            (Mode::Live, _) => Cover::default(),
            (Mode::Capture, _) => {
                let song = self.song();
                let (cover, grid) = if song.notes.is_empty() { (Cover::default(), None) } else { song.cover(&self.settings) };
                if let Ok(mut g) = self.status.song_grid.lock() {
                    *g = grid.map(|g| g.describe(song.seconds_per_beat));
                }
                cover
            }
        };
        self.publish(cover);
    }

    /// New frames arrived: a Live pass publishes its cover; a Capture segment shows what it has
    /// so far to the editor only (a later pass plays the finished one).
    fn publish_provisional(&mut self) {
        if let Some(Take::Live(run)) = self.take.as_mut() {
            let cover = run.cover(&self.settings, live_latency_seconds(self.live_voice));
            // Where the melody comes from, when that changed (the panel's melody line).
            if let (Some((_, why)), Ok(mut m)) = (run.melody_choice(), self.status.melody.lock()) {
                if m.as_deref() != Some(why.as_str()) {
                    *m = Some(why.clone());
                }
            }
            self.publish(cover);
            return;
        }
        match self.take.as_ref() {
            Some(Take::Live(_)) | None => {}
            Some(Take::Capture(seg)) => {
                let notes = seg.provisional(&self.decode);
                let mut song = self.song();
                if song.notes.is_empty() && self.finished.is_empty() {
                    song = seg.track.meter();
                }
                song.loudness = song.loudness.merged(&seg.track.loudness.loudness());
                match (seg.joins, self.finished.last()) {
                    (Some(join), Some(old)) => song.notes.extend(join_at_cut(&mut old.notes.clone(), &notes, join).iter().map(SavedNote::from)),
                    _ => song.notes.extend(notes.iter().map(SavedNote::from)),
                }
                let (cover, _) = song.cover(&self.settings);
                if let Ok(mut c) = self.status.cover.lock() {
                    *c = Arc::new(Timeline::new(cover, 0));
                }
            }
        }
    }

    fn publish(&mut self, cover: Cover) {
        let snapshot = self.publisher.publish(cover);
        if let Ok(mut c) = self.status.cover.lock() {
            *c = snapshot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::segment::{BeatMap, Join, Piece};
    use super::*;
    use crate::notes::BeatGrid;

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
        let (mut writer, reader) = ring::channel(shared.clone());
        let (publisher, _timeline) = crate::timeline::channel(Arc::new(Timeline::default()));
        let loader: ModelLoader = Box::new(|| crate::model::load_from_bytes(crate::model::Backend::Tract, b"not a model"));
        let worker =
            WorkerHandle::spawn(WorkerSetup { params, status: status.clone(), capture: shared.clone(), reader, publisher, model: ModelSource::Load(loader) })
                .unwrap();
        writer.set_worker(worker.thread());
        let block = vec![0.25f32; 512];
        let t =
            ring::TransportInfo { playing: true, beat: Some(0.0), tempo: Some(120.0), time_sig: Some((4, 4)), bar_start_beat: Some(0.0), sample_rate: 48000.0 };
        // Offline: waits until the worker has handled the block.
        assert!(matches!(writer.push_block(&[&block[..]], 512, &t, true), ring::Pushed::Stamp { seq: 1, .. }));
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
