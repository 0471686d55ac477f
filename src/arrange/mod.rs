//! The arranger: a transcription (notes in beats, with contour salience) in, a playable two-hand
//! piano cover out.
//!
//! Stages, each in its own submodule and each pure and deterministic:
//! 0. [`cleaned`]: valid notes, decoder fragments of one note merged (a same-pitch re-onset on the
//!    beat is kept: a repeated note).
//! 1. [`quantize::align_lag`]: the transcriber's systematic onset lag against the beat grid is
//!    measured and removed (slow attacks such as a choir make every onset late by 50..130 ms).
//!    A lone line (a sung melody, [`harmony::is_lone_line`]) is made one note at a time.
//! 2. [`melody`]: one continuous line, picked by a Viterbi search over 1/16 slots (salience,
//!    register, continuity, a bonus for a new onset), then quantised (to the grid point the line's
//!    own rhythm makes likely), made monophonic and carried into the right-hand register.
//! 3. [`harmony`]: the key and a chord per beat. From a band: Krumhansl profiles and a Viterbi over
//!    triads with a diatonic prior and a change penalty, so it does not flicker. From a lone melody,
//!    whose harmony is not heard: Aarden-Essen melody profiles and an HMM counted in Bach chorales.
//! 4. [`accompaniment`]: layers added by density (bass, chords, harmonised melody, eighth-note
//!    patterns in the chosen style), voiced under the melody; the melody itself played with
//!    [`phrasing`] (repeated notes detached, phrase ends released early).
//! 5. [`quantize`] (the grid, with a strength) and [`playability`] (range, hands of <= 5 notes within
//!    the span, no crossing, the melody on top, no re-struck sounding key), then sorted.
//! 6. [`dynamics`] (velocities from the audio's loudness per beat, accents, the melody above what
//!    is struck with it) and [`pedal`] (the sustain pedal with the harmony), on the finished notes.
//!
//! No I/O, no randomness, no hash maps: the same input always gives the same cover.

pub mod accompaniment;
mod chorale_net;
mod chorale_stats;
pub mod dynamics;
pub mod harmony;
pub mod melody;
pub mod pedal;
pub mod phrasing;
pub mod playability;
pub mod quantize;

use crate::notes::{BeatGrid, Cover, FrameOutputs, Hand, Note, LOWEST_KEY, N_CONTOUR_BINS};

pub use crate::notes::FRAME_SECONDS;
/// Piano range.
pub const PIANO_LOW: u8 = 21;
pub const PIANO_HIGH: u8 = 108;
/// Most notes one hand may hold at an instant.
pub const MAX_NOTES_PER_HAND: usize = 5;
/// Notes further than this from beat 0 are ignored (keeps the work bounded on garbage input).
const MAX_ABS_BEAT: f64 = 1.0e6;

/// What the arranger works on: the transcription in beats and the meter.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ArrangeInput {
    pub notes: Vec<BeatNote>,
    pub beats_per_bar: u32,
    /// Beat position of the first downbeat; bars start at `first_downbeat_beat + k * beats_per_bar`.
    pub first_downbeat_beat: f64,
    pub seconds_per_beat: f64,
    /// The audio's loudness per beat, for the dynamics (empty: velocities from the notes alone).
    pub loudness: dynamics::BeatLoudness,
}

/// One transcribed note in beats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BeatNote {
    pub start_beat: f64,
    pub end_beat: f64,
    pub pitch: u8,
    /// basic-pitch's amplitude (mean note posterior), 0..1.
    pub amplitude: f32,
    /// Mean contour salience at the note's pitch over its frames, 0..1 (the amplitude when no
    /// contour is known).
    pub salience: f32,
}

impl ArrangeInput {
    /// Notes in seconds -> beats through `grid`; salience from the contour with the model's frame
    /// times (`frame * 256 / 22050` s).
    pub fn from_transcription(notes: &[Note], frames: Option<&FrameOutputs>, grid: &BeatGrid) -> Self {
        Self::from_transcription_with(notes, frames, grid, |f| f as f64 * FRAME_SECONDS)
    }

