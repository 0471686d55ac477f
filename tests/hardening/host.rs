//! A small CLAP host (clack-host 0.2) for the bundle-level rows: instances that can be activated,
//! reset and deactivated at will, state saved and loaded as raw bytes, the latency they report, and a
//! [`Player`] that owns an instance's audio processor on any thread and processes one block at a time
//! with a transport (any input audio, seeks and tempo changes: one [`Player::run`] per stretch).
//! Extend [`Instance`] for more host behaviour (an editor opened and closed while a [`Player`]
//! runs: create it through the `gui` extension on the instance's thread).
//!
//! The bundle: `PIANOLA_CLAP`, or target/bundled/{pianola,Pianola}.clap (built by scripts/test.sh
//! with the allocation check, so every `process()` here also checks that it does not allocate).

use crate::rig::Event;
use clack_host::events::event_types::TransportEvent;
use clack_host::prelude::*;
use clap_sys::events::{
    clap_event_header, clap_event_midi, clap_event_note, clap_event_transport, CLAP_CORE_EVENT_SPACE_ID, CLAP_EVENT_MIDI, CLAP_EVENT_NOTE_OFF,
    CLAP_EVENT_NOTE_ON, CLAP_EVENT_TRANSPORT, CLAP_TRANSPORT_HAS_BEATS_TIMELINE, CLAP_TRANSPORT_HAS_SECONDS_TIMELINE, CLAP_TRANSPORT_HAS_TEMPO,
    CLAP_TRANSPORT_HAS_TIME_SIGNATURE, CLAP_TRANSPORT_IS_PLAYING,
};
use clap_sys::ext::render::{clap_plugin_render, CLAP_EXT_RENDER, CLAP_RENDER_OFFLINE, CLAP_RENDER_REALTIME};
use clap_sys::ext::state::{clap_plugin_state, CLAP_EXT_STATE};
use clap_sys::fixedpoint::{CLAP_BEATTIME_FACTOR, CLAP_SECTIME_FACTOR};
use clap_sys::stream::{clap_istream, clap_ostream};
use std::ffi::{c_void, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

pub const PLUGIN_ID: &str = "org.pianola.pianola";

pub fn bundle_path() -> PathBuf {
    let path = match std::env::var_os("PIANOLA_CLAP") {
        Some(p) => PathBuf::from(p),
        None => ["pianola.clap", "Pianola.clap"]
            .iter()
            .map(|n| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bundled").join(n))
            .find(|p| p.exists())
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bundled/Pianola.clap")),
    };
    assert!(path.exists(), "{} is missing: `cargo xtask bundle pianola --release --features onnxruntime,assert_process_allocs,standalone`", path.display());
    path
}

/// The bundle, loaded once per test process (hosts load a bundle once and make many instances).
pub fn entry() -> &'static PluginEntry {
    static ENTRY: OnceLock<PluginEntry> = OnceLock::new();
    ENTRY.get_or_init(|| {
        let path = bundle_path();
        unsafe { PluginEntry::load(&path) }.unwrap_or_else(|e| panic!("loading {}: {e:?}", path.display()))
    })
}

/// The plugin's description in the bundle's factory (a bundle built with the allocation check says
/// `[assert_process_allocs]` there).
pub fn description() -> String {
    let factory = entry().get_plugin_factory().expect("plugin factory");
    let descriptor = factory.plugin_descriptors().find(|d| d.id().is_some_and(|id| id.to_bytes() == PLUGIN_ID.as_bytes())).expect("Pianola in the bundle");
    descriptor.description().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default()
}

pub struct Shared {
    callback_requested: AtomicBool,
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.callback_requested.store(true, Ordering::Release);
    }
}

pub struct TestHost;
impl HostHandlers for TestHost {
    type Shared<'a> = Shared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();

    /// The host side of the `gui` extension (nice-plug's editor needs it to open).
    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder.register::<crate::editor::HostGui>();
    }
}

unsafe extern "C" fn write_vec(stream: *const clap_ostream, buffer: *const c_void, size: u64) -> i64 {
    let v = unsafe { &mut *((*stream).ctx as *mut Vec<u8>) };
    v.extend_from_slice(unsafe { std::slice::from_raw_parts(buffer as *const u8, size as usize) });
    size as i64
}

unsafe extern "C" fn read_slice(stream: *const clap_istream, buffer: *mut c_void, size: u64) -> i64 {
    let src = unsafe { &mut *((*stream).ctx as *mut &[u8]) };
    let n = (size as usize).min(src.len());
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), buffer as *mut u8, n) };
    *src = &src[n..];
    n as i64
}

