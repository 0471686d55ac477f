//! The recording's tuning (`pianola::tuning`): a dev-set song detuned by resampling (-40, -20,
//! +20, +40 cents) is found detuned by that much (within 5 cents of the shift, from the in-tune
//! song's own reading) and transcribed against its own tuning gives the in-tune song's notes (onset
//! F1 >= 0.95 at 50 ms, pitch exact, times scaled to match). Run: `cargo test --release --test tuning -- --nocapture`.

mod common;

use pianola::audio_file::{self, AudioClip};
use pianola::decode::DecodeParams;
use pianola::model::{self, Backend};
use pianola::notes::Note;
use pianola::tuning;

fn onset_f1(truth: &[Note], got: &[Note], tol: f64) -> f64 {
    let mut used = vec![false; got.len()];
    let mut hits = 0;
    for t in truth {
        if let Some(i) = (0..got.len())
            .filter(|&i| !used[i] && got[i].pitch == t.pitch && (got[i].start_s - t.start_s).abs() <= tol)
            .min_by(|&a, &b| (got[a].start_s - t.start_s).abs().total_cmp(&(got[b].start_s - t.start_s).abs()))
        {
            used[i] = true;
            hits += 1;
        }
    }
    let (p, r) = (hits as f64 / got.len().max(1) as f64, hits as f64 / truth.len().max(1) as f64);
    if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    }
}

#[test]
fn a_detuned_song_is_found_and_transcribed_in_tune() {
    let wav = common::devset_dir().join("bach_bwv1.6-mix").join("audio.wav");
    assert!(wav.exists(), "{} is missing: build the dev set with `python3 ../shared/eval/make_devset.py DIR` and set PIANOLA_DEVSET=DIR", wav.display());
    let clip = audio_file::read(&wav).unwrap();
    let mut models = vec![model::load(Backend::Tract).unwrap()];
    let params = DecodeParams::default();
    let (in_tune, report) = tuning::transcribe_in_tune(&mut models, &clip, &params).unwrap();
    let found = report.tuning.expect("a tuning").cents;
    eprintln!("in tune: {found:+.1} cents, {} notes", in_tune.notes.len());
    // FluidSynth's samples are not all exactly at A440: the song reads a few cents flat (and is
    // heard in tune like any other). The shifts are measured from that reading.
    assert!(found.abs() < 10.0, "the rendered song is near A440: found {found:+.1}");
    let mut problems = vec![];
    for cents in [-40.0, -20.0, 20.0, 40.0] {
        // Sharp by `cents`: the same samples played faster by that interval (a resampling).
        let r = 2f64.powf(cents / 1200.0);
        let detuned = AudioClip { sample_rate: (clip.sample_rate as f64 * r).round() as u32, ..clip.clone() };
        let (t, report) = tuning::transcribe_in_tune(&mut models, &detuned, &params).unwrap();
        let got = report.tuning.expect("a tuning").cents;
        // The in-tune notes at the detuned song's times.
        let scale = clip.sample_rate as f64 / detuned.sample_rate as f64;
        let truth: Vec<Note> = in_tune.notes.iter().map(|n| Note { start_s: n.start_s * scale, end_s: n.end_s * scale, ..*n }).collect();
        let f1 = onset_f1(&truth, &t.notes, 0.05);
        eprintln!("{cents:+} cents: found {got:+.1}, {} ({} notes), onset F1 {f1:.3} against the in-tune song", report.describe(), t.notes.len());
        // Without the correction, for comparison.
        let plain = pianola::engine::transcribe_clip_parallel(&mut models, &detuned, &params).unwrap();
        eprintln!("    uncorrected: onset F1 {:.3}", onset_f1(&truth, &plain.notes, 0.05));
        if (got - found - cents).abs() > 5.0 {
            problems.push(format!("{cents:+} cents: found {got:+.1} ({:+.1} from the in-tune reading)", got - found));
        }
        if !report.corrected {
            problems.push(format!("{cents:+} cents: not transcribed against it"));
        }
        if f1 < 0.95 {
            problems.push(format!("{cents:+} cents: onset F1 {f1:.3} against the in-tune song"));
        }
    }
    assert!(problems.is_empty(), "{problems:?}");
}