    /// As [`Self::from_transcription`], with the time in seconds of frame `t` given by `frame_time`
    /// (monotone non-decreasing).
    pub fn from_transcription_with(notes: &[Note], frames: Option<&FrameOutputs>, grid: &BeatGrid, frame_time: impl Fn(usize) -> f64) -> Self {
        let n_frames = frames.map_or(0, |f| f.contour.len() / N_CONTOUR_BINS);
        // First frame whose time is >= t.
        let first_at = |t: f64| -> usize {
            let (mut lo, mut hi) = (0usize, n_frames);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if frame_time(mid) < t {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        let out = notes
            .iter()
            .map(|n| {
                let mut salience = n.amplitude;
                if let Some(fr) = frames.filter(|_| n_frames > 0) {
                    let (a, b) = (first_at(n.start_s), first_at(n.end_s).max(first_at(n.start_s) + 1).min(n_frames));
                    if a < b && (LOWEST_KEY..=PIANO_HIGH).contains(&n.pitch) {
                        let centre = 3 * (n.pitch - LOWEST_KEY) as usize;
                        let (lo, hi) = (centre.saturating_sub(1), (centre + 1).min(N_CONTOUR_BINS - 1));
                        let mut sum = 0.0f64;
                        for t in a..b {
                            let row = fr.contour_row(t);
                            sum += row[lo..=hi].iter().fold(0.0f32, |m, &v| m.max(v)) as f64;
                        }
                        salience = (sum / (b - a) as f64) as f32;
                    }
                }
                BeatNote { start_beat: grid.beat_at(n.start_s), end_beat: grid.beat_at(n.end_s), pitch: n.pitch, amplitude: n.amplitude, salience }
            })
            .collect();
        Self {
            notes: out,
            beats_per_bar: grid.beats_per_bar,
            first_downbeat_beat: grid.first_downbeat_beat,
            seconds_per_beat: grid.seconds_per_beat(),
            loudness: dynamics::BeatLoudness::default(),
        }
    }
}

/// Texture of the accompaniment at higher densities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Style {
    /// Chords struck together.
    Block,
    /// Bass on the beat, the rest of the chord on the off-beat eighth.
    Broken,
    /// Chord tones one after another on eighths.
    Arpeggio,
}

/// The user's knobs.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ArrangeSettings {
    /// 0: the melody alone; 0.5: melody, bass and chords; 1: full two-hand texture.
    pub density: f32,
    pub style: Style,
    /// 0: onsets as played; 1: onsets exactly on the grid.
    pub quantize_strength: f32,
    /// Grid steps per beat (4 = 1/16 notes).
    pub grid_per_beat: u32,
    /// Widest interval one hand holds at an instant, in semitones.
    pub hand_span: u8,
    /// User key range (within A0..C8).
    pub lowest_key: u8,
    pub highest_key: u8,
    /// Scales all velocities.
    pub velocity_scale: f32,
    /// Sustain pedal (CC64) with the harmony.
    pub pedal: bool,
}

impl Default for ArrangeSettings {
    fn default() -> Self {
        Self {
            density: 0.5,
            style: Style::Broken,
            quantize_strength: 1.0,
            grid_per_beat: 4,
            hand_span: 14,
            lowest_key: PIANO_LOW,
            highest_key: PIANO_HIGH,
            velocity_scale: 1.0,
            pedal: true,
        }
    }
}

impl ArrangeSettings {
    /// The settings with every field forced into its valid range.
    pub fn sanitized(&self) -> Self {
        let f = |x: f32, d: f32| if x.is_finite() { x.clamp(0.0, 1.0) } else { d };
        let (mut lo, mut hi) = (self.lowest_key.clamp(PIANO_LOW, PIANO_HIGH), self.highest_key.clamp(PIANO_LOW, PIANO_HIGH));
        if lo > hi {
            std::mem::swap(&mut lo, &mut hi);
        }
        Self {
            density: f(self.density, 0.5),
            style: self.style,
            quantize_strength: f(self.quantize_strength, 1.0),
            grid_per_beat: self.grid_per_beat.clamp(1, 64),
            hand_span: self.hand_span.clamp(7, 24),
            lowest_key: lo,
            highest_key: hi,
            velocity_scale: if self.velocity_scale.is_finite() { self.velocity_scale.clamp(0.0, 4.0) } else { 1.0 },
            pedal: self.pedal,
        }
    }
}

/// What a generated note is for; decides who yields when the hands' limits are reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Right-hand notes under the melody.
    Harmony = 0,
    /// Left-hand chord or pattern notes.
    Chord = 1,
    Bass = 2,
    Melody = 3,
}

/// A note being built, before the playability pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Voice {
    pub start: f64,
    pub end: f64,
    pub pitch: u8,
    pub velocity: u8,
    pub hand: Hand,
    pub role: Role,
}