/// One plugin instance, on the thread that made it (the host's main thread).
pub struct Instance {
    instance: PluginInstance<TestHost>,
    processor: Option<StoppedPluginAudioProcessor<TestHost>>,
    pub sample_rate: f64,
    /// Channels of the main input and output (the layout the host chose).
    pub channels: usize,
}

impl Instance {
    pub fn new() -> Self {
        Self::with_entry(entry())
    }

    /// An instance from another loaded bundle (a copy installed elsewhere).
    pub fn with_entry(entry: &PluginEntry) -> Self {
        let host_info = HostInfo::new("pianola-hardening", "pianola", "https://example.invalid", "0.1").unwrap();
        let id = CString::new(PLUGIN_ID).unwrap();
        let instance = PluginInstance::<TestHost>::new(|_| Shared { callback_requested: AtomicBool::new(false) }, |_| (), entry, &id, &host_info)
            .expect("instantiating Pianola");
        Self { instance, processor: None, sample_rate: 0.0, channels: 2 }
    }

    /// Chooses the audio-ports configuration with `channels` main channels (CLAP audio-ports-config,
    /// while inactive); false if the plugin offers none.
    pub fn select_channels(&mut self, channels: usize) -> bool {
        use clap_sys::ext::audio_ports_config::{clap_audio_ports_config, clap_plugin_audio_ports_config, CLAP_EXT_AUDIO_PORTS_CONFIG};
        assert!(self.processor.is_none(), "the layout is chosen while inactive");
        let ext = self.extension::<clap_plugin_audio_ports_config>(CLAP_EXT_AUDIO_PORTS_CONFIG);
        let raw = self.instance.raw_instance();
        let count = unsafe { ((*ext).count.unwrap())(raw) };
        for i in 0..count {
            let mut config: clap_audio_ports_config = unsafe { std::mem::zeroed() };
            if unsafe { ((*ext).get.unwrap())(raw, i, &mut config) }
                && config.main_input_channel_count as usize == channels
                && config.main_output_channel_count as usize == channels
            {
                let ok = unsafe { ((*ext).select.unwrap())(raw, config.id) };
                self.main_thread_tasks();
                if ok {
                    self.channels = channels;
                }
                return ok;
            }
        }
        false
    }

    fn extension<T>(&self, id: &std::ffi::CStr) -> *const T {
        let raw = self.instance.raw_instance();
        let ext = unsafe { (raw.get_extension.expect("get_extension"))(raw, id.as_ptr()) };
        assert!(!ext.is_null(), "the plugin lacks the {id:?} extension");
        ext as *const T
    }

    pub fn set_offline(&mut self, offline: bool) {
        assert!(self.processor.is_none(), "render mode is set while inactive");
        let render = self.extension::<clap_plugin_render>(CLAP_EXT_RENDER);
        let mode = if offline { CLAP_RENDER_OFFLINE } else { CLAP_RENDER_REALTIME };
        assert!(unsafe { ((*render).set.unwrap())(self.instance.raw_instance(), mode) });
        self.main_thread_tasks();
    }

    /// The latency the plugin reports now, in samples (CLAP latency extension; while active).
    pub fn latency(&self) -> u32 {
        use clap_sys::ext::latency::{clap_plugin_latency, CLAP_EXT_LATENCY};
        let ext = self.extension::<clap_plugin_latency>(CLAP_EXT_LATENCY);
        unsafe { ((*ext).get.unwrap())(self.instance.raw_instance()) }
    }

    pub fn activate(&mut self, sample_rate: f64, max_block: u32) {
        self.deactivate();
        let config = PluginAudioConfiguration { sample_rate, min_frames_count: 1, max_frames_count: max_block };
        self.processor = Some(self.instance.activate(|_, _| (), config).expect("activating"));
        self.sample_rate = sample_rate;
    }

    pub fn deactivate(&mut self) {
        if let Some(p) = self.processor.take() {
            self.instance.deactivate(p);
        }
        self.main_thread_tasks();
    }

    pub fn main_thread_tasks(&mut self) {
        if self.instance.access_shared_handler(|s| s.callback_requested.swap(false, Ordering::AcqRel)) {
            self.instance.call_on_main_thread_callback();
        }
    }

    /// Hands the audio processor to a [`Player`] (on any thread); give it back with [`Self::put_back`].
    pub fn player(&mut self) -> Player {
        let processor = self.processor.take().expect("activate first").start_processing().expect("start processing");
        Player::new(processor, self.sample_rate, self.channels)
    }

