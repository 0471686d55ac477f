//! Transport row: a host that gives no position, processes while stopped, seeks, loops every few
//! blocks, jumps and ramps its tempo, changes the meter, repeats or jumps its beat position, and
//! bounces offline. Invariants: no stuck note (every note-on has its note-off), no note-on where the
//! cover has no such note, no panic; and a capture made under such a transport is still on the beat.

use crate::rig::{self, check_balanced, check_clicks_captured, check_on_beat, click_at, Block, Clicks, Event, Rig, CLICK_TOL_SECONDS};
use pianola::notes::CoverNote;
use pianola::params::Mode;
use std::time::Duration;

const SR: f64 = 48000.0;
const TEMPO: f64 = 120.0;

/// A rig that has captured 64 beats of clicks, now active in real time (or offline).
fn captured(offline_playback: bool) -> (Rig, Vec<CoverNote>) {
    let mut rig = Rig::new(Box::new(Clicks::default()));
    rig.activate(SR as f32, true);
    rig.play(&rig::run(0.0, 64.0, TEMPO, SR, &mut rig::varying_sizes(1)), 2, &mut click_at);
    rig.wait_idle(Duration::from_secs(30));
    assert_eq!(check_clicks_captured(&rig.params, CLICK_TOL_SECONDS * TEMPO / 60.0, "capture").len(), 64);
    rig.deactivate();
    rig.activate(SR as f32, offline_playback);
    let cover = rig.playing_cover();
    assert!(cover.len() >= 64);
    rig.events.clear();
    (rig, cover)
}

fn silent(rig: &mut Rig, blocks: &[Block]) {
    rig.play(blocks, 2, &mut |_, _| 0.0);
}

fn ons(events: &[Event]) -> usize {
    events.iter().filter(|e| e.on).count()
}

fn notes_in(cover: &[CoverNote], from: f64, to: f64) -> usize {
    // The emitter plays a note at the sample its beat rounds to: a run owns [from, to) less half a sample.
    let edge = 0.5 / (SR * 60.0 / TEMPO);
    cover.iter().filter(|c| c.start_beat >= from - edge && c.start_beat < to - edge).count()
}

#[test]
fn no_transport_at_all_and_stopped_processing() {
    let (mut rig, cover) = captured(false);
    // No position, no tempo: nothing is played or recorded, whatever the playing flag says.
    let none = |playing| Block { playing, beat: None, tempo: None, time_sig: None, len: 512 };
    let tempo_only = Block { playing: true, beat: None, tempo: Some(TEMPO), time_sig: None, len: 512 };
    let beat_only = Block { playing: true, beat: Some(3.0), tempo: None, time_sig: Some((4, 4)), len: 512 };
    silent(&mut rig, &[none(true), none(false), tempo_only, beat_only, none(true)]);
    assert_eq!(ons(&rig.events), 0);
    // Stopped but processing, with a position that does not move (a host parked at beat 8).
    let parked: Vec<Block> = (0..200).map(|_| Block { playing: false, ..Block::playing(8.0, TEMPO, 333) }).collect();
    silent(&mut rig, &parked);
    assert_eq!(ons(&rig.events), 0);
    // Play, stop mid-note for a while, play on from where it stopped.
    let mut blocks = rig::run(0.0, 6.3, TEMPO, SR, &mut rig::varying_sizes(2));
    blocks.extend((0..50).map(|_| Block { playing: false, ..Block::playing(6.3, TEMPO, 256) }));
    blocks.extend(rig::run(6.3, 12.0, TEMPO, SR, &mut rig::varying_sizes(3)));
    silent(&mut rig, &blocks);
    check_balanced(&rig.events, "stop and go on");
    let n = check_on_beat(&rig.events, &cover, "stop and go on");
    assert_eq!(n, notes_in(&cover, 0.0, 12.0));
    assert_eq!(rig.error(), None);

    // A fresh instance with no transport records nothing.
    let mut fresh = Rig::new(Box::new(Clicks::default()));
    fresh.activate(SR as f32, true);
    fresh.play(&[none(true); 400], 1, &mut click_at);
    fresh.wait_idle(Duration::from_secs(5));
    assert_eq!(fresh.params.capture.get().notes.len(), 0);
}