/// The valid notes of the input, sorted by (start, pitch, end).
pub fn cleaned(input: &ArrangeInput) -> Vec<BeatNote> {
    let mut v: Vec<BeatNote> = input
        .notes
        .iter()
        .filter(|n| {
            n.start_beat.is_finite()
                && n.end_beat.is_finite()
                && n.end_beat > n.start_beat
                && n.start_beat.abs() < MAX_ABS_BEAT
                && n.end_beat.abs() < MAX_ABS_BEAT
                && (PIANO_LOW..=PIANO_HIGH).contains(&n.pitch)
        })
        .map(|n| BeatNote {
            amplitude: if n.amplitude.is_finite() { n.amplitude.clamp(0.0, 1.0) } else { 0.0 },
            salience: if n.salience.is_finite() { n.salience.clamp(0.0, 1.0) } else { 0.0 },
            // A note longer than 64 beats is a stuck detection: cap it so the work stays bounded.
            end_beat: n.end_beat.min(n.start_beat + 64.0),
            ..*n
        })
        .collect();
    v.sort_by(|a, b| {
        a.start_beat
            .total_cmp(&b.start_beat)
            .then(a.pitch.cmp(&b.pitch))
            .then(a.end_beat.total_cmp(&b.end_beat))
            .then(a.amplitude.total_cmp(&b.amplitude))
            .then(a.salience.total_cmp(&b.salience))
    });
    let meter = Meter::of(input);
    let lag = quantize::onset_lag(&v, &meter);
    defragment(v, 0.025 / meter.seconds_per_beat, lag)
}

/// A same-pitch onset within this many beats of a beat (after the transcriber's lag) is a
/// re-struck note, not a fragment.
const RESTRIKE_TOLERANCE: f64 = 0.08;

/// Same-pitch notes that follow each other within `gap` beats are one note the decoder split (a
/// sung note's vibrato or a slow attack re-triggers an onset): merged, the amplitude
/// duration-weighted. Except where the later one starts on a beat (`lag` removed): that is a
/// repeated note, which a hymn or a sung line has on every few beats, and the decoder's split is
/// right there (merging them cost 0.1 of melody recall on the dev set). Input and output sorted by
/// (start, pitch, end).
fn defragment(notes: Vec<BeatNote>, gap: f64, lag: f64) -> Vec<BeatNote> {
    // Per pitch, the index in `out` of the latest note.
    let mut last: [Option<usize>; 128] = [None; 128];
    let mut out: Vec<BeatNote> = Vec::with_capacity(notes.len());
    for n in notes {
        if let Some(i) = last[n.pitch as usize] {
            let p = &mut out[i];
            let x = n.start_beat - lag;
            let restruck = (x - x.round()).abs() <= RESTRIKE_TOLERANCE;
            if n.start_beat <= p.end_beat + gap && !restruck {
                let (dp, dn) = (p.end_beat - p.start_beat, n.end_beat - n.start_beat);
                let w = |a: f32, b: f32| ((a as f64 * dp + b as f64 * dn) / (dp + dn).max(1e-12)) as f32;
                p.amplitude = w(p.amplitude, n.amplitude);
                p.salience = w(p.salience, n.salience);
                p.end_beat = p.end_beat.max(n.end_beat);
                continue;
            }
        }
        last[n.pitch as usize] = Some(out.len());
        out.push(n);
    }
    out
}

/// Meter facts the later stages need.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Meter {
    pub beats_per_bar: u32,
    pub first_downbeat: f64,
    pub seconds_per_beat: f64,
}

impl Meter {
    pub fn of(input: &ArrangeInput) -> Self {
        Self {
            beats_per_bar: input.beats_per_bar.clamp(1, 32),
            first_downbeat: if input.first_downbeat_beat.is_finite() && input.first_downbeat_beat.abs() < MAX_ABS_BEAT {
                input.first_downbeat_beat
            } else {
                0.0
            },
            seconds_per_beat: if input.seconds_per_beat.is_finite() && input.seconds_per_beat > 0.0 { input.seconds_per_beat.clamp(0.05, 10.0) } else { 0.5 },
        }
    }

    /// Position of integer beat `b` in its bar (0 = downbeat).
    pub fn beat_in_bar(&self, b: i64) -> u32 {
        let rel = (b as f64 - self.first_downbeat).round() as i64;
        rel.rem_euclid(self.beats_per_bar as i64) as u32
    }

