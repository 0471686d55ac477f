//! The sustain pedal (CC64): legato pedalling that follows the harmony, as a pianist pedals a
//! song accompaniment.
//!
//! - The pedal goes up exactly where a new chord starts and down again a moment later
//!   ([`CATCH_BEATS`]), once the new chord's keys are held: the dampers clear the old chord and the
//!   pedal catches the new one, so two chords never blur.
//! - It is held through a chord's broken-chord or arpeggio pattern (that is what it is for: the
//!   hand moves on, the bass rings).
//! - In a beat where a harmonised melody's inner voice moves it catches the beat and goes up at
//!   the voice's first move (the arranger passes those moves as changes and drops the presses
//!   after them: `arrange::without_moving_steps`), so the voice's steps never ring together.
//! - It is lifted for rests (nothing played for [`REST_BEATS`]: up when the last key goes up) and
//!   left up for staccato stretches (every note short and most of the stretch silent), where a
//!   pianist plays detached.
//!
//! Pure and deterministic; works on the finished cover, so what it pedals is what is played.

use crate::notes::{CoverNote, PedalSpan};

/// Beats after a chord change (or the first onset of a stretch) before the pedal goes down again:
/// a thirty-second note, late enough that the new keys are down, well within a sixteenth.
pub const CATCH_BEATS: f64 = 0.125;
/// A gap with no key down this long is a rest: the pedal is lifted for it.
pub const REST_BEATS: f64 = 1.0;
/// Notes this short (in beats) are detached; a stretch of only such notes that sounds less than
/// [`STACCATO_COVERAGE`] of its length is played without pedal.
const STACCATO_NOTE_BEATS: f64 = 0.3;
const STACCATO_COVERAGE: f64 = 0.5;
/// Presses shorter than this are not worth making.
const MIN_PRESS_BEATS: f64 = 0.25;

/// The pedal for `notes` (sorted by start), given the beats where the harmony changes (`changes`,
/// sorted: where each chord starts). Spans are sorted, disjoint, and each lies inside one chord.
pub fn plan(notes: &[CoverNote], changes: &[f64]) -> Vec<PedalSpan> {
    let notes: Vec<&CoverNote> = notes.iter().filter(|n| n.start_beat.is_finite() && n.end_beat.is_finite() && n.end_beat > n.start_beat).collect();
    let Some(last_end) = notes.iter().map(|n| n.end_beat).reduce(f64::max) else {
        return Vec::new();
    };
    let mut out: Vec<PedalSpan> = Vec::new();
    // Chord k holds from changes[k] to changes[k + 1] (the last to the end of the cover); notes
    // before the first change form a chord of their own.
    let mut bounds: Vec<f64> = vec![f64::NEG_INFINITY];
    bounds.extend(changes.iter().copied().filter(|c| c.is_finite()));
    bounds.push(f64::INFINITY);
    let bounds = same_harmony_merged(&notes, bounds);
    for w in bounds.windows(2) {
        let (from, to) = (w[0], w[1]);
        if to <= from {
            continue;
        }
        let starts = notes.partition_point(|n| n.start_beat < from);
        let inside: Vec<&CoverNote> = notes[starts..].iter().take_while(|n| n.start_beat < to).copied().collect();
        // Stretches of the chord separated by rests.
        let mut k = 0;
        while k < inside.len() {
            let first = inside[k].start_beat;
            let mut release = inside[k].end_beat;
            let mut j = k + 1;
            while j < inside.len() && inside[j].start_beat < release + REST_BEATS {
                release = release.max(inside[j].end_beat);
                j += 1;
            }
            let stretch = &inside[k..j];
            k = j;
            // Does the music go on without a rest after this stretch? Then the pedal holds to the
            // chord change; otherwise it goes up with the last key.
            let next_onset = notes.get(starts + j).map(|n| n.start_beat).unwrap_or(f64::INFINITY);
            let up = if next_onset < release + REST_BEATS { to.min(next_onset.max(release)) } else { release.min(to) };
            let up = up.min(last_end);
            if is_staccato(stretch, first, release) {
                continue;
            }
            let down = first + CATCH_BEATS;
            if up - down >= MIN_PRESS_BEATS {
                if let Some(prev) = out.last() {
                    if down < prev.up_beat {
                        continue;
                    }
                }
                out.push(PedalSpan { down_beat: down, up_beat: up });
            }
        }
    }
    out
}

