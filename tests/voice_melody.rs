//! A sung melody the repo makes (`common/voice.rs`: vibrato, glides between legato notes, breaths
//! between phrases, at 44.1 kHz like a file) through the voice tracker (`pianola::pitch`:
//! resampling, SwiftF0, notes from the pitch curve): note F1 against the sung melody, onsets within
//! 50 ms, pitch class exact (what `pianola cover --voice voice` and the plugin do before the note
//! model's onsets time the notes; the stand-in here has none). Also sung 20 and 40 cents flat and sharp: the tuning found is within 5
//! cents of it and the notes are the same.
//!
//! ```text
//!     cargo test --release --test voice_melody -- --nocapture
//! ```

#[path = "common/voice.rs"]
mod voice;

use pianola::notes::Note;
use pianola::pitch::{choose_melody, track, PitchTracker, VoiceMode};

/// Note F1: onsets within 50 ms, pitch class equal; each true note matched once.
fn note_f1(est: &[Note], truth: &[voice::Sung]) -> (f64, usize) {
    let mut used = vec![false; est.len()];
    let mut hit = 0;
    for t in truth {
        let best = est
            .iter()
            .enumerate()
            .filter(|(i, e)| !used[*i] && (e.pitch % 12 == t.pitch % 12) && (e.start_s - t.start_s).abs() <= 0.05)
            .min_by(|a, b| (a.1.start_s - t.start_s).abs().total_cmp(&(b.1.start_s - t.start_s).abs()));
        if let Some((i, _)) = best {
            used[i] = true;
            hit += 1;
        }
    }
    let (p, r) = (hit as f64 / est.len().max(1) as f64, hit as f64 / truth.len().max(1) as f64);
    (if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 }, hit)
}

#[test]
fn a_sung_melody_is_recovered_in_tune_and_detuned() {
    let mut tracker = PitchTracker::load().expect("the pitch model loads");
    let truth = voice::melody(57, 10);
    let seconds = truth.last().map_or(1.0, |n| n.start_s + n.dur_s) + 0.5;
    for cents in [0.0, -40.0, -20.0, 20.0, 40.0] {
        let detuned: Vec<voice::Sung> = truth.clone();
        let audio = voice::sing_detuned(&detuned, 44100, seconds, cents);
        let t = std::time::Instant::now();
        let curve = track(&mut tracker, &audio, 44100).unwrap();
        let line = choose_melody(VoiceMode::Voice, &curve, &[]);
        let notes = line.sung.expect("a voice, as asked");
        eprintln!("  {:.1} s of audio in {:.2} s", seconds, t.elapsed().as_secs_f64());
        let (f1, hit) = note_f1(&notes, &truth);
        eprintln!(
            "sung {cents:+} cents: tuning found {:+.1} cents, {} notes for {} sung, {hit} matched, note F1 {f1:.3}",
            line.tuning_cents,
            notes.len(),
            truth.len()
        );
        assert!((line.tuning_cents - cents).abs() <= 5.0, "sung {cents:+} cents, tuning found {:+.1}", line.tuning_cents);
        assert!(f1 >= 0.9, "sung {cents:+} cents: note F1 {f1:.3} < 0.9: {:?}", notes.iter().map(|n| (n.start_s, n.pitch)).collect::<Vec<_>>());
    }
}
