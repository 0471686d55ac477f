//! An in-process plugin instance without a host: the plugin's own `AudioCore` (the block that
//! `Pianola::process` runs, the worker across activations, the latency), driven block by block by a
//! scripted transport, with stand-in note models where the network is not the point.

use nice_plug::params::InternalParamMut;
use pianola::audio_thread::core::{AudioCore, ModelFactory};
use pianola::audio_thread::emit::EmitEvent;
use pianola::model::{ModelError, NoteModel, WindowFrames, FFT_HOP};
use pianola::notes::{CoverNote, N_CONTOUR_BINS, N_KEYS};
use pianola::params::{Mode, PianolaParams};
use pianola::ring::{CaptureShared, Pushed, TransportInfo};
use pianola::status::Status;
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Stand-in models

/// Click levels and the keys the [`Clicks`] model hears them as: beat `b` of the click track has
/// level `LEVELS[b mod 4]`.
pub const LEVELS: [f32; 4] = [0.4, 0.55, 0.7, 0.85];
pub const KEYS: [u8; 4] = [60, 64, 67, 72];
/// Click length.
pub const CLICK_SECONDS: f64 = 0.005;
/// Frames a click's note lasts (~0.29 s, longer than the decoder's 11-frame minimum).
const NOTE_FRAMES: usize = 25;

/// A cheap deterministic model that hears clicks: a burst of constant level starting at window sample
/// `i` becomes an onset and a note at frame `round(i / 256)` (where the real model's frame `t` sits:
/// sample `t * 256` of the window), on the key of its level. Lets the whole timing path (ring,
/// resampler, windows, decoder, beat map, arranger, emitter) be checked without the network.
#[derive(Default)]
pub struct Clicks {
    pub windows: usize,
}

impl NoteModel for Clicks {
    fn backend(&self) -> &'static str {
        "clicks"
    }

    fn run_window(&mut self, w: &[f32], out: &mut WindowFrames) -> Result<(), ModelError> {
        self.windows += 1;
        // Any window length the real model runs (Live mode's is shorter).
        let frames = pianola::model::check_window(w)?;
        out.set_frames(frames);
        out.note.fill(0.0);
        out.onset.fill(0.0);
        out.contour.fill(0.0);
        let burst = (CLICK_SECONDS * 22050.0) as usize;
        let mut level = Vec::with_capacity(burst);
        let mut i = 16;
        while i + burst <= w.len() {
            if w[i].abs() >= 0.2 && w[i - 16..i].iter().all(|x| x.abs() < 0.2) {
                level.clear();
                level.extend(w[i + burst / 4..i + 3 * burst / 4].iter().map(|x| x.abs()));
                level.sort_by(f32::total_cmp);
                let median = level[level.len() / 2];
                let which = (0..4).min_by(|&a, &b| (LEVELS[a] - median).abs().total_cmp(&(LEVELS[b] - median).abs())).unwrap();
                let k = (KEYS[which] - 21) as usize;
                let t = (i as f64 / FFT_HOP as f64).round() as usize;
                if t < frames {
                    out.onset[t * N_KEYS + k] = 0.95;
                    for u in t..(t + NOTE_FRAMES).min(frames) {
                        out.note[u * N_KEYS + k] = 0.9;
                        out.contour[u * N_CONTOUR_BINS + 3 * k] = 0.9;
                    }
                }
                i += burst + 16;
            } else {
                i += 1;
            }
        }
        Ok(())
    }
}

/// A model that takes `delay` per window (a slow machine, a stalled thread), then hears clicks.
pub struct Sleepy {
    pub inner: Clicks,
    pub delay: Duration,
}

impl NoteModel for Sleepy {
    fn backend(&self) -> &'static str {
        "sleepy"
    }
    fn run_window(&mut self, w: &[f32], out: &mut WindowFrames) -> Result<(), ModelError> {
        std::thread::sleep(self.delay);
        self.inner.run_window(w, out)
    }
}

/// The click track: level `LEVELS[b mod 4]` for `CLICK_SECONDS` from every whole beat `b >= 0`.
pub fn click_at(beat: f64, tempo: f64) -> f32 {
    let b = beat.floor();
    if beat >= 0.0 && beat - b < CLICK_SECONDS * tempo / 60.0 {
        LEVELS[(b as i64).rem_euclid(4) as usize]
    } else {
        0.0
    }
}

/// Key the click on beat `b` is heard as.
pub fn click_key(b: i64) -> u8 {
    KEYS[b.rem_euclid(4) as usize]
}

