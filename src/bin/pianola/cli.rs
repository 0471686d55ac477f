//! The command line: the same engine and arranger as the plugin, on files.
//! `pianola transcribe SONG -o notes.mid` and `pianola cover SONG... --bpm 96 -o cover.mid`.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use pianola::audio_file;
use pianola::decode::DecodeParams;
use pianola::engine::Transcription;
use pianola::midi_file;
use pianola::model::{self, Backend};
use pianola::notes::{BeatGrid, Note};
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
    /// Arrange a two-hand piano cover of one or more songs (files or folders).
    Cover(CoverArgs),
    /// Open the plugin window as an application (JACK, ALSA, or a silent dummy backend).
    #[cfg(feature = "standalone")]
    Standalone(crate::standalone::StandaloneArgs),
}

#[derive(Args, Clone)]
struct ModelArgs {
    /// Inference backend: native (Basic Pitch in Rust, fastest), tract (pure-Rust ONNX runtime) or ort
    /// (ONNX Runtime, needs --features onnxruntime).
    #[arg(long, default_value = "native")]
    backend: Backend,
    /// Onset threshold (0..1): higher finds fewer notes. Default 0.5; `cover` lowers the
    /// thresholds for a song where they find far too few notes for its sound, unless either is given.
    #[arg(long)]
    onset_threshold: Option<f32>,
    /// Frame threshold (0..1): higher ends notes sooner. Default 0.3.
    #[arg(long)]
    frame_threshold: Option<f32>,
    /// Shortest note kept, in milliseconds.
    #[arg(long, default_value_t = 127.70)]
    min_note_ms: f32,
    /// Hear the audio as it is, as basic-pitch does (by default it is heard against its own
    /// tuning: a recording between semitones is transcribed in tune).
    #[arg(long)]
    no_tuning: bool,
}

impl ModelArgs {
    fn decode_params(&self) -> Result<DecodeParams> {
        let d = DecodeParams::default();
        let (onset, frame) = (self.onset_threshold.unwrap_or(d.onset_threshold), self.frame_threshold.unwrap_or(d.frame_threshold));
        for (name, v) in [("--onset-threshold", onset), ("--frame-threshold", frame)] {
            if !(0.0..=1.0).contains(&v) {
                bail!("{name} must be between 0 and 1, got {v}");
            }
        }
        if !(self.min_note_ms.is_finite() && self.min_note_ms >= 0.0) {
            bail!("--min-note-ms must be a positive number of milliseconds");
        }
        Ok(DecodeParams { onset_threshold: onset, frame_threshold: frame, ..d }.with_min_note_ms(self.min_note_ms))
    }

    /// Whether the thresholds may follow the song's level: neither was given.
    fn adapts(&self) -> bool {
        self.onset_threshold.is_none() && self.frame_threshold.is_none()
    }
}

/// The song's beat grid, as `pianola cover` and `pianola standalone` take it.
#[derive(Args, Clone, Debug)]
pub struct GridArgs {
    /// Song tempo in beats per minute; estimated from the notes when left out.
    #[arg(long)]
    pub bpm: Option<f64>,
    /// Beats per bar.
    #[arg(long, default_value_t = 4)]
    pub beats_per_bar: u32,
    /// Time of the first downbeat, in seconds (a pickup bar before it); default: the first beat.
    #[arg(long)]
    pub first_downbeat: Option<f64>,
    /// Time of a beat, in seconds (the phase of the beat grid, e.g. a beat tracker's first beat);
    /// default 0: a beat at the file's start. Only with --bpm.
    #[arg(long, requires = "bpm")]
    pub first_beat: Option<f64>,
}

