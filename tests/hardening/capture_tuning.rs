//! A recording tuned between the piano's keys, captured through the plugin's own core with the real
//! note model: Capture reads its tuning, hears each captured stretch again in tune, and keeps the
//! notes `pianola cover` hears in the recording (the CLI hears every file in tune; issue #14's
//! tuning, in the plugin).

use crate::common::devset_dir;
use crate::rig::{self, Rig};
use pianola::model::{self, Backend};
use std::time::Duration;

const SONG: &str = "bach_bwv1.6-mix";
const SONG_BPM: f64 = 116.0;
const SR: f64 = 44100.0;
const SECONDS: f64 = 16.0;

/// Captures the first SECONDS of the song played `cents` sharp (sped up by that interval, as a tape
/// or an old record runs fast), the host's tempo following it. Returns the captured notes as
/// (onset in the recording's own seconds, MIDI pitch) and the tuning the panel was given.
fn capture(cents: f64) -> (Vec<(f64, u8)>, Option<f64>) {
    let wav = devset_dir().join(SONG).join("audio.wav");
    assert!(wav.exists(), "{} is missing: build the dev set with `python3 ../shared/eval/make_devset.py DIR` and set PIANOLA_DEVSET=DIR", wav.display());
    let mono = pianola::audio_file::read(&wav).unwrap().mono();
    let r = 2f64.powf(cents / 1200.0);
    let mut rig = Rig::new(model::load(Backend::Native).unwrap());
    rig.activate(SR as f32, true);
    rig.wait_settled(Duration::from_secs(60));
    let tempo = SONG_BPM * r;
    let spb = 60.0 / tempo;
    let blocks = rig::run(0.0, SECONDS / r / spb, tempo, SR, &mut || 512);
    rig.play(&blocks, 2, &mut |beat, _| {
        // Played r times faster: the song's time at this host time.
        let x = beat * spb * r * SR;
        let (i, f) = (x.floor() as usize, (x - x.floor()) as f32);
        match (mono.get(i), mono.get(i + 1)) {
            (Some(a), Some(b)) => a + (b - a) * f,
            _ => 0.0,
        }
    });
    rig.wait_idle(Duration::from_secs(120));
    assert_eq!(rig.error(), None);
    let notes = rig.params.capture.get().notes.iter().map(|n| (n.0 * spb * r, n.2)).collect();
    let cents = *rig.status.tuning_cents.lock().unwrap();
    (notes, cents)
}

/// Onset F1 (50 ms, exact pitch) of `est` against `reference`.
fn onset_f1(reference: &[(f64, u8)], est: &[(f64, u8)]) -> f64 {
    let mut used = vec![false; est.len()];
    let mut hit = 0;
    for &(t, p) in reference {
        if let Some(i) = (0..est.len()).find(|&i| !used[i] && est[i].1 == p && (est[i].0 - t).abs() <= 0.05) {
            used[i] = true;
            hit += 1;
        }
    }
    let (prec, rec) = (hit as f64 / est.len().max(1) as f64, hit as f64 / reference.len().max(1) as f64);
    if hit == 0 {
        0.0
    } else {
        2.0 * prec * rec / (prec + rec)
    }
}

/// The notes the CLI hears in the song's first SECONDS (in tune, `tuning::transcribe_in_tune`).
fn heard_by_the_cli() -> Vec<(f64, u8)> {
    let clip = pianola::audio_file::read(&devset_dir().join(SONG).join("audio.wav")).unwrap();
    let frames = (SECONDS * clip.sample_rate as f64) as usize * clip.channels;
    let clip = pianola::audio_file::AudioClip { interleaved: clip.interleaved[..frames].to_vec(), ..clip };
    let (t, _) = pianola::tuning::transcribe_in_tune(&mut [model::load(Backend::Native).unwrap()], &clip, &pianola::decode::DecodeParams::default()).unwrap();
    t.notes.iter().map(|n| (n.start_s, n.pitch)).collect()
}

#[test]
fn a_detuned_recording_is_captured_in_tune() {
    let cli = heard_by_the_cli();
    let (in_tune, read) = capture(0.0);
    assert!(in_tune.len() > 40, "{} notes captured in tune", in_tune.len());
    // The song's own tuning, which the shifts add to (a few cents: heard as it is).
    let own = read.expect("the capture's tuning is read");
    eprintln!("as recorded: {} notes, tuning read {own:+.1} cents, onset F1 against the CLI {:.3}", in_tune.len(), onset_f1(&cli, &in_tune));
    for cents in [-40.0, 25.0] {
        let (notes, read) = capture(cents);
        let read = read.expect("the capture's tuning is read");
        let f1 = onset_f1(&cli, &notes);
        eprintln!(
            "{cents:+} cents: {} notes, tuning read {read:+.1} cents, onset F1 against the CLI {f1:.3}, against the capture as recorded {:.3}",
            notes.len(),
            onset_f1(&in_tune, &notes)
        );
        assert!((read - own - cents).abs() <= 5.0, "played {cents:+} cents off a song read at {own:+.1}, read {read:+.1}");
        assert!(f1 >= 0.9, "played {cents:+} cents off: onset F1 {f1:.3} against the notes the CLI hears");
    }
}
