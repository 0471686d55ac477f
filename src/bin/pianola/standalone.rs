//! `pianola standalone` (feature `standalone`): the plugin and its window as an application, on
//! JACK or ALSA, or nice-plug's silent dummy backend when neither is there (a running transport at
//! a fixed tempo, no audio). `--song FILE --bpm N` first transcribes a song through the same
//! engine and hands the plugin that capture, as if it had heard the song on a first pass: how the
//! screenshot test (scripts/editor_screenshot.sh) shows a real cover without a host.

use crate::cli::GridArgs;
use pianola::arrange::ArrangeInput;
use pianola::decode::DecodeParams;
use pianola::params::{CapturedSong, SavedNote};
use std::path::Path;

/// A song file as the plugin would have captured it at a constant `--bpm` with beat 0 at the
/// file's start: the transcription in beats, the meter, and the whole file marked as captured.
pub fn capture_from_file(path: &Path, grid: &GridArgs) -> anyhow::Result<CapturedSong> {
    use anyhow::Context;
    grid.validate()?;
    let bpm = grid.bpm.context("--song needs the song's --bpm")?;
    if grid.first_beat.is_some() {
        anyhow::bail!("--first-beat is for `pianola cover`: the plugin's capture starts on a beat");
    }
    let clip = pianola::audio_file::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut model = pianola::model::load(pianola::model::Backend::Tract)?;
    let t = pianola::engine::transcribe_clip(model.as_mut(), &clip, &DecodeParams::default())?;
    let grid = grid.grid_at(bpm);
    let input = ArrangeInput::from_transcription(&t.notes, Some(&t.frames), &grid);
    Ok(CapturedSong {
        notes: input.notes.iter().map(SavedNote::from).collect(),
        beats_per_bar: grid.beats_per_bar,
        first_downbeat_beat: grid.first_downbeat_beat.rem_euclid(grid.beats_per_bar as f64),
        seconds_per_beat: 60.0 / bpm,
        covered: vec![[0.0, grid.beat_at(t.duration_s)]],
        loudness: pianola::arrange::dynamics::measure_clip(&clip.mono(), clip.sample_rate, &grid),
        ..CapturedSong::default()
    })
}

#[cfg(feature = "standalone")]
#[derive(clap::Args)]
pub struct StandaloneArgs {
    /// A song to show as already captured (WAV, MP3, FLAC, OGG); needs --bpm, which is also the
    /// dummy backend's tempo unless --tempo is passed after --.
    #[arg(long, requires = "bpm")]
    song: Option<std::path::PathBuf>,
    #[command(flatten)]
    grid: GridArgs,
    /// nice-plug's standalone options after `--` (`pianola standalone -- --help` lists them).
    #[arg(last = true)]
    wrapper_args: Vec<String>,
}

#[cfg(feature = "standalone")]
pub fn run(args: StandaloneArgs) -> anyhow::Result<()> {
    let mut wrapper = vec!["pianola standalone".to_string()];
    if let (Some(song), Some(bpm)) = (&args.song, args.grid.bpm) {
        let capture = capture_from_file(song, &args.grid)?;
        eprintln!("{}: {} notes captured over {:.1} beats", song.display(), capture.notes.len(), capture.covered[0][1]);
        pianola::params::set_preloaded_capture(capture);
        if !args.wrapper_args.iter().any(|a| a == "--tempo") {
            wrapper.extend(["--tempo".to_string(), bpm.to_string(), "--timesig-num".to_string(), args.grid.beats_per_bar.to_string()]);
        }
    }
    wrapper.extend(args.wrapper_args);
    anyhow::ensure!(nice_plug::wrapper::standalone::nice_export_standalone_with_args::<pianola::plugin::Pianola, _>(wrapper), "the standalone wrapper failed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pianola::arrange::{self, ArrangeSettings};
    use pianola::notes::BeatGrid;
    use std::path::PathBuf;

    fn devset() -> PathBuf {
        std::env::var_os("PIANOLA_DEVSET").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/devset"))
    }

    /// The capture the standalone shows is the song through the same engine as the CLI: arranging
    /// it gives exactly `pianola cover --bpm` (same notes in beats, same meter).
    #[test]
    fn a_song_file_becomes_the_capture_the_plugin_would_hold() {
        let song = devset().join("bach_bwv1.6-vocal/audio.wav");
        assert!(song.exists(), "{} is missing: build the dev set with `python3 ../shared/eval/make_devset.py DIR` (PIANOLA_DEVSET=DIR)", song.display());
        let (bpm, downbeat_s) = (116.0, 0.5172);
        let capture = capture_from_file(&song, &GridArgs { bpm: Some(bpm), beats_per_bar: 4, first_downbeat: Some(downbeat_s), first_beat: None }).unwrap();
        assert!(capture.notes.len() > 20, "{} notes", capture.notes.len());
        // The CLI's path for the same file and tempo.
        let clip = pianola::audio_file::read(&song).unwrap();
        let mut model = pianola::model::load(pianola::model::Backend::Tract).unwrap();
        let t = pianola::engine::transcribe_clip(model.as_mut(), &clip, &DecodeParams::default()).unwrap();

        let end = capture.covered[0][1];
        assert!(t.duration_s > 30.0 && (end - t.duration_s * bpm / 60.0).abs() < 1e-9, "the whole file is captured: {end} beats");
        assert!(capture.notes.iter().all(|n| n.0 >= 0.0 && n.0 < end), "notes inside the capture");
        let grid = BeatGrid { bpm, beats_per_bar: 4, first_beat_s: 0.0, first_downbeat_beat: downbeat_s * bpm / 60.0 };
        let settings = ArrangeSettings::default();
        let mut input = ArrangeInput::from_transcription(&t.notes, Some(&t.frames), &grid);
        input.loudness = arrange::dynamics::measure_clip(&clip.mono(), clip.sample_rate, &grid);
        let cli = arrange::arrange(&input, &settings);
        let plugin = arrange::arrange(&capture.arrange_input(), &settings);
        assert_eq!(plugin, cli);
        // And it survives the project round trip the plugin does.
        let back: CapturedSong = serde_json::from_str(&serde_json::to_string(&capture).unwrap()).unwrap();
        assert_eq!(back, capture);
    }
}