impl GridArgs {
    /// A clear error for a tempo or meter no song has.
    pub fn validate(&self) -> Result<()> {
        if let Some(bpm) = self.bpm {
            if !(bpm.is_finite() && (20.0..=400.0).contains(&bpm)) {
                bail!("--bpm must be between 20 and 400, got {bpm}");
            }
        }
        if !(1..=32).contains(&self.beats_per_bar) {
            bail!("--beats-per-bar must be between 1 and 32, got {}", self.beats_per_bar);
        }
        for (name, v) in [("--first-downbeat", self.first_downbeat), ("--first-beat", self.first_beat)] {
            if v.is_some_and(|s| !(s.is_finite() && s.abs() <= 86_400.0)) {
                bail!("{name} must be a number of seconds");
            }
        }
        Ok(())
    }

    /// The grid at the given tempo: a beat at `--first-beat` (its phase: beat 0 is the first beat
    /// at or after the file's start), bars from `--first-downbeat` (default: that beat).
    pub fn grid_at(&self, bpm: f64) -> BeatGrid {
        let spb = 60.0 / bpm;
        let first_beat_s = self.first_beat.unwrap_or(0.0).rem_euclid(spb);
        let first_downbeat_beat = self.first_downbeat.map_or(0.0, |d| (d - first_beat_s) / spb);
        BeatGrid { bpm, beats_per_bar: self.beats_per_bar, first_beat_s, first_downbeat_beat }
    }

    /// The grid: at `--bpm`, or estimated from the notes (tempo and phase) when it was left out.
    pub fn grid_for(&self, notes: &[Note]) -> BeatGrid {
        match self.bpm {
            Some(bpm) => self.grid_at(bpm),
            None => BeatGrid { beats_per_bar: self.beats_per_bar, ..pianola::tempo::estimate(notes) },
        }
    }
}

/// The songs a command reads and where their MIDI files go.
#[derive(Args)]
struct SongsArgs {
    /// Audio files, or folders of them (WAV, MP3, FLAC, OGG).
    #[arg(required = true)]
    songs: Vec<PathBuf>,
    /// MIDI file to write (one song).
    #[arg(short, long, conflicts_with = "out_dir")]
    output: Option<PathBuf>,
    /// Folder for the MIDI files (NAME.mid per song); required for several songs.
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

impl SongsArgs {
    /// The audio files (folders expanded) and the MIDI file each one gets.
    fn songs_and_outputs(&self) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
        let songs = collect_songs(&self.songs)?;
        let outputs = output_paths(&songs, &self.output, &self.out_dir, "mid")?;
        Ok((songs, outputs))
    }
}

#[derive(Args)]
struct TranscribeArgs {
    #[command(flatten)]
    io: SongsArgs,
    /// Also write the notes as JSON ({"notes": [[start_s, end_s, pitch, amplitude], ...]}; one song).
    #[arg(long, conflicts_with = "out_dir")]
    json: Option<PathBuf>,
    /// Threads, each with its own model (default: every core). Several songs run side by side; a
    /// single song has its windows spread over the threads.
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Whose notes: mix (the note model, every note heard), voice (a pitch tracker made for
    /// voices: the sung line), auto (voice for a lone voice, else mix).
    #[arg(long, default_value = "mix")]
    voice: pianola::pitch::VoiceMode,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Args)]
