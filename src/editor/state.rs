//! What the editor shows, as pure functions of plain snapshots: the status line and its detail,
//! the capture summary, note names, where an export goes, and the window size kept with the
//! project. Nothing here touches egui's window or the plugin's threads, so it is tested directly.

use crate::notes::{BeatGrid, Cover};
use crate::params::{CapturedSong, Mode};
use std::path::{Path, PathBuf};

/// How urgent a status item is (its dot colour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Good,
    Busy,
    Idle,
    Warn,
    Error,
}

/// The note model, as the worker last reported it.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelState {
    Loading,
    Ready,
    Failed(String),
}

/// The capture as the editor summarises it (computed under the capture's lock, without cloning
/// its notes).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CaptureSummary {
    /// Beats captured (the union of the covered ranges).
    pub beats: f64,
    pub notes: usize,
    pub beats_per_bar: u32,
    pub seconds_per_beat: f64,
    /// Beat of the first bar line (bars start at `first_downbeat_beat + k * beats_per_bar`).
    pub first_downbeat_beat: f64,
}

impl CaptureSummary {
    pub fn of(song: &CapturedSong) -> Self {
        let mut ranges: Vec<[f64; 2]> = song.covered.iter().copied().filter(|r| r[0].is_finite() && r[1].is_finite() && r[1] > r[0]).collect();
        ranges.sort_by(|a, b| a[0].total_cmp(&b[0]));
        // Union, so a range recorded twice (Live passes are not stored; Capture never overlaps,
        // but a hand-edited project might) counts once.
        let mut beats = 0.0;
        let mut open: Option<[f64; 2]> = None;
        for r in ranges {
            match open.as_mut() {
                Some(o) if r[0] <= o[1] => o[1] = o[1].max(r[1]),
                _ => {
                    if let Some(o) = open.take() {
                        beats += o[1] - o[0];
                    }
                    open = Some(r);
                }
            }
        }
        if let Some(o) = open {
            beats += o[1] - o[0];
        }
        Self {
            beats,
            notes: song.notes.len(),
            beats_per_bar: song.beats_per_bar.max(1),
            seconds_per_beat: song.seconds_per_beat,
            first_downbeat_beat: song.first_downbeat_beat,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.beats <= 0.0 && self.notes == 0
    }

    pub fn bars(&self) -> f64 {
        self.beats / self.beats_per_bar.max(1) as f64
    }

    pub fn seconds(&self) -> f64 {
        self.beats * self.seconds_per_beat
    }

    /// "16 bars · 0:33" (whole bars rounded down, "less than a bar" below one).
    pub fn length_text(&self) -> String {
        let bars = self.bars();
        let bar_text = if bars < 1.0 {
            "less than a bar".to_string()
        } else {
            let n = (bars + 1e-6).floor() as u64;
            format!("{n} bar{}", if n == 1 { "" } else { "s" })
        };
        format!("{bar_text} · {}", clock(self.seconds()))
    }
}

/// "m:ss".
pub fn clock(seconds: f64) -> String {
    let s = if seconds.is_finite() { seconds.max(0.0).round() as u64 } else { 0 };
    format!("{}:{:02}", s / 60, s % 60)
}

/// Everything the status area needs, read once per frame from the plugin's shared state.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub mode: Mode,
    pub bypass: bool,
    pub model: ModelState,
    /// Raw error text of something that went wrong after the model loaded.
    pub error: Option<String>,
    pub recording: bool,
    /// Capture stopped listening over the silence after the song.
    pub resting_on_silence: bool,
    pub capture: CaptureSummary,
    pub cover_notes: usize,
    /// Samples the audio thread pushed that the worker has not handled yet.
    pub backlog_samples: u64,
    pub sample_rate: f32,
    pub latency_samples: u32,
    pub host_playing: bool,
    /// The host reports a beat position (false before the first block, or in hosts without one).
    pub host_has_beat: bool,
    /// Whether audio has ever been processed (`sample_rate > 0` as the audio thread stored it).
    pub processing: bool,
    /// The note model's backend and why, and what could not be had (a fallback), once loaded.
    pub backend: Option<(String, Option<String>)>,
    /// Where the melody of the last captured stretch came from, in words.
    pub melody: Option<String>,
    /// The captured song does not follow the host's grid: what differs, in words.
    pub song_grid: Option<String>,
    /// Capture decoded a quiet song more closely: how, in words.
    pub quiet_song: Option<String>,
    /// The captured recording's tuning, cents from A440.
    pub tuning_cents: Option<f64>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Self {
            mode: Mode::Capture,
            bypass: false,
            model: ModelState::Loading,
            error: None,
            recording: false,
            resting_on_silence: false,
            capture: CaptureSummary::default(),
            cover_notes: 0,
            backlog_samples: 0,
            sample_rate: 0.0,
            latency_samples: 0,
            host_playing: false,
            host_has_beat: false,
            processing: false,
            backend: None,
            melody: None,
            song_grid: None,
            quiet_song: None,
            tuning_cents: None,
        }
    }
}

