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

use super::harmony::{Chord, Harmony};
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
    out.v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrange::harmony::{Key, Quality};

    fn harm(chords: &[(u8, Quality)]) -> Harmony {
        Harmony { key: Key { tonic: 0, minor: false }, first_beat: 0, chords: chords.iter().map(|&(root, quality)| Some(Chord::new(root, quality))).collect() }
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
