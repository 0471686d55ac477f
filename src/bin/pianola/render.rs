//! `pianola cover SONG --render cover.wav`: the cover played on a piano SoundFont, so a cover can be
//! heard with no DAW. The synth is rustysynth (a well-kept pure-Rust SoundFont synth); nothing here
//! synthesises sound by hand. General MIDI program 0 (acoustic grand piano) on channel 1.

use anyhow::{bail, Context, Result};
use pianola::notes::{BeatGrid, Cover};
use rustysynth::{SoundFont, Synthesizer, SynthesizerSettings};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Sample rate of the rendered file.
pub const RATE: u32 = 44100;
/// Seconds rendered after the last note-off (the piano's release).
pub const TAIL_S: f64 = 2.0;
/// Where Debian's piano-capable General MIDI SoundFonts are (apt: fluid-soundfont-gm,
/// timgm6mb-soundfont), first found wins.
pub const DEBIAN_SOUNDFONTS: &[&str] = &["/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2"];

/// The SoundFont to use: `given`, else the first Debian one installed.
pub fn find_soundfont(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        if !p.is_file() {
            bail!("--soundfont {}: no such file", p.display());
        }
        return Ok(p.to_path_buf());
    }
    DEBIAN_SOUNDFONTS.iter().map(PathBuf::from).find(|p| p.is_file()).with_context(|| {
        format!(
            "--render needs a piano SoundFont: none of {} is installed (apt-get install fluid-soundfont-gm) and no --soundfont was given",
            DEBIAN_SOUNDFONTS.join(", ")
        )
    })
}

/// What happens at a sample; at one sample in this order: a repeated key restrikes, and a pedal
/// change lands after the old chord's keys went up and before the new one's are struck.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Act {
    KeyUp,
    PedalUp,
    KeyDown,
    PedalDown,
}

/// The cover, pedal included (beat 0 at 0 s, at `grid`'s tempo), as stereo samples at [`RATE`].
pub fn render(cover: &Cover, grid: &BeatGrid, soundfont: &Path) -> Result<(Vec<f32>, Vec<f32>)> {
    let mut file = std::fs::File::open(soundfont).with_context(|| format!("opening {}", soundfont.display()))?;
    let font = Arc::new(SoundFont::new(&mut file).map_err(|e| anyhow::anyhow!("{} is not a usable SoundFont: {e:?}", soundfont.display()))?);
    let mut synth = Synthesizer::new(&font, &SynthesizerSettings::new(RATE as i32)).map_err(|e| anyhow::anyhow!("starting the synth: {e:?}"))?;
    let at = |beat: f64| ((beat * grid.seconds_per_beat()).max(0.0) * RATE as f64).round() as usize;
    let mut events: Vec<(usize, Act, i32, i32)> = Vec::with_capacity(cover.notes.len() * 2 + cover.pedal.len() * 2);
    for n in cover.notes.iter().filter(|n| n.start_beat.is_finite() && n.end_beat > n.start_beat) {
        events.push((at(n.start_beat), Act::KeyDown, n.pitch as i32, n.velocity.clamp(1, 127) as i32));
        events.push((at(n.end_beat), Act::KeyUp, n.pitch as i32, 0));
    }
    for p in cover.pedal.iter().filter(|p| p.down_beat.is_finite() && p.up_beat > p.down_beat) {
        events.push((at(p.down_beat), Act::PedalDown, 0, 0));
        events.push((at(p.up_beat), Act::PedalUp, 0, 0));
    }
    events.sort_by_key(|e| (e.0, e.1));
    let end = events.last().map_or(0, |e| e.0) + (TAIL_S * RATE as f64) as usize;
    let (mut left, mut right) = (vec![0.0f32; end], vec![0.0f32; end]);
    let mut done = 0;
    for (sample, act, key, velocity) in events {
        if sample > done {
            synth.render(&mut left[done..sample], &mut right[done..sample]);
            done = sample;
        }
        match act {
            Act::KeyDown => synth.note_on(0, key, velocity),
            Act::KeyUp => synth.note_off(0, key),
            // Control change 64 (sustain): 127 down, 0 up.
            Act::PedalDown => synth.process_midi_message(0, 0xB0, 64, 127),
            Act::PedalUp => synth.process_midi_message(0, 0xB0, 64, 0),
        }
    }
    synth.render(&mut left[done..], &mut right[done..]);
    Ok((left, right))
}

