//! What the voice tracker costs: `pitch::PitchTracker::detect` (SwiftF0, one core) on 60 s of the
//! synthetic singer the tests use, as a realtime factor, on the native engine (the default) and on
//! tract (the reference), against the package it comes from measured in the same run on the same
//! audio: Python swift-f0 0.3.0 on ONNX Runtime, one thread (skipped with a word when Python or the
//! package is missing). Also the streaming tracker's load (windows of 26 frames every 5 frames,
//! each one model run) on both engines, and the notes from the curve.
//!
//!     cargo bench --bench pitch

#[path = "../tests/common/voice.rs"]
mod voice;

use pianola::pitch::{notes::notes_from_pitch, PitchTracker, SAMPLE_RATE};
use std::time::Instant;

const SECONDS: f64 = 60.0;
const RUNS: usize = 5;

/// Seconds per detect of the raw audio in Python swift-f0 (best of RUNS), if it runs here.
fn python_seconds(audio: &[f32]) -> Result<f64, String> {
    let dir = std::env::temp_dir().join(format!("pianola-pitch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let raw = dir.join("audio.f32");
    std::fs::write(&raw, audio.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()).map_err(|e| e.to_string())?;
    let script = format!(
        "import time, numpy as np\nfrom swift_f0 import SwiftF0\nx = np.fromfile('{}', dtype='<f4')\nd = SwiftF0(threads=1)\nd.detect(x, 16000)\nbest = 1e9\nfor _ in range({RUNS}):\n    t = time.perf_counter(); d.detect(x, 16000); best = min(best, time.perf_counter() - t)\nprint(best)\n",
        raw.display()
    );
    let out = std::process::Command::new("python3").arg("-c").arg(script).output().map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("").to_string());
    }
    String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().map_err(|e| e.to_string())
}

/// (first run, best of RUNS) seconds of `f` .
fn time(mut f: impl FnMut()) -> (f64, f64) {
    let t = Instant::now();
    f();
    let first = t.elapsed().as_secs_f64();
    let mut best = f64::INFINITY;
    for _ in 0..RUNS {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (first, best)
}

/// The streaming tracker's model runs over `audio`: 26-frame windows (6656 samples) every 5 frames.
fn stream(tracker: &mut PitchTracker, audio: &[f32]) {
    let mut start = 0;
    while start + 6656 <= audio.len() {
        std::hint::black_box(tracker.detect(&audio[start..start + 6656]).expect("detect"));
        start += 5 * 256;
    }
}

fn main() {
    let notes = voice::melody(57, 22);
    let audio = voice::sing(&notes, SAMPLE_RATE, SECONDS);
    let mut native = PitchTracker::load().expect("the pitch model loads");
    let mut tract = PitchTracker::tract().expect("the pitch model loads in tract");
    let frames = native.detect(&audio).expect("detect");
    let (first, best) = time(|| {
        std::hint::black_box(native.detect(&audio).expect("detect"));
    });
    let (tract_first, tract_best) = time(|| {
        std::hint::black_box(tract.detect(&audio).expect("detect"));
    });
    let t = Instant::now();
    let sung = notes_from_pitch(&frames, 0.0);
    let fold = t.elapsed().as_secs_f64();
    println!(
        "pitch tracker (native, one core): {SECONDS:.0} s of audio in {:.1} ms (best of {RUNS}) = {:.0}x realtime; first run {:.1} ms; notes from the curve {:.2} ms ({} notes for {} sung)",
        best * 1e3,
        SECONDS / best,
        first * 1e3,
        fold * 1e3,
        sung.len(),
        notes.len()
    );
    println!(
        "pitch tracker (tract, one core): {SECONDS:.0} s of audio in {:.1} ms (best of {RUNS}) = {:.0}x realtime; first run with planning {:.1} ms; native / tract speed: {:.2}x",
        tract_best * 1e3,
        SECONDS / tract_best,
        tract_first * 1e3,
        tract_best / best
    );
    let (_, s_native) = time(|| stream(&mut native, &audio));
    let (_, s_tract) = time(|| stream(&mut tract, &audio));
    println!(
        "streaming windows (26 frames every 5, {} runs): native {:.1} ms = {:.0}x realtime, tract {:.1} ms = {:.0}x realtime; native / tract speed: {:.2}x",
        (audio.len() - 6656) / 1280 + 1,
        s_native * 1e3,
        SECONDS / s_native,
        s_tract * 1e3,
        SECONDS / s_tract,
        s_tract / s_native
    );
    match python_seconds(&audio) {
        Ok(py) => println!(
            "reference, Python swift-f0 0.3.0 on ONNX Runtime (one thread), same audio: {:.1} ms = {:.0}x realtime; native / reference speed: {:.2}x; tract / reference speed: {:.2}x",
            py * 1e3,
            SECONDS / py,
            py / best,
            py / tract_best
        ),
        Err(e) => println!("reference not measured (Python swift-f0 not available here: {e})"),
    }
}
