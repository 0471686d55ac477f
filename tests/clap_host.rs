//! The plugin bundle in a real CLAP host (clack-host 0.2): a dev-set song is played through
//! `target/bundled/pianola.clap` with a transport at the song's tempo. A capture pass (offline
//! render, so the worker keeps up), then playback passes with a loop, a seek and a tempo change at
//! block sizes 1, 64, 333, 4096 and 44.1/48/96 kHz, each checked against the cover the library makes
//! in-process from the same audio (what `pianola cover` does). Also: every note-on has its note-off,
//! the offline bounce equals the real-time pass, and the saved state restores the cover in a new
//! instance.
//!
//! The bundle must be built with the allocation check, so every `process()` call below runs under
//! nice-plug's `assert_process_allocs` (an allocation aborts the test):
//!     cargo xtask bundle pianola --release --features assert_process_allocs
//! Dev set: `python3 ../shared/eval/make_devset.py DIR`, in `PIANOLA_DEVSET` (default `target/devset`, as in tests/common).
//! Another bundle: `PIANOLA_CLAP=/path/to/pianola.clap`.

use clack_host::events::event_types::TransportEvent;
use clack_host::prelude::*;
use clap_sys::events::{
    clap_event_header, clap_event_note, clap_event_transport, CLAP_CORE_EVENT_SPACE_ID, CLAP_EVENT_NOTE_OFF, CLAP_EVENT_NOTE_ON,
    CLAP_EVENT_TRANSPORT, CLAP_TRANSPORT_HAS_BEATS_TIMELINE, CLAP_TRANSPORT_HAS_SECONDS_TIMELINE, CLAP_TRANSPORT_HAS_TEMPO,
    CLAP_TRANSPORT_HAS_TIME_SIGNATURE, CLAP_TRANSPORT_IS_PLAYING,
};
use clap_sys::ext::render::{clap_plugin_render, CLAP_EXT_RENDER, CLAP_RENDER_OFFLINE, CLAP_RENDER_REALTIME};
use clap_sys::ext::state::{clap_plugin_state, CLAP_EXT_STATE};
use clap_sys::fixedpoint::{CLAP_BEATTIME_FACTOR, CLAP_SECTIME_FACTOR};
use clap_sys::stream::{clap_istream, clap_ostream};
use pianola::arrange::{self, ArrangeInput, ArrangeSettings};
use pianola::audio_file;
use pianola::decode::DecodeParams;
use pianola::engine;
use pianola::model::{self, Backend};
use pianola::notes::{BeatGrid, CoverNote};
use std::collections::BTreeMap;
use std::ffi::{c_void, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

const PLUGIN_ID: &str = "org.pianola.pianola";
const SONG: &str = "bach_bwv1.6-mix";

// ---------------------------------------------------------------------------------------------
// Where things are

fn devset_dir() -> PathBuf {
    match std::env::var_os("PIANOLA_DEVSET") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("devset"),
    }
}

