//! Audio row: any sample rate a host may run at, block sizes from 1 to 8192 changing every block,
//! mono, stereo and six channels, and samples no one should send (noise at full scale, clipping far
//! past 1.0, NaN, infinities, denormals). The capture must stay on the beat and the worker alive.

use crate::rig::{self, check_balanced, check_clicks_captured, check_on_beat, click_at, Clicks, Rig, Rng, CLICK_TOL_SECONDS};
use std::time::Duration;

const TEMPO: f64 = 120.0;

/// Captures 16 beats of clicks (offline), then plays them back in real time; both with block sizes
/// varying from 1 to 8192.
fn capture_and_play(sample_rate: f64, channels: usize, seed: u64) {
    let what = format!("{sample_rate} Hz, {channels} ch");
    let mut rig = Rig::new(Box::new(Clicks::default()));
    rig.activate(sample_rate as f32, true);
    let blocks = rig::run(0.0, 16.0, TEMPO, sample_rate, &mut rig::varying_sizes(seed));
    rig.play(&blocks, channels, &mut click_at);
    rig.wait_idle(Duration::from_secs(30));
    assert_eq!(rig.error(), None, "{what}");
    let captured = check_clicks_captured(&rig.params, CLICK_TOL_SECONDS * TEMPO / 60.0, &what);
    let beats: Vec<i64> = captured.iter().map(|c| c.0).collect();
    assert_eq!(beats, (0..16).collect::<Vec<_>>(), "{what}: one note per click");

    // Playback in real time with other block sizes: every cover note once, on its sample.
    rig.deactivate();
    rig.activate(sample_rate as f32, false);
    rig.wait_settled(Duration::from_secs(60));
    let cover = rig.playing_cover();
    assert!(cover.len() >= 16, "{what}: cover of {} notes", cover.len());
    rig.events.clear();
    let blocks = rig::run(0.0, 16.0, TEMPO, sample_rate, &mut rig::varying_sizes(seed + 1));
    rig.play(&blocks, channels, &mut |_, _| 0.0);
    check_balanced(&rig.events, &what);
    let played = check_on_beat(&rig.events, &cover, &what);
    let edge = 0.5 / (sample_rate * 60.0 / TEMPO);
    let in_range = cover.iter().filter(|c| c.start_beat >= -edge && c.start_beat < 16.0 - edge).count();
    assert_eq!(played, in_range, "{what}: every cover note in the 16 beats plays once");
}

#[test]
fn every_rate_block_size_and_layout_stays_on_the_beat() {
    let rates = [8000.0, 11025.0, 22050.0, 32000.0, 44100.0, 48000.0, 88200.0, 96000.0, 176400.0, 192000.0];
    for (i, &sr) in rates.iter().enumerate() {
        capture_and_play(sr, [1, 2, 6][i % 3], 17 + i as u64);
    }
}

/// Signals nobody should send, each 4 beats long on its own stretch of the timeline, then clicks on
/// a later stretch: the worker reports no error and still captures the clicks on their beats.
fn hostile(rng: &mut Rng, kind: usize) -> f32 {
    match kind {
        0 => 0.0,        // silence
        1 => rng.unit(), // full-scale noise
        2 => {
            if rng.unit() > 0.0 {
                4.0
            } else {
                -4.0
            }
        } // clipping far past 1.0
        3 => [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.5][rng.below(4)], // NaN/Inf
        4 => f32::MIN_POSITIVE * 0.25 * rng.unit(), // denormals
        _ => {
            if rng.unit() > 0.0 {
                f32::MAX
            } else {
                -f32::MAX
            }
        } // the largest finite samples
    }
}

const KINDS: usize = 6;

#[test]
fn hostile_samples_leave_the_capture_working() {
    for channels in [1usize, 2, 6] {
        let what = format!("{channels} ch");
        let mut rig = Rig::new(Box::new(Clicks::default()));
        rig.activate(48000.0, true);
        let mut rng = Rng(99);
        // Each kind for 3.5 beats, half a beat of silence, then clicks for 4 beats in the same run
        // (one segment: the resampler and the model's window carry straight from the garbage into
        // the clicks). The silence is for the stand-in model, which hears a click only after 16 quiet
        // samples: noise running right up to the click hid it from the stand-in, not from the plugin.
        for kind in 0..KINDS {
            let from = 100.0 + 8.0 * kind as f64;
            let blocks = rig::run(from, from + 8.0, TEMPO, 48000.0, &mut rig::varying_sizes(kind as u64 + 5));
            rig.play(&blocks, channels, &mut |beat, tempo| match beat - from {
                x if x < 3.5 => hostile(&mut rng, kind),
                x if x < 4.0 => 0.0,
                _ => click_at(beat, tempo),
            });
        }
        rig.wait_idle(Duration::from_secs(30));
        assert_eq!(rig.error(), None, "{what}");
        let song = rig.params.capture.get();
        assert!(song.notes.iter().all(|n| n.0.is_finite() && n.1.is_finite() && n.3.is_finite() && n.4.is_finite()), "{what}: non-finite notes saved");
        let tol = CLICK_TOL_SECONDS * TEMPO / 60.0;
        for kind in 0..KINDS {
            for b in 0..4 {
                let beat = 100 + 8 * kind as i64 + 4 + b;
                let heard = song.notes.iter().any(|n| (n.0 - beat as f64).abs() <= tol && n.2 == rig::click_key(beat));
                assert!(heard, "{what}: the click on beat {beat} right after signal kind {kind} was not captured on its beat");
            }
        }
        // The cover of all that plays without a stuck note, with NaN coming in.
        rig.deactivate();
        rig.activate(48000.0, false);
        rig.wait_settled(Duration::from_secs(60));
        let cover = rig.playing_cover();
        rig.events.clear();
        rig.play(&rig::run(100.0, 148.0, TEMPO, 48000.0, &mut rig::varying_sizes(4)), channels, &mut |_, _| f32::NAN);
        check_balanced(&rig.events, &what);
        check_on_beat(&rig.events, &cover, &what);
    }
}

