//! The nice-plug `Plugin`: thin glue of capture (audio -> ring), worker (ring -> cover), timeline
//! (cover -> audio thread) and emit (cover -> note events). Audio passes through unchanged (in Live
//! mode delayed by the latency the plugin reports, so it stays aligned with the notes).
//!
//! Real-time rules in `process()`: no allocation, no lock, no logging, no waiting; the one exception is
//! offline rendering, where the audio thread waits for the worker so a bounce equals a real-time pass
//! that gave the worker time (see `capture::CaptureWriter::push_block`).

use crate::capture::{self, CaptureShared, CaptureWriter, TransportInfo};
use crate::emit::{BlockTransport, EmitEvent, Emitter};
use crate::model::{self, NoteModel};
use crate::params::{Mode, PianolaParams};
use crate::timeline::{self, Timeline};
use crate::worker::{self, Status, WorkerHandle, WorkerSetup, LIVE_MAX_LAG_SECONDS};
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A fixed delay for the pass-through audio in Live mode; preallocated in `activate`.
#[derive(Default)]
struct DelayLine {
    lines: Vec<Vec<f32>>,
    pos: usize,
}

impl DelayLine {
    fn new(channels: usize, delay: usize) -> Self {
        Self { lines: (0..channels).map(|_| vec![0.0; delay.max(1)]).collect(), pos: 0 }
    }

    /// Delays every channel by the line's length, in place.
    fn process(&mut self, channels: &mut [&mut [f32]]) {
        let Some(n) = self.lines.first().map(Vec::len) else { return };
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

    fn clear(&mut self) {
        for l in &mut self.lines {
            l.fill(0.0);
        }
        self.pos = 0;
    }
}

pub struct Pianola {
    params: Arc<PianolaParams>,
    status: Arc<Status>,
    capture: Arc<CaptureShared>,
    writer: Option<CaptureWriter>,
    reader: Option<timeline::Reader>,
    worker: Option<WorkerHandle>,
    /// The model, kept between activations (loading costs a second or two).
    model: Option<Box<dyn NoteModel>>,
    emitter: Emitter,
    sample_rate: f32,
    offline: bool,
    /// Live mode latency in samples.
    live_latency: u32,
    /// Mode the last block ran in (latency and delay follow it).
    mode: Mode,
    delay: DelayLine,
    /// Samples since the offline Live writer last waited for the worker.
    since_sync: u64,
}

impl Default for Pianola {
    fn default() -> Self {
        let params = Arc::new(PianolaParams::default());
        // `pianola standalone --song` hands over its capture here (never set inside a host).
        if let Some(song) = crate::standalone::take_preloaded_capture() {
            params.capture.store(song);
        }
        Self {
            params,
            status: Arc::new(Status::default()),
            capture: Arc::new(CaptureShared::default()),
            writer: None,
            reader: None,
            worker: None,
            model: None,
            emitter: Emitter::new(),
            sample_rate: 44100.0,
            offline: false,
            live_latency: 0,
            mode: Mode::Capture,
            delay: DelayLine::default(),
            since_sync: 0,
        }
    }
}

impl Pianola {
    /// Shared status for the editor: errors, progress, the newest cover.
    pub fn status(&self) -> Arc<Status> {
        self.status.clone()
    }

    fn stop_worker(&mut self) {
        if let Some(w) = self.worker.take() {
            if let Some(m) = w.stop() {
                self.model = Some(m);
            }
        }
        self.writer = None;
        self.reader = None;
    }
}

impl Plugin for Pianola {
    const NAME: &'static str = "Pianola";
    const VENDOR: &'static str = "Pianola";
    const URL: &'static str = env!("CARGO_PKG_HOMEPAGE");
    const EMAIL: &'static str = "";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        AudioIOLayout { main_input_channels: NonZeroU32::new(2), main_output_channels: NonZeroU32::new(2), ..AudioIOLayout::const_default() },
        AudioIOLayout { main_input_channels: NonZeroU32::new(1), main_output_channels: NonZeroU32::new(1), ..AudioIOLayout::const_default() },
        // Surround (5.1) tracks: captured as the mean of all six channels, passed through.
        AudioIOLayout { main_input_channels: NonZeroU32::new(6), main_output_channels: NonZeroU32::new(6), ..AudioIOLayout::const_default() },
    ];

    const MIDI_INPUT: MidiConfig = MidiConfig::None;
    const MIDI_OUTPUT: MidiConfig = MidiConfig::Basic;
    const SAMPLE_ACCURATE_AUTOMATION: bool = false;

    type Editor = nice_plug_egui::EguiEditor<crate::editor::PianolaEditor>;
    type SysExMessage = ();
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn filter_state(state: &mut PluginState) {
        crate::params::filter_state(state);
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        crate::editor::create(self.params.clone(), self.status.clone(), self.capture.clone())
    }