/// One line of status: a dot, a short text, and a longer explanation for the tooltip.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusItem {
    pub level: Level,
    pub text: String,
    pub detail: String,
}

fn item(level: Level, text: impl Into<String>, detail: impl Into<String>) -> StatusItem {
    StatusItem { level, text: text.into(), detail: detail.into() }
}

/// Seconds of audio waiting for the worker.
pub fn backlog_seconds(s: &Snapshot) -> f64 {
    if s.sample_rate > 0.0 {
        s.backlog_samples as f64 / s.sample_rate as f64
    } else {
        0.0
    }
}

/// Worker lag above which the editor warns: the ring holds a few seconds; past this the cover
/// arrives late and a full ring drops audio.
pub const LAG_WARN_SECONDS: f64 = 2.0;
/// A capture tuned this far from A440 is pointed out, with what Pianola does about it: the note
/// model loses onsets quickly off tune (a dev-set song 20 cents off kept 0.52-0.77 of its onsets,
/// `tests/tuning.rs`), so each captured stretch is heard again in tune.
pub const TUNING_WARN_CENTS: f64 = crate::tuning::CAPTURE_CORRECT_CENTS;

/// A worker or model error in words a producer understands (the raw text goes in the detail).
pub fn explain_error(raw: &str) -> String {
    let lower = raw.to_ascii_lowercase();
    if lower.contains("could not be loaded") || lower.contains("loading the model") {
        "The note model could not be loaded, so Pianola cannot listen. Audio passes through unchanged.".into()
    } else if lower.contains("sample rate") {
        "Pianola cannot listen at this sample rate. Audio passes through unchanged.".into()
    } else if lower.contains("worker thread") {
        "Pianola could not start its listening thread. Audio passes through unchanged.".into()
    } else if lower.contains("panic") {
        "Something went wrong while listening; Pianola recovered and keeps going. The last few seconds may be missing.".into()
    } else if lower.contains("transcription failed") || lower.contains("failed on a window") {
        "Listening failed on part of the audio; that stretch has no notes. Play it again to retry.".into()
    } else {
        format!("Problem: {raw}")
    }
}

