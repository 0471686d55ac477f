//! Parity of the inference backends and of the whole engine with Python basic-pitch 0.4.0 (ONNX
//! Runtime), on dev-set songs:
//! - frames: the reference's own 22050 Hz samples through `engine::frames_from_model_rate` on each
//!   backend; max abs difference to the reference frames <= 1e-4 for tract, <= 1e-6 for ort;
//! - notes end to end: the song's WAV through our reader, resampler, windows, model and decoder vs
//!   basic-pitch's `predict` notes; note onset F1 (50 ms, same pitch) >= 0.99 on every item.
//!
//! ```text
//!     python3 ../shared/eval/make_devset.py target/devset
//!     python3 scripts/reference_fixtures.py target/devset target/fixtures
//!     cargo test --release --features onnxruntime --test model_parity -- --nocapture
//! ```

mod common;
use common::*;
use pianola::decode::DecodeParams;
use pianola::engine;
use pianola::model::{self, Backend};
use pianola::notes::FrameOutputs;

/// Each backend with its frame tolerance: tract's optimised plan (what the plugin runs) measured
/// 3.4e-6 here, its exact plan 1.1e-6, ONNX Runtime 0; the bound for tract is the issue's 1e-4.
fn backends() -> Vec<(Backend, f32)> {
    let mut b = vec![(Backend::Tract, 1e-4), (Backend::TractExact, 1e-4)];
    #[cfg(feature = "onnxruntime")]
    b.push((Backend::Ort, 1e-6));
    b
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "frame counts differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn fixture_items() -> Vec<std::path::PathBuf> {
    let items = items_with(&fixtures_dir(), "audio_22050.f32");
    assert!(items.len() >= 3, "need reference fixtures: run scripts/reference_fixtures.py (see module doc)");
    items
}

#[test]
fn backends_match_reference_frames() {
    // Three mixes and three vocal lines are enough to exercise every window position.
    let items: Vec<_> = fixture_items().into_iter().filter(|p| p.to_string_lossy().contains("bwv")).take(6).collect();
    for (backend, tolerance) in backends() {
        let mut model = model::load(backend).unwrap();
        for item in &items {
            let audio = read_f32(&item.join("audio_22050.f32"));
            let ours = engine::frames_from_model_rate(model.as_mut(), &audio).unwrap();
            let reference =
                FrameOutputs { note: read_f32(&item.join("note.f32")), onset: read_f32(&item.join("onset.f32")), contour: read_f32(&item.join("contour.f32")) };
            let diff =
                [max_abs_diff(&ours.note, &reference.note), max_abs_diff(&ours.onset, &reference.onset), max_abs_diff(&ours.contour, &reference.contour)];
            let worst = diff.iter().cloned().fold(0.0, f32::max);
            println!("{backend:?} {}: max abs diff note {:.2e} onset {:.2e} contour {:.2e}", item.display(), diff[0], diff[1], diff[2]);
            assert!(worst <= tolerance, "{backend:?} on {}: max abs diff {worst:e} > {tolerance:e}", item.display());
        }
    }
}

/// Model + decoder on the reference's own 22050 Hz samples: the notes must agree with basic-pitch's
/// at onset F1 >= 0.99 on every item (all three backends).
#[test]
fn notes_from_reference_audio_match_basic_pitch() {
    let params = DecodeParams::default();
    for (backend, _) in backends() {
        let mut model = model::load(backend).unwrap();
        let items = fixture_items();
        // The exact tract plan is slow: six items are enough to pin it.
        let take = if backend == Backend::TractExact { 6 } else { items.len() };
        let mut worst = 1.0f64;
        for item in items.iter().take(take) {
            let audio = read_f32(&item.join("audio_22050.f32"));
            let frames = engine::frames_from_model_rate(model.as_mut(), &audio).unwrap();
            let ours = pianola::decode::notes_from_frames(&frames, &params);
            let (_, reference) = read_notes(&item.join("notes.json"));
            let f1 = onset_f1(&ours, &reference);
            println!("{backend:?} {}: {} notes vs {} reference, onset F1 {f1:.4}", item.display(), ours.len(), reference.len());
            worst = worst.min(f1);
        }
        let bound = 0.99;
        println!("{backend:?}: worst onset F1 {worst:.4} (bound {bound})");
        assert!(worst >= bound, "{backend:?}: notes agree with basic-pitch at onset F1 {worst:.4} < {bound}");
    }
}

