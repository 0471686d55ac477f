//! Dynamics: how hard each note of the cover is played.
//!
//! A pianist covering a song plays loud where the song is loud: the base of every velocity is the
//! captured audio's loudness in that beat ([`BeatLoudness`], RMS in dBFS per beat, measured as the
//! audio arrives by a [`LoudnessMeter`]), placed in the song's own range (its quiet and loud
//! beats, so a quiet recording is not played quietly throughout) and smoothed over neighbouring
//! beats into a phrase-level shape. On top of it: the melody voiced above the accompaniment (and
//! always louder than what is struck with it), metrical accents (downbeat, strong beat, off-beat),
//! and each note's own salience a little. The Velocity knob scales the result.
//!
//! Without a loudness measurement (an old project, a cover made from notes alone) the arranger's
//! velocities from the transcription's amplitudes stay as they are, with the same melody rule.

use super::Meter;
use crate::notes::CoverNote;

/// Loudness of the audio per beat: RMS in dBFS of beat `first_beat + i` (integer beats of the
/// cover's timeline); [`SILENT_DB`] where nothing was heard.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BeatLoudness {
    pub first_beat: i64,
    pub db: Vec<f32>,
}

/// The floor of the loudness scale.
pub const SILENT_DB: f32 = -90.0;
/// Velocity of the accompaniment in the song's quietest and loudest beats (before the accents).
const QUIET_VELOCITY: f32 = 38.0;
const LOUD_VELOCITY: f32 = 96.0;
/// The melody over the accompaniment.
const MELODY_LIFT: f32 = 14.0;
/// At one onset, the melody is at least this much louder than any other note.
const MELODY_MARGIN: u8 = 6;
/// Where the melody rests, the top note of a chord over the others.
const TOP_MARGIN: u8 = 3;
/// Accents: the bar's downbeat, the other strong beat, notes between beats.
const DOWNBEAT_ACCENT: f32 = 5.0;
const STRONG_ACCENT: f32 = 2.5;
const OFFBEAT_ACCENT: f32 = -3.0;
/// How much a note's own velocity from the arranger (its transcribed amplitude) moves it, per
/// velocity step away from the cover's mean.
const OWN_WEIGHT: f32 = 0.05;
/// The song's quiet and loud ends: these percentiles of its audible beats.
const QUIET_PERCENTILE: f64 = 0.10;
const LOUD_PERCENTILE: f64 = 0.95;
/// Beats quieter than the loudest by more than this are silence, not a quiet passage.
const AUDIBLE_RANGE_DB: f32 = 50.0;

impl BeatLoudness {
    pub fn is_empty(&self) -> bool {
        self.db.is_empty()
    }

    /// Loaded from a project: every value a level, the beats within bounds. What this build saves
    /// passes unchanged.
    pub fn sanitized(mut self) -> Self {
        if self.first_beat.unsigned_abs() > 1 << 40 {
            return Self::default();
        }
        self.db.truncate(MAX_BEATS);
        for d in &mut self.db {
            *d = if d.is_finite() { d.clamp(SILENT_DB, 40.0) } else { SILENT_DB };
        }
        self
    }

    /// Loudness of integer beat `b` (None outside the measured beats).
    pub fn at(&self, b: i64) -> Option<f32> {
        let i = b.checked_sub(self.first_beat)?;
        if i < 0 {
            return None;
        }
        self.db.get(i as usize).copied()
    }

    /// `other`'s beats laid over these (where both measured a beat, `other`'s wins).
    pub fn merged(&self, other: &BeatLoudness) -> BeatLoudness {
        if self.is_empty() {
            return other.clone();
        }
        if other.is_empty() {
            return self.clone();
        }
        let first = self.first_beat.min(other.first_beat);
        let end = (self.first_beat + self.db.len() as i64).max(other.first_beat + other.db.len() as i64);
        let db = (first..end).map(|b| other.at(b).filter(|&d| d > SILENT_DB).or(self.at(b)).unwrap_or(SILENT_DB)).collect();
        BeatLoudness { first_beat: first, db }
    }
}

/// Measures [`BeatLoudness`] as blocks of mono audio arrive. Memory: two numbers per beat.
#[derive(Clone, Debug, Default)]
pub struct LoudnessMeter {
    first_beat: i64,
    /// Per beat: sum of squares, samples.
    sums: Vec<(f64, u64)>,
}