/// The headline: the one thing a producer most needs to know right now.
pub fn headline(s: &Snapshot) -> StatusItem {
    if let ModelState::Failed(raw) = &s.model {
        return item(Level::Error, explain_error(raw), raw.clone());
    }
    if let Some(raw) = &s.error {
        return item(Level::Warn, explain_error(raw), raw.clone());
    }
    if s.bypass {
        return item(Level::Idle, "Bypassed: no notes are sent", "Turn Bypass off to play the cover.");
    }
    if s.model == ModelState::Loading {
        return item(Level::Busy, "Loading the note model…", "Takes a second or two after the plugin starts.");
    }
    if s.processing && s.host_playing && !s.host_has_beat {
        return item(
            Level::Warn,
            "The host sends no song position: Pianola cannot place notes",
            "Pianola keys the cover to the host's beats. Use it on a track of a DAW project with a running transport.",
        );
    }
    match s.mode {
        Mode::Live => {
            let latency_ms = if s.sample_rate > 0.0 { 1000.0 * s.latency_samples as f64 / s.sample_rate as f64 } else { 0.0 };
            if s.recording {
                item(
                    Level::Good,
                    format!("Live: notes follow the audio {latency_ms:.0} ms late"),
                    "The plugin reports this delay to the host, which compensates it. Live notes are not saved; switch to Capture to keep a cover.",
                )
            } else {
                item(Level::Idle, "Live: press play in your DAW", "Live mode transcribes as the song plays and sends notes a fixed delay behind the audio.")
            }
        }
        Mode::Capture => {
            if s.recording {
                item(
                    Level::Busy,
                    format!("Listening… {} captured", s.capture.length_text()),
                    "Pianola records each beat the first time it plays. Play the song through once; later passes play the cover.",
                )
            } else if s.capture.is_empty() {
                item(
                    Level::Idle,
                    "Press play in your DAW: Pianola listens on the first pass",
                    "Play the song through once. From then on, every pass plays the piano cover on this track's MIDI output.",
                )
            } else if s.cover_notes == 0 {
                item(
                    Level::Warn,
                    format!("Captured {}, but heard no notes", s.capture.length_text()),
                    "Try a higher Sensitivity for new captures, or a track with clearer pitched sound (vocals, lead, piano).",
                )
            } else if s.host_playing {
                item(Level::Good, format!("Playing the cover · {} notes", s.cover_notes), "Uncaptured beats are recorded as they play.")
            } else {
                item(Level::Good, format!("Cover ready · {} notes", s.cover_notes), "Press play: the cover goes out on this track's MIDI output.")
            }
        }
    }
}

/// The small facts under the headline: capture length, worker lag, latency.
pub fn facts(s: &Snapshot) -> Vec<StatusItem> {
    let mut out = Vec::new();
    if s.mode == Mode::Capture || !s.capture.is_empty() {
        let text = if s.capture.is_empty() { "Nothing captured".to_string() } else { format!("Captured {}", s.capture.length_text()) };
        out.push(item(
            if s.capture.is_empty() { Level::Idle } else { Level::Good },
            text,
            format!("{} notes heard. The capture is saved with the project.", s.capture.notes),
        ));
    }
    if let Some(words) = s.song_grid.as_ref().filter(|_| s.mode == Mode::Capture) {
        out.push(item(Level::Warn, "The song does not follow the project's grid", words.clone()));
    }
    if let Some(words) = s.quiet_song.as_ref().filter(|_| s.mode == Mode::Capture) {
        out.push(item(
            Level::Idle,
            "Quiet song: listening closer",
            format!("Too few notes at the usual sensitivity for the sound captured, so quieter ones count too ({words}). Move Sensitivity to choose yourself."),
        ));
    }
    if let Some(cents) = s.tuning_cents.filter(|c| c.abs() >= TUNING_WARN_CENTS && s.mode == Mode::Capture) {
        out.push(item(
            Level::Idle,
            format!("Tuned {:.0} cents {} of A440", cents.abs(), if cents > 0.0 { "sharp" } else { "flat" }),
            "The recording sits between the piano's keys. Pianola hears it in tune (each captured stretch again, shifted by that much), so the cover's notes are the song's, on the piano's keys.",
        ));
    }
    if s.mode == Mode::Capture && s.resting_on_silence {
        out.push(item(
            Level::Idle,
            "Not listening to the silence after the song",
            format!(
                "After {} s of silence past the song, Capture stops recording; it listens again as soon as there is sound.",
                crate::status::SILENCE_STOP_SECONDS
            ),
        ));
    }
    let lag = backlog_seconds(s);
    if lag >= LAG_WARN_SECONDS {
        out.push(item(
            Level::Warn,
            format!("Listening {lag:.1} s behind"),
            "The computer is not keeping up with the audio; the cover arrives late. Close other heavy plugins, or use Capture mode and let it catch up.",
        ));
    } else if lag >= 0.25 {
        out.push(item(Level::Busy, format!("Catching up ({lag:.1} s)"), "Audio waiting to be transcribed."));
    } else if s.model == ModelState::Ready {
        out.push(item(Level::Good, "Keeping up", "The transcription keeps pace with the audio."));
    }
    if let Some(why) = &s.melody {
        let voice = why.contains("voice tracker");
        out.push(item(
            Level::Idle,
            if voice { "Melody: the voice" } else { "Melody: every note heard" },
            format!("The last captured stretch is {why}. Set \"Melody from\" to choose."),
        ));
    }
    match &s.backend {
        Some((reason, Some(fallback))) => out.push(item(Level::Warn, format!("Model on {reason}"), fallback.clone())),
        Some((reason, None)) => out.push(item(
            Level::Idle,
            format!("Model on {reason}"),
            "The engine that runs the note model. The native engine is the fastest; PIANOLA_BACKEND=ort or tract runs a reference runtime.",
        )),
        None => {}
    }
    if s.mode == Mode::Live {
        let latency_ms = if s.sample_rate > 0.0 { 1000.0 * s.latency_samples as f64 / s.sample_rate as f64 } else { 0.0 };
        out.push(item(
            Level::Idle,
            if latency_ms > 0.0 { format!("Latency {latency_ms:.0} ms") } else { "Latency: set when audio starts".to_string() },
            "Reported to the host so it can delay the other tracks to match.",
        ));
    }
    out
}