    /// Whether integer beat `b` is a strong beat (the downbeat, or the bar's middle in even meters).
    pub fn is_strong(&self, b: i64) -> bool {
        let k = self.beat_in_bar(b);
        k == 0 || (self.beats_per_bar.is_multiple_of(2) && self.beats_per_bar >= 4 && k == self.beats_per_bar / 2)
    }
}

/// The cover of `input`: notes sorted by (start_beat, pitch), playable, within the settings'
/// range, and the sustain pedal with the harmony (none when the settings turn it off).
pub fn arrange(input: &ArrangeInput, settings: &ArrangeSettings) -> Cover {
    arrange_with(input, settings, true)
}

/// [`arrange`] for Live mode: a harmonised melody's chords are held whole, without the inner
/// voice ([`harmony::inner`]). Live freezes what the playhead passes while the harmoniser reads
/// the melody two beats ahead, so a beat's inner voice would be played a quarter at a time from
/// arrangements that disagree about it: broken sixteenths, and notes left on top where the
/// melody was re-timed. Vocal Live melody_f1 with "Melody from: Voice" 0.873 with it, 0.892 without
/// (offline 0.935); with Auto 0.866 and 0.895 (offline 0.908) (`cargo bench --bench live`).
pub fn arrange_live(input: &ArrangeInput, settings: &ArrangeSettings) -> Cover {
    arrange_with(input, settings, false)
}

fn arrange_with(input: &ArrangeInput, settings: &ArrangeSettings, inner_voice: bool) -> Cover {
    let s = settings.sanitized();
    let meter = Meter::of(input);
    let mut notes = cleaned(input);
    if notes.is_empty() {
        return Cover::default();
    }
    quantize::align_lag(&mut notes, &meter);
    let partial = harmony::partial_like(&notes);
    let lone = harmony::is_lone_line(&notes, &partial);
    if lone {
        melody::one_voice(&mut notes, &partial);
    }
    let line = melody::extract(&notes, lone);
    let line = melody::shape(&line, &s);
    let harm = harmony::analyze(&notes, &line, &meter, inner_voice);
    // The accompaniment follows the legato line; the melody is played with its phrasing.
    let mut voices = melody::voices(&phrasing::phrase(&line), &s);
    voices.extend(accompaniment::build(&line, &harm, &meter, &s));
    // The melody is already quantised (in `shape`); the accompaniment sits on beat fractions that
    // may not be on a coarse or odd grid.
    for v in voices.iter_mut().filter(|v| v.role != Role::Melody) {
        quantize::snap_voice(v, s.grid_per_beat, s.quantize_strength);
    }
    let mut notes = playability::enforce(voices, &s);
    dynamics::apply(&mut notes, &input.loudness, &meter, s.velocity_scale);
    let pedal = if s.pedal { without_moving_steps(pedal::plan(&notes, &chord_changes(&harm)), &harm) } else { Vec::new() };
    Cover { notes, pedal }
}

/// Beats where what the left hand sounds changes: a chord starts (the harmony differs from the
/// beat before), a beat with an inner voice ([`harmony::inner`]) and the beat after one, and in
/// such a beat the inner voice's first move.
fn chord_changes(harm: &harmony::Harmony) -> Vec<f64> {
    let last = harm.first_beat + harm.chords.len() as i64;
    let mut changes = Vec::new();
    for b in harm.first_beat..last {
        let moves = harm.motion_at(b);
        if harm.at(b).is_some() && (harm.at(b) != harm.at(b - 1) || moves.is_some() || harm.motion_at(b - 1).is_some()) {
            changes.push(b as f64);
        }
        if let Some(&(k, _, _)) = moves.map(|m| m.notes()).unwrap_or_default().iter().find(|n| n.0 > 0) {
            changes.push(b as f64 + k as f64 / harmony::inner::STEPS as f64);
        }
    }
    changes
}

/// In a beat where an inner voice moves, the pedal catches the beat's first sound and goes up
/// when the voice first moves; after that the fingers play the voice legato, as a pianist does,
/// where the pedal would ring its steps together (G then A over C would sound as C6, a passing D
/// as a cluster).
fn without_moving_steps(pedal: Vec<crate::notes::PedalSpan>, harm: &harmony::Harmony) -> Vec<crate::notes::PedalSpan> {
    pedal.into_iter().filter(|p| harm.motion_at(p.down_beat.floor() as i64).is_none() || p.down_beat.fract() <= pedal::CATCH_BEATS + 1e-9).collect()
}

#[cfg(test)]
pub(crate) mod tests;