    fn activate(&mut self, layout: &AudioIOLayout, config: &BufferConfig, context: &mut impl ActivateContext<Self>) -> bool {
        self.stop_worker();
        self.sample_rate = config.sample_rate;
        self.offline = config.process_mode == ProcessMode::Offline;
        self.live_latency = (worker::live_latency_seconds() * config.sample_rate as f64).round() as u32;
        self.mode = self.params.mode.value();
        context.set_latency_samples(if self.mode == Mode::Live { self.live_latency } else { 0 });
        let channels = layout.main_output_channels.map_or(2, |c| c.get() as usize);
        self.delay = DelayLine::new(channels, self.live_latency as usize);
        self.since_sync = 0;

        let (mut writer, reader) = capture::channel(self.capture.clone());
        let initial = Arc::new(Timeline::new(worker::saved_cover(&self.params), 0));
        let (publisher, timeline_reader) = timeline::channel(initial);
        self.capture.done_seq.store(0, Ordering::Release);
        let model = match self.model.take() {
            Some(m) => Ok(m),
            None => Err(Box::new(|| model::load(model::plugin_backend())) as worker::ModelLoader),
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
                self.capture.worker_gone.store(true, Ordering::Release);
            }
        }
        self.writer = Some(writer);
        self.reader = Some(timeline_reader);
        true
    }

    fn reset(&mut self) {
        self.emitter.break_chain();
        self.delay.clear();
    }

    fn deactivate(&mut self) {
        self.stop_worker();
        // Notes still sounding are released at the start of the next processed block: a
        // deactivated plugin has no way to send events.
        self.emitter.break_chain();
    }

    fn process(&mut self, buffer: &mut Buffer, _aux: &mut AuxiliaryBuffers, context: &mut impl ProcessContext<Self>) -> ProcessStatus {
        let len = buffer.samples();
        if len == 0 {
            return ProcessStatus::Normal;
        }
        let mode = self.params.mode.value();
        let t = context.transport();
        let info = TransportInfo {
            playing: t.playing,
            beat: t.pos_beats(),
            tempo: t.tempo,
            time_sig: t.time_sig_numerator.zip(t.time_sig_denominator),
            bar_start_beat: t.bar_start_pos_beats(),
            sample_rate: self.sample_rate,
        };

        self.status.host.store(info.playing, info.beat, info.tempo, info.beats_per_bar(), self.sample_rate);

        if let Some(writer) = self.writer.as_mut() {
            writer.push_block(buffer.as_slice_immutable(), len, &info, self.offline);
            if self.offline && mode == Mode::Live {
                self.since_sync += len as u64;
                if self.since_sync as f64 > LIVE_MAX_LAG_SECONDS * self.sample_rate as f64 {
                    writer.wait_for(writer.last_seq());
                    self.since_sync = 0;
                }
            }
        }

        let channel = self.params.midi_channel();
        let mut send = |e: EmitEvent| -> bool {
            let event = match e {
                EmitEvent::On { offset, key, velocity } => NoteEvent::NoteOn {
                    timing: offset,
                    voice_id: VoiceID::Wildcard,
                    channel: Channel::Number(channel),
                    key: Key::Number(key),
                    velocity: velocity as f32 / 127.0,
                },
                EmitEvent::Off { offset, key } => {
                    NoteEvent::NoteOff { timing: offset, voice_id: VoiceID::Wildcard, channel: Channel::Number(channel), key: Key::Number(key), velocity: 0.0 }
                }
            };
            context.try_send_event(event).is_ok()
        };

        if mode != self.mode {
            // Switching modes: what sounds belongs to the other timing; latency changes.
            self.emitter.release_all(0, &mut send);
            self.emitter.break_chain();
            self.mode = mode;
            self.delay.clear();
        }

        if let Some(reader) = self.reader.as_mut() {
            if reader.update() {
                self.emitter.retarget(&reader.current().notes);
            }
        }

        let bypass = self.params.bypass.value();
        match (&self.reader, info.beat, info.tempo) {
            (Some(reader), Some(beat), Some(tempo)) if !bypass && info.playing => {
                let shift = if mode == Mode::Live { self.live_latency as f64 * tempo / 60.0 / self.sample_rate as f64 } else { 0.0 };
                let block = BlockTransport { playing: true, beat: beat - shift, tempo, sample_rate: self.sample_rate as f64, len: len as u32 };
                self.emitter.process(&block, &reader.current().notes, &mut send);
            }
            _ => {
                self.emitter.release_all(0, &mut send);
                self.emitter.break_chain();
            }
        }

        let latency = if mode == Mode::Live { self.live_latency } else { 0 };
        self.status.host.latency_samples.store(latency, Ordering::Relaxed);
        if mode == Mode::Live {
            context.set_latency_samples(self.live_latency);
            self.delay.process(buffer.as_slice());
        } else {
            context.set_latency_samples(0);
        }
        ProcessStatus::Normal
    }
}

impl ClapPlugin for Pianola {
    const CLAP_ID: &'static str = "org.pianola.pianola";
    const CLAP_DESCRIPTION: Option<&'static str> = Some(if cfg!(feature = "assert_process_allocs") {
        "Plays a piano cover of the track it sits on [assert_process_allocs]"
    } else {
        "Plays a piano cover of the track it sits on"
    });
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[ClapFeature::AudioEffect, ClapFeature::NoteDetector, ClapFeature::Utility];
}

impl Vst3Plugin for Pianola {
    const VST3_CLASS_ID: [u8; 16] = *b"PianolaCoverMIDI";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[Vst3SubCategory::Fx, Vst3SubCategory::Analyzer, Vst3SubCategory::Piano];
}

nice_export_clap!(Pianola);
nice_export_vst3!(Pianola);
