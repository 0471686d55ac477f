//! Latency and the host's life cycle, through the plugin's own audio core: Live notes land on the
//! song's beats in a host that compensates the reported latency (Ardour's convention: the position
//! is where the output lands, the input is read that far ahead), the pass-through audio is delayed
//! by exactly that latency, a mode change asks for a restart instead of changing the latency while
//! running, and `deactivate()` returns at once while the worker is mid-segment without losing what
//! was captured.

use crate::rig::{self, check_balanced, check_clicks_captured, click_at, click_key, Clicks, Rig, Sleepy, CLICK_TOL_SECONDS};
use pianola::params::Mode;
use std::time::{Duration, Instant};

const SR: f64 = 48000.0;
const TEMPO: f64 = 120.0;

fn samples_per_beat() -> f64 {
    SR * 60.0 / TEMPO
}

/// Live mode: the reported latency is the live pipeline's; the output audio is the input delayed by
/// it, so a click read at beat `b + latency` comes out when the position says `b`; and the note-ons
/// land on the clicks' beats with their keys, with no latency left over. A plugin that delays its
/// notes by the latency a second time (or not at all) fails here by ~0.6 beats.
#[test]
fn live_notes_land_on_the_beat_in_a_compensating_host() {
    let mut rig = Rig::new(Box::new(Clicks::default()));
    rig.set_mode(Mode::Live);
    // Offline: the writer waits for the worker, so every note is known in time on any machine.
    let latency = rig.activate(SR as f32, true);
    assert_eq!(latency, (pianola::worker::live_latency_seconds(false) * SR).round() as u32);
    assert!(latency > 0);
    rig.record_output = true;
    let blocks = rig::run(0.0, 24.0, TEMPO, SR, &mut rig::varying_sizes(31));
    rig.play(&blocks, 2, &mut click_at);
    check_balanced(&rig.events, "live");
    assert_eq!(rig.error(), None);

    // The audio: a click on beat b (read ahead by the latency) is in the output at beat b.
    let spb = samples_per_beat();
    for b in 2..23 {
        let at = (b as f64 * spb).round() as usize;
        let level = rig::LEVELS[b % 4];
        assert!((rig.output[at + 1] - level).abs() < 1e-6, "the click of beat {b} is not at its beat in the output");
        assert!(rig.output[at.saturating_sub(2)].abs() < 1e-6, "something before the click of beat {b}");
    }

    // The notes: on the clicks' beats (within the model's frame timing), each click's key.
    let tol = CLICK_TOL_SECONDS * TEMPO / 60.0 + 1.0 / 16.0;
    let mut hit = vec![false; 24];
    for e in rig.events.iter().filter(|e| e.on) {
        let beat = e.beat.expect("a position");
        let b = beat.round();
        assert!((beat - b).abs() <= tol, "a Live note-on at beat {beat:.3}, {:+.3} beats off the nearest click", beat - b);
        if e.key == click_key(b as i64) && (0.0..24.0).contains(&b) {
            hit[b as usize] = true;
        }
    }
    // The cover itself is on the song's beats (the arranger's grid is the song's), not shifted by
    // the latency: the input was stamped where the host reads it.
    for c in rig.cover() {
        let off = c.start_beat - c.start_beat.round();
        assert!(off.abs() <= tol, "a Live cover note at beat {:.3}, {off:+.3} beats off the grid", c.start_beat);
    }
    // The first beats come before the live pipeline has its first window.
    let heard = hit[4..23].iter().filter(|h| **h).count();
    assert!(heard >= 17, "Live played only {heard} of the 19 clicks of beats 4..23 on their beats: {hit:?}");
}

