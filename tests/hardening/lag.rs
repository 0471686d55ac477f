//! The worker falling behind: a model that takes longer per window than the audio it covers (a slow
//! machine, a stalled thread). In real time the audio thread never waits: when the ring is full the
//! block is dropped and counted; the backlog is visible in `CaptureShared` (now and its worst); the
//! worker catches up once the audio stops, and a second pass records the beats that were dropped.
//!
//! The largest lag of the real model, at the real pace (32 s of a dev-set song, ignored in CI):
//!     cargo test --release --features onnxruntime,assert_process_allocs,standalone --test hardening lag:: -- --ignored --nocapture

use crate::rig::{self, check_clicks_captured, click_at, Clicks, Rig, Sleepy, CLICK_TOL_SECONDS};
use pianola::ring::SAMPLE_RING;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[test]
fn a_slow_worker_never_holds_up_the_audio_thread_and_catches_up() {
    let (sr, tempo) = (22050.0, 120.0);
    // 50 ms per 1.64 s window would keep up at real speed; this host runs far faster than real time.
    let mut rig = Rig::new(Box::new(Sleepy { inner: Clicks::default(), delay: Duration::from_millis(50) }));
    rig.activate(sr as f32, false);
    let blocks = rig::run(0.0, 240.0, tempo, sr, &mut || 512);
    let started = Instant::now();
    rig.play(&blocks, 2, &mut click_at);
    let pushing = started.elapsed();
    let backlog_now = rig.shared.backlog_samples();
    let worst = rig.shared.max_backlog_samples.load(Ordering::Relaxed);
    let dropped = rig.shared.dropped_samples.load(Ordering::Relaxed);
    eprintln!(
        "2 min of audio pushed in {:.2} s; slowest block {:?}; {} blocks ({dropped} samples) dropped; backlog {:.1} s, worst {:.1} s",
        pushing.as_secs_f64(),
        rig.slowest_block,
        rig.dropped_blocks,
        backlog_now as f64 / sr,
        worst as f64 / sr
    );
    let gaps = rig.drop_gaps;
    assert!(rig.dropped_blocks > 0, "the ring never filled: the test did not make the worker fall behind");
    // The backlog counts the ring and the block the worker holds (popped, not yet handled).
    assert!(backlog_now > 0 && worst as usize <= SAMPLE_RING + 512, "the backlog is visible: now {backlog_now}, worst {worst}");
    assert!(worst as f64 > 5.0 * sr, "the worst backlog is recorded ({worst} samples)");
    // Pushing never waited on the worker: 73 windows of 50 ms would take 3.6 s alone.
    assert!(pushing < Duration::from_millis(2500), "pushing took {pushing:?}");
    assert!(rig.slowest_block < Duration::from_millis(100), "a block took {:?}", rig.slowest_block);

    // It catches up, and what it has is on the beat.
    rig.wait_idle(Duration::from_secs(60));
    assert_eq!(rig.shared.backlog_samples(), 0);
    assert_eq!(rig.error(), None);
    let tol = CLICK_TOL_SECONDS * tempo / 60.0;
    let first = check_clicks_captured(&rig.params, tol, "first pass").len();
    assert!(first > 20 && first < 240, "{first} clicks captured in the first pass");
    // A second pass, at a pace the worker keeps up with, records only the beats still missing.
    rig.deactivate();
    rig.activate(sr as f32, true);
    rig.wait_settled(Duration::from_secs(60));
    rig.play(&rig::run(0.0, 240.0, tempo, sr, &mut || 512), 2, &mut click_at);
    rig.wait_idle(Duration::from_secs(60));
    let mut beats: Vec<i64> = check_clicks_captured(&rig.params, tol, "second pass").iter().map(|c| c.0).collect();
    beats.sort();
    beats.dedup();
    // A beat at the very edge of a dropped gap may be heard by both passes or neither: allow 2 per gap.
    let missing = 240 - beats.len();
    eprintln!("first pass {first} clicks, after the second pass {} of 240", beats.len());
    assert!(missing <= 2 * gaps, "{missing} beats still missing after {gaps} gaps");
}

/// The real model at the real pace: how far behind the audio the worker gets (the figure for the
/// issue's closing note). Ignored in CI: it takes the song's 32 s.
#[test]
#[ignore = "real-time: takes the song's length"]
fn the_real_models_lag_at_real_pace() {
    let song = crate::common::devset_dir().join("bach_bwv1.6-mix/audio.wav");
    let clip = pianola::audio_file::read(&song).unwrap();
    let sr = clip.sample_rate as f64;
    let mono = clip.mono();
    let mut rig = Rig::new(pianola::model::load(pianola::model::Backend::Tract).unwrap());
    rig.activate(sr as f32, false);
    let bpm = 116.0;
    let blocks = rig::run(0.0, mono.len() as f64 / sr * bpm / 60.0, bpm, sr, &mut || 512);
    let started = Instant::now();
    let spb = sr * 60.0 / bpm;
    let mut worst_now = 0u64;
    for (k, b) in blocks.iter().enumerate() {
        let at = (b.beat.unwrap() * spb).round() as usize;
        let ch = &mono[at..(at + b.len).min(mono.len())];
        let mut block = ch.to_vec();
        block.resize(b.len, 0.0);
        rig.process(&[&block[..]], b);
        worst_now = worst_now.max(rig.shared.backlog_samples());
        // Real pace: block k ends at (k + 1) * 512 samples.
        let due = Duration::from_secs_f64((at + b.len) as f64 / sr);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let _ = k;
    }
    rig.stop(512);
    rig.wait_idle(Duration::from_secs(60));
    let worst = rig.shared.max_backlog_samples.load(Ordering::Relaxed);
    eprintln!(
        "real model, real pace: worst worker lag {:.0} ms (seen by the worker), {:.0} ms (seen by the audio thread); {} blocks dropped; {} notes",
        worst as f64 / sr * 1000.0,
        worst_now as f64 / sr * 1000.0,
        rig.dropped_blocks,
        rig.params.capture.get().notes.len()
    );
    assert_eq!(rig.dropped_blocks, 0);
}
