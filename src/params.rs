//! The plugin's parameters (stable ids: renaming a field is fine, changing an id breaks saved
//! projects) and its persisted capture: the transcription in beats, so a project reopens with its
//! cover and any arrangement setting can re-arrange it without the audio.

use crate::arrange::dynamics::{BeatLoudness, SILENT_DB};
use crate::arrange::quantize::{MAX_LAG_S, MIN_LAG_S};
use crate::arrange::{ArrangeInput, ArrangeSettings, BeatNote, Style};
use crate::decode::DecodeParams;
use crate::notes::Cover;
use crate::tempo::SongGrid;
use nice_plug::params::persist::PersistentField;
use nice_plug::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What the plugin does with the audio it hears.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The first pass over each beat records; the cover then plays on every later pass.
    #[id = "capture"]
    Capture,
    /// Notes go out as soon as they are known, a fixed latency behind the audio.
    #[id = "live"]
    Live,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StyleParam {
    #[id = "block"]
    Block,
    #[id = "broken"]
    Broken,
    #[id = "arpeggio"]
    Arpeggio,
}

impl From<StyleParam> for Style {
    fn from(s: StyleParam) -> Style {
        match s {
            StyleParam::Block => Style::Block,
            StyleParam::Broken => Style::Broken,
            StyleParam::Arpeggio => Style::Arpeggio,
        }
    }
}

/// Where the melody comes from (`pitch::VoiceMode`).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MelodyParam {
    /// A lone voice is told from the audio.
    #[id = "auto"]
    Auto,
    /// The pitch tracker made for voices.
    #[id = "voice"]
    Voice,
    /// The note model (every note heard).
    #[id = "mix"]
    Mix,
}

impl From<MelodyParam> for crate::pitch::VoiceMode {
    fn from(m: MelodyParam) -> Self {
        match m {
            MelodyParam::Auto => crate::pitch::VoiceMode::Auto,
            MelodyParam::Voice => crate::pitch::VoiceMode::Voice,
            MelodyParam::Mix => crate::pitch::VoiceMode::Mix,
        }
    }
}

#[derive(Params)]
pub struct PianolaParams {
    #[id = "mode"]
    pub mode: EnumParam<Mode>,
    #[id = "density"]
    pub density: FloatParam,
    #[id = "style"]
    pub style: EnumParam<StyleParam>,
    #[id = "quantize"]
    pub quantize: FloatParam,
    /// Higher finds more notes: the decoder's onset threshold is `1 - sensitivity`.
    #[id = "sensitivity"]
    pub sensitivity: FloatParam,
    #[id = "hand_span"]
    pub hand_span: IntParam,
    #[id = "lowest"]
    pub lowest_note: IntParam,
    #[id = "highest"]
    pub highest_note: IntParam,
    #[id = "velocity"]
    pub velocity: FloatParam,
    /// Sustain pedal (CC64) with the harmony.
    #[id = "pedal"]
    pub pedal: BoolParam,
    /// MIDI channel 1..16 of the notes sent.
    #[id = "channel"]
    pub channel: IntParam,
    /// Where the melody of a captured stretch comes from (Capture mode).
    #[id = "melody"]
    pub melody: EnumParam<MelodyParam>,
    #[id = "bypass"]
    pub bypass: BoolParam,

    #[persist = "capture"]
    pub capture: Arc<CaptureStore>,

    /// The editor's window size and export folder (egui's window state is not persistable).
    #[persist = "editor"]
    pub editor: Arc<parking_lot::Mutex<EditorPrefs>>,
}