/// Writes 16-bit stereo WAV, scaled down if the render peaks above -1 dBFS (dense covers can).
pub fn write_wav(path: &Path, left: &[f32], right: &[f32]) -> Result<()> {
    let peak = left.iter().chain(right).fold(0.0f32, |m, x| m.max(x.abs()));
    let gain = if peak > 0.89 { 0.89 / peak } else { 1.0 };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let spec = hound::WavSpec { channels: 2, sample_rate: RATE, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).with_context(|| format!("writing {}", path.display()))?;
    for (l, r) in left.iter().zip(right) {
        for x in [l, r] {
            w.write_sample((x * gain * 32767.0).round().clamp(-32768.0, 32767.0) as i16)?;
        }
    }
    w.finalize().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pianola::notes::{CoverNote, Hand, PedalSpan};

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    #[test]
    fn a_cover_sounds_where_its_notes_are_and_is_silent_before() {
        let Ok(font) = find_soundfont(None) else {
            panic!("no Debian SoundFont installed: apt-get install fluid-soundfont-gm (scripts/setup.sh installs it)");
        };
        let grid = BeatGrid::new(120.0);
        let note = |start: f64, pitch: u8| CoverNote { start_beat: start, end_beat: start + 0.5, pitch, velocity: 100, hand: Hand::Right, melody: true };
        // Two chords' worth of notes from beat 2 (1 s).
        let cover = Cover { notes: vec![note(2.0, 60), note(2.0, 64), note(3.0, 67)], pedal: vec![] };
        let (l, r) = render(&cover, &grid, &font).unwrap();
        assert_eq!(l.len(), r.len());
        assert_eq!(l.len(), ((1.75 + TAIL_S) * RATE as f64).round() as usize, "the last note-off plus the tail");
        let s = |t: f64| (t * RATE as f64) as usize;
        let before = rms(&l[..s(0.9)]);
        let during = rms(&l[s(1.0)..s(1.25)]);
        assert!(before < 1e-6, "sound before the first note: rms {before}");
        assert!(during > 0.01, "the notes are silent: rms {during}");
        let out = std::env::temp_dir().join(format!("pianola-render-{}.wav", std::process::id()));
        write_wav(&out, &l, &r).unwrap();
        let back = hound::WavReader::open(&out).unwrap();
        assert_eq!((back.spec().channels, back.spec().sample_rate), (2, RATE));
        let _ = std::fs::remove_file(&out);
    }

    #[test]
    fn the_pedal_holds_a_released_key_until_it_goes_up() {
        let font = find_soundfont(None).expect("a Debian SoundFont (scripts/setup.sh installs fluid-soundfont-gm)");
        let grid = BeatGrid::new(120.0);
        // A short C at beat 0; the pedal holds it from beat 0.125 to beat 4 (2 s).
        let notes = vec![CoverNote { start_beat: 0.0, end_beat: 0.5, pitch: 60, velocity: 100, hand: Hand::Right, melody: true }];
        let dry = render(&Cover { notes: notes.clone(), pedal: vec![] }, &grid, &font).unwrap().0;
        let wet = render(&Cover { notes, pedal: vec![PedalSpan { down_beat: 0.125, up_beat: 4.0 }] }, &grid, &font).unwrap().0;
        let s = |t: f64| (t * RATE as f64) as usize;
        let (dry_late, wet_late) = (rms(&dry[s(1.2)..s(1.6)]), rms(&wet[s(1.2)..s(1.6)]));
        assert!(wet_late > 4.0 * dry_late, "pedalled {wet_late} vs dry {dry_late} a second after the key went up");
        let wet_after = rms(&wet[s(2.6)..s(3.0)]);
        assert!(wet_after < 0.5 * wet_late, "the pedal went up at 2 s: {wet_after} vs {wet_late}");
    }

    #[test]
    fn a_missing_or_broken_soundfont_is_a_clear_error() {
        let e = find_soundfont(Some(Path::new("/nonexistent/piano.sf2"))).unwrap_err().to_string();
        assert!(e.contains("no such file"), "{e}");
        let junk = std::env::temp_dir().join(format!("pianola-junk-{}.sf2", std::process::id()));
        std::fs::write(&junk, b"RIFF not a soundfont").unwrap();
        let e = render(&Cover::default(), &BeatGrid::new(120.0), &junk).unwrap_err().to_string();
        assert!(e.contains("not a usable SoundFont"), "{e}");
        let _ = std::fs::remove_file(&junk);
    }
}