/// The same hostile signals through the real Basic Pitch network (tract): no error, no non-finite
/// value in what is saved, and a song captured after them on a fresh stretch of the timeline gives
/// exactly the notes a fresh instance captures from it alone.
#[test]
fn hostile_samples_through_the_real_model() {
    let song = crate::common::devset_dir().join("bach_bwv1.6-mix/audio.wav");
    let clip = pianola::audio_file::read(&song).unwrap();
    let sr = clip.sample_rate as f64;
    let bpm = 116.0;
    let excerpt: Vec<f32> = clip.mono()[..(12.0 * sr) as usize].to_vec();
    let capture_excerpt = |rig: &mut Rig, from: f64| {
        let blocks = rig::run(from, from + 12.0 * bpm / 60.0, bpm, sr, &mut rig::varying_sizes(8));
        let spb = sr * 60.0 / bpm;
        rig.play(&blocks, 2, &mut |beat, _| excerpt.get(((beat - from) * spb).round() as usize).copied().unwrap_or(0.0));
        rig.wait_idle(Duration::from_secs(120));
    };
    let model = || pianola::model::load(pianola::model::Backend::Tract).expect("the embedded model loads");

    let mut fresh = Rig::new(model());
    fresh.activate(sr as f32, true);
    capture_excerpt(&mut fresh, 400.0);
    let reference = fresh.params.capture.get().notes;
    assert!(reference.len() > 10, "the excerpt gives {} notes", reference.len());

    let mut rig = Rig::new(model());
    rig.activate(sr as f32, true);
    let mut rng = Rng(7);
    for kind in 0..KINDS {
        let from = 8.0 * kind as f64;
        let blocks = rig::run(from, from + 6.0, bpm, sr, &mut rig::varying_sizes(kind as u64));
        rig.play(&blocks, 2, &mut |_, _| hostile(&mut rng, kind));
    }
    rig.wait_idle(Duration::from_secs(120));
    assert_eq!(rig.error(), None);
    let garbage = rig.params.capture.get();
    assert!(garbage.notes.iter().all(|n| n.0.is_finite() && n.1.is_finite() && n.3.is_finite() && n.4.is_finite()), "non-finite notes saved");
    assert!(rig.cover().iter().all(|c| c.start_beat.is_finite() && c.end_beat.is_finite()));
    let before = garbage.notes.len();
    capture_excerpt(&mut rig, 400.0);
    let after: Vec<_> = rig.params.capture.get().notes[before..].to_vec();
    assert_eq!(after, reference, "the song after the garbage is heard as if alone");
}

/// Capture past the song's end: the host plays on over silence. After SILENCE_STOP_SECONDS of it,
/// Capture stops recording (the status says so); the first sound after it is recorded again.
#[test]
fn capture_stops_listening_over_the_silence_after_the_song_and_listens_again() {
    let sr = 44100.0;
    let mut rig = Rig::new(Box::new(Clicks::default()));
    rig.activate(sr as f32, true);
    // 8 beats of clicks (4 s at 120 bpm), 40 beats (20 s) of silence, 8 beats of clicks.
    let blocks = rig::run(0.0, 56.0, TEMPO, sr, &mut || 512);
    let (silent_from, sound_again) = (8.0, 48.0);
    let (half, rest): (Vec<_>, Vec<_>) = blocks.into_iter().partition(|b| b.beat.unwrap() < 40.0);
    let mut audio = |beat: f64, tempo: f64| if beat < silent_from || beat >= sound_again { click_at(beat, tempo) } else { 0.0 };
    // Up to beat 40, still in the silence: the worker rests.
    for b in half {
        let x: Vec<f32> = (0..b.len).map(|i| audio(b.beat.unwrap() + i as f64 * TEMPO / 60.0 / sr, TEMPO)).collect();
        rig.process(&[x], &b);
    }
    rig.wait_idle(Duration::from_secs(30));
    assert!(rig.status.resting_on_silence.load(std::sync::atomic::Ordering::Relaxed), "resting after 16 s of silence");
    assert!(!rig.status.recording.load(std::sync::atomic::Ordering::Acquire), "not recording the silence");
    rig.play(&rest, 1, &mut audio);
    rig.wait_idle(Duration::from_secs(30));
    assert!(!rig.status.resting_on_silence.load(std::sync::atomic::Ordering::Relaxed), "listening again");
    let song = rig.params.capture.get();
    let stop_beat = silent_from + pianola::status::SILENCE_STOP_SECONDS * TEMPO / 60.0;
    assert_eq!(song.covered.len(), 2, "two stretches captured: {:?}", song.covered);
    assert!((song.covered[0][1] - stop_beat).abs() < 1.0, "the first stops {} s into the silence: {:?}", pianola::status::SILENCE_STOP_SECONDS, song.covered);
    assert!((song.covered[1][0] - sound_again).abs() < 0.1, "the second starts with the sound: {:?}", song.covered);
    let beats: Vec<i64> = check_clicks_captured(&rig.params, CLICK_TOL_SECONDS * TEMPO / 60.0, "silence").iter().map(|c| c.0).collect();
    assert_eq!(beats, (0..8).chain(48..56).collect::<Vec<_>>(), "every click before and after the silence");
}