impl Default for PianolaParams {
    fn default() -> Self {
        let d = ArrangeSettings::default();
        let percent = || formatters::v2s_f32_percentage(0);
        Self {
            mode: EnumParam::new("Mode", Mode::Capture),
            density: FloatParam::new("Density", d.density, FloatRange::Linear { min: 0.0, max: 1.0 })
                .with_unit("%")
                .with_value_to_string(percent())
                .with_string_to_value(formatters::s2v_f32_percentage()),
            style: EnumParam::new("Style", StyleParam::Broken),
            quantize: FloatParam::new("Quantize", d.quantize_strength, FloatRange::Linear { min: 0.0, max: 1.0 })
                .with_unit("%")
                .with_value_to_string(percent())
                .with_string_to_value(formatters::s2v_f32_percentage()),
            sensitivity: FloatParam::new("Sensitivity", 1.0 - DecodeParams::default().onset_threshold, FloatRange::Linear { min: 0.05, max: 0.95 })
                .with_unit("%")
                .with_value_to_string(percent())
                .with_string_to_value(formatters::s2v_f32_percentage()),
            hand_span: IntParam::new("Hand span", d.hand_span as i32, IntRange::Linear { min: 10, max: 18 }).with_unit(" semitones"),
            lowest_note: IntParam::new("Lowest note", d.lowest_key as i32, IntRange::Linear { min: 21, max: 108 })
                .with_value_to_string(formatters::v2s_i32_key_formatter())
                .with_string_to_value(formatters::s2v_i32_key_formatter()),
            highest_note: IntParam::new("Highest note", d.highest_key as i32, IntRange::Linear { min: 21, max: 108 })
                .with_value_to_string(formatters::v2s_i32_key_formatter())
                .with_string_to_value(formatters::s2v_i32_key_formatter()),
            velocity: FloatParam::new("Velocity", d.velocity_scale, FloatRange::Linear { min: 0.0, max: 2.0 })
                .with_unit("%")
                .with_value_to_string(percent())
                .with_string_to_value(formatters::s2v_f32_percentage()),
            pedal: BoolParam::new("Sustain pedal", d.pedal),
            channel: IntParam::new("MIDI channel", 1, IntRange::Linear { min: 1, max: 16 }),
            melody: EnumParam::new("Melody from", MelodyParam::Auto),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
            capture: Arc::new(CaptureStore::default()),
            editor: Arc::default(),
        }
    }
}

impl PianolaParams {
    /// The arranger's settings from the current parameter values.
    pub fn arrange_settings(&self) -> ArrangeSettings {
        ArrangeSettings {
            density: self.density.value(),
            style: self.style.value().into(),
            quantize_strength: self.quantize.value(),
            hand_span: self.hand_span.value().clamp(1, 127) as u8,
            lowest_key: self.lowest_note.value().clamp(0, 127) as u8,
            highest_key: self.highest_note.value().clamp(0, 127) as u8,
            velocity_scale: self.velocity.value(),
            pedal: self.pedal.value(),
            ..ArrangeSettings::default()
        }
        .sanitized()
    }

    /// The decoder's settings: basic-pitch's defaults with the onset threshold from the sensitivity.
    pub fn decode_params(&self) -> DecodeParams {
        DecodeParams { onset_threshold: (1.0 - self.sensitivity.value()).clamp(0.05, 0.95), ..DecodeParams::default() }
    }

    /// MIDI channel as 0..15.
    pub fn midi_channel(&self) -> u8 {
        (self.channel.value().clamp(1, 16) - 1) as u8
    }
}

/// One captured note in beats: `start_beat, end_beat, pitch, amplitude, salience`. Saved as one
/// string `"start end pitch amplitude salience"` with Rust's shortest round-trip float formatting:
/// serde_json (without its `float_roundtrip` feature) may read a float back one ulp off, and a
/// restored project must arrange exactly the cover it saved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SavedNote(pub f64, pub f64, pub u8, pub f32, pub f32);

impl Serialize for SavedNote {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{} {} {} {} {}", self.0, self.1, self.2, self.3, self.4))
    }
}

impl<'de> Deserialize<'de> for SavedNote {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bad = || serde::de::Error::custom(format!("bad saved note '{text}'"));
        let mut it = text.split_ascii_whitespace();
        let mut next = || it.next().ok_or_else(bad);
        let note = SavedNote(
            next()?.parse().map_err(|_| bad())?,
            next()?.parse().map_err(|_| bad())?,
            next()?.parse().map_err(|_| bad())?,
            next()?.parse().map_err(|_| bad())?,
            next()?.parse().map_err(|_| bad())?,
        );
        Ok(note)
    }
}

impl From<&BeatNote> for SavedNote {
    fn from(n: &BeatNote) -> Self {
        SavedNote(n.start_beat, n.end_beat, n.pitch, n.amplitude, n.salience)
    }
}

impl From<&SavedNote> for BeatNote {
    fn from(n: &SavedNote) -> Self {
        BeatNote { start_beat: n.0, end_beat: n.1, pitch: n.2, amplitude: n.3, salience: n.4 }
    }
}

