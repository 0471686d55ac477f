//! One plugin instance's audio-thread core: what `Pianola::process` does to a block, in one place
//! that the plugin, the in-process tests and the benchmarks all call. It wires the capture ring
//! (audio -> worker), the timeline (worker -> audio thread), the emitter (cover -> note events) and
//! the pass-through delay, owns the worker across activations, and decides the latency.
//!
//! Latency: the host is told the latency only while it activates the plugin ([`AudioCore::activate`]
//! returns it). When the Mode parameter asks for another latency while the plugin runs, the block
//! says so ([`BlockOutcome::latency_wanted`]) and the glue asks the host for a restart; until the
//! host re-activates, the pass-through audio keeps the delay the host was told (so the host's
//! compensation stays right for the audio) and Live notes come out behind the live pipeline, late
//! by what the host does not compensate and nothing worse.
//!
//! Real-time rules in [`AudioCore::process_block`]: no allocation, no lock, no logging, no waiting;
//! the one exception is offline rendering, where the audio thread waits for the worker so a bounce
//! equals a real-time pass that gave the worker time (see `CaptureWriter::push_block`).

use super::emit::{BlockTransport, EmitEvent, Emitter};
use crate::model::{ModelError, NoteModel};
use crate::notes::Cover;
use crate::params::{Mode, PianolaParams};
use crate::ring::{self, CaptureShared, CaptureWriter, Pushed, TransportInfo};
use crate::status::Status;
use crate::timeline::{self, Timeline};
use crate::worker::{self, ModelLoader, ModelSource, RetiredWorker, WorkerHandle, WorkerSetup, LIVE_MAX_LAG_SECONDS};
use std::sync::Arc;

/// Makes a model loader for a worker that has no model to take over (the plugin loads the
/// embedded Basic Pitch with the process's backend; tests give stand-ins).
pub type ModelFactory = Arc<dyn Fn() -> Result<Box<dyn NoteModel>, ModelError> + Send + Sync>;

/// A delay for the pass-through audio: its lines are preallocated in `activate` for the longest
/// delay this activation can need, so changing the delay on the audio thread allocates nothing.
#[derive(Default)]
pub struct DelayLine {
    lines: Vec<Vec<f32>>,
    delay: usize,
    pos: usize,
}

impl DelayLine {
    pub fn new(channels: usize, capacity: usize, delay: usize) -> Self {
        Self { lines: (0..channels).map(|_| vec![0.0; capacity.max(delay)]).collect(), delay, pos: 0 }
    }

    /// Sets the delay (at most the capacity) and clears the line.
    pub fn set_delay(&mut self, delay: usize) {
        self.delay = delay.min(self.lines.first().map_or(0, Vec::len));
        self.clear();
    }

    /// Delays every channel by the current delay, in place (a zero delay passes through).
    pub fn process(&mut self, channels: &mut [&mut [f32]]) {
        let n = self.delay;
        if n == 0 {
            return;
        }
        let len = channels.first().map_or(0, |c| c.len());
        for (ch, line) in channels.iter_mut().zip(self.lines.iter_mut()) {
            let mut pos = self.pos;
            for s in ch.iter_mut() {
                std::mem::swap(s, &mut line[pos]);
                pos += 1;
                if pos == n {
                    pos = 0;
                }
            }
        }
        self.pos = (self.pos + len) % n;
    }

    pub fn clear(&mut self) {
        for l in &mut self.lines {
            l.fill(0.0);
        }
        self.pos = 0;
    }
}

/// What one block asked of the glue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockOutcome {
    pub pushed: Pushed,
    /// The Mode asks for this latency and the host was told another: request a restart (once per
    /// change: this is `Some` on the first block that wants it).
    pub latency_wanted: Option<u32>,
}

pub struct AudioCore {
    params: Arc<PianolaParams>,
    status: Arc<Status>,
    capture: Arc<CaptureShared>,
    load_model: ModelFactory,
    writer: Option<CaptureWriter>,
    reader: Option<timeline::Reader>,
    /// Dropped with the plugin: the handles abandon unfinished work (no one would get it) and
    /// wait, within a model window, so no thread outlives the library.
    worker: Option<WorkerHandle>,
    /// The previous activation's worker, until the next activation hands it to the new worker.
    retired: Option<RetiredWorker>,
    /// A model for the first activation (tests hand one in).
    ready_model: Option<Box<dyn NoteModel>>,
    emitter: Emitter,
    sample_rate: f32,
    offline: bool,
    /// The live pipeline's latency at this sample rate, in samples: with the note model's melody,
    /// and with the voice's ("Melody from: Voice").
    live_latency: [u32; 2],
    /// The latency the host was told at the last activation.
    reported_latency: u32,
    /// The latency the last block asked a restart for (so it asks once).
    asked_latency: Option<u32>,
    /// Mode the last block ran in.
    mode: Mode,
    delay: DelayLine,
    /// Samples since the offline Live writer last waited for the worker.
    since_sync: u64,
}