/// Chord boundaries the left hand does not hear: where the next chord's left-hand pitch classes
/// hold, or are held by, the previous chord's over the same bass (C to C5, a tone the beat does not
/// sound left out), the harmony has not changed for a pianist and the pedal is not changed there.
fn same_harmony_merged(notes: &[&CoverNote], bounds: Vec<f64>) -> Vec<f64> {
    use crate::notes::Hand;
    // Per chord: the left hand's pitch classes (bit set) and its lowest key.
    let left = |from: f64, to: f64| -> (u16, Option<u8>) {
        let a = notes.partition_point(|n| n.start_beat < from);
        notes[a..]
            .iter()
            .take_while(|n| n.start_beat < to)
            .filter(|n| n.hand == Hand::Left)
            .fold((0u16, None), |(set, low), n| (set | 1 << (n.pitch % 12), Some(low.map_or(n.pitch, |l: u8| l.min(n.pitch)))))
    };
    let mut out = vec![bounds[0]];
    let mut previous = left(bounds[0], bounds.get(1).copied().unwrap_or(f64::INFINITY));
    for w in bounds.windows(3) {
        let here = left(w[1], w[2]);
        let (a, b) = (previous, here);
        let nested = a.0 != 0 && b.0 != 0 && (a.0 & b.0 == a.0 || a.0 & b.0 == b.0);
        let same_bass = a.1.map(|l| l % 12) == b.1.map(|l| l % 12);
        if nested && same_bass {
            // One harmony: the next chord is still compared with the press's first chord (C5,
            // Csus4, then C-F: the last is not the first's harmony, though each step nests).
        } else {
            out.push(w[1]);
            previous = here;
        }
    }
    out.push(*bounds.last().expect("two bounds at least"));
    out
}

/// Every note short and the keys down for less than half the stretch.
fn is_staccato(stretch: &[&CoverNote], from: f64, to: f64) -> bool {
    if stretch.len() < 2 || stretch.iter().any(|n| n.end_beat - n.start_beat > STACCATO_NOTE_BEATS) {
        return false;
    }
    // Union of the sounding intervals (sorted by start).
    let (mut covered, mut cur) = (0.0, (f64::NEG_INFINITY, f64::NEG_INFINITY));
    for n in stretch {
        if n.start_beat > cur.1 {
            covered += (cur.1 - cur.0).max(0.0);
            cur = (n.start_beat, n.end_beat);
        } else {
            cur.1 = cur.1.max(n.end_beat);
        }
    }
    covered += (cur.1 - cur.0).max(0.0);
    covered < STACCATO_COVERAGE * (to - from)
}