// ---------------------------------------------------------------------------------------------
// Transport

/// The host's transport for one block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Block {
    pub playing: bool,
    /// None: the host gives no position at all.
    pub beat: Option<f64>,
    pub tempo: Option<f64>,
    pub time_sig: Option<(i32, i32)>,
    pub len: usize,
}

impl Block {
    pub fn playing(beat: f64, tempo: f64, len: usize) -> Self {
        Block { playing: true, beat: Some(beat), tempo: Some(tempo), time_sig: Some((4, 4)), len }
    }
}

/// Contiguous blocks from `from` to `to` beats at `tempo`, lengths from `sizes` (cycled); the last
/// block is cut at `to`, as hosts cut at a loop end.
pub fn run(from: f64, to: f64, tempo: f64, sample_rate: f64, sizes: &mut dyn FnMut() -> usize) -> Vec<Block> {
    let spb = sample_rate * 60.0 / tempo;
    let total = ((to - from) * spb).round() as usize;
    let mut out = vec![];
    let mut done = 0;
    while done < total {
        let n = sizes().clamp(1, total - done);
        out.push(Block::playing(from + done as f64 / spb, tempo, n));
        done += n;
    }
    out
}

/// A small deterministic generator (xorshift) for block sizes and noise.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in -1..1.
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Block sizes a host may use, from 1 to 8192, varying block to block.
pub fn varying_sizes(seed: u64) -> impl FnMut() -> usize {
    const SIZES: [usize; 12] = [1, 2, 3, 17, 64, 127, 333, 512, 1000, 2048, 4096, 8192];
    let mut rng = Rng(seed | 1);
    move || SIZES[rng.below(SIZES.len())]
}

// ---------------------------------------------------------------------------------------------
// The instance

/// A note event as a host would get it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event {
    /// Samples processed before this event since the rig was made.
    pub sample: u64,
    /// The block's beat + offset / samples per beat (None without a host position).
    pub beat: Option<f64>,
    /// The block's samples per beat.
    pub spb: f64,
    pub key: u8,
    pub on: bool,
    /// Note-on velocity, 0..127 (as the host rounds CLAP's 0..1; 0 for the rig's note-offs).
    pub velocity: u8,
    /// MIDI channel, 0..15.
    pub channel: i16,
}

/// One plugin instance without a host: the plugin's own [`AudioCore`] (the block `Pianola::process`
/// runs), driven by a scripted transport, its note events recorded as a host would get them. The
/// rig is a host that compensates the latency the plugin reports the way Ardour does: the position
/// it gives is where the block's output lands, and the input audio it feeds is read that many
/// samples ahead (see DEVELOPERS.md, "Latency and the host's position").
pub struct Rig {
    pub params: Arc<PianolaParams>,
    pub status: Arc<Status>,
    pub shared: Arc<CaptureShared>,
    core: AudioCore,
    pub sample_rate: f32,
    pub offline: bool,
    active: bool,
    pub events: Vec<Event>,
    /// Sustain-pedal changes: (sample, down).
    pub pedal: Vec<(u64, bool)>,
    pub processed: u64,
    /// Longest single `process` call (real-time mode must never wait).
    pub slowest_block: Duration,
    pub dropped_blocks: usize,
    /// Runs of consecutive dropped blocks.
    pub drop_gaps: usize,
    last_dropped: bool,
    /// Latency changes the core asked the host for (the rig re-activates for each, as a host would
    /// after a restart request, at the next `play`).
    pub restarts_asked: usize,
    restart_pending: bool,
    /// The first channel of every processed block's output, when `record_output` is set.
    pub output: Vec<f32>,
    pub record_output: bool,
    scratch: Vec<Vec<f32>>,
}

impl Rig {
    pub fn new(model: Box<dyn NoteModel>) -> Self {
        Self::with_params(model, Arc::new(PianolaParams::default()))
    }

    pub fn with_params(model: Box<dyn NoteModel>, params: Arc<PianolaParams>) -> Self {
        let status = Arc::new(Status::default());
        let shared = Arc::new(CaptureShared::default());
        let no_second_model: ModelFactory = Arc::new(|| Err(ModelError::Load("the rig's model was lost".into())));
        let core = AudioCore::new(params.clone(), status.clone(), shared.clone(), no_second_model).with_model(model);
        Rig {
            params,
            status,
            shared,
            core,
            sample_rate: 0.0,
            offline: false,
            active: false,
            events: vec![],
            pedal: vec![],
            processed: 0,
            slowest_block: Duration::ZERO,
            dropped_blocks: 0,
            drop_gaps: 0,
            last_dropped: false,
            restarts_asked: 0,
            restart_pending: false,
            output: vec![],
            record_output: false,
            scratch: vec![],
        }
    }

