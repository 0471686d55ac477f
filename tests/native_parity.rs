//! The native engine (`model::native`) against ONNX Runtime and tract on dev-set songs:
//! - frames: every window of each song through `engine::frames_from_model_rate` on each backend;
//!   max abs difference of note, onset and contour <= 1e-4 against ONNX Runtime and tract;
//! - notes decoded from native frames against those from ONNX Runtime's: onset F1 >= 0.99 per song;
//! - Live's shorter windows (130 and 151 frames) agree the same way, and a window allocates nothing.
//!
//! ```text
//!     python3 ../shared/eval/make_devset.py target/devset
//!     cargo test --release --features onnxruntime --test native_parity -- --nocapture
//! ```

mod common;
use common::*;
use pianola::decode::DecodeParams;
use pianola::engine;
use pianola::model::{self, Backend, WindowFrames};
use pianola::notes::FrameOutputs;

/// Counts this thread's allocations while `COUNTING` is set (the no-allocation test). With
/// `assert_process_allocs`, nice-plug's allocator is the global one and its checker is used instead.
#[cfg(not(feature = "assert_process_allocs"))]
mod counting {
    pub struct CountingAlloc;
    thread_local! {
        pub static COUNTING: Cell<bool> = const { Cell::new(false) };
        pub static ALLOCS: Cell<usize> = const { Cell::new(0) };
    }
    unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
        unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
            if COUNTING.with(|c| c.get()) {
                ALLOCS.with(|a| a.set(a.get() + 1));
            }
            unsafe { std::alloc::System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }
    }
    #[global_allocator]
    static GLOBAL: CountingAlloc = CountingAlloc;
}

/// Runs `f`, failing the test if it allocates.
fn assert_no_alloc(f: impl FnOnce()) {
    #[cfg(feature = "assert_process_allocs")]
    nice_assert_no_alloc::assert_no_alloc(f); // aborts the test binary on an allocation
    #[cfg(not(feature = "assert_process_allocs"))]
    {
        counting::COUNTING.with(|c| c.set(true));
        f();
        counting::COUNTING.with(|c| c.set(false));
        assert_eq!(counting::ALLOCS.with(|a| a.get()), 0, "running a window allocated");
    }
}

const TOLERANCE: f32 = 1e-4;