/// Everything re-arranging needs, saved with the project.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CapturedSong {
    pub version: u32,
    /// The transcription of every captured stretch, in beats, sorted by start.
    pub notes: Vec<SavedNote>,
    pub beats_per_bar: u32,
    #[serde(with = "exact_f64")]
    pub first_downbeat_beat: f64,
    #[serde(with = "exact_f64")]
    pub seconds_per_beat: f64,
    /// Beat ranges `[start, end)` already captured (Capture mode records only outside them).
    #[serde(with = "exact_ranges")]
    pub covered: Vec<[f64; 2]>,
    /// The captured audio's loudness per beat (the cover's dynamics); empty in projects saved
    /// before it was kept.
    pub loudness: BeatLoudness,
}

/// Exact beat ranges through JSON, as `"start end"` strings.
mod exact_ranges {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(x: &[[f64; 2]], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(x.iter().map(|r| format!("{} {}", r[0], r[1])))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[f64; 2]>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(|t| {
                let mut it = t.split_ascii_whitespace().map(str::parse::<f64>);
                match (it.next(), it.next()) {
                    (Some(Ok(a)), Some(Ok(b))) => Ok([a, b]),
                    _ => Err(serde::de::Error::custom(format!("bad range '{t}'"))),
                }
            })
            .collect()
    }
}

/// Exact f64 through JSON (see [`SavedNote`]).
mod exact_f64 {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&x.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(|_| serde::de::Error::custom(format!("bad number '{text}'")))
    }
}

/// Version of the saved capture this build writes; a newer one is not loaded (see [`filter_state`]).
pub const CAPTURE_VERSION: u32 = 1;

/// Key of the persisted capture in the plugin state's `fields`.
pub const CAPTURE_FIELD: &str = "capture";

impl Default for CapturedSong {
    fn default() -> Self {
        Self {
            version: CAPTURE_VERSION,
            notes: vec![],
            beats_per_bar: 4,
            first_downbeat_beat: 0.0,
            seconds_per_beat: 0.5,
            covered: vec![],
            loudness: BeatLoudness::default(),
        }
    }
}