/// MIDI key name with C4 = 60 (as most DAWs name it).
pub fn note_name(key: i32) -> String {
    const NAMES: [&str; 12] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
    format!("{}{}", NAMES[key.rem_euclid(12) as usize], key.div_euclid(12) - 1)
}

/// Hand span in words: "14 semitones · ninth".
pub fn span_text(semitones: i32) -> String {
    let interval = match semitones {
        12 => "octave",
        13 | 14 => "ninth",
        15 | 16 => "tenth",
        17 => "eleventh",
        18 => "augmented 11th",
        10 | 11 => "seventh",
        _ => "",
    };
    if interval.is_empty() {
        format!("{semitones} semitones")
    } else {
        format!("{semitones} semitones · {interval}")
    }
}

pub use crate::params::{EditorPrefs, DEFAULT_SIZE, MAX_SIZE, MIN_SIZE};

/// A window size in logical pixels (width, height).
pub type Size = (f32, f32);

/// Keeps the window at the project's saved size: on open it asks for the saved size once, then
/// follows the user's resizing. The host may take a few frames to apply a resize, so sizes seen
/// while a request is pending are not saved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SizeKeeper {
    pending: Option<((f32, f32), u32)>,
}

/// Frames to wait for the host to apply a requested size before giving up and following it.
const RESIZE_WAIT_FRAMES: u32 = 30;

impl SizeKeeper {
    /// The window opened; `saved` is the project's size.
    pub fn opened(&mut self, saved: (f32, f32)) {
        self.pending = Some((saved, 0));
    }

    /// One frame at `current` size. Returns (a size to request from the host, a size to save).
    pub fn frame(&mut self, current: Size, saved: Size) -> (Option<Size>, Option<Size>) {
        let close = |a: (f32, f32), b: (f32, f32)| (a.0 - b.0).abs() < 1.5 && (a.1 - b.1).abs() < 1.5;
        if let Some((want, frames)) = self.pending {
            if close(current, want) || frames >= RESIZE_WAIT_FRAMES {
                self.pending = None;
            } else {
                self.pending = Some((want, frames + 1));
                return (if frames == 0 { Some(want) } else { None }, None);
            }
        }
        if close(current, saved) {
            (None, None)
        } else {
            (None, Some(current))
        }
    }
}