/// The reference backends: ONNX Runtime when built with it, and tract.
fn references() -> Vec<Backend> {
    vec![
        #[cfg(feature = "onnxruntime")]
        Backend::Ort,
        Backend::Tract,
    ]
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "frame counts differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Dev-set songs (two mixes, two vocal lines) at the model's rate, 20 s of each.
fn songs() -> Vec<(String, Vec<f32>)> {
    let dir = devset_dir();
    let items = items_with(&dir, "audio.wav");
    let pick: Vec<_> = items
        .iter()
        .filter(|p| p.to_string_lossy().ends_with("-mix"))
        .take(2)
        .chain(items.iter().filter(|p| p.to_string_lossy().ends_with("-vocal")).take(2))
        .collect();
    assert!(pick.len() == 4, "the dev set at {} has too few songs", dir.display());
    pick.into_iter()
        .map(|item| {
            let clip = pianola::audio_file::read(&item.join("audio.wav")).unwrap();
            let mono = pianola::audio_file::downmix(&clip.interleaved, clip.channels);
            let mut audio = pianola::resample::to_model_rate(&mono, clip.sample_rate).unwrap();
            audio.truncate(22050 * 20);
            (item.file_name().unwrap().to_string_lossy().into_owned(), audio)
        })
        .collect()
}

fn diffs(a: &FrameOutputs, b: &FrameOutputs) -> [f32; 3] {
    [max_abs_diff(&a.note, &b.note), max_abs_diff(&a.onset, &b.onset), max_abs_diff(&a.contour, &b.contour)]
}

#[test]
fn native_frames_and_notes_match_the_reference_backends() {
    let songs = songs();
    let mut native = model::load(Backend::Native).unwrap();
    assert_eq!(native.backend(), "native");
    let params = DecodeParams::default();
    let ours: Vec<FrameOutputs> = songs.iter().map(|(_, audio)| engine::frames_from_model_rate(native.as_mut(), audio).unwrap()).collect();
    for backend in references() {
        let mut reference = model::load(backend).unwrap();
        let (mut worst, mut worst_f1) = ([0.0f32; 3], 1.0f64);
        for ((name, audio), ours) in songs.iter().zip(&ours) {
            let theirs = engine::frames_from_model_rate(reference.as_mut(), audio).unwrap();
            let d = diffs(ours, &theirs);
            let (our_notes, their_notes) = (pianola::decode::notes_from_frames(ours, &params), pianola::decode::notes_from_frames(&theirs, &params));
            let f1 = onset_f1(&our_notes, &their_notes);
            println!(
                "native vs {}, {name}: max abs diff note {:.2e} onset {:.2e} contour {:.2e}; {} notes vs {}, onset F1 {f1:.4}",
                backend.name(),
                d[0],
                d[1],
                d[2],
                our_notes.len(),
                their_notes.len()
            );
            for k in 0..3 {
                worst[k] = worst[k].max(d[k]);
            }
            worst_f1 = worst_f1.min(f1);
        }
        println!(
            "native vs {}: worst max abs diff note {:.2e} onset {:.2e} contour {:.2e}, worst onset F1 {worst_f1:.4}",
            backend.name(),
            worst[0],
            worst[1],
            worst[2]
        );
        assert!(worst.iter().all(|&d| d <= TOLERANCE), "native drifts from {}: {worst:?} > {TOLERANCE}", backend.name());
        assert!(worst_f1 >= 0.99, "native's notes differ from {}'s: onset F1 {worst_f1:.4}", backend.name());
    }
}

/// Live's windows: 130 frames (what Live runs) and an odd length in between, against the
/// reference on the same samples; lengths off the hop grid are errors, not panics.
#[test]
fn shorter_windows_match_the_reference_backends() {
    let (_, audio) = songs().into_iter().next().unwrap();
    let mut native = model::load(Backend::Native).unwrap();
    for backend in references() {
        let mut reference = model::load(backend).unwrap();
        for frames in [model::MIN_WINDOW_FRAMES, 151, model::FRAMES_PER_WINDOW] {
            let len = model::window_samples(frames);
            let (mut ours, mut theirs) = (WindowFrames::default(), WindowFrames::default());
            let mut worst = 0.0f32;
            for start in [0, 30_000, 100_000] {
                let window = &audio[start..start + len];
                native.run_window(window, &mut ours).unwrap();
                reference.run_window(window, &mut theirs).unwrap();
                assert_eq!(ours.n_frames(), frames);
                worst = worst
                    .max(max_abs_diff(&ours.note, &theirs.note))
                    .max(max_abs_diff(&ours.onset, &theirs.onset))
                    .max(max_abs_diff(&ours.contour, &theirs.contour));
            }
            println!("native vs {} on {frames}-frame windows: max abs diff {worst:.2e}", backend.name());
            assert!(worst <= TOLERANCE, "{frames}-frame windows: native vs {}: {worst:e}", backend.name());
        }
    }
    let mut out = WindowFrames::default();
    for len in [model::window_samples(model::MIN_WINDOW_FRAMES) - 256, model::WINDOW_SAMPLES - 100, model::WINDOW_SAMPLES + 256, 0] {
        assert!(native.run_window(&audio[..len], &mut out).is_err(), "{len} samples");
    }
}

/// Silence (the log-CQT's max is 0: the graph's div_no_nan) gives the reference's frames too.
#[test]
fn silence_matches_the_reference() {
    let silence = vec![0.0f32; model::WINDOW_SAMPLES];
    let mut native = model::load(Backend::Native).unwrap();
    let (mut ours, mut theirs) = (WindowFrames::default(), WindowFrames::default());
    native.run_window(&silence, &mut ours).unwrap();
    for backend in references() {
        model::load(backend).unwrap().run_window(&silence, &mut theirs).unwrap();
        let worst = max_abs_diff(&ours.note, &theirs.note).max(max_abs_diff(&ours.onset, &theirs.onset)).max(max_abs_diff(&ours.contour, &theirs.contour));
        assert!(worst <= TOLERANCE, "silence: native vs {}: {worst:e}", backend.name());
    }
}

#[test]
fn a_window_allocates_nothing() {
    let mut native = model::load(Backend::Native).unwrap();
    let window: Vec<f32> = (0..model::WINDOW_SAMPLES).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
    let mut out = WindowFrames::default();
    native.run_window(&window, &mut out).unwrap();
    let short = &window[..model::window_samples(model::MIN_WINDOW_FRAMES)];
    let mut short_out = WindowFrames::with_frames(model::MIN_WINDOW_FRAMES);
    assert_no_alloc(|| {
        native.run_window(&window, &mut out).unwrap();
        native.run_window(short, &mut short_out).unwrap();
    });
}

/// The dev set's songs at the model's rate (every item, whole; `STREAM_PARITY_ITEMS=N`: the first N).
fn all_songs() -> Vec<(String, Vec<f32>)> {
    let dir = devset_dir();
    let limit: usize = std::env::var("STREAM_PARITY_ITEMS").ok().and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
    items_with(&dir, "audio.wav")
        .into_iter()
        .take(limit)
        .map(|item| {
            let clip = pianola::audio_file::read(&item.join("audio.wav")).unwrap();
            let mono = pianola::audio_file::downmix(&clip.interleaved, clip.channels);
            (item.file_name().unwrap().to_string_lossy().into_owned(), pianola::resample::to_model_rate(&mono, clip.sample_rate).unwrap())
        })
        .collect()
}

/// Offline frames on the Live grid (frame `j` centred on sample `j * 256`): the reference's 2 s
/// windows with 15 frames dropped at each side, started on the grid (the reference's own windows
/// advance 141.27 hops per 142 frames, so its frames drift off the grid by ~0.7 frame per window).
fn offline_on_the_grid(model: &mut dyn model::NoteModel, audio: &[f32]) -> FrameOutputs {
    use pianola::model::{FFT_HOP, FRAMES_PER_WINDOW, WINDOW_SAMPLES};
    let (drop, kept) = (15usize, FRAMES_PER_WINDOW - 30);
    let total = engine::frames_for_samples(audio.len());
    let mut out = FrameOutputs::default();
    let mut window = vec![0.0f32; WINDOW_SAMPLES];
    let mut frames = WindowFrames::default();
    let mut first = 0usize;
    while first < total {
        let start = first as i64 * FFT_HOP as i64 - (drop * FFT_HOP) as i64;
        for (k, x) in window.iter_mut().enumerate() {
            let i = start + k as i64;
            *x = if i >= 0 && (i as usize) < audio.len() { audio[i as usize] } else { 0.0 };
        }
        model.run_window(&window, &mut frames).unwrap();
        frames.append_to(drop..drop + kept, &mut out);
        first += kept;
    }
    out.truncate_frames(total);
    out
}

/// Frames of Live mode's stream for `audio` pushed in 256-sample pieces.
fn live_frames(model: &mut dyn model::NoteModel, config: &pianola::live::LiveConfig, audio: &[f32]) -> (FrameOutputs, bool) {
    let mut stream = pianola::live::LiveStream::new(config);
    for piece in audio.chunks(256) {
        stream.push(model, piece).unwrap();
    }
    stream.finish(model).unwrap();
    (stream.frames().clone(), stream.is_streaming())
}

/// Notes decoded offline from frames on the Live grid, timed on that grid.
fn notes_on_the_grid(frames: &FrameOutputs) -> Vec<pianola::notes::Note> {
    let mut notes = pianola::decode::notes_from_frames(frames, &DecodeParams::default());
    for n in &mut notes {
        for t in [&mut n.start_s, &mut n.end_s] {
            let guess = (*t / pianola::model::FRAME_SECONDS).round() as usize;
            let frame = (guess.saturating_sub(2)..guess + 40).find(|&i| pianola::decode::frame_to_seconds(i) >= *t - 1e-9).unwrap_or(guess);
            *t = frame as f64 * pianola::model::FRAME_SECONDS;
        }
    }
    notes
}

/// [max abs, mean abs] differences of note, onset and contour.
fn frame_diffs(a: &FrameOutputs, b: &FrameOutputs) -> [[f64; 2]; 3] {
    let n = a.n_frames().min(b.n_frames());
    let d = |x: &[f32], y: &[f32], w: usize| {
        let (x, y) = (&x[..n * w], &y[..n * w]);
        let max = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max) as f64;
        let mean = x.iter().zip(y).map(|(p, q)| (p - q).abs() as f64).sum::<f64>() / (n * w).max(1) as f64;
        [max, mean]
    };
    [d(&a.note, &b.note, 88), d(&a.onset, &b.onset, 88), d(&a.contour, &b.contour, 264)]
}