struct CoverArgs {
    #[command(flatten)]
    io: SongsArgs,
    #[command(flatten)]
    grid: GridArgs,
    /// 0: melody alone .. 1: full two-hand texture.
    #[arg(long, default_value_t = 0.5)]
    density: f32,
    /// Quantize strength to the 1/16 grid, 0 (as played) .. 1 (on the grid).
    #[arg(long, default_value_t = 1.0)]
    quantize: f32,
    /// Accompaniment style: block, broken, arpeggio.
    #[arg(long, default_value = "broken")]
    style: String,
    /// Widest hand span, in semitones.
    #[arg(long, default_value_t = 14)]
    hand_span: u8,
    /// No sustain pedal (CC64) in the cover (it is on by default: legato, changed with the chords).
    #[arg(long)]
    no_pedal: bool,
    /// Where the melody comes from: auto (a lone voice is told from the audio), voice (a pitch
    /// tracker made for voices), mix (the note model).
    #[arg(long, default_value = "auto")]
    voice: pianola::pitch::VoiceMode,
    /// Also render the cover to this WAV file with a piano SoundFont (one song).
    #[arg(long)]
    render: Option<PathBuf>,
    /// The SoundFont for --render (default: Debian's FluidR3_GM.sf2 or another GM SoundFont installed).
    #[arg(long, requires = "render")]
    soundfont: Option<PathBuf>,
    /// Parallel jobs (default: every core).
    #[arg(short, long)]
    jobs: Option<usize>,
    /// The song's beats, from a beat tracker or a host's tempo map: a file of beat times in seconds
    /// (a JSON array, or numbers separated by white space or commas; one song). The cover follows
    /// them (its grid bends with the music); the MIDI file keeps one tempo (--bpm, else the
    /// beats' median) with every note at its time.
    #[arg(long, conflicts_with = "first_beat")]
    beats: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

/// Beat times in seconds, strictly increasing: beat `k` is at `times[k]`, with the first and last
/// periods carried on before and after.
#[derive(Clone, Debug, PartialEq)]
pub struct BeatMap {
    times: Vec<f64>,
}

impl BeatMap {
    /// At least two beats, finite and strictly increasing.
    pub fn new(times: Vec<f64>) -> Result<Self> {
        if times.len() < 2 {
            bail!("a beat map needs at least two beats, got {}", times.len());
        }
        if times.iter().any(|t| !t.is_finite()) || times.windows(2).any(|w| w[1] <= w[0]) {
            bail!("beat times must be numbers of seconds in increasing order");
        }
        Ok(Self { times })
    }

    /// Parses a JSON array of seconds, or numbers separated by white space or commas.
    pub fn parse(text: &str) -> Result<Self> {
        let times: Vec<f64> = text
            .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
            .filter(|w| !w.is_empty())
            .map(|w| w.parse::<f64>().with_context(|| format!("'{w}' is not a number of seconds")))
            .collect::<Result<_>>()?;
        Self::new(times)
    }

    /// The median time between beats.
    pub fn median_period(&self) -> f64 {
        let mut d: Vec<f64> = self.times.windows(2).map(|w| w[1] - w[0]).collect();
        d.sort_by(f64::total_cmp);
        d[d.len() / 2]
    }

    /// The beat position (fractional) at time `t` seconds.
    pub fn beat_at(&self, t: f64) -> f64 {
        let ts = &self.times;
        let i = ts.partition_point(|&x| x <= t).clamp(1, ts.len() - 1);
        let (a, b) = (ts[i - 1], ts[i]);
        (i - 1) as f64 + (t - a) / (b - a)
    }

    /// The time in seconds of beat position `beat`.
    pub fn seconds_at(&self, beat: f64) -> f64 {
        let ts = &self.times;
        let i = (beat.floor().max(0.0) as usize).min(ts.len() - 2);
        ts[i] + (beat - i as f64) * (ts[i + 1] - ts[i])
    }
}

const AUDIO_EXTENSIONS: &[&str] = &["wav", "wave", "mp3", "flac", "ogg", "oga"];

/// Expands folders into the audio files inside them (sorted, not recursive into hidden folders).
fn collect_songs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut songs = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found = Vec::new();
            let mut stack = vec![input.clone()];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
                    let path = entry?.path();
                    let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
                    if path.is_dir() && !hidden {
                        stack.push(path);
                    } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())) {
                        found.push(path);
                    }
                }
            }
            found.sort();
            if found.is_empty() {
                bail!("no audio files in {}", input.display());
            }
            songs.extend(found);
        } else {
            songs.push(input.clone());
        }
    }
    Ok(songs)
}

