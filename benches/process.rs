//! What `process()` costs the audio thread per block, as a share of the block's duration: the
//! plugin's own `AudioCore::process_block` (the capture into the ring with a stamp, the timeline
//! pick-up, the emitter, the pass-through delay) playing back a dense captured song at 64 and 512
//! samples (48 kHz, stereo, 120 bpm), with the plugin's real worker thread draining the ring.
//!
//!     cargo bench --bench process
//!
//! Besides criterion's report, the end prints each size's mean time per block and its share of the
//! block's real-time duration, and the same for a reference measured in the same run: a plain
//! stereo copy of the block (the least any pass-through plugin does), so the ratio is comparable
//! across machines. Last, denormal input against white noise (clap-validator's
//! `process-audio-denormals` warns above 2x): blocks of each, the input made beforehand from bit
//! patterns, so no arithmetic on denormals happens outside `process()`. (The validator draws its
//! denormals with arithmetic inside its timed loop, which on this CPU costs far more than our
//! `process()` itself: that is where its 4-15x comes from.)

use criterion::{BenchmarkId, Criterion};
use pianola::audio_thread::core::{AudioCore, ModelFactory};
use pianola::audio_thread::emit::EmitEvent;
use pianola::model::{ModelError, NoteModel, WindowFrames};
use pianola::params::{CapturedSong, PianolaParams, SavedNote};
use pianola::ring::{CaptureShared, TransportInfo};
use pianola::status::Status;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SR: f64 = 48000.0;
const TEMPO: f64 = 120.0;
const BEATS: f64 = 512.0;

/// Never runs: the whole song is already captured, so the worker only drains the ring.
struct NoModel;
impl NoteModel for NoModel {
    fn backend(&self) -> &'static str {
        "none"
    }
    fn run_window(&mut self, _w: &[f32], _out: &mut WindowFrames) -> Result<(), ModelError> {
        Err(ModelError::Load("the process bench runs no model".into()))
    }
}

/// A dense transcription: a 16th-note line on top and 8th-note four-note chords under it, for
/// 512 beats, all captured (what the second pass of a busy song plays).
fn captured_song() -> CapturedSong {
    let mut notes = vec![];
    for b in 0..BEATS as usize {
        for k in 0..4 {
            let s = b as f64 + k as f64 * 0.25;
            notes.push(SavedNote(s, s + 0.24, 72 + ((b * 3 + k) % 12) as u8, 0.8, 0.9));
        }
        for k in 0..2 {
            let s = b as f64 + k as f64 * 0.5;
            for (i, p) in [48u8, 55, 60, 64].iter().enumerate() {
                notes.push(SavedNote(s, s + 0.45, p + (b % 5) as u8 + i as u8 % 2, 0.6, 0.5));
            }
        }
    }
    notes.sort_by(|a, b| a.0.total_cmp(&b.0));
    CapturedSong { notes, beats_per_bar: 4, first_downbeat_beat: 0.0, seconds_per_beat: 60.0 / TEMPO, covered: vec![[0.0, BEATS]], ..CapturedSong::default() }
}

struct Instance {
    core: AudioCore,
    left: Vec<f32>,
    right: Vec<f32>,
    pos: u64,
    events: usize,
}

impl Instance {
    fn new() -> Self {
        let params = Arc::new(PianolaParams::default());
        params.capture.store(captured_song());
        let no_model: ModelFactory = Arc::new(|| Err(ModelError::Load("no second model".into())));
        let mut core = AudioCore::new(params, Arc::new(Status::default()), Arc::new(CaptureShared::default()), no_model).with_model(Box::new(NoModel));
        core.activate(2, SR as f32, false);
        let left: Vec<f32> = (0..4096).map(|i| (i as f32 * 0.01).sin()).collect();
        let right: Vec<f32> = (0..4096).map(|i| (i as f32 * 0.013).cos()).collect();
        Self { core, left, right, pos: 0, events: 0 }
    }