/// The whole engine from the WAV file. Our resampler is rubato, the reference's librosa/soxr: the
/// model-rate audio differs by ~0.4% RMS, and notes near the thresholds flip, so this bound is looser;
/// the printout is the honest end-to-end figure.
#[test]
fn engine_from_wav_stays_close_to_basic_pitch() {
    let devset = devset_dir();
    let params = DecodeParams::default();
    for (backend, _) in backends().into_iter().filter(|(b, _)| *b != Backend::TractExact) {
        let mut model = model::load(backend).unwrap();
        let (mut sum, mut worst, mut n) = (0.0f64, 1.0f64, 0);
        for item in fixture_items() {
            let id = item.file_name().unwrap();
            let clip = pianola::audio_file::read(&devset.join(id).join("audio.wav")).unwrap();
            let ours = engine::transcribe_clip(model.as_mut(), &clip, &params).unwrap();
            let (_, reference) = read_notes(&item.join("notes.json"));
            let f1 = onset_f1(&ours.notes, &reference);
            println!("{backend:?} {} from wav: onset F1 {f1:.4}", id.to_string_lossy());
            sum += f1;
            worst = worst.min(f1);
            n += 1;
        }
        println!("{backend:?} from wav: mean onset F1 {:.4}, worst {worst:.4}", sum / n as f64);
        assert!(worst >= 0.9 && sum / n as f64 >= 0.97, "{backend:?}: end-to-end notes drifted from basic-pitch");
    }
}

#[test]
fn corrupt_model_is_a_clear_error() {
    let mut bytes = model::BASIC_PITCH_ONNX.to_vec();
    bytes.truncate(bytes.len() / 3);
    for (backend, _) in backends() {
        let err = model::load_from_bytes(backend, &bytes).err().expect("a truncated model must not load");
        assert!(err.to_string().contains("could not be loaded"), "{err}");
        assert!(model::load_from_bytes(backend, b"not a model").is_err());
    }
}

#[test]
fn embedded_model_is_the_pinned_one() {
    use sha2::{Digest, Sha256};
    let digest: String = Sha256::digest(model::BASIC_PITCH_ONNX).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(digest, model::BASIC_PITCH_SHA256);
}

/// Live mode runs a shorter window (`model::graph`). The resized graph must compute exactly what the
/// original computes at the full length, and a 130-frame window must give the frames a 2 s window
/// gives at the same place, up to the model's window-wide log normalisation (what that costs in
/// notes is measured by the live bench's onset_f1).
#[test]
fn resized_windows_agree_with_the_full_window() {
    use pianola::model::{window_samples, WindowFrames, FRAMES_PER_WINDOW, MIN_WINDOW_FRAMES, WINDOW_SAMPLES};
    use pianola::notes::N_KEYS;
    let item = fixture_items().into_iter().find(|p| p.to_string_lossy().contains("mix")).unwrap();
    let audio = read_f32(&item.join("audio_22050.f32"));
    let resized_full = model::graph::with_window_frames(model::BASIC_PITCH_ONNX, FRAMES_PER_WINDOW).unwrap();
    let live_backends: Vec<(Backend, f32)> = backends().into_iter().filter(|(b, _)| *b != Backend::TractExact).collect();
    for (backend, _) in live_backends {
        let mut original = model::load(backend).unwrap();
        let mut resized = model::load_from_bytes(backend, &resized_full).unwrap();
        let (mut worst_same, mut onset_diff, mut onset_n, mut worst_short) = (0.0f32, 0.0f64, 0usize, 0.0f32);
        let (mut full, mut same, mut short) = (WindowFrames::default(), WindowFrames::default(), WindowFrames::default());
        // Windows across the song, each ending at `end`.
        for end in (WINDOW_SAMPLES..audio.len()).step_by(WINDOW_SAMPLES / 2 + 1000) {
            let window = &audio[end - WINDOW_SAMPLES..end];
            original.run_window(window, &mut full).unwrap();
            resized.run_window(window, &mut same).unwrap();
            worst_same = worst_same.max(max_abs_diff(&full.note, &same.note)).max(max_abs_diff(&full.onset, &same.onset));
            original.run_window(&audio[end - window_samples(MIN_WINDOW_FRAMES)..end], &mut short).unwrap();
            assert_eq!(short.n_frames(), MIN_WINDOW_FRAMES);
            // Short frame i is full frame i + 42. Compare where Live commits: >= 4 frames of right
            // context, and away from the short window's left edge.
            let shift = FRAMES_PER_WINDOW - MIN_WINDOW_FRAMES;
            for i in 40..MIN_WINDOW_FRAMES - 4 {
                for k in 0..N_KEYS {
                    let d = (short.onset[i * N_KEYS + k] - full.onset[(i + shift) * N_KEYS + k]).abs();
                    worst_short = worst_short.max(d).max((short.note[i * N_KEYS + k] - full.note[(i + shift) * N_KEYS + k]).abs());
                    onset_diff += d as f64;
                    onset_n += 1;
                }
            }
        }
        let mean = onset_diff / onset_n as f64;
        println!("{backend:?}: resized graph at 172 frames max diff {worst_same:.2e}; 130-frame window vs 2 s: max {worst_short:.3}, mean onset {mean:.2e}");
        assert!(worst_same <= 1e-6, "{backend:?}: the resized graph changed the full window's outputs by {worst_same:e}");
        // Measured: mean 1.3e-3, a few posteriors near a threshold up to 0.46 (tract and ort); a
        // frame off the grid would be ~10x the mean.
        assert!(mean <= 2e-3 && worst_short <= 0.6, "{backend:?}: a 130-frame window drifts from the 2 s window (mean {mean:e}, max {worst_short})");
        // One frame short of the minimum, or off the hop grid: an error, not a panic.
        for len in [window_samples(MIN_WINDOW_FRAMES) - 256, WINDOW_SAMPLES - 100] {
            assert!(original.run_window(&audio[..len], &mut short).is_err(), "{backend:?}: {len} samples");
        }
    }
}

