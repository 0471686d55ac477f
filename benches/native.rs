//! What a window costs on each backend: the native engine (`model::native`), ONNX Runtime (one
//! intra-op thread; with `--features onnxruntime`) and tract, measured in the same run on the same
//! audio, the backends taking turns (blocks of 5 windows) so a busy machine slows them alike. Prints
//! median and best ms per window for the 2 s window (172 frames, offline) and Live's 130-frame
//! one, and each reference's time over native's. Pin it to one core for the numbers:
//!
//!     taskset -c 0 cargo bench --features onnxruntime --bench native

use pianola::model::{self, Backend, NoteModel, WindowFrames};
use std::time::Instant;

const ROUNDS: usize = 40;
/// Windows a backend runs in a row before the next takes its turn.
const BLOCK: usize = 5;

fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Native];
    #[cfg(feature = "onnxruntime")]
    b.push(Backend::Ort);
    b.push(Backend::Tract);
    b
}

/// A few seconds of something music-like: decaying partials of changing notes over noise.
fn audio(samples: usize) -> Vec<f32> {
    let mut s: u32 = 12345;
    (0..samples)
        .map(|i| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            let t = i as f32 / 22050.0;
            let note = 220.0 * 2f32.powf(((i / 5512) % 12) as f32 / 12.0);
            let env = (-((i % 5512) as f32) / 4000.0).exp();
            let tone: f32 = (1..5).map(|h| (std::f32::consts::TAU * note * h as f32 * t).sin() / h as f32).sum();
            0.2 * env * tone + 0.01 * ((s >> 8) as f32 / (1 << 24) as f32 - 0.5)
        })
        .collect()
}

/// The native engine's stages, median ms over ROUNDS windows.
fn native_stages(audio: &[f32]) {
    let mut native = pianola::model::native::NativeModel::from_bytes(model::BASIC_PITCH_ONNX).unwrap();
    let len = model::WINDOW_SAMPLES;
    let mut out = WindowFrames::default();
    let mut all: Vec<Vec<(&'static str, f64)>> = vec![];
    for round in 0..ROUNDS {
        let start = (round * 2311) % (audio.len() - len);
        all.push(native.run_window_timed(&audio[start..start + len], &mut out).unwrap());
    }
    println!("native stages, 172 frames (ms, median):");
    for k in 0..all[0].len() {
        let mut t: Vec<f64> = all.iter().map(|r| r[k].1).collect();
        t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("  {:<26} {:6.2}", all[0][k].0, t[t.len() / 2]);
    }
}

fn main() {
    let audio = audio(22050 * 6);
    native_stages(&audio);
    // `cargo bench --bench native -- stages`: the native stages alone (for a profiler).
    if std::env::args().any(|a| a == "stages") {
        return;
    }
    let mut models: Vec<(Backend, Box<dyn NoteModel>)> = backends().into_iter().map(|b| (b, model::load(b).expect("the model loads"))).collect();
    println!("per window, {ROUNDS} windows each, backends taking turns in blocks of {BLOCK} (ms: median / best)");
    for frames in [model::FRAMES_PER_WINDOW, model::MIN_WINDOW_FRAMES] {
        let len = model::window_samples(frames);
        let mut out = WindowFrames::with_frames(frames);
        let mut times: Vec<Vec<f64>> = vec![vec![]; models.len()];
        for (_, m) in models.iter_mut() {
            m.prepare_window(frames).unwrap();
            m.run_window(&audio[..len], &mut out).unwrap();
        }
        // Each backend runs a block of windows in turn, the first of each block untimed: in the
        // plugin one backend runs alone, so its caches are its own.
        for round in 0..ROUNDS / BLOCK {
            for (k, (_, m)) in models.iter_mut().enumerate() {
                for w in 0..=BLOCK {
                    let start = ((round * BLOCK + w) * 2311) % (audio.len() - len);
                    let t = Instant::now();
                    m.run_window(&audio[start..start + len], &mut out).unwrap();
                    if w > 0 {
                        times[k].push(t.elapsed().as_secs_f64() * 1e3);
                    }
                }
            }
        }
        let stats: Vec<(f64, f64)> = times
            .iter_mut()
            .map(|t| {
                t.sort_by(|a, b| a.partial_cmp(b).unwrap());
                (t[t.len() / 2], t[0])
            })
            .collect();
        let native = stats[0].0;
        for ((backend, _), (median, best)) in models.iter().zip(&stats) {
            let ratio = if backend.name() == "native" { String::new() } else { format!("  {:.2}x native's time", median / native) };
            println!("{frames:>3} frames  {:<7} {median:7.2} / {best:7.2} ms{ratio}", backend.name());
        }
    }
}
