//! A singer captured through the plugin's own core: in Capture mode, with "Melody from" on Auto,
//! the worker tells a lone voice from the audio and its captured notes are the sung line from the
//! voice tracker; on Mix they are the note model's (here the click stand-in, which hears only its
//! four click keys).

use crate::rig::{self, Clicks, Rig};
use crate::voice;
use nice_plug::params::InternalParamMut;
use pianola::params::MelodyParam;
use std::time::Duration;

const SR: f64 = 48000.0;
const TEMPO: f64 = 120.0;

fn capture(melody: MelodyParam) -> (Rig, Vec<voice::Sung>) {
    capture_sung(melody, 0.0)
}

/// The same, sung `cents` off A440.
fn capture_sung(melody: MelodyParam, cents: f64) -> (Rig, Vec<voice::Sung>) {
    let mut rig = Rig::new(Box::new(Clicks::default()));
    unsafe { rig.params.melody._internal_set_plain_value(melody) };
    rig.activate(SR as f32, true);
    rig.wait_settled(Duration::from_secs(30));
    let sung = voice::melody(57, 4);
    let seconds = sung.last().map_or(1.0, |n| n.start_s + n.dur_s) + 0.5;
    let audio = voice::sing_detuned(&sung, SR as u32, seconds, cents);
    let spb = 60.0 / TEMPO;
    rig.play(&rig::run(0.0, seconds / spb, TEMPO, SR, &mut || 512), 2, &mut |beat, _| audio.get((beat * spb * SR) as usize).copied().unwrap_or(0.0));
    rig.wait_idle(Duration::from_secs(60));
    (rig, sung)
}

#[test]
fn a_lone_voice_is_captured_from_the_voice_tracker() {
    let (rig, sung) = capture(MelodyParam::Auto);
    assert_eq!(rig.error(), None);
    let said = rig.status.melody.lock().unwrap().clone().unwrap_or_default();
    assert!(said.contains("a lone voice") && said.contains("voice tracker"), "{said}");
    let song = rig.params.capture.get();
    let spb = 60.0 / TEMPO;
    // Note F1 against the sung melody: onsets within 50 ms, pitch class equal.
    let mut used = vec![false; song.notes.len()];
    let mut hit = 0;
    for s in &sung {
        let found = song.notes.iter().enumerate().position(|(i, n)| !used[i] && n.2 % 12 == s.pitch % 12 && (n.0 * spb - s.start_s).abs() <= 0.05);
        if let Some(i) = found {
            used[i] = true;
            hit += 1;
        }
    }
    let (p, r) = (hit as f64 / song.notes.len().max(1) as f64, hit as f64 / sung.len() as f64);
    let f1 = if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
    eprintln!("captured {} notes for {} sung, {hit} on their onsets: F1 {f1:.3} ({said})", song.notes.len(), sung.len());
    assert!(f1 >= 0.9, "the captured voice: note F1 {f1:.3}: {:?}", song.notes.iter().map(|n| (n.0 * spb, n.2)).collect::<Vec<_>>());
    // The singer sings at A440: the tuning read from the kept audio says so (the panel keeps quiet).
    let cents = rig.status.tuning_cents.lock().unwrap().expect("the capture's tuning is read");
    eprintln!("tuning read from the capture: {cents:+.1} cents");
    assert!(cents.abs() < pianola::editor::state::TUNING_WARN_CENTS, "an in-tune singer read {cents:+.1} cents off");
}

#[test]
fn melody_from_the_mix_keeps_the_note_models_notes() {
    let (rig, _) = capture(MelodyParam::Mix);
    assert_eq!(rig.error(), None);
    assert!(rig.status.melody.lock().unwrap().is_none(), "no voice decision on Mix");
    // The stand-in model hears only its four click keys; the sung melody has other pitches.
    let notes = rig.params.capture.get().notes;
    assert!(notes.iter().all(|n| rig::KEYS.contains(&n.2)), "notes not from the note model: {:?}", notes.iter().map(|n| n.2).collect::<Vec<_>>());
}

#[test]
fn a_detuned_singers_tuning_is_read() {
    let (rig, _) = capture_sung(MelodyParam::Auto, 30.0);
    let cents = rig.status.tuning_cents.lock().unwrap().expect("the capture's tuning is read");
    assert!((cents - 30.0).abs() <= 5.0, "sung 30 cents sharp, read {cents:+.1}");
}