/// Where exports go when the user has not typed a folder: `$XDG_MUSIC_DIR/Pianola` (from the
/// environment or `~/.config/user-dirs.dirs`), else `~/Music/Pianola`.
pub fn default_export_dir(home: Option<&Path>, xdg_music_env: Option<&str>, user_dirs: Option<&str>) -> PathBuf {
    let expand = |v: &str| -> Option<PathBuf> {
        let v = v.trim().trim_matches('"');
        if v.is_empty() {
            return None;
        }
        if let Some(rest) = v.strip_prefix("$HOME") {
            return home.map(|h| h.join(rest.trim_start_matches('/')));
        }
        Some(PathBuf::from(v))
    };
    let from_file =
        user_dirs.and_then(|text| text.lines().map(str::trim).filter(|l| !l.starts_with('#')).find_map(|l| l.strip_prefix("XDG_MUSIC_DIR=").and_then(expand)));
    let music = xdg_music_env.and_then(expand).or(from_file).or_else(|| home.map(|h| h.join("Music"))).unwrap_or_else(|| PathBuf::from("."));
    music.join("Pianola")
}

/// The default export folder of this machine.
pub fn system_export_dir() -> PathBuf {
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")).map(PathBuf::from);
    let user_dirs = home.as_ref().and_then(|h| std::fs::read_to_string(h.join(".config/user-dirs.dirs")).ok());
    let env = std::env::var("XDG_MUSIC_DIR").ok();
    default_export_dir(home.as_deref(), env.as_deref(), user_dirs.as_deref())
}