impl AudioCore {
    pub fn new(params: Arc<PianolaParams>, status: Arc<Status>, capture: Arc<CaptureShared>, load_model: ModelFactory) -> Self {
        Self {
            params,
            status,
            capture,
            load_model,
            writer: None,
            reader: None,
            worker: None,
            retired: None,
            ready_model: None,
            emitter: Emitter::new(),
            sample_rate: 44100.0,
            offline: false,
            live_latency: [0; 2],
            reported_latency: 0,
            asked_latency: None,
            mode: Mode::Capture,
            delay: DelayLine::default(),
            since_sync: 0,
        }
    }

    /// The first activation's worker starts with this model instead of loading one.
    pub fn with_model(mut self, model: Box<dyn NoteModel>) -> Self {
        self.ready_model = Some(model);
        self
    }

    pub fn params(&self) -> &Arc<PianolaParams> {
        &self.params
    }

    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }

    pub fn capture(&self) -> &Arc<CaptureShared> {
        &self.capture
    }

    /// The latency the host was told at the last activation, in samples.
    pub fn reported_latency(&self) -> u32 {
        self.reported_latency
    }

    /// The latency `mode` needs, in samples: how long after the audio is heard its notes can go
    /// out. Live notes are known only after the live pipeline's latency; Capture notes are known
    /// in advance.
    fn latency_for(&self, mode: Mode) -> u32 {
        if mode == Mode::Live {
            // The Live settings follow the melody's source (`live::config_for`).
            self.live_latency[(self.params.melody.value() == crate::params::MelodyParam::Voice) as usize]
        } else {
            0
        }
    }

    /// The host activates the plugin. Never waits on the model or on a previous worker: both are
    /// waited for on the new worker's thread. Returns the latency to report to the host.
    pub fn activate(&mut self, channels: usize, sample_rate: f32, offline: bool) -> u32 {
        self.retire_worker();
        self.sample_rate = sample_rate;
        self.offline = offline;
        self.live_latency = [false, true].map(|voice| (worker::live_latency_seconds(voice) * sample_rate as f64).round() as u32);
        self.mode = self.params.mode.value();
        self.reported_latency = self.latency_for(self.mode);
        self.asked_latency = None;
        self.delay = DelayLine::new(channels, self.live_latency[0].max(self.live_latency[1]) as usize, self.reported_latency as usize);
        self.since_sync = 0;
        self.emitter.break_chain();

        // Until the new worker has its model (and has restored what the previous one stored).
        self.status.model_ready.store(false, std::sync::atomic::Ordering::Release);
        let (mut writer, reader) = ring::channel(self.capture.clone());
        let initial = match worker::saved_cover(&self.params) {
            Ok(cover) => cover,
            Err(e) => {
                self.status.set_error(e);
                Cover::default()
            }
        };
        let (publisher, timeline_reader) = timeline::channel(Arc::new(Timeline::new(initial, 0)));
        let load = self.load_model.clone();
        let loader: ModelLoader = Box::new(move || load());
        let model = match (self.ready_model.take(), self.retired.take()) {
            (Some(m), _) => ModelSource::Ready(m),
            (None, Some(previous)) => ModelSource::AfterRetired { previous, load: loader },
            (None, None) => ModelSource::Load(loader),
        };
        let setup = WorkerSetup { params: self.params.clone(), status: self.status.clone(), capture: self.capture.clone(), reader, publisher, model };
        match WorkerHandle::spawn(setup) {
            Ok(w) => {
                writer.set_worker(w.thread());
                self.worker = Some(w);
            }
            Err(e) => {
                // No worker: pass audio through; the editor shows why.
                self.status.set_error(format!("cannot start the worker thread: {e}"));
                writer.link().worker_gone.store(true, std::sync::atomic::Ordering::Release);
            }
        }
        self.writer = Some(writer);
        self.reader = Some(timeline_reader);
        self.reported_latency
    }

    /// The host deactivates the plugin: returns at once. The worker finishes the audio already
    /// captured on its own thread and stores the capture, which the next activation restores.
    pub fn deactivate(&mut self) {
        self.retire_worker();
        // Notes still sounding are released at the start of the next processed block: a
        // deactivated plugin has no way to send events.
        self.emitter.break_chain();
    }

    fn retire_worker(&mut self) {
        if let Some(w) = self.worker.take() {
            // An older retired worker not yet taken over is the one this worker waits for.
            self.retired = Some(w.retire());
        }
        self.writer = None;
        self.reader = None;
    }

    /// Whether the worker has handled every block captured so far (tests, benchmarks).
    pub fn worker_caught_up(&self) -> bool {
        self.writer.as_ref().is_none_or(CaptureWriter::worker_caught_up)
    }

    /// The cover the audio thread plays now.
    pub fn playing_cover(&mut self) -> Option<&Timeline> {
        let reader = self.reader.as_mut()?;
        reader.update();
        Some(reader.current())
    }

    /// The host's `reset`: the stream restarts.
    pub fn reset(&mut self) {
        self.emitter.break_chain();
        self.delay.clear();
    }

    /// One block: capture, pick up the newest cover, emit its notes for the block, delay the
    /// pass-through audio by the reported latency. `buffer` holds the channels, each `len` long.
    pub fn process_block(&mut self, buffer: &mut [&mut [f32]], t: &TransportInfo, send: &mut impl FnMut(EmitEvent) -> bool) -> BlockOutcome {
        let len = buffer.first().map_or(0, |c| c.len());
        let mut outcome = BlockOutcome { pushed: Pushed::Nothing, latency_wanted: None };
        if len == 0 {
            return outcome;
        }
        let mode = self.params.mode.value();
        self.status.host.store(t.playing, t.beat, t.tempo, t.beats_per_bar(), self.sample_rate);

        // The host's position is where this block's output lands after its delay compensation
        // (Ardour 6+, see DEVELOPERS.md "Latency and the host's position"): the input audio is
        // from `reported_latency` samples later, and the capture is stamped where it really is.
        let samples_to_beats = |samples: u32, tempo: f64| samples as f64 * tempo / 60.0 / self.sample_rate as f64;
        let input = TransportInfo { beat: t.beat.zip(t.tempo).map(|(b, tempo)| b + samples_to_beats(self.reported_latency, tempo)), ..*t };
        if let Some(writer) = self.writer.as_mut() {
            outcome.pushed = writer.push_block(buffer, len, &input, self.offline);
            if self.offline && mode == Mode::Live {
                self.since_sync += len as u64;
                if self.since_sync as f64 > LIVE_MAX_LAG_SECONDS * self.sample_rate as f64 {
                    writer.wait_for(writer.last_seq());
                    self.since_sync = 0;
                }
            }
        }

        if mode != self.mode {
            // Switching modes: what sounds belongs to the other timing.
            self.emitter.release_all(0, send);
            self.emitter.break_chain();
            self.mode = mode;
        }
        let wanted = self.latency_for(mode);
        if wanted != self.reported_latency && self.asked_latency != Some(wanted) {
            self.asked_latency = Some(wanted);
            outcome.latency_wanted = Some(wanted);
        }

        if let Some(reader) = self.reader.as_mut() {
            if reader.update() {
                self.emitter.retarget(&reader.current().notes);
            }
        }

        match (&self.reader, t.beat, t.tempo) {
            (Some(reader), Some(beat), Some(tempo)) if t.playing && !self.params.bypass.value() => {
                // Notes the host compensates for go out on their beat; Live notes that need more
                // time than the host was told go out that much late.
                let shift = samples_to_beats(self.latency_for(mode).saturating_sub(self.reported_latency), tempo);
                let block = BlockTransport { playing: true, beat: beat - shift, tempo, sample_rate: self.sample_rate as f64, len: len as u32 };
                let current = reader.current();
                self.emitter.process(&block, &current.notes, &current.pedal, send);
            }
            _ => {
                self.emitter.release_all(0, send);
                self.emitter.break_chain();
            }
        }

        self.status.host.latency_samples.store(self.reported_latency, std::sync::atomic::Ordering::Relaxed);
        self.delay.process(buffer);
        outcome
    }

    /// The plugin re-reported its latency without a re-activation (VST3: hosts re-read it after
    /// the restart request that comes with it). Audio thread: allocates nothing.
    pub fn latency_reported(&mut self, samples: u32) {
        if samples != self.reported_latency {
            self.reported_latency = samples;
            // Preallocated for the Live latency in activate: no allocation here.
            self.delay.set_delay(samples as usize);
        }
    }
}