    pub fn put_back(&mut self, player: Player) -> Vec<Event> {
        let (processor, events) = player.stop();
        self.processor = Some(processor);
        self.main_thread_tasks();
        events
    }

    pub fn save_state(&mut self) -> Vec<u8> {
        let state = self.extension::<clap_plugin_state>(CLAP_EXT_STATE);
        let mut out: Vec<u8> = vec![];
        let stream = clap_ostream { ctx: &mut out as *mut Vec<u8> as *mut c_void, write: Some(write_vec) };
        assert!(unsafe { ((*state).save.unwrap())(self.instance.raw_instance(), &stream) }, "state save failed");
        out
    }

    /// Whether the plugin accepted the state.
    pub fn load_state(&mut self, bytes: &[u8]) -> bool {
        let state = self.extension::<clap_plugin_state>(CLAP_EXT_STATE);
        let mut src: &[u8] = bytes;
        let stream = clap_istream { ctx: &mut src as *mut &[u8] as *mut c_void, read: Some(read_slice) };
        let ok = unsafe { ((*state).load.unwrap())(self.instance.raw_instance(), &stream) };
        self.main_thread_tasks();
        ok
    }

    /// The plugin's `gui` extension and the plugin to call it with (on this thread).
    pub fn gui(&self) -> (*const clap_sys::ext::gui::clap_plugin_gui, *const clap_sys::plugin::clap_plugin) {
        (self.extension(clap_sys::ext::gui::CLAP_EXT_GUI), self.instance.raw_instance())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.deactivate();
    }
}

/// A state as nice-plug writes it: 8-byte little-endian length, then the JSON.
pub fn state_bytes(json: &serde_json::Value) -> Vec<u8> {
    let body = serde_json::to_vec(json).unwrap();
    let mut bytes = (body.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&body);
    bytes
}

pub fn state_json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(&bytes[8..]).expect("state is 8-byte length + JSON")
}

fn transport(beat: f64, tempo: f64, playing: bool) -> TransportEvent {
    let bar = (beat / 4.0).floor();
    let raw = clap_event_transport {
        header: clap_event_header {
            size: std::mem::size_of::<clap_event_transport>() as u32,
            time: 0,
            space_id: CLAP_CORE_EVENT_SPACE_ID,
            type_: CLAP_EVENT_TRANSPORT,
            flags: 0,
        },
        flags: CLAP_TRANSPORT_HAS_TEMPO
            | CLAP_TRANSPORT_HAS_BEATS_TIMELINE
            | CLAP_TRANSPORT_HAS_SECONDS_TIMELINE
            | CLAP_TRANSPORT_HAS_TIME_SIGNATURE
            | if playing { CLAP_TRANSPORT_IS_PLAYING } else { 0 },
        song_pos_beats: (beat * CLAP_BEATTIME_FACTOR as f64).round() as i64,
        song_pos_seconds: (beat * 60.0 / tempo * CLAP_SECTIME_FACTOR as f64).round() as i64,
        tempo,
        tempo_inc: 0.0,
        loop_start_beats: 0,
        loop_end_beats: 0,
        loop_start_seconds: 0,
        loop_end_seconds: 0,
        bar_start: (bar * 4.0 * CLAP_BEATTIME_FACTOR as f64) as i64,
        bar_number: bar as i32,
        tsig_num: 4,
        tsig_denom: 4,
    };
    TransportEvent::from_raw(&raw)
}

/// An instance's audio processor, processing stereo blocks.
pub struct Player {
    processor: StartedPluginAudioProcessor<TestHost>,
    sample_rate: f64,
    inputs: Vec<Vec<f32>>,
    outputs: Vec<Vec<f32>>,
    /// The output of the last block, channel by channel.
    pub last_output: Vec<Vec<f32>>,
    in_ports: AudioPorts,
    out_ports: AudioPorts,
    in_events: EventBuffer,
    out_events: EventBuffer,
    pub events: Vec<Event>,
    /// Sustain-pedal (CC64) changes: (sample, host beat, down).
    pub pedal: Vec<(u64, f64, bool)>,
    /// Samples processed since the player was made.
    pub processed: u64,
    /// Blocks processed since the player was made.
    pub blocks: u64,
}

impl Player {
    fn new(processor: StartedPluginAudioProcessor<TestHost>, sample_rate: f64, channels: usize) -> Self {
        Player {
            processor,
            sample_rate,
            inputs: vec![vec![]; channels],
            outputs: vec![vec![]; channels],
            last_output: vec![],
            in_ports: AudioPorts::with_capacity(channels, 1),
            out_ports: AudioPorts::with_capacity(channels, 1),
            in_events: EventBuffer::new(),
            out_events: EventBuffer::with_capacity(1024),
            events: vec![],
            pedal: vec![],
            processed: 0,
            blocks: 0,
        }
    }

