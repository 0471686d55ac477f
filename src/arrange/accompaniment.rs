//! Accompaniment: layers over the melody, added as the density rises (so the note count never falls):
//!
//! | density | adds |
//! |---|---|
//! | < 0.1 | nothing: the melody alone |
//! | >= 0.1 | bass (chord root) at chord changes and downbeats, held |
//! | >= 0.3 | the bass also on the other strong beat of the bar |
//! | >= 0.35 | left-hand chord tones over the bass at those onsets, held |
//! | >= 0.6 | a left-hand pattern on every beat in the chosen [`Style`] (block / broken on eighths, arpeggio on sixteenths) and one chord tone under the melody in the right hand |
//! | >= 0.8 | two right-hand tones under the melody; block chords re-struck on every eighth, broken chords fill the beat |
//!
//! Every voice is placed under the melody sounding at its onset; the playability pass settles the rest.
//! From 0.35 up, where a harmonised melody's chord is uncertain, the left hand holds the tones it
//! is sure of and an inner voice moves through the others inside the beat, under the melody
//! ([`crate::arrange::harmony::inner`]).

use super::harmony::{inner, Chord, Harmony};
use super::melody::{fit_range, MelNote};
use super::{ArrangeSettings, Meter, Role, Style, Voice};
use crate::notes::Hand;

pub const BASS_FROM: f32 = 0.1;
pub const STRONG_BASS_FROM: f32 = 0.3;
pub const CHORDS_FROM: f32 = 0.35;
pub const PATTERN_FROM: f32 = 0.6;
pub const FULL_FROM: f32 = 0.8;

/// Lowest bass key (the root is placed in `BASS_LOW..BASS_LOW + 12`).
const BASS_LOW: i32 = 40;
/// Highest left-hand key.
const LH_TOP: i32 = 64;
/// Smallest interval between the melody and a right-hand tone under it.
const UNDER_MELODY: i32 = 3;

/// Lowest melody pitch sounding in `[t0, t1)`.
fn melody_min(line: &[MelNote], t0: f64, t1: f64) -> Option<u8> {
    let i = line.partition_point(|m| m.end <= t0);
    line[i..].iter().take_while(|m| m.start < t1).map(|m| m.pitch).min()
}

/// The melody note sounding at `t`.
fn melody_at(line: &[MelNote], t: f64) -> Option<&MelNote> {
    let i = line.partition_point(|m| m.end <= t);
    line.get(i).filter(|m| m.start <= t)
}

struct Out<'a> {
    v: Vec<Voice>,
    s: &'a ArrangeSettings,
}

impl Out<'_> {
    fn push(&mut self, start: f64, end: f64, pitch: i32, vel: f32, hand: Hand, role: Role) {
        if let Some(p) = fit_range(pitch, self.s.lowest_key, self.s.highest_key) {
            if end > start {
                let velocity = (vel * self.s.velocity_scale).round().clamp(1.0, 126.0) as u8;
                self.v.push(Voice { start, end, pitch: p, velocity, hand, role });
            }
        }
    }
}

/// Left-hand voicing of `c`: its bass (the root, or the note the music puts under it) and the
/// chord's other tones closely above it, all under `ceiling` where possible.
fn lh_voicing(c: Chord, ceiling: i32, span: i32) -> (i32, Vec<i32>) {
    let low = c.bass as i32;
    let mut bass = BASS_LOW + (low - BASS_LOW).rem_euclid(12);
    while bass + 4 > ceiling && bass - 12 >= 28 {
        bass -= 12;
    }
    let mut tones: Vec<i32> = c
        .sounding_pcs()
        .iter()
        .filter(|&&pc| pc != c.bass % 12)
        .map(|&pc| bass + 1 + (pc as i32 - bass - 1).rem_euclid(12))
        .filter(|&p| p < ceiling && p - bass <= span)
        .collect();
    tones.sort_unstable();
    // A chord reduced to its bass is played in octaves.
    if tones.is_empty() && bass + 12 < ceiling {
        tones.push(bass + 12);
    }
    (bass, tones)
}

