//! Lifecycle row, on the real bundle in a CLAP host: activate/deactivate/reset many times at changing
//! rates and block sizes, two instances processing at once on two audio threads, instances created
//! and dropped while another one processes. After each, the cover still plays on its beats with
//! every note-on released. (The editor opened and closed while processing is its own row:
//! [`crate::editor`].)

use crate::host::{self, Instance};
use crate::rig::{check_balanced, check_on_beat, click_key};
use pianola::notes::CoverNote;
use pianola::params::{CapturedSong, PianolaParams, SavedNote};

/// The clicks project's tempo (also the editor row's).
pub const TEMPO: f64 = 120.0;

/// A saved project whose capture is a note on each of 32 beats (what the click track gives).
pub fn clicks_project() -> (Vec<u8>, Vec<CoverNote>) {
    let song = CapturedSong {
        notes: (0..32).map(|b| SavedNote(b as f64, b as f64 + 0.58, click_key(b), 0.9, 0.9)).collect(),
        covered: vec![[0.0, 32.0]],
        seconds_per_beat: 60.0 / TEMPO,
        ..CapturedSong::default()
    };
    let state = serde_json::json!({
        "version": "0.1.0",
        "params": {},
        "fields": { "capture": serde_json::to_string(&song).unwrap() },
    });
    let params = PianolaParams::default();
    params.capture.store(song);
    (host::state_bytes(&state), pianola::worker::saved_cover(&params).expect("the project arranges").notes)
}

/// Cover notes a run over beats `[from, to)` at `sr` plays.
pub fn notes_in(cover: &[CoverNote], from: f64, to: f64, sr: f64) -> usize {
    // The emitter plays a note at the sample its beat rounds to: a run owns [from, to) less half a sample.
    let edge = 0.5 / (sr * 60.0 / TEMPO);
    cover.iter().filter(|c| c.start_beat >= from - edge && c.start_beat < to - edge).count()
}

#[test]
fn activate_deactivate_reset_many_times() {
    let (project, cover) = clicks_project();
    let mut plugin = Instance::new();
    assert!(plugin.load_state(&project));
    let rates = [44100.0, 48000.0, 96000.0, 22050.0, 192000.0, 8000.0];
    for cycle in 0..30 {
        let sr = rates[cycle % rates.len()];
        let block = [1usize, 64, 512, 4096, 333][cycle % 5];
        if cycle % 7 == 3 || cycle % 7 == 4 {
            // Into and out of offline rendering (the render mode changes only while inactive).
            plugin.deactivate();
            plugin.set_offline(cycle % 7 == 3);
        }
        plugin.activate(sr, 4096);
        let mut player = plugin.player();
        // Half a beat (a block of 1: just a few samples), a reset in the middle of a note, more.
        // The middle is put on a whole sample: at 22050 Hz and 120 bpm 1.5 beats is 16537.5 samples,
        // and a run rounded up to 16538 reaches half a sample past `to`, onto the next beat's note.
        let spb = sr * 60.0 / TEMPO;
        let (from, to) = (cycle as f64 % 24.0, cycle as f64 % 24.0 + if block == 1 { 0.05 } else { 3.0 });
        let mid = from + ((to - from) / 2.0 * spb).floor() / spb;
        player.play(from, mid, TEMPO, block);
        player.reset();
        player.play(mid, to, TEMPO, block);
        let events = plugin.put_back(player);
        let what = format!("cycle {cycle}: {sr} Hz, blocks of {block}");
        check_balanced(&events, &what);
        let n = check_on_beat(&events, &cover, &what);
        let expected = notes_in(&cover, from, mid, sr) + notes_in(&cover, mid, to, sr);
        if n != expected {
            let ons: Vec<String> = events.iter().filter(|e| e.on).map(|e| format!("{}@{:.4}", e.key, e.beat.unwrap_or(f64::NAN))).collect();
            let notes: Vec<String> =
                cover.iter().filter(|c| c.start_beat >= from - 0.5 && c.start_beat < to + 0.5).map(|c| format!("{}@{:.4}", c.pitch, c.start_beat)).collect();
            panic!("{what}: {n} note-ons in beats {from}..{to} (reset at the middle), the cover has {expected}\n played: {ons:?}\n cover: {notes:?}");
        }
        if cycle % 3 == 0 {
            plugin.deactivate();
        }
    }
    // The state after all that is the project's.
    plugin.deactivate();
    let saved = host::state_json(&plugin.save_state());
    assert_eq!(saved["fields"]["capture"], host::state_json(&project)["fields"]["capture"]);
}