    /// One block of `n` samples of `input` at `beat` (host position, fixed point as CLAP carries it).
    pub fn block(&mut self, beat: f64, tempo: f64, playing: bool, n: usize, input: f32) {
        self.block_with(beat, tempo, playing, n, &mut |_, _| input);
    }

    /// One block whose input sample `i` of channel `c` is `input(c, i)`.
    pub fn block_with(&mut self, beat: f64, tempo: f64, playing: bool, n: usize, input: &mut dyn FnMut(usize, usize) -> f32) {
        for (c, b) in self.inputs.iter_mut().enumerate() {
            b.clear();
            b.extend((0..n).map(|i| input(c, i)));
        }
        for b in self.outputs.iter_mut() {
            b.clear();
            b.resize(n, f32::NAN);
        }
        self.out_events.clear();
        let t = transport(beat, tempo, playing);
        let input_audio = self.in_ports.with_input_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_input_only(self.inputs.iter_mut().map(|b| InputChannel::variable(&mut b[..]))),
        }]);
        let mut output_audio = self
            .out_ports
            .with_output_buffers([AudioPortBuffer { latency: 0, channels: AudioPortBufferType::f32_output_only(self.outputs.iter_mut().map(|b| &mut b[..])) }]);
        self.processor.process(&input_audio, &mut output_audio, &self.in_events.as_input(), &mut self.out_events.as_output(), None, Some(&t)).expect("process");
        self.last_output.clone_from(&self.outputs);
        let host_beat = (beat * CLAP_BEATTIME_FACTOR as f64).round() / CLAP_BEATTIME_FACTOR as f64;
        let spb = self.sample_rate * 60.0 / tempo;
        for e in self.out_events.iter() {
            if e.header().type_id() == CLAP_EVENT_MIDI {
                let midi = unsafe { &*(e.as_raw() as *const clap_event_midi) };
                let offset = e.header().time() as u64;
                assert!((offset as usize) < n, "MIDI event offset {offset} outside a block of {n}");
                let [status, cc, value] = midi.data;
                assert_eq!((status & 0xF0, cc), (0xB0, 64), "the only MIDI message the plugin sends is the sustain pedal: {:?}", midi.data);
                self.pedal.push((self.processed + offset, host_beat + offset as f64 / spb, value >= 64));
                continue;
            }
            let raw = unsafe { &*(e.as_raw() as *const clap_event_note) };
            let on = match raw.header.type_ {
                CLAP_EVENT_NOTE_ON => true,
                CLAP_EVENT_NOTE_OFF => false,
                _ => continue,
            };
            let offset = e.header().time() as u64;
            assert!((offset as usize) < n, "event offset {offset} outside a block of {n}");
            self.events.push(Event {
                sample: self.processed + offset,
                beat: Some(host_beat + offset as f64 / spb),
                spb,
                key: raw.key as u8,
                on,
                velocity: (raw.velocity * 127.0).round() as u8,
                channel: raw.channel,
            });
        }
        self.processed += n as u64;
        self.blocks += 1;
    }

    /// Plays beats `from..to` at `tempo` (playing) in blocks of `len`, the last one cut at `to` as
    /// hosts cut at a loop end. Input sample `i` of channel `c`, counted from the player's first
    /// block, is `input(c, i)`. Runs one after another that do not meet are a seek or a loop wrap.
    pub fn run(&mut self, from: f64, to: f64, tempo: f64, len: usize, input: &mut dyn FnMut(usize, u64) -> f32) {
        let spb = self.sample_rate * 60.0 / tempo;
        let total = ((to - from) * spb).round() as usize;
        let mut done = 0;
        while done < total {
            let n = len.min(total - done);
            let base = self.processed;
            self.block_with(from + done as f64 / spb, tempo, true, n, &mut |c, i| input(c, base + i as u64));
            done += n;
        }
    }

    /// Plays beats `from..to` in blocks of `len` with silent input, then a stopped block.
    pub fn play(&mut self, from: f64, to: f64, tempo: f64, len: usize) {
        self.run(from, to, tempo, len, &mut |_, _| 0.0);
        self.block(to, tempo, false, len, 0.0);
    }

    /// CLAP `reset` on the audio thread.
    pub fn reset(&mut self) {
        self.processor.reset();
    }

    fn stop(self) -> (StoppedPluginAudioProcessor<TestHost>, Vec<Event>) {
        (self.processor.stop_processing(), self.events)
    }
}