/// Where the pedal is down at `beat` (for tests and checks).
pub fn is_down(pedal: &[PedalSpan], beat: f64) -> bool {
    let i = pedal.partition_point(|p| p.down_beat <= beat);
    i > 0 && beat < pedal[i - 1].up_beat
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::Hand;
    use proptest::prelude::*;

    fn n(s: f64, e: f64, p: u8) -> CoverNote {
        CoverNote { start_beat: s, end_beat: e, pitch: p, velocity: 80, hand: if p < 60 { Hand::Left } else { Hand::Right }, melody: p >= 72 }
    }

    #[test]
    fn changes_with_the_harmony_and_holds_through_a_broken_chord() {
        // C for two beats (bass on the beat, chord on the off-beat), then G for two beats.
        let mut notes = vec![];
        for b in 0..4 {
            let (bass, third) = if b < 2 { (48, 52) } else { (43, 47) };
            notes.push(n(b as f64, b as f64 + 0.5, bass));
            notes.push(n(b as f64 + 0.5, b as f64 + 1.0, third));
            notes.push(n(b as f64, b as f64 + 1.0, 72 + b as u8));
        }
        notes.sort_by(|a, b| a.start_beat.total_cmp(&b.start_beat).then(a.pitch.cmp(&b.pitch)));
        let p = plan(&notes, &[0.0, 2.0]);
        assert_eq!(p, vec![PedalSpan { down_beat: 0.125, up_beat: 2.0 }, PedalSpan { down_beat: 2.125, up_beat: 4.0 }]);
        assert!(is_down(&p, 1.5) && !is_down(&p, 2.0) && !is_down(&p, 2.1) && is_down(&p, 2.2));
    }

    #[test]
    fn lifted_for_a_rest_and_for_staccato() {
        // One chord over 12 beats: a held phrase, a three-beat rest, then detached eighths.
        let mut notes = vec![n(0.0, 3.0, 48), n(0.0, 3.0, 72)];
        for k in 0..8 {
            notes.push(n(6.0 + k as f64 * 0.5, 6.0 + k as f64 * 0.5 + 0.15, 60));
        }
        let p = plan(&notes, &[0.0]);
        assert_eq!(p, vec![PedalSpan { down_beat: 0.125, up_beat: 3.0 }], "up with the keys before the rest; none under staccato");
    }

    #[test]
    fn a_chord_that_only_thins_out_is_not_a_change() {
        // C major, then C5 (the third left out) over the same bass, then F major.
        let notes =
            vec![n(0.0, 1.0, 36), n(0.0, 1.0, 40), n(0.0, 1.0, 43), n(1.0, 2.0, 36), n(1.0, 2.0, 43), n(2.0, 3.0, 41), n(2.0, 3.0, 45), n(2.0, 3.0, 48)];
        let p = plan(&notes, &[0.0, 1.0, 2.0]);
        assert_eq!(p, vec![PedalSpan { down_beat: 0.125, up_beat: 2.0 }, PedalSpan { down_beat: 2.125, up_beat: 3.0 }]);
        // The same tones over another bass is a change.
        let moved = vec![n(0.0, 1.0, 36), n(0.0, 1.0, 40), n(0.0, 1.0, 43), n(1.0, 2.0, 40), n(1.0, 2.0, 43), n(1.0, 2.0, 48)];
        assert_eq!(plan(&moved, &[0.0, 1.0]).len(), 2);
    }

    #[test]
    fn nothing_to_pedal() {
        assert!(plan(&[], &[0.0, 1.0]).is_empty());
        assert!(plan(&[n(0.0, f64::NAN, 60)], &[0.0]).is_empty());
    }

    proptest! {
        #[test]
        /// Presses never cross a change of harmony the left hand plays (a change the left hand
        /// only thins out or fills in over the same bass is not one: see the test above).
        fn spans_are_disjoint_sorted_and_never_cross_a_chord_change(
            raw in proptest::collection::vec((0.0f64..32.0, 0.05f64..4.0, 36u8..90), 0..60),
            changes in proptest::collection::vec(0.0f64..32.0, 0..12),
        ) {
            let mut notes: Vec<CoverNote> = raw.iter().map(|&(s, d, p)| n(s, s + d, p)).collect();
            notes.sort_by(|a, b| a.start_beat.total_cmp(&b.start_beat).then(a.pitch.cmp(&b.pitch)));
            let mut changes = changes;
            changes.sort_by(f64::total_cmp);
            let p = plan(&notes, &changes);
            let valid: Vec<&CoverNote> = notes.iter().collect();
            let mut bounds = vec![f64::NEG_INFINITY];
            bounds.extend(changes.iter().copied());
            bounds.push(f64::INFINITY);
            let heard = same_harmony_merged(&valid, bounds);
            for w in p.windows(2) {
                prop_assert!(w[0].up_beat <= w[1].down_beat);
            }
            for s in &p {
                prop_assert!(s.up_beat - s.down_beat >= MIN_PRESS_BEATS);
                prop_assert!(!heard.iter().any(|&c| c > s.down_beat && c < s.up_beat), "{s:?} holds across a change in {heard:?}");
            }
        }
    }
}