    /// As `Pianola::activate` (2 channels). Returns the latency the plugin reports.
    pub fn activate(&mut self, sample_rate: f32, offline: bool) -> u32 {
        self.sample_rate = sample_rate;
        self.offline = offline;
        self.active = true;
        self.restart_pending = false;
        self.core.activate(2, sample_rate, offline)
    }

    /// As `Pianola::deactivate`: returns at once; the worker finishes on its own thread.
    pub fn deactivate(&mut self) {
        self.core.deactivate();
        self.active = false;
    }

    pub fn set_mode(&self, mode: Mode) {
        unsafe { self.params.mode._internal_set_plain_value(mode) };
    }

    /// The latency the plugin reported at its last activation, in samples.
    pub fn latency(&self) -> u32 {
        self.core.reported_latency()
    }

    /// One block of `channels` (each at least `b.len` long), through the plugin's own core.
    pub fn process<C: AsRef<[f32]>>(&mut self, channels: &[C], b: &Block) -> Pushed {
        let len = b.len;
        let info = TransportInfo {
            playing: b.playing,
            beat: b.beat,
            tempo: b.tempo,
            time_sig: b.time_sig,
            bar_start_beat: b.beat.map(|x| (x / 4.0).floor() * 4.0),
            sample_rate: self.sample_rate,
        };
        let mut bufs: Vec<Vec<f32>> = channels.iter().map(|c| c.as_ref()[..len].to_vec()).collect();
        let mut slices: Vec<&mut [f32]> = bufs.iter_mut().map(|c| &mut c[..]).collect();
        let spb = info.tempo.map_or(1.0, |t| self.sample_rate as f64 * 60.0 / t);
        let (processed, events, pedal) = (self.processed, &mut self.events, &mut self.pedal);
        let channel = self.params.midi_channel() as i16;
        let mut send = |e: EmitEvent| {
            assert!((e.offset() as usize) < len, "event offset {} outside a block of {len}", e.offset());
            let (key, on, velocity) = match e {
                EmitEvent::On { key, velocity, .. } => (key, true, velocity),
                EmitEvent::Off { key, .. } => (key, false, 0),
                EmitEvent::Pedal { offset, down } => {
                    pedal.push((processed + offset as u64, down));
                    return true;
                }
            };
            events.push(Event { sample: processed + e.offset() as u64, beat: info.beat.map(|x| x + e.offset() as f64 / spb), spb, key, on, velocity, channel });
            true
        };
        let started = Instant::now();
        let outcome = self.core.process_block(&mut slices, &info, &mut send);
        self.slowest_block = self.slowest_block.max(started.elapsed());
        if self.record_output {
            self.output.extend_from_slice(&slices[0][..len]);
        }
        if outcome.latency_wanted.is_some() {
            self.restarts_asked += 1;
            self.restart_pending = true;
        }
        let pushed = outcome.pushed;
        if pushed == Pushed::Dropped {
            self.dropped_blocks += 1;
            self.drop_gaps += usize::from(!self.last_dropped);
        }
        self.last_dropped = pushed == Pushed::Dropped;
        self.processed += len as u64;
        pushed
    }

    /// A host honouring a restart request: deactivate and activate again (between passes).
    pub fn restart_if_asked(&mut self) {
        if self.restart_pending && self.active {
            self.deactivate();
            self.activate(self.sample_rate, self.offline);
        }
    }

    /// Plays `blocks` with audio from `audio(beat, tempo)` on `channels` channels (the same signal on
    /// each), then one stopped block.
    pub fn play(&mut self, blocks: &[Block], channels: usize, audio: &mut dyn FnMut(f64, f64) -> f32) {
        let sr = self.sample_rate as f64;
        for b in blocks {
            self.scratch.resize_with(channels, Vec::new);
            for ch in self.scratch.iter_mut() {
                ch.clear();
            }
            let (beat, tempo) = (b.beat.unwrap_or(0.0), b.tempo.unwrap_or(120.0));
            // The input is read ahead by the reported latency (the host's delay compensation).
            let ahead = self.core.reported_latency() as f64 * tempo / 60.0 / sr;
            for i in 0..b.len {
                let x = audio(beat + ahead + i as f64 * tempo / 60.0 / sr, tempo);
                for ch in self.scratch.iter_mut() {
                    ch.push(x);
                }
            }
            let bufs = std::mem::take(&mut self.scratch);
            self.process(&bufs, b);
            self.scratch = bufs;
        }
        self.stop(blocks.last().map_or(64, |b| b.len.max(1)));
    }