/// Switching Capture -> Live while playing never changes the latency from the audio thread: the
/// block asks the host for a restart once, and the latency comes with the next activation.
#[test]
fn a_mode_change_asks_for_a_restart() {
    let mut rig = Rig::new(Box::new(Clicks::default()));
    assert_eq!(rig.activate(SR as f32, true), 0, "Capture mode has no latency");
    rig.play(&rig::run(0.0, 4.0, TEMPO, SR, &mut || 512), 2, &mut click_at);
    rig.set_mode(Mode::Live);
    rig.play(&rig::run(4.0, 8.0, TEMPO, SR, &mut || 512), 2, &mut click_at);
    assert_eq!(rig.restarts_asked, 1, "one restart request for one change");
    assert_eq!(rig.latency(), 0, "the latency does not change while active");
    rig.restart_if_asked();
    let live = (pianola::worker::live_latency_seconds(false) * SR).round() as u32;
    assert_eq!(rig.latency(), live, "the restart reports the Live latency");
    rig.play(&rig::run(8.0, 12.0, TEMPO, SR, &mut || 512), 2, &mut click_at);
    assert_eq!(rig.restarts_asked, 1, "no further request once the host was told");
    check_balanced(&rig.events, "mode change");
}

/// In Live mode, "Melody from: Voice" runs the voice's Live settings, which need more latency than
/// the note model's: switching to it while playing asks for one restart, after which the voice's
/// latency is reported; switching back asks again.
#[test]
fn a_melody_source_change_in_live_asks_for_a_restart() {
    use nice_plug::params::InternalParamMut;
    use pianola::params::MelodyParam;
    let mut rig = Rig::new(Box::new(Clicks::default()));
    rig.set_mode(Mode::Live);
    let (notes, voice) = [false, true].map(|v| (pianola::worker::live_latency_seconds(v) * SR).round() as u32).into();
    assert!(voice > notes, "the voice's Live latency {voice} is not above the note model's {notes}");
    assert_eq!(rig.activate(SR as f32, true), notes, "Auto: the note model's Live latency");
    rig.play(&rig::run(0.0, 4.0, TEMPO, SR, &mut || 512), 2, &mut click_at);
    unsafe { rig.params.melody._internal_set_plain_value(MelodyParam::Voice) };
    rig.play(&rig::run(4.0, 8.0, TEMPO, SR, &mut || 512), 2, &mut click_at);
    assert_eq!(rig.restarts_asked, 1, "one restart request for one change");
    assert_eq!(rig.latency(), notes, "the latency does not change while active");
    rig.restart_if_asked();
    assert_eq!(rig.latency(), voice, "the restart reports the voice's Live latency");
    unsafe { rig.params.melody._internal_set_plain_value(MelodyParam::Auto) };
    rig.play(&rig::run(8.0, 12.0, TEMPO, SR, &mut || 512), 2, &mut click_at);
    assert_eq!(rig.restarts_asked, 2, "switching back asks again");
    rig.restart_if_asked();
    assert_eq!(rig.latency(), notes);
    check_balanced(&rig.events, "melody source change");
}

/// `deactivate()` returns at once while the worker is far behind, in the middle of a segment (a
/// slow model: 250 ms a window); the next activation still gets the whole capture.
#[test]
fn deactivate_returns_at_once_and_keeps_the_capture() {
    let slow = Sleepy { inner: Clicks::default(), delay: Duration::from_millis(250) };
    let mut rig = Rig::new(Box::new(slow));
    rig.activate(SR as f32, false);
    rig.wait_settled(Duration::from_secs(10));
    // 10 s of clicks in real time (the ring holds them); the worker needs ~2 s for them.
    rig.play(&rig::run(0.0, 20.0, TEMPO, SR, &mut || 512), 2, &mut click_at);
    std::thread::sleep(Duration::from_millis(300));
    let backlog = rig.shared.backlog_samples();
    assert!(backlog > SR as u64, "the worker should still be behind (backlog {backlog} samples)");
    let t = Instant::now();
    rig.deactivate();
    let took = t.elapsed();
    assert!(took < Duration::from_millis(50), "deactivate() took {took:?} with the worker mid-segment");
    // A host re-activates (a buffer size change): the activation does not wait either.
    let t = Instant::now();
    rig.activate(SR as f32, false);
    assert!(t.elapsed() < Duration::from_millis(50), "activate() took {:?}", t.elapsed());
    rig.wait_settled(Duration::from_secs(30));
    let captured = check_clicks_captured(&rig.params, CLICK_TOL_SECONDS * TEMPO / 60.0, "capture finished after deactivate");
    assert!(captured.len() >= 18, "{} of the 20 clicks captured before the deactivate were kept", captured.len());
}