impl CapturedSong {
    /// A loaded capture made safe for the arranger and the timeline: notes with non-finite or
    /// reversed beats or a pitch past 127 are dropped, amplitudes and saliences outside 0..1 clamped,
    /// and the meter and covered ranges brought back to sane values. A capture this build saved
    /// passes unchanged.
    pub fn sanitized(mut self) -> Self {
        let unit = |x: f32| if x.is_finite() { x.clamp(0.0, 1.0) } else { 0.0 };
        self.notes.retain(|n| n.0.is_finite() && n.1.is_finite() && n.1 >= n.0 && n.2 <= 127);
        for n in &mut self.notes {
            n.3 = unit(n.3);
            n.4 = unit(n.4);
        }
        if !self.notes.is_sorted_by(|a, b| a.0 <= b.0) {
            self.notes.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        self.beats_per_bar = self.beats_per_bar.clamp(1, 32);
        if !self.first_downbeat_beat.is_finite() {
            self.first_downbeat_beat = 0.0;
        }
        if !(self.seconds_per_beat.is_finite() && (0.05..=10.0).contains(&self.seconds_per_beat)) {
            self.seconds_per_beat = CapturedSong::default().seconds_per_beat;
        }
        self.covered.retain(|r| r[0].is_finite() && r[1].is_finite() && r[0] <= r[1]);
        self.loudness = self.loudness.sanitized();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.notes.is_empty() && self.covered.is_empty()
    }

    pub fn arrange_input(&self) -> ArrangeInput {
        ArrangeInput {
            notes: self.notes.iter().map(BeatNote::from).collect(),
            beats_per_bar: self.beats_per_bar,
            first_downbeat_beat: self.first_downbeat_beat,
            seconds_per_beat: self.seconds_per_beat,
            loudness: self.loudness.clone(),
        }
    }

    /// The song's own grid when the captured song does not follow the host's (another tempo, or
    /// beats offset by more than the transcriber's lag): see [`crate::tempo::song_grid`].
    pub fn song_grid(&self) -> Option<SongGrid> {
        let onsets: Vec<(f64, f64)> = self.notes.iter().map(|n| (n.0, (n.3 as f64).max(0.05) * (n.1 - n.0).clamp(0.0, 1.0))).collect();
        let spb = self.seconds_per_beat;
        crate::tempo::song_grid(&onsets, (MIN_LAG_S / spb, MAX_LAG_S / spb))
    }

    /// The arranger's input on the song's own beats (`grid`), the loudness resampled to them.
    pub fn arrange_input_on(&self, grid: &SongGrid) -> ArrangeInput {
        let host = self.arrange_input();
        let notes = host.notes.iter().map(|n| BeatNote { start_beat: grid.to_song(n.start_beat), end_beat: grid.to_song(n.end_beat), ..*n }).collect();
        let loudness = if self.loudness.is_empty() {
            BeatLoudness::default()
        } else {
            let first = grid.to_song(self.loudness.first_beat as f64).floor() as i64;
            let end = grid.to_song((self.loudness.first_beat + self.loudness.db.len() as i64) as f64).ceil() as i64;
            let db = (first..end.max(first)).map(|k| self.loudness.at(grid.to_host(k as f64 + 0.5).floor() as i64).unwrap_or(SILENT_DB)).collect();
            BeatLoudness { first_beat: first, db }
        };
        ArrangeInput {
            notes,
            beats_per_bar: self.beats_per_bar,
            first_downbeat_beat: grid.to_song(self.first_downbeat_beat).round(),
            seconds_per_beat: self.seconds_per_beat * grid.period,
            loudness,
        }
    }

    /// The cover of the capture, on the song's own beats where it does not follow the host's grid
    /// (then back on the host's beats, as the timeline keys them), and that grid.
    pub fn cover(&self, settings: &ArrangeSettings) -> (Cover, Option<SongGrid>) {
        match self.song_grid() {
            None => (crate::arrange::arrange(&self.arrange_input(), settings), None),
            Some(grid) => (crate::tempo::cover_to_host(crate::arrange::arrange(&self.arrange_input_on(&grid), settings), &grid), Some(grid)),
        }
    }
}

/// The persisted capture. The host restoring a project (or the editor clearing it) goes through
/// [`PersistentField::set`], which bumps [`CaptureStore::loaded_generation`] so the worker re-arranges
/// it; the worker's own updates go through [`CaptureStore::store`] and do not.
#[derive(Debug, Default)]
pub struct CaptureStore {
    song: Mutex<CapturedSong>,
    loaded: AtomicU64,
}

impl CaptureStore {
    pub fn get(&self) -> CapturedSong {
        self.song.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The worker's update (does not count as a load).
    pub fn store(&self, song: CapturedSong) {
        if let Ok(mut s) = self.song.lock() {
            *s = song;
        }
    }

    /// Increases each time the capture is replaced from outside (state load, clear).
    pub fn loaded_generation(&self) -> u64 {
        self.loaded.load(Ordering::Acquire)
    }

    /// Forgets the capture (the editor's "clear" button): the next pass records again.
    pub fn clear(&self) {
        PersistentField::set(self, CapturedSong::default());
    }
}

impl<'a> PersistentField<'a, CapturedSong> for CaptureStore {
    fn set(&self, new_value: CapturedSong) {
        self.store(new_value.sanitized());
        self.loaded.fetch_add(1, Ordering::AcqRel);
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&CapturedSong) -> R,
    {
        match self.song.lock() {
            Ok(s) => f(&s),
            Err(p) => f(&p.into_inner()),
        }
    }
}

impl<'a> PersistentField<'a, CapturedSong> for Arc<CaptureStore> {
    fn set(&self, new_value: CapturedSong) {
        PersistentField::set(self.as_ref(), new_value)
    }
    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&CapturedSong) -> R,
    {
        PersistentField::map(self.as_ref(), f)
    }
}

/// Checks a plugin state before nice-plug loads it (`Plugin::filter_state`). nice-plug skips a
/// persisted field it cannot deserialize without a word in a release build and leaves the old value
/// in place; here a capture that is damaged, missing, or saved by a newer Pianola is replaced by an
/// empty capture (the next pass records again) and the reason is logged. Returns that reason.
pub fn filter_state(state: &mut nice_plug::prelude::PluginState) -> Option<String> {
    let problem = match state.fields.get(CAPTURE_FIELD) {
        None => Some("the state has no capture".to_string()),
        Some(text) => match serde_json::from_str::<CapturedSong>(text) {
            Ok(song) if song.version > CAPTURE_VERSION => {
                Some(format!("it was saved by a newer Pianola (capture version {}, this one reads up to {CAPTURE_VERSION})", song.version))
            }
            Ok(_) => None,
            Err(e) => Some(format!("it is damaged ({e})")),
        },
    };
    if let Some(reason) = &problem {
        let empty = serde_json::to_string(&CapturedSong::default()).unwrap_or_default();
        state.fields.insert(CAPTURE_FIELD.to_string(), empty);
        nice_warn!("Pianola: the saved capture was not restored because {reason}; starting with an empty capture");
    }
    problem
}

/// A capture for the first plugin instance of this process: `pianola standalone --song` sets it
/// (the song shown as already captured); inside a host it is always `None`.
static PRELOADED_CAPTURE: std::sync::Mutex<Option<CapturedSong>> = std::sync::Mutex::new(None);

/// Taken once, by the first plugin instance.
pub fn take_preloaded_capture() -> Option<CapturedSong> {
    PRELOADED_CAPTURE.lock().ok()?.take()
}

pub fn set_preloaded_capture(song: CapturedSong) {
    if let Ok(mut p) = PRELOADED_CAPTURE.lock() {
        *p = Some(song);
    }
}

/// The window size and export folder, kept with the project (nice-plug-egui's window state is not
/// persistable). Sizes are in logical points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EditorPrefs {
    pub width: f32,
    pub height: f32,
    /// Folder for exported covers; empty: the default (see `editor::state::default_export_dir`).
    pub export_dir: String,
}