/// Most beats one meter keeps (about 9 hours at 120 bpm): beats past it are not measured.
const MAX_BEATS: usize = 1 << 16;

impl LoudnessMeter {
    /// Adds `samples` whose first one is at `beat`, each `beats_per_sample` after the previous.
    pub fn push(&mut self, samples: &[f32], beat: f64, beats_per_sample: f64) {
        if !beat.is_finite() || !beats_per_sample.is_finite() || beats_per_sample <= 0.0 || samples.is_empty() {
            return;
        }
        if self.sums.is_empty() {
            self.first_beat = beat.floor() as i64;
        }
        let mut i = 0;
        while i < samples.len() {
            let b = (beat + i as f64 * beats_per_sample).floor();
            let slot = b as i64 - self.first_beat;
            // Samples up to the next beat line go to this beat.
            let next = (((b + 1.0 - beat) / beats_per_sample).ceil().max(i as f64 + 1.0) as usize).min(samples.len());
            if slot >= 0 && (slot as usize) < MAX_BEATS {
                let slot = slot as usize;
                if self.sums.len() <= slot {
                    self.sums.resize(slot + 1, (0.0, 0));
                }
                let e: f64 = samples[i..next].iter().map(|&x| if x.is_finite() { (x as f64) * (x as f64) } else { 0.0 }).sum();
                self.sums[slot].0 += e;
                self.sums[slot].1 += (next - i) as u64;
            }
            i = next;
        }
    }

    pub fn loudness(&self) -> BeatLoudness {
        let db = self.sums.iter().map(|&(e, n)| if n == 0 { SILENT_DB } else { to_db((e / n as f64).sqrt()) }).collect();
        BeatLoudness { first_beat: self.first_beat, db }
    }
}

fn to_db(rms: f64) -> f32 {
    if rms > 0.0 {
        ((20.0 * rms.log10()) as f32).max(SILENT_DB)
    } else {
        SILENT_DB
    }
}

/// Loudness per beat of a whole mono clip whose sample `i` is at beat `first_beat + i * beats_per_sample`.
pub fn measure(mono: &[f32], first_beat: f64, beats_per_sample: f64) -> BeatLoudness {
    let mut m = LoudnessMeter::default();
    m.push(mono, first_beat, beats_per_sample);
    m.loudness()
}

/// Loudness per beat of a mono clip at `sample_rate` whose beats are `grid`'s (the CLI's path; the
/// plugin measures the same as blocks arrive).
pub fn measure_clip(mono: &[f32], sample_rate: u32, grid: &crate::notes::BeatGrid) -> BeatLoudness {
    measure(mono, grid.beat_at(0.0), 1.0 / (sample_rate as f64 * grid.seconds_per_beat()))
}

/// Loudness per beat where beat `first_beat + i` spans `starts_s[i]..starts_s[i + 1]` seconds of a
/// mono clip at `sample_rate` (a tracked beat map, whose beats are not equal).
pub fn measure_spans(mono: &[f32], sample_rate: u32, first_beat: i64, starts_s: &[f64]) -> BeatLoudness {
    let at = |s: f64| ((s.max(0.0) * sample_rate as f64) as usize).min(mono.len());
    let db = starts_s
        .windows(2)
        .map(|w| {
            let seg = &mono[at(w[0])..at(w[1]).max(at(w[0]))];
            if seg.is_empty() {
                SILENT_DB
            } else {
                to_db((seg.iter().map(|&x| if x.is_finite() { (x as f64) * (x as f64) } else { 0.0 }).sum::<f64>() / seg.len() as f64).sqrt())
            }
        })
        .collect();
    BeatLoudness { first_beat, db }
}