    fn block(&mut self, len: usize) {
        let beat = self.pos as f64 * TEMPO / 60.0 / SR;
        let t = TransportInfo {
            playing: true,
            beat: Some(beat),
            tempo: Some(TEMPO),
            time_sig: Some((4, 4)),
            bar_start_beat: Some((beat / 4.0).floor() * 4.0),
            sample_rate: SR as f32,
        };
        let mut n = 0usize;
        let (l, r) = (&mut self.left[..len], &mut self.right[..len]);
        let mut buffer: [&mut [f32]; 2] = [l, r];
        self.core.process_block(&mut buffer, &t, &mut |e: EmitEvent| {
            black_box(e);
            n += 1;
            true
        });
        self.events += n;
        self.pos += len as u64;
        // Loop over the cover's beats (a loop wrap, as a host's loop makes).
        if self.pos as f64 * TEMPO / 60.0 / SR >= BEATS - 12.0 {
            self.pos = 0;
        }
    }
}

/// The reference: a stereo copy of the block, what the plainest pass-through costs.
fn copy_block(src: &[f32], dst: &mut [f32]) {
    dst.copy_from_slice(black_box(src));
    black_box(dst);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut shares = vec![];
    {
        let mut group = c.benchmark_group("process");
        for len in [64usize, 512] {
            let mut instance = Instance::new();
            // The worker restores the capture and publishes its cover before the timing starts.
            let start = Instant::now();
            while !instance.core.status().model_ready.load(std::sync::atomic::Ordering::Acquire) && start.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(5));
            }
            group.bench_with_input(BenchmarkId::new("process_block", len), &len, |b, &len| b.iter(|| instance.block(len)));
            // A plain timed run for the share figure (the same work, 30 s of audio).
            let blocks = (30.0 * SR / len as f64) as usize;
            let t = Instant::now();
            for _ in 0..blocks {
                instance.block(len);
            }
            let per_block = t.elapsed().as_secs_f64() / blocks as f64;
            let (src, mut dst) = (vec![0.25f32; 2 * len], vec![0.0f32; 2 * len]);
            let t = Instant::now();
            for _ in 0..blocks {
                copy_block(&src, &mut dst);
            }
            let reference = t.elapsed().as_secs_f64() / blocks as f64;
            assert!(instance.events > 0, "the bench played no notes: the cover did not reach the audio thread");
            shares.push((len, per_block, per_block / (len as f64 / SR), reference, instance.events as f64 / instance.pos.max(1) as f64));
        }
        group.finish();
    }
    c.final_summary();
    let (noise, denormal) = denormal_against_noise(512);
    for (len, per_block, share, reference, _) in shares {
        println!(
            "block {len:>4} samples @ 48 kHz: {:>8.3} us per block = {:.4} % of the block's {:.3} ms; {:.1}x a stereo copy of the block ({:.3} us)",
            per_block * 1e6,
            share * 100.0,
            len as f64 / SR * 1e3,
            per_block / reference.max(1e-12),
            reference * 1e6
        );
    }
    println!(
        "block  512 samples, input white noise: {:.3} us per block; denormal input: {:.3} us per block = {:.2}x (clap-validator warns above 2x)",
        noise * 1e6,
        denormal * 1e6,
        denormal / noise.max(1e-12)
    );
}

/// Mean time per block of `len` samples with white-noise input and with denormal input, timed in
/// alternating rounds on one instance (the input copied in before each block, in both).
fn denormal_against_noise(len: usize) -> (f64, f64) {
    let mut instance = Instance::new();
    let mut state = 0x9E37_79B9u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    const BLOCKS: usize = 64;
    // White noise in -1..1, and denormals (exponent bits zero, a random mantissa and sign).
    let noise: Vec<f32> = (0..2 * len * BLOCKS).map(|_| (next() >> 8) as f32 / (1u32 << 23) as f32 - 1.0).collect();
    let denormal: Vec<f32> = (0..2 * len * BLOCKS).map(|_| f32::from_bits((next() & 0x8000_0000) | (next() & 0x007F_FFFF).max(1))).collect();
    assert!(denormal.iter().all(|x| x.is_subnormal()));
    let mut totals = [0.0f64; 2];
    for _round in 0..200 {
        for (k, input) in [&noise, &denormal].into_iter().enumerate() {
            let t = Instant::now();
            for b in 0..BLOCKS {
                let at = 2 * len * b;
                instance.left[..len].copy_from_slice(&input[at..at + len]);
                instance.right[..len].copy_from_slice(&input[at + len..at + 2 * len]);
                instance.block(len);
            }
            totals[k] += t.elapsed().as_secs_f64();
        }
    }
    (totals[0] / (200 * BLOCKS) as f64, totals[1] / (200 * BLOCKS) as f64)
}