#[test]
fn seeks_and_loops_every_few_blocks() {
    for offline in [false, true] {
        let (mut rig, cover) = captured(offline);
        let what = if offline { "offline" } else { "real time" };
        let mut blocks = vec![];
        let mut expected = 0;
        // Seeks back and forward.
        for (from, to) in [(0.0, 5.0), (12.0, 14.3), (2.5, 9.0), (40.0, 44.0), (1.0, 3.0), (63.0, 64.0)] {
            blocks.extend(rig::run(from, to, TEMPO, SR, &mut rig::varying_sizes(from as u64 + 11)));
            expected += notes_in(&cover, from, to);
        }
        // A loop of three 333-sample blocks, 40 times, the host cutting at the loop end.
        let loop_len = 3.0 * 333.0 / (SR * 60.0 / TEMPO);
        for _ in 0..40 {
            blocks.extend(rig::run(16.0 - loop_len / 2.0, 16.0 + loop_len / 2.0, TEMPO, SR, &mut || 333));
            expected += notes_in(&cover, 16.0 - loop_len / 2.0, 16.0 + loop_len / 2.0);
        }
        // A loop wrap inside a block the host does not cut: the next block just starts back at 20.
        for _ in 0..10 {
            blocks.extend(rig::run(20.0, 21.3, TEMPO, SR, &mut || 4096));
            expected += notes_in(&cover, 20.0, 21.3);
        }
        silent(&mut rig, &blocks);
        check_balanced(&rig.events, what);
        let n = check_on_beat(&rig.events, &cover, what);
        assert_eq!(n, expected, "{what}: every note of every run once");
        assert_eq!(rig.error(), None);
    }
}

#[test]
fn offline_bounce_equals_the_real_time_pass() {
    let script = |rig: &mut Rig| {
        let mut blocks = rig::run(0.0, 10.0, TEMPO, SR, &mut rig::varying_sizes(5));
        blocks.extend(rig::run(4.0, 30.0, TEMPO, SR, &mut rig::varying_sizes(6)));
        silent(rig, &blocks);
        rig.events.clone()
    };
    let (mut rt, _) = captured(false);
    let (mut bounce, _) = captured(true);
    let (a, b) = (script(&mut rt), script(&mut bounce));
    assert!(ons(&a) > 20);
    assert_eq!(a, b);
}

#[test]
fn tempo_jumps_ramps_and_meter_changes() {
    let (mut rig, cover) = captured(false);
    let mut sizes = rig::varying_sizes(9);
    let mut blocks = vec![];
    let mut beat = 0.0;
    let mut tempo = TEMPO;
    let mut k = 0usize;
    while beat < 60.0 {
        let len = sizes();
        // Ramp up 0.1% a block for a while, jump down by a third, ramp back, jump up; the meter
        // changes every 16 beats.
        tempo = match k % 600 {
            0..=199 => tempo * 1.001,
            200 => tempo * 0.66,
            201..=399 => tempo * 0.9995,
            400 => tempo * 1.4,
            _ => tempo,
        }
        .clamp(40.0, 300.0);
        let sig = [(4, 4), (3, 4), (7, 8), (6, 8)][(beat / 16.0) as usize % 4];
        blocks.push(Block { time_sig: Some(sig), ..Block::playing(beat, tempo, len) });
        beat += len as f64 * tempo / 60.0 / SR;
        k += 1;
    }
    silent(&mut rig, &blocks);
    check_balanced(&rig.events, "tempo");
    let n = check_on_beat(&rig.events, &cover, "tempo");
    assert!(n >= notes_in(&cover, 0.0, 60.0) * 9 / 10, "{n} notes played under a moving tempo");

    // Capture under the same moving transport: the click track follows the host's beats.
    let mut fresh = Rig::new(Box::new(Clicks::default()));
    fresh.activate(SR as f32, true);
    fresh.play(&blocks, 2, &mut click_at);
    fresh.wait_idle(Duration::from_secs(30));
    assert_eq!(fresh.error(), None);
    // The fastest tempo bounds the slack in beats.
    let fastest = blocks.iter().map(|b| b.tempo.unwrap()).fold(0.0, f64::max);
    let captured = check_clicks_captured(&fresh.params, CLICK_TOL_SECONDS * fastest / 60.0, "capture under tempo changes");
    // A jump in tempo ends a segment for the emitter only; the capture keeps every click.
    assert!(captured.len() >= 58, "{} of 60 clicks captured", captured.len());
}

