//! The nice-plug `Plugin`: thin glue between the host and [`AudioCore`] (the audio thread's block,
//! the worker across activations, the latency). Audio passes through unchanged, delayed by the
//! latency the plugin reports, so it stays aligned with the notes.

use crate::audio_thread::core::AudioCore;
use crate::audio_thread::emit::EmitEvent;
use crate::model;
use crate::params::PianolaParams;
use crate::ring::{CaptureShared, TransportInfo};
use crate::status::Status;
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;
use std::sync::Arc;

pub struct Pianola {
    params: Arc<PianolaParams>,
    core: AudioCore,
}

impl Default for Pianola {
    fn default() -> Self {
        let params = Arc::new(PianolaParams::default());
        // `pianola standalone --song` hands over its capture here (never set inside a host).
        if let Some(song) = crate::params::take_preloaded_capture() {
            params.capture.store(song);
        }
        let status = Arc::new(Status::default());
        let said = status.clone();
        // Runs on the worker thread: the backend, the reason and any fallback are said in the
        // panel and the log.
        let load = Arc::new(move || {
            let choice = model::plugin_backend_choice();
            said.set_backend(choice);
            nice_log!("Pianola: note model on {}", choice.reason);
            if let Some(fallback) = &choice.fallback {
                nice_warn!("Pianola: {fallback}");
            }
            model::load(choice.backend)
        });
        Self { core: AudioCore::new(params.clone(), status, Arc::new(CaptureShared::default()), load), params }
    }
}

impl Pianola {
    /// Shared status for the editor: errors, progress, the newest cover.
    pub fn status(&self) -> Arc<Status> {
        self.core.status().clone()
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
    // CCs for the sustain pedal (CC64).
    const MIDI_OUTPUT: MidiConfig = MidiConfig::MidiCCs;
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
        crate::editor::create(self.params.clone(), self.core.status().clone(), self.core.capture().clone())
    }

    fn activate(&mut self, layout: &AudioIOLayout, config: &BufferConfig, context: &mut impl ActivateContext<Self>) -> bool {
        let channels = layout.main_output_channels.map_or(2, |c| c.get() as usize);
        let latency = self.core.activate(channels, config.sample_rate, config.process_mode == ProcessMode::Offline);
        // The one place the host is told the latency: while it activates the plugin.
        context.set_latency_samples(latency);
        true
    }

    fn reset(&mut self) {
        self.core.reset();
    }

    fn deactivate(&mut self) {
        // Returns at once: the worker finishes what was captured on its own thread.
        self.core.deactivate();
    }

    fn process(&mut self, buffer: &mut Buffer, _aux: &mut AuxiliaryBuffers, context: &mut impl ProcessContext<Self>) -> ProcessStatus {
        let t = context.transport();
        let info = TransportInfo {
            playing: t.playing,
            beat: t.pos_beats(),
            tempo: t.tempo,
            time_sig: t.time_sig_numerator.zip(t.time_sig_denominator),
            bar_start_beat: t.bar_start_pos_beats(),
            sample_rate: t.sample_rate,
        };
        let channel = self.params.midi_channel();
        let mut events = |e: EmitEvent| -> bool {
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
                EmitEvent::Pedal { offset, down } => {
                    NoteEvent::MidiCC { timing: offset, channel, cc: crate::midi_file::SUSTAIN_CC, value: if down { 1.0 } else { 0.0 } }
                }
            };
            context.try_send_event(event).is_ok()
        };
        let outcome = self.core.process_block(buffer.as_slice(), &info, &mut events);
        if let Some(latency) = outcome.latency_wanted {
            match context.plugin_api() {
                // CLAP lets the latency change only inside activate(): ask the host to restart
                // the plugin, and activate() tells it the new latency.
                PluginApi::Clap => context.request_restart(),
                // VST3 hosts re-read the latency after the restart request that comes with it
                // (restartComponent(kLatencyChanged)), with or without re-activating.
                _ => {
                    context.set_latency_samples(latency);
                    self.core.latency_reported(latency);
                }
            }
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