/// Where each song's file goes: `-o FILE` for one song, or `DIR/NAME.EXT` per song.
fn output_paths(songs: &[PathBuf], output: &Option<PathBuf>, out_dir: &Option<PathBuf>, ext: &str) -> Result<Vec<PathBuf>> {
    Ok(match (output, out_dir) {
        (Some(out), None) if songs.len() == 1 => vec![out.clone()],
        (Some(_), None) => bail!("{} songs given: use --out-dir instead of -o", songs.len()),
        (None, Some(dir)) => songs.iter().map(|s| dir.join(format!("{}.{ext}", cover_name(s, songs)))).collect(),
        _ => bail!("give -o FILE (one song) or --out-dir DIR"),
    })
}

fn jobs_or_cores(jobs: Option<usize>) -> usize {
    match jobs {
        Some(n) if n > 0 => n,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// One thread's songs (index, result) and the seconds it spent loading its model.
type ThreadResults<T> = (Vec<(usize, Result<T>)>, f64);
/// Runs `work` on every song with `jobs` threads, each holding one model loaded once (a tract plan
/// takes a while to build). With at least as many songs as threads the songs run side by side, one
/// model each; otherwise the songs run one after another and `work` gets all the models, to spread
/// a song's windows over them. Returns the results in song order and the seconds spent loading
/// models (summed over threads). A model that cannot load fails the whole batch.
fn for_each_song<T: Send>(
    songs: &[PathBuf],
    backend: Backend,
    jobs: usize,
    work: impl Fn(&mut [Box<dyn model::NoteModel>], &Path) -> Result<T> + Sync,
) -> Result<(Vec<Result<T>>, f64)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;
    let jobs = jobs.max(1);
    let load = || -> Result<(Box<dyn model::NoteModel>, f64)> {
        let t = Instant::now();
        let m = model::load(backend)?;
        Ok((m, t.elapsed().as_secs_f64()))
    };
    if songs.len() >= jobs {
        let next = AtomicUsize::new(0);
        let per_thread: Vec<Result<ThreadResults<T>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..jobs)
                .map(|_| {
                    scope.spawn(|| -> Result<ThreadResults<T>> {
                        let (mut model, load_s) = load()?;
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(song) = songs.get(i) else { break };
                            done.push((i, work(std::slice::from_mut(&mut model), song)));
                        }
                        Ok((done, load_s))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a transcription thread panicked")))).collect()
        });
        let mut results: Vec<Option<Result<T>>> = songs.iter().map(|_| None).collect();
        let mut load_s = 0.0;
        for thread in per_thread {
            let (done, s) = thread?;
            load_s += s;
            for (i, r) in done {
                results[i] = Some(r);
            }
        }
        Ok((results.into_iter().map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("not transcribed")))).collect(), load_s))
    } else {
        // Load the models side by side too: each tract plan is built on one core.
        let loaded: Vec<Result<(Box<dyn model::NoteModel>, f64)>> = std::thread::scope(|scope| {
            (0..jobs)
                .map(|_| scope.spawn(load))
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("model load panicked"))))
                .collect()
        });
        let mut models = Vec::with_capacity(jobs);
        let mut load_s = 0.0;
        for m in loaded {
            let (m, s) = m?;
            models.push(m);
            load_s += s;
        }
        Ok((songs.iter().map(|song| work(&mut models, song)).collect(), load_s))
    }
}

/// Output name for a song in a batch: the file stem, or parent folder + stem when stems repeat
/// (a dev set of `*/audio.wav`).
fn cover_name(song: &Path, songs: &[PathBuf]) -> String {
    let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "song".into());
    let name = stem(song);
    if songs.iter().filter(|s| stem(s) == name).count() > 1 {
        if let Some(parent) = song.parent().and_then(|p| p.file_name()) {
            return parent.to_string_lossy().into_owned();
        }
    }
    name
}

