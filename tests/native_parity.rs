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