/// A file-system-safe stem from the host's track name ("Lead Vox" -> "Lead Vox - piano cover").
pub fn export_stem(track: Option<&str>) -> String {
    let clean: String = track.unwrap_or("").chars().map(|c| if c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.') { c } else { '_' }).collect();
    let clean = clean.trim().trim_matches('.').to_string();
    if clean.is_empty() {
        "Pianola cover".to_string()
    } else {
        format!("{clean} - piano cover")
    }
}

/// The first `STEM.mid`, `STEM 2.mid`, ... in `dir` that does not exist: exports never overwrite.
pub fn next_export_path(dir: &Path, stem: &str, exists: impl Fn(&Path) -> bool) -> PathBuf {
    let first = dir.join(format!("{stem}.mid"));
    if !exists(&first) {
        return first;
    }
    (2..10_000).map(|k| dir.join(format!("{stem} {k}.mid"))).find(|p| !exists(p)).unwrap_or(first)
}

/// The tempo grid written into an exported file: the capture's tempo (beat 0 at 0 s, so the file
/// lines up when dropped at the start of the project), else the host's, else 120 bpm.
pub fn export_grid(capture: &CaptureSummary, host_tempo: f64, host_beats_per_bar: u32) -> BeatGrid {
    let bpm = if capture.notes > 0 && capture.seconds_per_beat > 0.0 && capture.seconds_per_beat.is_finite() {
        60.0 / capture.seconds_per_beat
    } else if host_tempo.is_finite() && host_tempo > 0.0 {
        host_tempo
    } else {
        120.0
    };
    let bpb = if capture.notes > 0 { capture.beats_per_bar } else { host_beats_per_bar };
    BeatGrid { bpm, beats_per_bar: bpb.max(1), first_beat_s: 0.0, first_downbeat_beat: capture.first_downbeat_beat }
}

/// Writes the cover as a standard MIDI file into `dir` (created if missing); returns the path.
pub fn export_cover(dir: &Path, stem: &str, cover: &Cover, grid: &BeatGrid) -> Result<PathBuf, String> {
    if cover.is_empty() {
        return Err("There is no cover to export yet: play the song once first.".into());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("Cannot create the folder {}: {e}", dir.display()))?;
    let path = next_export_path(dir, stem, |p| p.exists());
    let bytes = crate::midi_file::cover_to_smf(cover, grid).map_err(|e| format!("Cannot write MIDI: {e}"))?;
    std::fs::write(&path, bytes).map_err(|e| format!("Cannot write {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::{CoverNote, Hand};
    use crate::params::SavedNote;

    fn song(covered: Vec<[f64; 2]>, notes: usize) -> CapturedSong {
        CapturedSong {
            notes: (0..notes).map(|k| SavedNote(k as f64, k as f64 + 0.5, 60, 0.5, 0.5)).collect(),
            beats_per_bar: 4,
            seconds_per_beat: 0.5,
            covered,
            ..CapturedSong::default()
        }
    }

    fn ready(capture: CaptureSummary, cover_notes: usize) -> Snapshot {
        Snapshot { model: ModelState::Ready, capture, cover_notes, sample_rate: 48000.0, processing: true, host_has_beat: true, ..Snapshot::default() }
    }

    #[test]
    fn a_detuned_quiet_capture_is_pointed_out_in_capture_mode_only() {
        let s = Snapshot { tuning_cents: Some(-23.4), quiet_song: Some("onset 0.3 / frame 0.2".into()), ..Snapshot::default() };
        let texts: Vec<String> = facts(&s).into_iter().map(|i| i.text).collect();
        assert!(texts.iter().any(|t| t == "Tuned 23 cents flat of A440"), "{texts:?}");
        assert!(texts.iter().any(|t| t == "Quiet song: listening closer"), "{texts:?}");
        // In tune enough: nothing said.
        let near = Snapshot { tuning_cents: Some(6.0), ..Snapshot::default() };
        assert!(!facts(&near).iter().any(|i| i.text.starts_with("Tuned")));
        let live = Snapshot { mode: Mode::Live, ..s };
        assert!(!facts(&live).iter().any(|i| i.text.starts_with("Tuned") || i.text.starts_with("Quiet")));
    }

    #[test]
    fn capture_length_is_the_union_of_the_covered_ranges() {
        let s = CaptureSummary::of(&song(vec![[0.0, 32.0], [16.0, 40.0], [64.0, 66.0]], 3));
        assert_eq!(s.beats, 42.0);
        assert_eq!(s.bars(), 10.5);
        assert_eq!(s.seconds(), 21.0);
        assert_eq!(s.length_text(), "10 bars · 0:21");
        assert_eq!(CaptureSummary::of(&song(vec![[0.0, 3.0]], 0)).length_text(), "less than a bar · 0:02");
        assert_eq!(CaptureSummary::of(&song(vec![[0.0, 4.0]], 0)).length_text(), "1 bar · 0:02");
        // Nonsense ranges from a corrupt project count nothing.
        assert_eq!(CaptureSummary::of(&song(vec![[5.0, 1.0], [f64::NAN, 3.0]], 0)).beats, 0.0);
        assert!(CaptureSummary::of(&CapturedSong::default()).is_empty());
    }

    #[test]
    fn headline_follows_the_state_a_producer_is_in() {
        let empty = ready(CaptureSummary::default(), 0);
        assert!(headline(&empty).text.starts_with("Press play"), "{:?}", headline(&empty));
        assert_eq!(headline(&Snapshot::default()).text, "Loading the note model…");

        let captured = CaptureSummary::of(&song(vec![[0.0, 64.0]], 120));
        let h = headline(&ready(captured, 300));
        assert_eq!((h.level, h.text.as_str()), (Level::Good, "Cover ready · 300 notes"));
        let h = headline(&Snapshot { host_playing: true, ..ready(captured, 300) });
        assert_eq!(h.text, "Playing the cover · 300 notes");
        let h = headline(&Snapshot { recording: true, ..ready(captured, 300) });
        assert_eq!((h.level, h.text.as_str()), (Level::Busy, "Listening… 16 bars · 0:32 captured"));
        let h = headline(&ready(captured, 0));
        assert_eq!(h.level, Level::Warn);
        assert!(h.text.contains("heard no notes"));

        let h = headline(&Snapshot { bypass: true, ..ready(captured, 300) });
        assert!(h.text.starts_with("Bypassed"));

        let raw = "the note model could not be loaded: bad protobuf; Pianola passes the audio through but cannot transcribe";
        let h = headline(&Snapshot { model: ModelState::Failed(raw.into()), bypass: true, ..Snapshot::default() });
        assert_eq!(h.level, Level::Error);
        assert!(h.text.starts_with("The note model could not be loaded") && h.text.contains("passes through"), "{}", h.text);
        assert_eq!(h.detail, raw, "the raw error stays available");

        let h = headline(&Snapshot { host_playing: true, host_has_beat: false, ..ready(captured, 300) });
        assert!(h.text.contains("no song position"), "{}", h.text);

        let h = headline(&Snapshot { error: Some("the worker recovered from a panic: index out of bounds".into()), ..ready(captured, 300) });
        assert_eq!(h.level, Level::Warn);
        assert!(h.text.contains("recovered"));
    }

    #[test]
    fn live_mode_reports_its_latency_in_milliseconds() {
        let live = Snapshot { mode: Mode::Live, recording: true, latency_samples: 12_348, ..ready(CaptureSummary::default(), 10) };
        assert_eq!(headline(&live).text, "Live: notes follow the audio 257 ms late");
        let f = facts(&live);
        assert!(f.iter().any(|i| i.text == "Latency 257 ms"), "{f:?}");
        assert!(!f.iter().any(|i| i.text.starts_with("Nothing captured")), "Live without a capture says nothing about captures");
        let capture = facts(&ready(CaptureSummary::default(), 0));
        assert!(!capture.iter().any(|i| i.text.starts_with("Latency")), "no latency line in Capture mode");
    }

    #[test]
    fn worker_lag_is_shown_in_seconds_and_warns_when_large() {
        let s = |backlog| facts(&Snapshot { backlog_samples: backlog, ..ready(CaptureSummary::default(), 0) });
        assert!(s(0).iter().any(|i| i.text == "Keeping up"));
        let busy = s(24_000);
        assert!(busy.iter().any(|i| i.level == Level::Busy && i.text == "Catching up (0.5 s)"), "{busy:?}");
        let late = s(48_000 * 3);
        assert!(late.iter().any(|i| i.level == Level::Warn && i.text == "Listening 3.0 s behind"), "{late:?}");
        // No sample rate yet: no division by zero.
        assert_eq!(backlog_seconds(&Snapshot { backlog_samples: 1000, ..Snapshot::default() }), 0.0);
    }

    #[test]
    fn note_names_and_spans() {
        assert_eq!(note_name(60), "C4");
        assert_eq!(note_name(21), "A0");
        assert_eq!(note_name(108), "C8");
        assert_eq!(note_name(61), "C#4");
        assert_eq!(span_text(14), "14 semitones · ninth");
        assert_eq!(span_text(12), "12 semitones · octave");
    }

    #[test]
    fn window_size_is_restored_once_then_follows_the_user() {
        let saved = (1200.0, 800.0);
        let mut k = SizeKeeper::default();
        k.opened(saved);
        // The window opens at the default size: ask once, save nothing while waiting.
        assert_eq!(k.frame((1000.0, 640.0), saved), (Some(saved), None));
        assert_eq!(k.frame((1000.0, 640.0), saved), (None, None));
        // The host applied it.
        assert_eq!(k.frame(saved, saved), (None, None));
        // The user drags the corner: the new size is saved.
        assert_eq!(k.frame((1300.0, 820.0), saved), (None, Some((1300.0, 820.0))));
        // A host that refuses the resize: after the wait the actual size is kept.
        let mut k = SizeKeeper::default();
        k.opened(saved);
        let mut last = (None, None);
        for _ in 0..=RESIZE_WAIT_FRAMES {
            last = k.frame((1000.0, 640.0), saved);
        }
        assert_eq!(last, (None, Some((1000.0, 640.0))));
    }

    #[test]
    fn saved_sizes_are_clamped_and_survive_serde() {
        let p = EditorPrefs { width: 1e9, height: f32::NAN, export_dir: String::new() };
        assert_eq!(p.size(), (MAX_SIZE.0, DEFAULT_SIZE.1));
        let json = serde_json::to_string(&EditorPrefs { width: 1234.0, ..EditorPrefs::default() }).unwrap();
        let back: EditorPrefs = serde_json::from_str(&json).unwrap();
        assert_eq!(back.width, 1234.0);
        // An older project without the field opens at the default.
        let old: EditorPrefs = serde_json::from_str("{}").unwrap();
        assert_eq!(old, EditorPrefs::default());
    }

    #[test]
    fn export_folder_follows_xdg_then_home() {
        let home = Path::new("/home/ann");
        assert_eq!(default_export_dir(Some(home), None, None), PathBuf::from("/home/ann/Music/Pianola"));
        let dirs = "# written by xdg-user-dirs-update\nXDG_DESKTOP_DIR=\"$HOME/Desktop\"\nXDG_MUSIC_DIR=\"$HOME/Musik\"\n";
        assert_eq!(default_export_dir(Some(home), None, Some(dirs)), PathBuf::from("/home/ann/Musik/Pianola"));
        assert_eq!(default_export_dir(Some(home), Some("/data/music"), Some(dirs)), PathBuf::from("/data/music/Pianola"));
        assert_eq!(default_export_dir(None, None, None), PathBuf::from("./Pianola"));
    }

    #[test]
    fn exports_never_overwrite_and_are_named_after_the_track() {
        assert_eq!(export_stem(Some("Lead Vox")), "Lead Vox - piano cover");
        assert_eq!(export_stem(Some("a/b:c")), "a_b_c - piano cover");
        assert_eq!(export_stem(None), "Pianola cover");
        assert_eq!(export_stem(Some("..")), "Pianola cover");
        let taken = [PathBuf::from("/x/S.mid"), PathBuf::from("/x/S 2.mid")];
        assert_eq!(next_export_path(Path::new("/x"), "S", |p| taken.iter().any(|t| t == p)), PathBuf::from("/x/S 3.mid"));
    }

    #[test]
    fn export_writes_a_readable_file_at_the_capture_tempo() {
        let dir = std::env::temp_dir().join(format!("pianola-editor-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let notes = vec![
            CoverNote { start_beat: 0.0, end_beat: 1.0, pitch: 72, velocity: 90, hand: Hand::Right, melody: true },
            CoverNote { start_beat: 0.0, end_beat: 2.0, pitch: 48, velocity: 70, hand: Hand::Left, melody: false },
        ];
        let cover = Cover { notes, pedal: vec![crate::notes::PedalSpan { down_beat: 0.125, up_beat: 2.0 }] };
        let capture = CaptureSummary { notes: 2, beats: 8.0, beats_per_bar: 3, seconds_per_beat: 0.6, first_downbeat_beat: 0.0 };
        let grid = export_grid(&capture, 90.0, 4);
        assert_eq!((grid.bpm, grid.beats_per_bar), (100.0, 3));
        let a = export_cover(&dir, "Song - piano cover", &cover, &grid).unwrap();
        let b = export_cover(&dir, "Song - piano cover", &cover, &grid).unwrap();
        assert_ne!(a, b);
        let bytes = std::fs::read(&a).unwrap();
        let smf = midly::Smf::parse(&bytes).unwrap();
        assert_eq!(smf.tracks.len(), 3);
        assert!(export_cover(&dir, "x", &Cover::default(), &grid).unwrap_err().contains("no cover"));
        // Without a capture (Live mode) the host's tempo is used.
        assert_eq!(export_grid(&CaptureSummary::default(), 90.0, 4).bpm, 90.0);
        assert_eq!(export_grid(&CaptureSummary::default(), 0.0, 0).bpm, 120.0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