/// Live mode's streaming native engine against offline: per dev-set item, the posteriors' max and
/// mean abs difference from offline frames on the Live grid, and the onset F1 of the notes the
/// offline decoder finds in them against the offline transcription's (the reference windowing);
/// Live's windowed path (whole 1.5 s windows, what ONNX Runtime and tract run) beside it.
/// `STREAM_PARITY_SETTINGS="refresh:norm,..."` measures other streaming settings.
#[test]
fn streaming_frames_against_offline() {
    use pianola::live::{config_for, LiveConfig};
    let songs = all_songs();
    let mut native = model::load(Backend::Native).unwrap();
    let plugin = config_for("native", false);
    let mut settings: Vec<(String, LiveConfig)> = vec![("windowed".into(), LiveConfig { streaming: false, ..plugin })];
    let custom = std::env::var("STREAM_PARITY_SETTINGS").unwrap_or_default();
    if custom.is_empty() {
        settings.push((format!("streaming r{} n{}", plugin.refresh_frames, plugin.norm_frames), plugin));
    }
    for s in custom.split(',').filter(|s| !s.is_empty()) {
        let (r, n) = s.split_once(':').expect("refresh:norm");
        let c = LiveConfig { refresh_frames: r.parse().unwrap(), norm_frames: n.parse().unwrap(), ..plugin };
        settings.push((format!("streaming r{r} n{n}"), c));
    }
    let params = DecodeParams::default();
    // Per setting: sums of mean diffs, worst max diffs, notes matched / live / offline.
    let mut totals = vec![([0.0f64; 3], [0.0f64; 3], 0usize, 0usize, 0usize); settings.len()];
    for (name, audio) in &songs {
        let offline_notes = pianola::decode::notes_from_frames(&engine::frames_from_model_rate(native.as_mut(), audio).unwrap(), &params);
        let grid = offline_on_the_grid(native.as_mut(), audio);
        for (k, (label, config)) in settings.iter().enumerate() {
            let (frames, streamed) = live_frames(native.as_mut(), config, audio);
            assert_eq!(streamed, config.streaming, "{label}: the native engine streams when asked");
            assert_eq!(frames.n_frames(), grid.n_frames());
            let d = frame_diffs(&frames, &grid);
            let notes = notes_on_the_grid(&frames);
            let f1 = onset_f1(&notes, &offline_notes);
            let hits = (f1 * (notes.len() + offline_notes.len()) as f64 / 2.0).round() as usize;
            println!(
                "{name} {label}: max/mean abs diff note {:.3}/{:.4} onset {:.3}/{:.4} contour {:.3}/{:.4}; {} notes vs offline {}, onset F1 {f1:.3}",
                d[0][0],
                d[0][1],
                d[1][0],
                d[1][1],
                d[2][0],
                d[2][1],
                notes.len(),
                offline_notes.len()
            );
            let t = &mut totals[k];
            for (i, [max, mean]) in d.iter().enumerate() {
                t.0[i] += mean / songs.len() as f64;
                t.1[i] = t.1[i].max(*max);
            }
            t.2 += hits;
            t.3 += notes.len();
            t.4 += offline_notes.len();
        }
    }
    let mut f1s = vec![];
    for ((label, _), t) in settings.iter().zip(&totals) {
        let f1 = 2.0 * t.2 as f64 / (t.3 + t.4).max(1) as f64;
        println!(
            "{label}, {} items: mean abs diff note {:.4} onset {:.4} contour {:.4} (worst max {:.3} {:.3} {:.3}); onset F1 vs offline {f1:.3} ({} notes, offline {})",
            songs.len(),
            t.0[0],
            t.0[1],
            t.0[2],
            t.1[0],
            t.1[1],
            t.1[2],
            t.3,
            t.4
        );
        f1s.push(f1);
    }
    // The streaming engine keeps as close to offline as whole windows do.
    for (i, ((label, _), t)) in settings.iter().zip(&totals).enumerate().skip(1) {
        assert!(t.0.iter().all(|&m| m < 0.02), "{label}: mean abs diff {:?}", t.0);
        assert!(f1s[i] >= 0.8 && f1s[i] >= f1s[0] - 0.03, "{label}: onset F1 {:.3} against the windowed path's {:.3}", f1s[i], f1s[0]);
    }
}

/// A streaming run allocates nothing (the worker runs one per hop).
#[test]
fn a_streaming_run_allocates_nothing() {
    let native = model::load(Backend::Native).unwrap();
    let config = pianola::live::LiveConfig { hop_frames: 2, ..pianola::live::config_for("native", false) };
    let mut streamer = native.streamer(&config.stream_settings()).expect("the native engine streams");
    let audio: Vec<f32> = (0..22050 * 3).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
    let mut out = WindowFrames::with_frames(config.hop_frames);
    let (hop, right) = (config.hop_frames, config.right_context_frames);
    let mut m = 0;
    for (k, piece) in audio.chunks(256).enumerate() {
        streamer.push_audio(piece);
        let received = (k + 1) * 256;
        while ((m + 1) * hop - 1 + right) * 256 + 68 <= received {
            let mut run = || streamer.run((m + 1) * hop - 1 + right, m * hop..(m + 1) * hop, &mut out).unwrap();
            // The first runs size nothing either, but the first seconds are where buffers settle.
            if k > 22050 / 256 {
                assert_no_alloc(run);
            } else {
                run();
            }
            m += 1;
        }
    }
    assert!(m > 100);
}