/// Sets the velocities of `notes` (see the module doc). `velocity_scale` is the user's knob.
pub fn apply(notes: &mut [CoverNote], loudness: &BeatLoudness, meter: &Meter, velocity_scale: f32) {
    if !loudness.is_empty() {
        let audible: Vec<f32> = {
            let top = loudness.db.iter().copied().fold(SILENT_DB, f32::max);
            let mut v: Vec<f32> = loudness.db.iter().copied().filter(|&d| d > SILENT_DB && d >= top - AUDIBLE_RANGE_DB).collect();
            v.sort_by(f32::total_cmp);
            v
        };
        if !audible.is_empty() {
            let pick = |q: f64| audible[((audible.len() - 1) as f64 * q).round() as usize];
            let (quiet, loud) = (pick(QUIET_PERCENTILE), pick(LOUD_PERCENTILE));
            let span = (loud - quiet).max(3.0);
            // The level of beat b in 0..1, smoothed with its neighbours (a phrase's shape, not
            // one beat's drum hit).
            let level = |b: i64| -> f32 {
                let at = |k: i64| loudness.at(k).filter(|&d| d > SILENT_DB).map(|d| ((d - quiet) / span).clamp(0.0, 1.0));
                let (mut sum, mut w) = (0.0, 0.0);
                for (k, wk) in [(b - 1, 0.25f32), (b, 0.5), (b + 1, 0.25)] {
                    if let Some(x) = at(k) {
                        sum += wk * x;
                        w += wk;
                    }
                }
                if w > 0.0 {
                    sum / w
                } else {
                    0.0
                }
            };
            let mean_own = notes.iter().map(|n| n.velocity as f32).sum::<f32>() / notes.len().max(1) as f32;
            let scale = velocity_scale.max(1e-3);
            for n in notes.iter_mut() {
                let b = n.start_beat.floor() as i64;
                let mut v = QUIET_VELOCITY + (LOUD_VELOCITY - QUIET_VELOCITY) * level(b);
                if n.melody {
                    v += MELODY_LIFT;
                }
                v += accent(n.start_beat, meter);
                // The arranger's velocity (already scaled) says how strongly the note was heard.
                v += OWN_WEIGHT * (n.velocity as f32 - mean_own) / scale;
                n.velocity = (v * velocity_scale).round().clamp(1.0, 127.0) as u8;
            }
        }
    }
    melody_over_accompaniment(notes);
}

/// Accent of an onset at `beat`.
fn accent(beat: f64, meter: &Meter) -> f32 {
    let b = beat.round();
    if (beat - b).abs() > 1e-6 {
        return OFFBEAT_ACCENT;
    }
    let b = b as i64;
    if meter.beat_in_bar(b) == 0 {
        DOWNBEAT_ACCENT
    } else if meter.is_strong(b) {
        STRONG_ACCENT
    } else {
        0.0
    }
}

