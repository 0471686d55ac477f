//! What `process()` costs the audio thread per block, as a share of the block's duration: the capture
//! (downmix into the ring with a stamp), the timeline pick-up and the emitter over a dense cover, at 64
//! and 512 samples (48 kHz, stereo, 120 bpm). A second thread drains the ring as the worker does.
//!
//!     cargo bench --bench process
//!
//! Besides criterion's report, the end prints each size's mean time per block and its share of the
//! block's real-time duration.

use criterion::{BenchmarkId, Criterion};
use pianola::capture::{self, CaptureShared, TransportInfo};
use pianola::emit::{BlockTransport, EmitEvent, Emitter};
use pianola::notes::{CoverNote, Hand};
use pianola::timeline::{self, Timeline};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SR: f64 = 48000.0;
const TEMPO: f64 = 120.0;

/// A dense two-hand cover: 8 onsets per beat (melody 16ths, chords on 8ths) for 512 beats.
fn cover() -> Vec<CoverNote> {
    let mut notes = vec![];
    for b in 0..512 {
        for k in 0..4 {
            let s = b as f64 + k as f64 * 0.25;
            notes.push(CoverNote { start_beat: s, end_beat: s + 0.24, pitch: 72 + ((b * 3 + k) % 12) as u8, velocity: 90, hand: Hand::Right, melody: true });
        }
        for k in 0..2 {
            let s = b as f64 + k as f64 * 0.5;
            for (i, p) in [48u8, 55, 60, 64].iter().enumerate() {
                notes.push(CoverNote {
                    start_beat: s,
                    end_beat: s + 0.45,
                    pitch: p + (b % 5) as u8 + i as u8 % 2,
                    velocity: 70,
                    hand: Hand::Left,
                    melody: false,
                });
            }
        }
    }
    notes
}

/// The audio-thread state of one plugin instance.
struct AudioSide {
    writer: capture::CaptureWriter,
    reader: timeline::Reader,
    emitter: Emitter,
    left: Vec<f32>,
    right: Vec<f32>,
    pos: u64,
    events: usize,
}

impl AudioSide {
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
        self.writer.push_block(&[&self.left[..len], &self.right[..len]], len, &t, false);
        if self.reader.update() {
            self.emitter.retarget(&self.reader.current().notes);
        }
        let mut n = 0usize;
        let block = BlockTransport { playing: true, beat, tempo: TEMPO, sample_rate: SR, len: len as u32 };
        self.emitter.process(&block, &self.reader.current().notes, &mut |e: EmitEvent| {
            black_box(e);
            n += 1;
            true
        });
        self.events += n;
        self.pos += len as u64;
        // Loop over the cover's 512 beats.
        if self.pos as f64 * TEMPO / 60.0 / SR >= 500.0 {
            self.pos = 0;
        }
    }
}

fn setup() -> (AudioSide, Arc<AtomicBool>, std::thread::JoinHandle<()>, timeline::Publisher) {
    let shared = Arc::new(CaptureShared::default());
    let (writer, mut ring) = capture::channel(shared);
    let (mut publisher, reader) = timeline::channel(Arc::new(Timeline::default()));
    publisher.publish(cover());
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let drain = std::thread::spawn(move || {
        let mut buf = Vec::with_capacity(1 << 16);
        while !stop2.load(Ordering::Relaxed) {
            while ring.pop(&mut buf).is_some() {
                buf.clear();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let left: Vec<f32> = (0..4096).map(|i| (i as f32 * 0.01).sin()).collect();
    let right: Vec<f32> = (0..4096).map(|i| (i as f32 * 0.013).cos()).collect();
    (AudioSide { writer, reader, emitter: Emitter::new(), left, right, pos: 0, events: 0 }, stop, drain, publisher)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut shares = vec![];
    {
        let mut group = c.benchmark_group("process");
        for len in [64usize, 512] {
            let (mut side, stop, drain, _publisher) = setup();
            group.bench_with_input(BenchmarkId::new("capture+emit", len), &len, |b, &len| b.iter(|| side.block(len)));
            // A plain timed run for the share figure (the same work, 30 s of audio).
            let blocks = (30.0 * SR / len as f64) as usize;
            let t = Instant::now();
            for _ in 0..blocks {
                side.block(len);
            }
            let per_block = t.elapsed().as_secs_f64() / blocks as f64;
            shares.push((len, per_block, per_block / (len as f64 / SR), side.events as f64 / side.pos.max(1) as f64));
            stop.store(true, Ordering::Relaxed);
            drain.join().unwrap();
        }
        group.finish();
    }
    c.final_summary();
    for (len, per_block, share, _) in shares {
        println!(
            "block {len:>4} samples @ 48 kHz: {:>8.3} us per block = {:.4} % of the block's {:.3} ms",
            per_block * 1e6,
            share * 100.0,
            len as f64 / SR * 1e3
        );
    }
}