#[test]
fn two_instances_at_once_and_instances_coming_and_going() {
    let (project, cover) = clicks_project();
    let mut a = Instance::new();
    let mut b = Instance::new();
    assert!(a.load_state(&project) && b.load_state(&project));
    a.activate(48000.0, 1024);
    b.activate(44100.0, 1024);
    let (pa, pb) = (a.player(), b.player());
    // Both process on their own audio threads while this (main) thread makes, uses and drops others.
    let (pa, pb) = std::thread::scope(|s| {
        let ta = s.spawn(move || {
            let mut p = pa;
            for k in 0..6 {
                p.play(k as f64 * 4.0, k as f64 * 4.0 + 4.0, TEMPO, 256);
            }
            p
        });
        let tb = s.spawn(move || {
            let mut p = pb;
            for k in 0..6 {
                p.play(8.0 + k as f64 * 3.0, 8.0 + k as f64 * 3.0 + 3.0, TEMPO, 333);
            }
            p
        });
        for k in 0..6 {
            let mut c = Instance::new();
            assert!(c.load_state(&project));
            c.activate(96000.0, 512);
            let mut p = c.player();
            p.play(k as f64, k as f64 + 2.0, TEMPO, 512);
            let events = c.put_back(p);
            check_balanced(&events, "short-lived instance");
            check_on_beat(&events, &cover, "short-lived instance");
            if k % 2 == 0 {
                drop(c); // dropped while active
            } else {
                c.deactivate();
            }
        }
        (ta.join().expect("instance a"), tb.join().expect("instance b"))
    });
    let ea = a.put_back(pa);
    let eb = b.put_back(pb);
    check_balanced(&ea, "instance a");
    check_balanced(&eb, "instance b");
    let na = check_on_beat(&ea, &cover, "instance a");
    let nb = check_on_beat(&eb, &cover, "instance b");
    let want_a: usize = (0..6).map(|k| notes_in(&cover, k as f64 * 4.0, k as f64 * 4.0 + 4.0, 48000.0)).sum();
    let want_b: usize = (0..6).map(|k| notes_in(&cover, 8.0 + k as f64 * 3.0, 11.0 + k as f64 * 3.0, 44100.0)).sum();
    assert_eq!((na, nb), (want_a, want_b));
}

/// The 5.1 layout: offered, chosen by the host, audio passed through untouched on all six channels,
/// the cover played.
#[test]
fn a_six_channel_layout_passes_audio_and_plays() {
    let (project, cover) = clicks_project();
    let mut plugin = Instance::new();
    assert!(plugin.select_channels(6), "no 6-channel layout offered");
    assert!(plugin.load_state(&project));
    plugin.activate(48000.0, 512);
    let mut player = plugin.player();
    let spb = 48000.0 * 60.0 / TEMPO;
    let mut beat = 0.0;
    while beat < 8.0 {
        let n = 512;
        let base = player.processed;
        player.block_with(beat, TEMPO, true, n, &mut |c, i| ((base as usize + i) as f32 * 0.001 * (c + 1) as f32).sin());
        for (c, out) in player.last_output.iter().enumerate() {
            for (i, &x) in out.iter().enumerate() {
                assert_eq!(x, ((base as usize + i) as f32 * 0.001 * (c + 1) as f32).sin(), "channel {c} sample {i} changed");
            }
        }
        beat += n as f64 / spb;
    }
    player.block(beat, TEMPO, false, 512, 0.0);
    let events = plugin.put_back(player);
    check_balanced(&events, "6 channels");
    assert_eq!(check_on_beat(&events, &cover, "6 channels"), notes_in(&cover, 0.0, beat, 48000.0));
}