/// Up to `n` chord tones under `melody`, nearest first, above `floor`.
fn rh_tones(c: Chord, melody: i32, floor: i32, n: usize, span: i32) -> Vec<i32> {
    let mut out: Vec<i32> = c
        .sounding_pcs()
        .iter()
        .filter(|&&pc| pc as i32 != melody.rem_euclid(12))
        .map(|&pc| {
            let top = melody - UNDER_MELODY;
            top - (top - pc as i32).rem_euclid(12)
        })
        .filter(|&p| p > floor && melody - p <= span)
        .collect();
    out.sort_unstable_by(|a, b| b.cmp(a));
    out.truncate(n);
    out
}

/// The accompaniment voices for the line and harmony at the settings' density and style.
pub fn build(line: &[MelNote], harm: &Harmony, meter: &Meter, s: &ArrangeSettings) -> Vec<Voice> {
    let d = s.density;
    let mut out = Out { v: Vec::new(), s };
    if d < BASS_FROM || harm.chords.is_empty() {
        return out.v;
    }
    let span = s.hand_span as i32;
    let first = harm.first_beat;
    let end = first + harm.chords.len() as i64;
    // Onsets of the held layer (bass / chords): chord changes, downbeats, (strong beats).
    let mut onsets: Vec<i64> = Vec::new();
    for b in first..end {
        let Some(c) = harm.at(b) else { continue };
        let change = harm.at(b - 1) != Some(c);
        let down = meter.beat_in_bar(b) == 0;
        let strong = d >= STRONG_BASS_FROM && meter.is_strong(b);
        if change || down || strong {
            onsets.push(b);
        }
    }
    let bar = meter.beats_per_bar as i64;
    let mut arp_index = 0usize;
    for (k, &b) in onsets.iter().enumerate() {
        let c = harm.at(b).unwrap();
        // Held until the next onset, the end of the chord run, or a bar.
        let mut until = b + 1;
        let next = onsets.get(k + 1).copied().unwrap_or(end);
        while until < next && until < b + bar && harm.at(until) == Some(c) {
            until += 1;
        }
        if d >= PATTERN_FROM {
            continue; // the per-beat pattern below covers it
        }
        let ceiling = melody_min(line, b as f64, until as f64).map_or(LH_TOP, |m| (m as i32 - 1).min(LH_TOP));
        let (bass, tones) = lh_voicing(c, ceiling, span);
        out.push(b as f64, until as f64, bass, 72.0, Hand::Left, Role::Bass);
        if d >= CHORDS_FROM {
            for t in tones {
                out.push(b as f64, until as f64, t, 60.0, Hand::Left, Role::Chord);
            }
        }
    }
    if d >= PATTERN_FROM {
        let full = d >= FULL_FROM;
        let mut prev_chord: Option<Chord> = None;
        for b in first..end {
            let Some(c) = harm.at(b) else {
                prev_chord = None;
                continue;
            };
            if prev_chord != Some(c) {
                arp_index = 0;
            }
            prev_chord = Some(c);
            let (t0, t1, th) = (b as f64, b as f64 + 1.0, b as f64 + 0.5);
            let ceiling = melody_min(line, t0, t1).map_or(LH_TOP, |m| (m as i32 - 1).min(LH_TOP));
            let (bass, tones) = lh_voicing(c, ceiling, span);
            let lh_top = tones.last().copied().unwrap_or(bass);
            match s.style {
                Style::Block => {
                    out.push(t0, t1, bass, 72.0, Hand::Left, Role::Bass);
                    let tone_end = if full { th } else { t1 };
                    for &t in &tones {
                        out.push(t0, tone_end, t, 60.0, Hand::Left, Role::Chord);
                        if full {
                            out.push(th, t1, t, 56.0, Hand::Left, Role::Chord);
                        }
                    }
                }
                Style::Broken => {
                    out.push(t0, t1, bass, 72.0, Hand::Left, Role::Bass);
                    for &t in &tones {
                        out.push(th, t1, t, 58.0, Hand::Left, Role::Chord);
                    }
                    if full {
                        if let Some(&t) = tones.first() {
                            out.push(t0, th, t, 54.0, Hand::Left, Role::Chord);
                        }
                    }
                }
                Style::Arpeggio => {
                    let mut seq = vec![bass];
                    seq.extend(tones.iter().copied());
                    if bass + 12 <= ceiling && !seq.contains(&(bass + 12)) {
                        seq.push(bass + 12);
                    }
                    let n = seq.len();
                    // Up and down: 0 1 2 3 2 1 0 1 ...
                    let cycle: Vec<i32> = if n > 1 { (0..n).chain((1..n - 1).rev()).map(|i| seq[i]).collect() } else { seq.clone() };
                    // Sixteenths: a beat's arpeggio strikes at least as many keys as the held chord
                    // it replaces (bass + up to three tones), so the note count never falls.
                    let steps = 4;
                    let step = 1.0 / steps as f64;
                    for j in 0..steps {
                        let p = cycle[arp_index % cycle.len()];
                        arp_index += 1;
                        let role = if p == bass { Role::Bass } else { Role::Chord };
                        out.push(t0 + j as f64 * step, t1, p, if j == 0 { 70.0 } else { 58.0 }, Hand::Left, role);
                    }
                }
            }
            // Right hand: chord tones under the melody on the beat.
            if let Some(m) = melody_at(line, t0) {
                let n = if full { 2 } else { 1 };
                let stop = m.end.min(t1);
                for t in rh_tones(c, m.pitch as i32, lh_top, n, span) {
                    out.push(t0, stop, t, 62.0, Hand::Right, Role::Harmony);
                }
            }
        }
    }
    if d >= CHORDS_FROM {
        move_inner_voices(&mut out, line, harm);
    }
    out.v
}