/// At every onset with a melody note, the other notes struck with it are quieter than it by
/// [`MELODY_MARGIN`] (where the melody is too quiet for that, it is raised). Where the melody rests,
/// the top note of a chord is voiced over the others by [`TOP_MARGIN`], as a pianist brings out
/// the top of a voicing (it is the line the ear follows there). `notes` sorted by start.
pub(crate) fn melody_over_accompaniment(notes: &mut [CoverNote]) {
    let mut i = 0;
    while i < notes.len() {
        let mut j = i + 1;
        while j < notes.len() && (notes[j].start_beat - notes[i].start_beat).abs() < 1e-9 {
            j += 1;
        }
        let group = &mut notes[i..j];
        let (is_lead, margin): (fn(&CoverNote, u8) -> bool, u8) =
            if group.iter().any(|n| n.melody) { (|n, _| n.melody, MELODY_MARGIN) } else { (|n, top| n.pitch == top, TOP_MARGIN) };
        let top = group.iter().map(|n| n.pitch).max().unwrap_or(0);
        if group.len() > 1 {
            let lead = group.iter().filter(|n| is_lead(n, top)).map(|n| n.velocity).max().unwrap_or(0);
            let others = group.iter().filter(|n| !is_lead(n, top)).map(|n| n.velocity).max().unwrap_or(0);
            let lead = lead.max(others.saturating_add(margin).min(127));
            for n in group.iter_mut() {
                if is_lead(n, top) {
                    n.velocity = n.velocity.max(lead);
                } else {
                    n.velocity = n.velocity.min(lead.saturating_sub(margin)).max(1);
                }
            }
        }
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::Hand;

    fn meter() -> Meter {
        Meter { beats_per_bar: 4, first_downbeat: 0.0, seconds_per_beat: 0.5 }
    }

    fn n(start: f64, pitch: u8, melody: bool) -> CoverNote {
        CoverNote { start_beat: start, end_beat: start + 0.5, pitch, velocity: 80, hand: if melody { Hand::Right } else { Hand::Left }, melody }
    }

    #[test]
    fn the_meter_measures_each_beat() {
        // 100 samples per beat: beat 0 at amplitude 0.5 (square wave), beat 1 silent, beat 2 at 0.05.
        let mut audio = vec![];
        for b in 0..3 {
            let a = [0.5f32, 0.0, 0.05][b];
            audio.extend((0..100).map(|i| if i % 2 == 0 { a } else { -a }));
        }
        // Pushed in odd blocks, from beat 0.
        let mut m = LoudnessMeter::default();
        for (k, chunk) in audio.chunks(37).enumerate() {
            m.push(chunk, k as f64 * 37.0 / 100.0, 0.01);
        }
        let l = m.loudness();
        assert_eq!(l.first_beat, 0);
        assert_eq!(l.db.len(), 3);
        assert!((l.db[0] - (-6.02)).abs() < 0.1, "{:?}", l.db);
        assert_eq!(l.db[1], SILENT_DB);
        assert!((l.db[2] - (-26.02)).abs() < 0.1, "{:?}", l.db);
        assert_eq!(measure(&audio, 0.0, 0.01), l);
    }

    #[test]
    fn loud_beats_are_played_louder_and_the_melody_on_top() {
        // Eight beats getting louder, then eight getting quieter.
        let db: Vec<f32> = (0..16).map(|b| if b < 8 { -40.0 + 4.0 * b as f32 } else { -8.0 - 4.0 * (b - 8) as f32 }).collect();
        let loudness = BeatLoudness { first_beat: 0, db };
        let mut notes: Vec<CoverNote> = (0..16).flat_map(|b| [n(b as f64, 48, false), n(b as f64, 72, true)]).collect();
        apply(&mut notes, &loudness, &meter(), 1.0);
        let acc: Vec<u8> = notes.iter().filter(|n| !n.melody).map(|n| n.velocity).collect();
        // Follows the loudness: rises to beat 7/8, falls after (accents aside, per bar).
        assert!(acc[7] > acc[1] + 20 && acc[8] > acc[15] + 20, "{acc:?}");
        for pair in notes.chunks(2) {
            assert!(pair[1].velocity >= pair[0].velocity + MELODY_MARGIN, "{pair:?}");
        }
        // The knob scales.
        let mut soft: Vec<CoverNote> = (0..16).flat_map(|b| [n(b as f64, 48, false), n(b as f64, 72, true)]).collect();
        apply(&mut soft, &loudness, &meter(), 0.5);
        assert!(soft.iter().zip(&notes).all(|(s, l)| s.velocity < l.velocity));
    }

    #[test]
    fn without_loudness_only_the_melody_rule_applies() {
        let mut notes = vec![n(0.0, 48, false), n(0.0, 72, true), n(1.0, 50, false)];
        notes[0].velocity = 100;
        notes[1].velocity = 90;
        apply(&mut notes, &BeatLoudness::default(), &meter(), 1.0);
        assert!(notes[1].velocity >= notes[0].velocity + MELODY_MARGIN);
        assert_eq!(notes[2].velocity, 80);
    }

    #[test]
    fn spans_of_a_beat_map_are_measured_like_equal_beats() {
        let audio: Vec<f32> = (0..300).map(|i| if i < 100 { 0.5 } else { 0.05 }).collect();
        let even = measure(&audio, 0.0, 0.01);
        assert_eq!(measure_spans(&audio, 100, 0, &[0.0, 1.0, 2.0, 3.0]), even);
    }

    #[test]
    fn merged_keeps_both_and_prefers_the_newer() {
        let a = BeatLoudness { first_beat: 0, db: vec![-10.0, -20.0, -30.0] };
        let b = BeatLoudness { first_beat: 2, db: vec![-5.0, -6.0] };
        assert_eq!(a.merged(&b), BeatLoudness { first_beat: 0, db: vec![-10.0, -20.0, -5.0, -6.0] });
        assert_eq!(BeatLoudness::default().merged(&a), a);
    }
}