fn cover(args: CoverArgs) -> Result<()> {
    use pianola::arrange::{self, ArrangeInput, ArrangeSettings, Style};

    let params = args.model.decode_params()?;
    let style = match args.style.to_ascii_lowercase().as_str() {
        "block" => Style::Block,
        "broken" => Style::Broken,
        "arpeggio" => Style::Arpeggio,
        other => bail!("unknown --style '{other}' (block, broken, arpeggio)"),
    };
    args.grid.validate()?;
    let settings = ArrangeSettings {
        density: args.density,
        style,
        quantize_strength: args.quantize,
        hand_span: args.hand_span,
        pedal: !args.no_pedal,
        ..ArrangeSettings::default()
    }
    .sanitized();
    let (songs, outputs) = args.io.songs_and_outputs()?;
    let index: std::collections::HashMap<&Path, &PathBuf> = songs.iter().map(|s| s.as_path()).zip(&outputs).collect();
    let beat_map = match &args.beats {
        Some(_) if songs.len() != 1 => bail!("--beats takes one song ({} given)", songs.len()),
        Some(path) => Some(
            BeatMap::parse(&std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?)
                .with_context(|| format!("reading beats from {}", path.display()))?,
        ),
        None => None,
    };
    // Checked before any work: a missing SoundFont is a clear error, not a lost transcription.
    let soundfont = match &args.render {
        Some(_) if songs.len() != 1 => bail!("--render takes one song ({} given)", songs.len()),
        Some(_) => Some(crate::render::find_soundfont(args.soundfont.as_deref())?),
        None => None,
    };

    let progress = indicatif::ProgressBar::new(songs.len() as u64);
    progress.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed_precise} {msg}").expect("valid template"));
    // One model per thread, loaded once; a bad model fails here before any file is written.
    let (results, _) = for_each_song(&songs, args.model.backend, jobs_or_cores(args.jobs), |models, song| -> Result<String> {
        let out = index[song];
        let (mut t, clip, tuning) = transcribe_file_and_clip(models, song, &params, !args.model.no_tuning)?;
        // Frames are on the time axis the model heard (in tune); notes on the recording's.
        let time_scale = tuning.as_ref().map_or(1.0, |r| r.time_scale);
        let frame_s = pianola::notes::FRAME_SECONDS * time_scale;
        let mono = &clip.mono;
        let level = if args.model.adapts() {
            let audible = pianola::decode::audible_seconds(mono, clip.sample_rate);
            let (notes, decision) = pianola::decode::notes_for_level(&t.frames, &params, audible * time_scale.recip());
            t.notes = notes.into_iter().map(|n| pianola::notes::Note { start_s: n.start_s * time_scale, end_s: n.end_s * time_scale, ..n }).collect();
            decision.describe(&params, t.notes.len())
        } else {
            format!("decoding: onset {} / frame {}, as asked", params.onset_threshold, params.frame_threshold)
        };
        let (notes, melody) = melody_notes(args.voice, &t, &clip)?;
        let (grid, cover) = match &beat_map {
            Some(map) => {
                // Arranged on the beats as tracked, written at one tempo with each note at its time.
                let file_grid = args.grid.grid_at(args.grid.bpm.unwrap_or(60.0 / map.median_period()));
                let seconds = BeatGrid::new(60.0);
                let mut input = ArrangeInput::from_transcription_with(&notes, Some(&t.frames), &seconds, |f| f as f64 * frame_s);
                for n in &mut input.notes {
                    (n.start_beat, n.end_beat) = (map.beat_at(n.start_beat), map.beat_at(n.end_beat));
                }
                input.seconds_per_beat = map.median_period();
                input.first_downbeat_beat = args.grid.first_downbeat.map_or(0.0, |d| map.beat_at(d));
                // The loudness of each tracked beat.
                let first = map.beat_at(0.0).floor() as i64;
                let last = map.beat_at(t.duration_s).ceil() as i64;
                let starts: Vec<f64> = (first..=last + 1).map(|k| map.seconds_at(k as f64)).collect();
                input.loudness = arrange::dynamics::measure_spans(mono, clip.sample_rate, first, &starts);
                let on_file = |b: f64| file_grid.beat_at(map.seconds_at(b));
                let mut cover = arrange::arrange(&input, &settings);
                for n in &mut cover.notes {
                    (n.start_beat, n.end_beat) = (on_file(n.start_beat), on_file(n.end_beat));
                }
                for p in &mut cover.pedal {
                    (p.down_beat, p.up_beat) = (on_file(p.down_beat), on_file(p.up_beat));
                }
                (file_grid, cover)
            }
            None => {
                let grid = args.grid.grid_for(&notes);
                let mut input = ArrangeInput::from_transcription_with(&notes, Some(&t.frames), &grid, |f| f as f64 * frame_s);
                // The dynamics follow the song's loudness per beat, as the plugin measures it while capturing.
                input.loudness = arrange::dynamics::measure_clip(mono, clip.sample_rate, &grid);
                let cover = arrange::arrange(&input, &settings);
                // A grid whose beat 0 is not at 0 s (estimated phase) is shifted so the file's beat 0 is at 0 s.
                let shift = grid.first_beat_s / grid.seconds_per_beat();
                (grid, cover.shifted(shift))
            }
        };
        write_file(out, &midi_file::cover_to_smf(&cover, &grid)?)?;
        if let (Some(wav), Some(font)) = (&args.render, &soundfont) {
            let (left, right) = crate::render::render(&cover, &grid, font)?;
            crate::render::write_wav(wav, &left, &right)?;
        }
        progress.inc(1);
        Ok(format!(
            "{}: {} notes ({melody}; {level}; {}) -> cover of {} at {:.1} bpm -> {}",
            song.display(),
            notes.len(),
            describe_tuning(tuning.as_ref()),
            cover.notes.len(),
            grid.bpm,
            out.display()
        ))
    })?;
    progress.finish_and_clear();
    let mut failed = 0;
    for (song, result) in songs.iter().zip(results) {
        match result {
            Ok(line) => eprintln!("{line}"),
            Err(e) => {
                failed += 1;
                eprintln!("pianola: {}: error: {e:#}", song.display());
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} songs failed", songs.len());
    }
    Ok(())
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Transcribe(args) => transcribe(args),
        Command::Cover(args) => cover(args),
        #[cfg(feature = "standalone")]
        Command::Standalone(args) => crate::standalone::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pianola: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A song as everything after the file read uses it: its mono mix (`AudioClip::mono`) and rate.
struct MonoClip {
    mono: Vec<f32>,
    sample_rate: u32,
}

/// Reads, resamples, transcribes and decodes one file, its windows spread over `models`, heard
/// against the recording's own tuning (`pianola::tuning`).
fn transcribe_file_and_clip(
    models: &mut [Box<dyn model::NoteModel>],
    song: &Path,
    params: &DecodeParams,
    tuned: bool,
) -> Result<(Transcription, MonoClip, Option<pianola::tuning::TuningReport>)> {
    let (mono, sample_rate) = audio_file::read_mono(song).with_context(|| format!("reading {}", song.display()))?;
    let clip = MonoClip { mono, sample_rate };
    let heard = if tuned {
        pianola::tuning::transcribe_mono_in_tune(models, &clip.mono, sample_rate, params).map(|(t, r)| (t, Some(r)))
    } else {
        pianola::engine::transcribe_mono_parallel(models, &clip.mono, sample_rate, params).map(|t| (t, None))
    };
    let (t, tuning) = heard.with_context(|| format!("transcribing {}", song.display()))?;
    Ok((t, clip, tuning))
}

/// The notes to arrange and where they came from, in words: the voice tracker's for a lone voice
/// (forced, or told from the audio with `auto`), else the note model's.
fn melody_notes<'a>(mode: pianola::pitch::VoiceMode, t: &'a Transcription, clip: &MonoClip) -> Result<(std::borrow::Cow<'a, [pianola::notes::Note]>, String)> {
    use pianola::pitch::{self, VoiceMode};
    if mode == VoiceMode::Mix {
        return Ok((t.notes.as_slice().into(), "mix, as asked".into()));
    }
    let mut tracker = pitch::PitchTracker::load()?;
    let (notes, why) = pitch::melody_notes(mode, &mut tracker, &clip.mono, clip.sample_rate, &t.notes)?;
    Ok((notes.into(), why))
}