/// An inner voice's note: start and end (beats) and key.
type InnerNote = (f64, f64, i32);

/// Velocity of an inner voice's notes: under the chord's (60), as a moving alto or tenor is.
const INNER_VELOCITY: f32 = 54.0;

/// Where an invented chord moves inside a beat ([`Harmony::motion_at`]): the chord tones it does
/// not hold stop for that beat (a held note is split around it), and the inner voice plays its
/// steps in the left hand, just above the bass and under the melody. Where the melody rests the
/// chord is held whole instead: a moving inner voice there would be heard as the tune.
fn move_inner_voices(out: &mut Out, line: &[MelNote], harm: &Harmony) {
    let step = 1.0 / inner::STEPS as f64;
    // Per beat that moves: its motion and the inner voice's notes.
    let mut moving: std::collections::BTreeMap<i64, (inner::BeatMotion, Vec<InnerNote>)> = Default::default();
    for b in harm.first_beat..harm.first_beat + harm.chords.len() as i64 {
        let Some(m) = harm.motion_at(b) else { continue };
        // The bass under this beat, from the voices already built.
        let Some(bass) = out.v.iter().filter(|v| v.role == Role::Bass && v.start <= b as f64 + 1e-9 && v.end > b as f64 + 1e-9).map(|v| v.pitch as i32).min()
        else {
            continue;
        };
        let notes: Option<Vec<InnerNote>> = m
            .notes()
            .into_iter()
            .map(|(k, n, pc)| {
                let (t0, t1) = (b as f64 + k as f64 * step, b as f64 + (k + n) as f64 * step);
                let under = melody_at(line, t0).filter(|m| m.end >= t0 + step.min(t1 - t0))?;
                let ceiling = (under.pitch as i32 - 1).min(melody_min(line, t0, t1).map_or(LH_TOP, |m| m as i32 - 1)).min(LH_TOP);
                let mut p = bass + 1 + (pc as i32 - bass - 1).rem_euclid(12);
                if p >= ceiling {
                    p -= 12;
                }
                (p > bass).then_some((t0, t1, p))
            })
            .collect();
        if let Some(notes) = notes {
            moving.insert(b, (m, notes));
        }
    }
    if moving.is_empty() {
        return;
    }
    let mut cut: Vec<Voice> = Vec::with_capacity(out.v.len());
    for v in std::mem::take(&mut out.v) {
        if v.role != Role::Chord && v.role != Role::Harmony {
            cut.push(v);
            continue;
        }
        // The beats whose motion releases this tone are cut out of the note.
        let mut start = v.start;
        for (&b, (m, _)) in moving.range(v.start.floor() as i64..v.end.ceil() as i64) {
            let (t0, t1) = (b as f64, b as f64 + 1.0);
            if harm.at(b).is_some_and(|c| m.releases(&c, v.pitch % 12)) && t1 > start && t0 < v.end {
                if t0 > start {
                    cut.push(Voice { start, end: t0, ..v });
                }
                start = t1;
            }
        }
        if start < v.end {
            cut.push(Voice { start, ..v });
        }
    }
    out.v = cut;
    for (_, notes) in moving.values() {
        for &(t0, t1, p) in notes {
            out.push(t0, t1, p, INNER_VELOCITY, Hand::Left, Role::Chord);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrange::harmony::{Key, Quality};

    fn harm(chords: &[(u8, Quality)]) -> Harmony {
        Harmony {
            key: Key { tonic: 0, minor: false },
            first_beat: 0,
            chords: chords.iter().map(|&(root, quality)| Some(Chord::new(root, quality))).collect(),
            motion: Vec::new(),
        }
    }

    #[test]
    fn voicings_stay_in_one_hand_and_under_the_melody() {
        let c = Chord::new(0, Quality::Major);
        let (bass, tones) = lh_voicing(c, 63, 14);
        assert_eq!(bass, 48);
        assert_eq!(tones, vec![52, 55]);
        // A chord reduced to its bass (the band plays it alone) is played in octaves.
        let bare = Chord { omits: 1 << 4 | 1 << 7, ..c };
        assert_eq!(lh_voicing(bare, 63, 14), (48, vec![60]));
        let rh = rh_tones(c, 72, 55, 2, 14);
        assert_eq!(rh, vec![67, 64]);
        assert!(rh.iter().all(|&p| p <= 72 - UNDER_MELODY));
    }

    #[test]
    fn an_inner_voice_moves_under_the_melody_and_not_in_its_rests() {
        use crate::arrange::harmony::inner::BeatMotion;
        let meter = Meter { beats_per_bar: 4, first_downbeat: 0.0, seconds_per_beat: 0.5 };
        let mut h = harm(&[(0, Quality::Major); 4]);
        // Beats 1 and 3: C and E held, G for half a beat, then A (a 5-6 motion).
        let five_six = BeatMotion { held: 1 | 1 << 4, steps: [Some(7), Some(7), Some(9), Some(9)] };
        h.motion = vec![None, Some(five_six), None, Some(five_six)];
        // The melody holds E5 over beats 0..2 and rests in beat 3.
        let line = vec![MelNote { start: 0.0, end: 3.0, pitch: 76, weight: 0.8 }];
        let s = ArrangeSettings { density: 0.5, ..Default::default() };
        let v = build(&line, &h, &meter, &s);
        let sounding = |pc: i32, t: f64| v.iter().any(|n| n.pitch as i32 % 12 == pc && n.start <= t && n.end > t);
        // G sounds in beat 0, in the first half of beat 1, not in its second half, and again in beat 2.
        assert!(sounding(7, 0.5) && sounding(7, 1.25) && !sounding(7, 1.75) && sounding(7, 2.5));
        assert!(sounding(9, 1.75) && !sounding(9, 1.25));
        // The held tones are never cut; every inner-voice note is in the left hand, under the melody.
        for t in [0.5, 1.25, 1.75, 2.5] {
            assert!(sounding(0, t) && sounding(4, t), "{t}");
        }
        for n in v.iter().filter(|n| n.start.fract() != 0.0 || n.pitch % 12 == 9) {
            assert_eq!(n.hand, Hand::Left);
            assert!(n.pitch < 76 && n.start >= 1.0 && n.end <= 2.0, "{n:?}");
        }
        // In the melody's rest (beat 3) no inner voice moves (it would be heard as the tune): the
        // chord is held whole.
        assert!(!sounding(9, 3.75) && sounding(7, 3.25) && sounding(7, 3.75));
    }

    #[test]
    fn note_count_rises_with_density_for_every_style() {
        let meter = Meter { beats_per_bar: 4, first_downbeat: 0.0, seconds_per_beat: 0.5 };
        let h = harm(&[(0, Quality::Major), (0, Quality::Major), (5, Quality::Major), (7, Quality::Major)].repeat(4));
        let line: Vec<MelNote> = (0..16).map(|i| MelNote { start: i as f64, end: i as f64 + 1.0, pitch: 72, weight: 0.8 }).collect();
        for style in [Style::Block, Style::Broken, Style::Arpeggio] {
            let mut last = 0;
            for d in [0.0, 0.2, 0.5, 0.7, 0.9] {
                let s = ArrangeSettings { density: d, style, ..Default::default() };
                let n = build(&line, &h, &meter, &s).len();
                assert!(n > last || (d == 0.0 && n == 0), "{style:?} {d} {n} {last}");
                last = n;
            }
        }
    }
}
