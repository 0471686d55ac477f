//! A song that does not follow the host's grid (an imported file at another tempo, or starting off
//! the grid), captured through the plugin's own core with the real note model: the panel says so,
//! and the cover's chords sit on the song's own beats, not the project's. A song on the grid is
//! left alone (no false alarm).

use crate::common::devset_dir;
use crate::rig::{self, Rig};
use nice_plug::params::InternalParamMut;
use pianola::model::{self, Backend};
use pianola::params::StyleParam;
use std::time::Duration;

const SONG: &str = "bach_bwv1.6-mix";
const SONG_BPM: f64 = 116.0;
const SR: f64 = 44100.0;
const SECONDS: f64 = 24.0;

struct Captured {
    rig: Rig,
    host_tempo: f64,
    delay_s: f64,
}

/// Captures the first SECONDS of the song, its sample 0 played `delay_s` after the host's beat 0,
/// with the host's transport at `host_tempo`.
fn capture(host_tempo: f64, delay_s: f64) -> Captured {
    let wav = devset_dir().join(SONG).join("audio.wav");
    assert!(wav.exists(), "{} is missing: build the dev set with `python3 ../shared/eval/make_devset.py DIR` and set PIANOLA_DEVSET=DIR", wav.display());
    let mono = pianola::audio_file::read(&wav).unwrap().mono();
    let mut rig = Rig::new(model::load(Backend::Tract).unwrap());
    // Block chords: the left hand strikes on the beat, so its onsets show where the beats are.
    unsafe { rig.params.style._internal_set_plain_value(StyleParam::Block) };
    rig.activate(SR as f32, true);
    rig.wait_settled(Duration::from_secs(60));
    let spb = 60.0 / host_tempo;
    let blocks = rig::run(0.0, (SECONDS + delay_s) / spb, host_tempo, SR, &mut || 512);
    rig.play(&blocks, 2, &mut |beat, _| {
        let t = beat * spb - delay_s;
        if t < 0.0 {
            0.0
        } else {
            mono.get((t * SR) as usize).copied().unwrap_or(0.0)
        }
    });
    rig.wait_idle(Duration::from_secs(120));
    assert_eq!(rig.error(), None);
    Captured { rig, host_tempo, delay_s }
}

/// Share of the cover's left-hand onsets within 0.08 beat of one of the song's beats (the audio's
/// beat `k` is at `delay_s + k * 60 / SONG_BPM` s).
fn on_song_beats(c: &Captured) -> f64 {
    let cover = c.rig.cover();
    let lh: Vec<f64> = cover.iter().filter(|n| n.hand == pianola::notes::Hand::Left).map(|n| n.start_beat).collect();
    assert!(lh.len() > 20, "a left hand of {} notes", lh.len());
    let song_beat = |host: f64| (host * 60.0 / c.host_tempo - c.delay_s) * SONG_BPM / 60.0;
    lh.iter().filter(|&&b| (song_beat(b) - song_beat(b).round()).abs() <= 0.08).count() as f64 / lh.len() as f64
}

fn said(c: &Captured) -> Option<String> {
    c.rig.status.song_grid.lock().unwrap().clone()
}

#[test]
fn a_song_off_the_grid_is_covered_on_its_own_beat_and_the_panel_says_so() {
    // On the grid: no alarm, chords on the beats.
    let on = capture(SONG_BPM, 0.0);
    assert_eq!(said(&on), None, "a song on the grid");
    let share = on_song_beats(&on);
    eprintln!("on the grid: {:.3} of left-hand onsets on the song's beats", share);
    assert!(share >= 0.9);
    drop(on);
    // Half a beat late, 0.37 s late, and a host 7% faster than the song.
    for (host_tempo, delay_s, what) in
        [(SONG_BPM, 0.5 * 60.0 / SONG_BPM, "half a beat late"), (SONG_BPM, 0.37, "0.37 s late"), (SONG_BPM * 1.07, 0.0, "a host 7% faster")]
    {
        let c = capture(host_tempo, delay_s);
        let words = said(&c).unwrap_or_else(|| panic!("{what}: the panel does not say the song is off the grid"));
        assert!(words.contains("does not follow the project's grid"), "{what}: {words}");
        let share = on_song_beats(&c);
        eprintln!("{what}: {share:.3} of left-hand onsets on the song's beats ({words})");
        assert!(share >= 0.9, "{what}: only {share:.3} of the chords on the song's beats");
    }
}

/// No false alarm: every dev-set song, captured on its own tempo and grid (as a producer sets up a
/// project for a song), follows the grid.
#[test]
fn every_dev_set_song_on_its_grid_follows_it() {
    use pianola::arrange::ArrangeInput;
    use pianola::params::{CapturedSong, SavedNote};
    let dir = devset_dir();
    let index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).expect("the dev set (see above)")).unwrap();
    let mut m = model::load(Backend::Tract).unwrap();
    for item in index.as_array().unwrap() {
        let id = item["id"].as_str().unwrap();
        let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(id).join("meta.json")).unwrap()).unwrap();
        let bpm = meta["bpm"].as_f64().unwrap();
        let clip = pianola::audio_file::read(&dir.join(id).join("audio.wav")).unwrap();
        let t = pianola::engine::transcribe_clip(m.as_mut(), &clip, &pianola::decode::DecodeParams::default()).unwrap();
        let grid = pianola::notes::BeatGrid::new(bpm);
        let input = ArrangeInput::from_transcription(&t.notes, Some(&t.frames), &grid);
        let song = CapturedSong { notes: input.notes.iter().map(SavedNote::from).collect(), seconds_per_beat: 60.0 / bpm, ..CapturedSong::default() };
        assert_eq!(song.song_grid(), None, "{id}: a song on its grid was taken to be off it");
    }
}