/// The tuning found, or that `--no-tuning` skipped it.
fn describe_tuning(report: Option<&pianola::tuning::TuningReport>) -> String {
    report.map_or_else(|| "tuning not looked at (--no-tuning)".into(), |r| r.describe())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn transcribe(args: TranscribeArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let params = args.model.decode_params()?;
    let (songs, outputs) = args.io.songs_and_outputs()?;
    let index: std::collections::HashMap<&Path, &PathBuf> = songs.iter().map(|s| s.as_path()).zip(&outputs).collect();
    let jobs = jobs_or_cores(args.jobs);
    let (results, load_s) = for_each_song(&songs, args.model.backend, jobs, |models, song| -> Result<f64> {
        let out = index[song];
        let (t, clip, tuning) = transcribe_file_and_clip(models, song, &params, !args.model.no_tuning)?;
        let (notes, source) = melody_notes(args.voice, &t, &clip)?;
        let source = format!("{source}; {}", describe_tuning(tuning.as_ref()));
        write_file(out, &midi_file::notes_to_smf(&notes)?)?;
        if let Some(json) = &args.json {
            let rows: Vec<(f64, f64, u8, f32)> = notes.iter().map(|n| (n.start_s, n.end_s, n.pitch, n.amplitude)).collect();
            write_file(json, serde_json::json!({ "n_frames": t.frames.n_frames(), "notes": rows }).to_string().as_bytes())?;
        }
        eprintln!("{}: {} notes ({source}) in {:.1} s of audio -> {}", song.display(), notes.len(), t.duration_s, out.display());
        Ok(t.duration_s)
    })?;
    let mut failed = 0;
    let mut audio_s = 0.0;
    let single = songs.len() == 1;
    for (song, result) in songs.iter().zip(results) {
        match result {
            Ok(s) => audio_s += s,
            // One song: its error is the command's error.
            Err(e) if single => return Err(e),
            Err(e) => {
                failed += 1;
                eprintln!("pianola: {}: error: {e:#}", song.display());
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    // One line for benchmarks: what the whole command cost, model loads included.
    eprintln!(
        "pianola: {} song(s), {audio_s:.1} s of audio in {wall:.2} s ({:.1}x realtime) on {jobs} thread(s), {} backend; model loads {load_s:.2} s (summed over threads)",
        songs.len() - failed,
        audio_s / wall.max(1e-9),
        args.model.backend.name()
    );
    if failed > 0 {
        bail!("{failed} of {} songs failed", songs.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_map_converts_both_ways_and_extrapolates() {
        let m = BeatMap::parse("[0.5, 1.0, 1.6,\n 2.0]").unwrap();
        assert_eq!(m.beat_at(0.5), 0.0);
        assert!((m.beat_at(1.3) - 1.5).abs() < 1e-12);
        assert!((m.beat_at(0.25) + 0.5).abs() < 1e-12, "before the first beat: the first period");
        assert!((m.beat_at(2.2) - 3.5).abs() < 1e-12, "after the last: the last period");
        for b in [-0.5, 0.0, 0.3, 1.5, 2.9, 3.5] {
            assert!((m.beat_at(m.seconds_at(b)) - b).abs() < 1e-12, "{b}");
        }
        assert!((m.median_period() - 0.5).abs() < 1e-12);
        assert!(BeatMap::parse("1.0").is_err());
        assert!(BeatMap::parse("1.0 0.5").is_err());
        assert!(BeatMap::parse("1.0 x").is_err());
    }
}