#[test]
fn beat_positions_that_repeat_or_jump() {
    let (mut rig, cover) = captured(false);
    let mut blocks = vec![];
    // The position sticks for a few blocks, then jumps by odd amounts, forward and back.
    let mut beat = 0.0;
    for k in 0..2000usize {
        let len = 256;
        blocks.push(Block::playing(beat, TEMPO, len));
        let step = len as f64 * TEMPO / 60.0 / SR;
        beat += match k % 37 {
            0..=4 => 0.0, // repeats
            5 => 0.37,    // jumps ahead
            6 => -0.01,   // jitters back
            7 => -3.0,    // jumps back
            _ => step,
        };
        beat = beat.max(0.0);
    }
    silent(&mut rig, &blocks);
    check_balanced(&rig.events, "stuttering position");
    check_on_beat(&rig.events, &cover, "stuttering position");
    assert!(ons(&rig.events) > 0);

    // Garbage tempo and position values.
    let bad = [f64::NAN, f64::INFINITY, -120.0, 0.0, 1e-300, 1e9];
    let mut blocks = vec![];
    for (i, &x) in bad.iter().enumerate() {
        blocks.push(Block { tempo: Some(x), ..Block::playing(i as f64, TEMPO, 128) });
        blocks.push(Block { beat: Some(x), ..Block::playing(i as f64, TEMPO, 128) });
        blocks.push(Block::playing(i as f64 * 4.0, TEMPO, 128));
    }
    rig.events.clear();
    silent(&mut rig, &blocks);
    check_balanced(&rig.events, "garbage transport");
    assert_eq!(rig.error(), None);

    // Capture under a stuttering position: what is captured is still on the beat.
    let mut fresh = Rig::new(Box::new(Clicks::default()));
    fresh.activate(SR as f32, true);
    let stutter: Vec<Block> =
        rig::run(0.0, 32.0, TEMPO, SR, &mut || 512).into_iter().enumerate().flat_map(|(k, b)| if k % 50 == 7 { vec![b, b, b] } else { vec![b] }).collect();
    fresh.play(&stutter, 1, &mut click_at);
    fresh.wait_idle(Duration::from_secs(30));
    assert_eq!(fresh.error(), None);
    let captured = check_clicks_captured(&fresh.params, CLICK_TOL_SECONDS * TEMPO / 60.0, "capture with repeats");
    // Each repeat is a discontinuity that ends the segment, and a click within ~0.13 s of a segment's
    // end is too short to be a note: a stuttering host costs the notes next to each stutter
    // (measured: 22 of 32 with a stutter every beat). What is captured is on its beat.
    assert!(captured.len() >= 16, "{} of 32 clicks captured", captured.len());
}

#[test]
fn live_mode_under_seeks_and_loops() {
    let mut rig = Rig::new(Box::new(Clicks::default()));
    rig.set_mode(Mode::Live);
    rig.activate(SR as f32, true);
    let mut blocks = rig::run(0.0, 24.0, TEMPO, SR, &mut rig::varying_sizes(21));
    blocks.extend(rig::run(8.0, 12.0, TEMPO, SR, &mut rig::varying_sizes(22)));
    blocks.extend(rig::run(30.0, 40.0, TEMPO, SR, &mut rig::varying_sizes(23)));
    rig.play(&blocks, 2, &mut click_at);
    rig.wait_idle(Duration::from_secs(30));
    check_balanced(&rig.events, "live");
    assert_eq!(rig.error(), None);
    // Switching modes while playing releases what sounds.
    rig.set_mode(Mode::Capture);
    rig.play(&rig::run(40.0, 44.0, TEMPO, SR, &mut || 512), 2, &mut click_at);
    check_balanced(&rig.events, "live then capture");
}
