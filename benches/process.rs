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
//! across machines.

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
}