pub const DEFAULT_SIZE: (f32, f32) = (1000.0, 640.0);
pub const MIN_SIZE: (f32, f32) = (760.0, 480.0);
pub const MAX_SIZE: (f32, f32) = (3840.0, 2160.0);

impl Default for EditorPrefs {
    fn default() -> Self {
        Self { width: DEFAULT_SIZE.0, height: DEFAULT_SIZE.1, export_dir: String::new() }
    }
}

impl EditorPrefs {
    /// The saved size, clamped to what the editor supports (a hand-edited or corrupt project
    /// cannot open a 0x0 or 100000-pixel window).
    pub fn size(&self) -> (f32, f32) {
        let ok = |v: f32, lo: f32, hi: f32, d: f32| if v.is_finite() { v.clamp(lo, hi) } else { d };
        (ok(self.width, MIN_SIZE.0, MAX_SIZE.0, DEFAULT_SIZE.0), ok(self.height, MIN_SIZE.1, MAX_SIZE.1, DEFAULT_SIZE.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_arrangers_and_the_decoders() {
        let p = PianolaParams::default();
        assert_eq!(p.arrange_settings(), ArrangeSettings::default().sanitized());
        assert_eq!(p.decode_params(), DecodeParams::default());
        assert_eq!(p.midi_channel(), 0);
    }

    #[test]
    fn capture_round_trips_through_the_persisted_fields() {
        let p = PianolaParams::default();
        let song = CapturedSong {
            notes: vec![SavedNote(0.5, 1.25, 60, 0.5, 0.25)],
            beats_per_bar: 3,
            first_downbeat_beat: 1.0,
            seconds_per_beat: 0.6,
            covered: vec![[0.0, 16.0]],
            ..CapturedSong::default()
        };
        p.capture.store(song.clone());
        assert_eq!(p.capture.loaded_generation(), 0);
        let fields = p.serialize_fields();
        let q = PianolaParams::default();
        q.deserialize_fields(&fields);
        assert_eq!(q.capture.get(), song);
        // Floats survive bit for bit (serde_json alone may be an ulp off).
        let tricky =
            CapturedSong { notes: vec![SavedNote(0.1 + 0.2, 1.8630143613000754, 60, 0.36545783, f32::MIN_POSITIVE)], seconds_per_beat: 60.0 / 116.0, ..song };
        p.capture.store(tricky.clone());
        q.deserialize_fields(&p.serialize_fields());
        assert_eq!(q.capture.get(), tricky);
        assert_eq!(q.capture.loaded_generation(), 2, "each load counts");
        assert_eq!(q.capture.get().arrange_input().notes[0].pitch, 60);
    }
}