    /// One stopped block (releases what sounds, ends the worker's segment).
    pub fn stop(&mut self, len: usize) {
        let silence = vec![0.0f32; len];
        self.process(&[&silence[..]], &Block { playing: false, beat: None, tempo: None, time_sig: None, len });
    }

    /// Waits until the worker has handled everything pushed so far.
    pub fn wait_idle(&self, timeout: Duration) {
        let start = Instant::now();
        while !self.core.worker_caught_up() {
            assert!(start.elapsed() < timeout, "the worker did not catch up in {timeout:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until the worker of this activation has its model (after a re-activation: the
    /// previous worker finished what it had captured and the new one restored its capture) and
    /// has handled everything pushed so far.
    pub fn wait_settled(&self, timeout: Duration) {
        let start = Instant::now();
        while !self.status.model_ready.load(std::sync::atomic::Ordering::Acquire) && self.status.error().is_none() {
            assert!(start.elapsed() < timeout, "the worker did not get its model in {timeout:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
        self.wait_idle(timeout.saturating_sub(start.elapsed()));
    }

    /// The cover the worker published last (what the editor shows).
    pub fn cover(&self) -> Vec<CoverNote> {
        self.status.cover.lock().unwrap().notes.clone()
    }

    /// The cover the audio thread plays now.
    pub fn playing_cover(&mut self) -> Vec<CoverNote> {
        self.core.playing_cover().expect("active").notes.clone()
    }

    pub fn error(&self) -> Option<String> {
        self.status.error()
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

/// Every note-on has its note-off, no key is struck while it is down.
pub fn check_balanced(events: &[Event], what: &str) {
    let mut down = [false; 128];
    for e in events {
        let k = e.key as usize;
        if e.on {
            assert!(!down[k], "{what}: note-on for key {k} that is already down at sample {}", e.sample);
            down[k] = true;
        } else {
            assert!(down[k], "{what}: note-off for key {k} that is up at sample {}", e.sample);
            down[k] = false;
        }
    }
    let stuck: Vec<usize> = (0..128).filter(|&k| down[k]).collect();
    assert!(stuck.is_empty(), "{what}: stuck notes {stuck:?}");
}

/// Every note-on lands within half a sample of the start of a note of `cover` with its key
/// (no note on a wrong beat). Returns the number of note-ons.
pub fn check_on_beat(events: &[Event], cover: &[CoverNote], what: &str) -> usize {
    let mut n = 0;
    for e in events.iter().filter(|e| e.on) {
        let beat = e.beat.unwrap_or_else(|| panic!("{what}: a note-on without a host position"));
        let tol = 0.5 / e.spb + 1e-9;
        let from = cover.partition_point(|c| c.start_beat < beat - tol);
        let hit = cover[from..].iter().take_while(|c| c.start_beat <= beat + tol).any(|c| c.pitch == e.key);
        assert!(hit, "{what}: note-on for key {} at beat {beat} where the cover has no such note", e.key);
        n += 1;
    }
    n
}

/// The captured transcription against the click track: every captured note starts within `tol_beats`
/// of a whole beat and has that beat's key. Returns (whole beat, error in beats) per note.
pub fn check_clicks_captured(params: &PianolaParams, tol_beats: f64, what: &str) -> Vec<(i64, f64)> {
    let song = params.capture.get();
    song.notes
        .iter()
        .map(|n| {
            let b = n.0.round();
            let err = n.0 - b;
            assert!(err.abs() <= tol_beats, "{what}: a captured note starts at beat {}, {err:+.4} beats off the click", n.0);
            assert_eq!(n.2, click_key(b as i64), "{what}: the click on beat {b} was heard as key {}", n.2);
            (b as i64, err)
        })
        .collect()
}

/// Seconds of timing slack for a captured click: the model's frame (256 samples at 22050 Hz, +-5.8 ms)
/// and basic-pitch's frame-time staircase (+-10.3 ms).
pub const CLICK_TOL_SECONDS: f64 = 0.02;