fn bundle_path() -> PathBuf {
    let path = match std::env::var_os("PIANOLA_CLAP") {
        Some(p) => PathBuf::from(p),
        // bundler.toml may give the bundle its display name.
        None => ["pianola.clap", "Pianola.clap"]
            .iter()
            .map(|n| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bundled").join(n))
            .find(|p| p.exists())
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bundled/pianola.clap")),
    };
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo xtask bundle pianola --release --features assert_process_allocs` \
         (or point PIANOLA_CLAP at a bundle)",
        path.display()
    );
    path
}

// ---------------------------------------------------------------------------------------------
// A minimal CLAP host

struct Shared {
    callback_requested: AtomicBool,
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.callback_requested.store(true, Ordering::Release);
    }
}

struct TestHost;
impl HostHandlers for TestHost {
    type Shared<'a> = Shared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();
}

/// One contiguous stretch of transport: beats `[from, to)` at `tempo`. Consecutive runs that do not
/// meet are a seek or a loop wrap, as the plugin sees them.
#[derive(Clone, Copy, Debug)]
struct Run {
    from: f64,
    to: f64,
    tempo: f64,
}

/// A note event as the host received it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Got {
    /// Index of the run it came in.
    run: usize,
    /// Beat position of the event: block beat + offset / samples per beat.
    beat: f64,
    key: u8,
    on: bool,
    velocity: u8,
    channel: i16,
}

struct Pass {
    events: Vec<Got>,
    blocks: usize,
    seconds: f64,
}

struct Plugin {
    instance: PluginInstance<TestHost>,
    processor: Option<StoppedPluginAudioProcessor<TestHost>>,
    sample_rate: f64,
    max_block: u32,
}

fn stamp_transport(beat: f64, tempo: f64, playing: bool) -> TransportEvent {
    let bar = (beat / 4.0).floor();
    let seconds = beat * 60.0 / tempo;
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
        song_pos_seconds: (seconds * CLAP_SECTIME_FACTOR as f64).round() as i64,
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

impl Plugin {
    fn new(entry: &PluginEntry) -> Self {
        let host_info = HostInfo::new("pianola-test-host", "pianola", "https://example.invalid", "0.1").unwrap();
        let id = CString::new(PLUGIN_ID).unwrap();
        let instance = PluginInstance::<TestHost>::new(
            |_| Shared { callback_requested: AtomicBool::new(false) },
            |_| (),
            entry,
            &id,
            &host_info,
        )
        .expect("instantiating Pianola");
        Self { instance, processor: None, sample_rate: 0.0, max_block: 0 }
    }

    fn extension<T>(&self, id: &std::ffi::CStr) -> *const T {
        let raw = self.instance.raw_instance();
        let ext = unsafe { (raw.get_extension.expect("get_extension"))(raw, id.as_ptr()) };
        assert!(!ext.is_null(), "the plugin lacks the {id:?} extension");
        ext as *const T
    }

    /// Offline (bounce) or real-time rendering; only while inactive.
    fn set_offline(&mut self, offline: bool) {
        assert!(self.processor.is_none());
        let render = self.extension::<clap_plugin_render>(CLAP_EXT_RENDER);
        let mode = if offline { CLAP_RENDER_OFFLINE } else { CLAP_RENDER_REALTIME };
        let ok = unsafe { ((*render).set.unwrap())(self.instance.raw_instance(), mode) };
        assert!(ok);
        self.main_thread_tasks();
    }

    fn activate(&mut self, sample_rate: f64, max_block: u32) {
        self.deactivate();
        let config = PluginAudioConfiguration { sample_rate, min_frames_count: 1, max_frames_count: max_block };
        self.processor = Some(self.instance.activate(|_, _| (), config).expect("activating"));
        self.sample_rate = sample_rate;
        self.max_block = max_block;
    }

    fn deactivate(&mut self) {
        if let Some(p) = self.processor.take() {
            self.instance.deactivate(p);
        }
        self.main_thread_tasks();
    }

    fn main_thread_tasks(&mut self) {
        let requested = self.instance.access_shared_handler(|s| s.callback_requested.swap(false, Ordering::AcqRel));
        if requested {
            self.instance.call_on_main_thread_callback();
        }
    }

    fn save_state(&mut self) -> Vec<u8> {
        let state = self.extension::<clap_plugin_state>(CLAP_EXT_STATE);
        let mut out: Vec<u8> = vec![];
        let stream = clap_ostream { ctx: &mut out as *mut Vec<u8> as *mut c_void, write: Some(write_vec) };
        assert!(unsafe { ((*state).save.unwrap())(self.instance.raw_instance(), &stream) }, "state save failed");
        out
    }

    fn load_state(&mut self, bytes: &[u8]) {
        let state = self.extension::<clap_plugin_state>(CLAP_EXT_STATE);
        let mut src: &[u8] = bytes;
        let stream = clap_istream { ctx: &mut src as *mut &[u8] as *mut c_void, read: Some(read_slice) };
        assert!(unsafe { ((*state).load.unwrap())(self.instance.raw_instance(), &stream) }, "state load failed");
        self.main_thread_tasks();
    }

    /// Plays `runs` in blocks of `block` samples (a run's last block is cut at the run's end, as hosts
    /// split at a loop end), then one stopped block. `audio` (stereo, at this sample rate) is the
    /// input from sample 0 of the first run on; silence after it or without it.
    fn play(&mut self, runs: &[Run], block: usize, audio: Option<&[Vec<f32>; 2]>) -> Pass {
        assert!(block as u32 <= self.max_block);
        let sr = self.sample_rate;
        let processor = self.processor.take().expect("activate first");
        let started = Instant::now();
        let (processor, events, blocks) = std::thread::scope(|s| {
            s.spawn(move || {
                let mut processor = processor.start_processing().expect("start processing");
                let mut inputs = [vec![0.0f32; block], vec![0.0f32; block]];
                let mut outputs = [vec![0.0f32; block], vec![0.0f32; block]];
                let mut in_ports = AudioPorts::with_capacity(2, 1);
                let mut out_ports = AudioPorts::with_capacity(2, 1);
                let in_events = EventBuffer::new();
                let mut out_events = EventBuffer::with_capacity(1024);
                let mut events = vec![];
                let mut blocks = 0usize;
                let mut fed = 0usize;
                let mut run_blocks = |processor: &mut StartedPluginAudioProcessor<TestHost>,
                                      transport: &TransportEvent,
                                      n: usize,
                                      run: usize,
                                      beat: f64,
                                      tempo: f64,
                                      fed: &mut usize,
                                      events: &mut Vec<Got>| {
                    for (ch, input) in inputs.iter_mut().enumerate() {
                        for (i, x) in input[..n].iter_mut().enumerate() {
                            *x = audio.and_then(|a| a[ch].get(*fed + i).copied()).unwrap_or(0.0);
                        }
                    }
                    *fed += n;
                    out_events.clear();
                    let input_audio = in_ports.with_input_buffers([AudioPortBuffer {
                        latency: 0,
                        channels: AudioPortBufferType::f32_input_only(inputs.iter_mut().map(|b| InputChannel::variable(&mut b[..n]))),
                    }]);
                    let mut output_audio = out_ports.with_output_buffers([AudioPortBuffer {
                        latency: 0,
                        channels: AudioPortBufferType::f32_output_only(outputs.iter_mut().map(|b| &mut b[..n])),
                    }]);
                    processor
                        .process(&input_audio, &mut output_audio, &in_events.as_input(), &mut out_events.as_output(), None, Some(transport))
                        .expect("process");
                    let spb = sr * 60.0 / tempo;
                    for e in out_events.iter() {
                        let h = e.header();
                        let raw = unsafe { &*(e.as_raw() as *const clap_event_note) };
                        let on = match raw.header.type_ {
                            CLAP_EVENT_NOTE_ON => true,
                            CLAP_EVENT_NOTE_OFF => false,
                            _ => continue,
                        };
                        assert!((h.time() as usize) < n, "event offset {} outside a block of {n}", h.time());
                        events.push(Got {
                            run,
                            beat: beat + h.time() as f64 / spb,
                            key: raw.key as u8,
                            on,
                            velocity: (raw.velocity * 127.0).round() as u8,
                            channel: raw.channel,
                        });
                    }
                };
                for (r, run) in runs.iter().enumerate() {
                    let spb = sr * 60.0 / run.tempo;
                    let total = ((run.to - run.from) * spb).round() as usize;
                    let mut done = 0usize;
                    while done < total {
                        let n = block.min(total - done);
                        let beat = run.from + done as f64 / spb;
                        let t = stamp_transport(beat, run.tempo, true);
                        // The plugin sees the fixed-point beat; events are placed from it.
                        let host_beat = (beat * CLAP_BEATTIME_FACTOR as f64).round() / CLAP_BEATTIME_FACTOR as f64;
                        run_blocks(&mut processor, &t, n, r, host_beat, run.tempo, &mut fed, &mut events);
                        done += n;
                        blocks += 1;
                    }
                }
                let last = runs.last().unwrap();
                let t = stamp_transport(last.to, last.tempo, false);
                run_blocks(&mut processor, &t, block, runs.len(), last.to, last.tempo, &mut fed, &mut events);
                (processor.stop_processing(), events, blocks + 1)
            })
            .join()
            .expect("audio thread")
        });
        self.processor = Some(processor);
        self.main_thread_tasks();
        Pass { events, blocks, seconds: started.elapsed().as_secs_f64() }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.deactivate();
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

/// Every note-on is followed by its note-off, no key is struck twice while down, nothing hangs.
fn check_balanced(events: &[Got], what: &str) {
    let mut down = [false; 128];
    for e in events {
        assert_eq!(e.channel, 0, "{what}: channel");
        let k = e.key as usize;
        if e.on {
            assert!(!down[k], "{what}: note-on for key {k} that is already down (beat {})", e.beat);
            down[k] = true;
        } else {
            assert!(down[k], "{what}: note-off for key {k} that is up (beat {})", e.beat);
            down[k] = false;
        }
    }
    let stuck: Vec<usize> = (0..128).filter(|&k| down[k]).collect();
    assert!(stuck.is_empty(), "{what}: stuck notes {stuck:?}");
}

/// Note-ons of each run against the cover's notes starting in that run, in samples from the run's
/// start (where the host's sample grid lies); notes within a sample of a run's edges are left out of
/// both (whether they fall just inside is not what is tested).
fn check_ons(events: &[Got], cover: &[CoverNote], runs: &[Run], sample_rate: f64, what: &str) -> usize {
    let mut checked = 0;
    for (r, run) in runs.iter().enumerate() {
        let spb = sample_rate * 60.0 / run.tempo;
        let edge = 1.0 / spb;
        let inside = |b: f64| b >= run.from + edge && b < run.to - edge;
        let mut want: Vec<(u8, i64, u8)> = cover
            .iter()
            .filter(|n| inside(n.start_beat) && n.end_beat > n.start_beat)
            .map(|n| (n.pitch, ((n.start_beat - run.from) * spb).round() as i64, n.velocity))
            .collect();
        let mut got: Vec<(u8, i64, u8)> =
            events.iter().filter(|e| e.run == r && e.on && inside(e.beat)).map(|e| (e.key, ((e.beat - run.from) * spb).round() as i64, e.velocity)).collect();
        want.sort();
        got.sort();
        if want != got {
            let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).take(10).collect();
            let extra: Vec<_> = got.iter().filter(|g| !want.contains(g)).take(10).collect();
            panic!(
                "{what}, run {r} {run:?}: {} note-ons, the cover has {}; missing (pitch, sample, velocity) {missing:?}, extra {extra:?}",
                got.len(),
                want.len()
            );
        }
        checked += got.len();
    }
    checked
}

// ---------------------------------------------------------------------------------------------
// The test

struct Song {
    stereo: [Vec<f32>; 2],
    sample_rate: u32,
    bpm: f64,
    frames: usize,
    cover: Vec<CoverNote>,
}

fn load_song() -> Song {
    let dir = devset_dir().join(SONG);
    let wav = dir.join("audio.wav");
    assert!(
        wav.exists(),
        "{} is missing: build the dev set with `python3 ../shared/eval/make_devset.py DIR` and set PIANOLA_DEVSET=DIR",
        wav.display()
    );
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    let bpm = meta["bpm"].as_f64().unwrap();
    let clip = audio_file::read(&wav).unwrap();
    assert_eq!(clip.channels, 2);
    let frames = clip.frames();
    let stereo = [
        clip.interleaved.iter().step_by(2).copied().collect::<Vec<f32>>(),
        clip.interleaved.iter().skip(1).step_by(2).copied().collect::<Vec<f32>>(),
    ];
    // The library's cover of the same audio, as `pianola cover` makes it, on the grid the host plays:
    // beat 0 at 0 s, 4/4, bars from beat 0.
    let t0 = Instant::now();
    let mut m = model::load(Backend::Tract).unwrap();
    let t = engine::transcribe_clip(m.as_mut(), &clip, &DecodeParams::default()).unwrap();
    let grid = BeatGrid { bpm, beats_per_bar: 4, first_beat_s: 0.0, first_downbeat_beat: 0.0 };
    let input = ArrangeInput::from_transcription(&t.notes, Some(&t.frames), &grid);
    let cover = arrange::arrange(&input, &ArrangeSettings::default());
    eprintln!("reference: {} notes -> cover of {} notes in {:.1} s", t.notes.len(), cover.len(), t0.elapsed().as_secs_f64());
    assert!(cover.len() > 50, "the reference cover is implausibly small");
    Song { stereo, sample_rate: clip.sample_rate, bpm, frames, cover }
}

/// A playback pass: from the start, a loop over bars 3-4 twice, a seek, a tempo change.
fn playback_runs(bpm: f64) -> Vec<Run> {
    let slow = bpm * 0.8;
    vec![
        Run { from: 0.0, to: 8.0, tempo: bpm },
        Run { from: 8.0, to: 16.0, tempo: bpm },
        Run { from: 8.0, to: 16.0, tempo: bpm },
        Run { from: 30.3, to: 38.0, tempo: bpm },
        Run { from: 38.0, to: 46.0, tempo: slow },
    ]
}

#[test]
fn capture_then_play_back_through_clap() {
    let song = load_song();
    let path = bundle_path();
    let entry = unsafe { PluginEntry::load(&path) }.unwrap_or_else(|e| panic!("loading {}: {e:?}", path.display()));
    let factory = entry.get_plugin_factory().expect("plugin factory");
    let descriptor = factory.plugin_descriptors().find(|d| d.id().is_some_and(|id| id.to_bytes() == PLUGIN_ID.as_bytes())).expect("Pianola in the bundle");
    let description = descriptor.description().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
    assert!(
        description.contains("assert_process_allocs"),
        "{} was built without the allocation check; rebuild it with \
         `cargo xtask bundle pianola --release --features assert_process_allocs`",
        path.display()
    );

    let sr0 = song.sample_rate as f64;
    let song_beats = song.frames as f64 / (sr0 * 60.0 / song.bpm);
    let mut plugin = Plugin::new(&entry);

    // Capture: the whole song once, offline (a bounce waits for the worker; real time would drop
    // blocks in a host running this much faster than real time).
    plugin.set_offline(true);
    plugin.activate(sr0, 4096);
    let capture = [Run { from: 0.0, to: song_beats, tempo: song.bpm }];
    let pass = plugin.play(&capture, 512, Some(&song.stereo));
    eprintln!("capture pass: {} blocks in {:.1} s ({} note events while recording)", pass.blocks, pass.seconds, pass.events.len());
    check_balanced(&pass.events, "capture pass");

    // The whole song again: every note of the cover on its beat.
    let full = [Run { from: 0.0, to: song_beats, tempo: song.bpm }];
    let offline_full = plugin.play(&full, 512, None);
    check_balanced(&offline_full.events, "full playback (offline)");
    let n = check_ons(&offline_full.events, &song.cover, &full, sr0, "full playback (offline)");
    eprintln!("full playback: {n} of {} cover notes on their samples", song.cover.len());
    // Notes the transport never reaches (before beat 0 after the arranger's lag alignment, or past
    // the end) are all that may be left out; notes right at the edges are compared here too.
    let playable: Vec<&CoverNote> = song.cover.iter().filter(|c| c.start_beat >= 0.0 && c.start_beat < song_beats - 1e-6).collect();
    let ons: Vec<&Got> = offline_full.events.iter().filter(|e| e.on).collect();
    assert_eq!(ons.len(), playable.len(), "full playback: {} note-ons for {} cover notes in the song; not played: {:?}",
        ons.len(), playable.len(), song.cover.iter().filter(|c| !(c.start_beat >= 0.0 && c.start_beat < song_beats)).map(|c| c.start_beat).collect::<Vec<_>>());
    for (e, c) in ons.iter().zip(&playable) {
        assert!(e.key == c.pitch && (e.beat - c.start_beat).abs() * sr0 * 60.0 / song.bpm <= 0.5 + 1e-6, "{e:?} vs {c:?}");
    }

    // Real time from here on: the cover is there at activation.
    plugin.deactivate();
    plugin.set_offline(false);
    let runs = playback_runs(song.bpm);
    let mut summary = BTreeMap::new();
    let mut reference_48k: Option<Vec<Got>> = None;
    for sr in [44100.0, 48000.0, 96000.0] {
        plugin.activate(sr, 4096);
        for block in [1usize, 64, 333, 4096] {
            let what = format!("{sr} Hz, blocks of {block}");
            let pass = plugin.play(&runs, block, None);
            check_balanced(&pass.events, &what);
            let n = check_ons(&pass.events, &song.cover, &runs, sr, &what);
            assert!(n > 40, "{what}: only {n} notes played");
            summary.insert((sr as u32, block), (n, pass.blocks, pass.seconds));
            if sr == 48000.0 && block == 333 {
                reference_48k = Some(pass.events.clone());
            }
        }
    }
    for ((sr, block), (n, blocks, s)) in &summary {
        eprintln!("{sr:>6} Hz, block {block:>4}: {n:>4} note-ons on their samples, {blocks:>8} blocks, {s:.2} s");
    }

    // An offline bounce equals the real-time pass.
    plugin.deactivate();
    plugin.set_offline(true);
    plugin.activate(48000.0, 4096);
    let bounce = plugin.play(&runs, 333, None);
    assert_eq!(bounce.events, reference_48k.clone().unwrap(), "offline bounce differs from the real-time pass");

    // State: a new instance restores the cover from the saved project alone.
    plugin.deactivate();
    let state = plugin.save_state();
    let text = String::from_utf8_lossy(&state[8..]).into_owned();
    assert!(text.contains("capture"), "the state has no capture field");
    drop(plugin);
    let mut restored = Plugin::new(&entry);
    restored.load_state(&state);
    restored.activate(48000.0, 4096);
    let pass = restored.play(&runs, 333, None);
    assert_eq!(pass.events, reference_48k.unwrap(), "the restored instance plays a different cover");
    let json = |bytes: &[u8]| -> serde_json::Value { serde_json::from_slice(&bytes[8..]).expect("state is 8-byte length + JSON") };
    let (before, after) = (json(&state), json(&restored.save_state()));
    assert_eq!(after["params"], before["params"], "parameters after the state round trip");
    let (cb, ca) = (before["fields"]["capture"].as_str().unwrap_or(""), after["fields"]["capture"].as_str().unwrap_or(""));
    if cb != ca {
        let at = cb.bytes().zip(ca.bytes()).position(|(x, y)| x != y).unwrap_or(cb.len().min(ca.len()));
        let ctx = |s: &str| s.get(at.saturating_sub(80)..(at + 80).min(s.len())).unwrap_or("").to_string();
        panic!("the saved capture changed in the round trip ({} vs {} bytes), at byte {at}:\n{}\n{}", cb.len(), ca.len(), ctx(cb), ctx(ca));
    }
}

/// Live mode: the song is transcribed while it plays and the notes come out `latency` late, which
/// the plugin reports to the host (the live pipeline's worst case, well under a second). The live
/// cover is decoded causally and arranged from what has been heard so far, so it need not equal the
/// finished cover note for note; most of its notes must still be near one of the cover's.
#[test]
#[ignore = "streaming Live mode: its note-match floors were set without a run through the bundle; re-enable once measured"]
fn live_mode_plays_behind_a_reported_latency() {
    let song = load_song();
    let path = bundle_path();
    let entry = unsafe { PluginEntry::load(&path) }.unwrap_or_else(|e| panic!("loading {}: {e:?}", path.display()));
    let mut plugin = Plugin::new(&entry);
    // Switch to Live through the saved state, as a project would.
    let mut state: serde_json::Value = serde_json::from_slice(&plugin.save_state()[8..]).unwrap();
    state["params"]["mode"] = serde_json::json!({ "string": "live" });
    let json = serde_json::to_vec(&state).unwrap();
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&json);
    plugin.load_state(&bytes);

    let sr = song.sample_rate as f64;
    plugin.set_offline(true);
    plugin.activate(sr, 4096);
    let latency = {
        use clap_sys::ext::latency::{clap_plugin_latency, CLAP_EXT_LATENCY};
        let ext = plugin.extension::<clap_plugin_latency>(CLAP_EXT_LATENCY);
        unsafe { ((*ext).get.unwrap())(plugin.instance.raw_instance()) }
    };
    assert_eq!(latency, (pianola::worker::live_latency_seconds() * sr).round() as u32, "reported latency");
    assert!(latency as f64 / sr < 0.5, "live latency {latency} samples");
    let latency_beats = latency as f64 / (sr * 60.0 / song.bpm);
    let song_beats = song.frames as f64 / (sr * 60.0 / song.bpm);
    let runs = [Run { from: 0.0, to: song_beats + latency_beats + 1.0, tempo: song.bpm }];
    let pass = plugin.play(&runs, 512, Some(&song.stereo));
    check_balanced(&pass.events, "live pass");
    let ons: Vec<&Got> = pass.events.iter().filter(|e| e.on).collect();
    // Where each note-on belongs in the song: the host shifts the plugin's output back by its latency.
    // Same pitch within a sixteenth of a cover note's start (the live decoder's frame grid and
    // the arranger's context differ from the finished cover's).
    let matched = ons
        .iter()
        .filter(|e| song.cover.iter().any(|c| c.pitch == e.key && (c.start_beat - (e.beat - latency_beats)).abs() <= 0.25 + 1e-6))
        .count();
    eprintln!(
        "live: latency {latency} samples ({latency_beats:.2} beats), {} note-ons for a finished cover of {}, {matched} on a cover note's sample",
        ons.len(),
        song.cover.len()
    );
    // With the 4.5 s windowed Live mode: 227 note-ons, 222 of them the cover's (228 cover notes).
    // The streaming Live mode's floors below are not measured through CLAP yet (the dev-set bench,
    // benches/live.rs, gives live covers 2.75 notes per beat against offline 2.88 and a melody_f1
    // of 0.60 against 0.67): lower them only with a measurement.
    assert!(ons.len() * 10 >= song.cover.len() * 7, "live mode played only {} notes", ons.len());
    assert!(matched * 10 >= ons.len() * 6, "only {matched} of {} live notes are near the cover's", ons.len());
}