/// Live mode end to end on the real model: the plugin's backend and Live settings streaming songs in
/// small pieces, against the offline engine on the same audio. The causal decoder runs on both the
/// streamed frames and the offline frames, so what is compared is the streaming (right context 4,
/// the 130-frame window). Measured (ort, two mixes, 16 s): onset F1 0.774 with the 130-frame window,
/// 0.768 with the 2 s one; recall of the offline decoder's notes 0.74-0.79. (With 8 frames of right
/// context both reach 0.86, at 46 ms more latency. Against the truth Live scores as well as offline:
/// onset_f1 0.639 vs 0.604 over the dev set, `cargo bench --bench live`.)
#[test]
fn live_stream_finds_the_offline_notes() {
    use pianola::live::{config_for, LiveDecoder, LiveStream};
    use pianola::model::{FRAMES_PER_WINDOW, MIN_WINDOW_FRAMES};
    let backend = model::plugin_backend();
    let params = DecodeParams { melodia_trick: false, ..DecodeParams::default() };
    let mut model = model::load(backend).unwrap();
    let items: Vec<_> = fixture_items().into_iter().filter(|p| p.to_string_lossy().contains("mix")).take(2).collect();
    let mut mean_f1 = vec![];
    for window_frames in [FRAMES_PER_WINDOW, MIN_WINDOW_FRAMES] {
        let config = pianola::live::LiveConfig { window_frames, ..config_for(backend.name(), false) };
        let (mut sum, mut worst) = (0.0f64, 1.0f64);
        for item in &items {
            let mut audio = read_f32(&item.join("audio_22050.f32"));
            audio.truncate(22050 * 16);
            let offline_frames = engine::frames_from_model_rate(model.as_mut(), &audio).unwrap();
            let offline = pianola::decode::notes_from_frames(&offline_frames, &params);
            // The same causal decoder on the offline frames, at the reference's own frame times
            // (its windows hold 171.27 hops of audio per 172 frames).
            let mut on_offline = LiveDecoder::new(&params, config.lookahead_frames, false);
            on_offline.push_frames(&offline_frames, 0);
            on_offline.finish();
            let on_offline: Vec<_> = on_offline
                .notes()
                .iter()
                .map(|n| {
                    let mut note = n.to_note(offline_frames.n_frames());
                    note.start_s = pianola::decode::frame_to_seconds(n.start);
                    note
                })
                .collect();
            let mut stream = LiveStream::new(&config);
            let mut decoder = LiveDecoder::new(&params, config.lookahead_frames, false);
            for piece in audio.chunks(256) {
                let before = stream.frames().n_frames();
                stream.push(model.as_mut(), piece).unwrap();
                decoder.push_frames(stream.frames(), before);
            }
            let before = stream.frames().n_frames();
            stream.finish(model.as_mut()).unwrap();
            decoder.push_frames(stream.frames(), before);
            decoder.finish();
            let frames_seen = decoder.frames_seen();
            let live: Vec<_> = decoder.notes().iter().map(|n| n.to_note(frames_seen)).collect();
            let f1 = onset_f1(&live, &on_offline);
            let recall = recall_of(&offline, &live);
            println!(
                "{backend:?} window {window_frames} {}: streamed {} notes, causal decoder on offline frames {}, onset F1 {f1:.3}; offline decoder {} notes, recall {recall:.3}",
                item.display(),
                live.len(),
                on_offline.len(),
                offline.len()
            );
            sum += f1;
            worst = worst.min(f1).min(recall);
        }
        let mean = sum / items.len() as f64;
        println!("{backend:?} window {window_frames}: mean onset F1 {mean:.3}, worst F1 or recall {worst:.3}");
        assert!(worst >= 0.7, "{backend:?} window {window_frames}: Live notes drifted from the offline notes ({worst:.3})");
        mean_f1.push(mean);
    }
    assert!(mean_f1[1] >= mean_f1[0] - 0.02, "the 130-frame window costs notes: onset F1 {:.3} against {:.3}", mean_f1[1], mean_f1[0]);
}

/// Share of `reference` notes with a note of `est` at the same pitch within 50 ms.
fn recall_of(reference: &[pianola::notes::Note], est: &[pianola::notes::Note]) -> f64 {
    let hits = reference.iter().filter(|r| est.iter().any(|e| e.pitch == r.pitch && (e.start_s - r.start_s).abs() <= 0.05)).count();
    hits as f64 / reference.len().max(1) as f64
}
