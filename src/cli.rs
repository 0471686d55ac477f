//! The command line: the same engine and arranger as the plugin, on files.
//! `pianola transcribe SONG -o notes.mid` and `pianola cover SONG... --bpm 96 -o cover.mid`.

use crate::audio_file;
use crate::decode::DecodeParams;
use crate::engine::{self, Transcription};
use crate::midi_file;
use crate::model::{self, Backend};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "pianola", version, about = "Piano covers from audio: transcribe with Basic Pitch, arrange for two hands, write MIDI")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Transcribe a song into notes (a raw MIDI file, like basic-pitch's).
    Transcribe(TranscribeArgs),
}

#[derive(Args, Clone)]
struct ModelArgs {
    /// Inference backend: tract (pure Rust) or ort (ONNX Runtime, needs --features onnxruntime).
    #[arg(long, default_value = "tract")]
    backend: Backend,
    /// Onset threshold (0..1): higher finds fewer notes.
    #[arg(long, default_value_t = 0.5)]
    onset_threshold: f32,
    /// Frame threshold (0..1): higher ends notes sooner.
    #[arg(long, default_value_t = 0.3)]
    frame_threshold: f32,
    /// Shortest note kept, in milliseconds.
    #[arg(long, default_value_t = 127.70)]
    min_note_ms: f32,
}

impl ModelArgs {
    fn decode_params(&self) -> Result<DecodeParams> {
        for (name, v) in [("--onset-threshold", self.onset_threshold), ("--frame-threshold", self.frame_threshold)] {
            if !(0.0..=1.0).contains(&v) {
                bail!("{name} must be between 0 and 1, got {v}");
            }
        }
        if !(self.min_note_ms.is_finite() && self.min_note_ms >= 0.0) {
            bail!("--min-note-ms must be a positive number of milliseconds");
        }
        Ok(DecodeParams { onset_threshold: self.onset_threshold, frame_threshold: self.frame_threshold, ..DecodeParams::default() }
            .with_min_note_ms(self.min_note_ms))
    }
}

#[derive(Args)]
struct TranscribeArgs {
    /// Audio file (WAV, MP3, FLAC, OGG).
    song: PathBuf,
    /// MIDI file to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Also write the notes as JSON ({"notes": [[start_s, end_s, pitch, amplitude], ...]}).
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Transcribe(args) => transcribe(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pianola: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads, resamples, transcribes and decodes one file.
fn transcribe_file(model: &mut dyn model::NoteModel, song: &Path, params: &DecodeParams) -> Result<Transcription> {
    let clip = audio_file::read(song).with_context(|| format!("reading {}", song.display()))?;
    engine::transcribe_clip(model, &clip, params).with_context(|| format!("transcribing {}", song.display()))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn transcribe(args: TranscribeArgs) -> Result<()> {
    let params = args.model.decode_params()?;
    let mut model = model::load(args.model.backend)?;
    let t = transcribe_file(model.as_mut(), &args.song, &params)?;
    write_file(&args.output, &midi_file::notes_to_smf(&t.notes)?)?;
    if let Some(json) = &args.json {
        let rows: Vec<(f64, f64, u8, f32)> = t.notes.iter().map(|n| (n.start_s, n.end_s, n.pitch, n.amplitude)).collect();
        write_file(json, serde_json::json!({ "n_frames": t.frames.n_frames(), "notes": rows }).to_string().as_bytes())?;
    }
    eprintln!("{}: {} notes in {:.1} s of audio -> {}", args.song.display(), t.notes.len(), t.duration_s, args.output.display());
    Ok(())
}
