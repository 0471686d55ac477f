//! Playability: the last pass, which only shortens or drops notes (never adds), so it keeps the grid.
//!
//! Notes are taken in time order, the more important first at one instant (melody, bass, left-hand
//! chord, right-hand harmony). A note is kept if, with everything still sounding at its onset:
//! - no sounding note has its key (a lower-or-equal priority one that began earlier is cut instead),
//! - the melody is the highest sounding note (other notes are cut at a melody onset, or dropped),
//! - the hands do not cross (every left-hand note under every right-hand note),
//! - its hand holds at most [`MAX_NOTES_PER_HAND`] notes within the hand span.
//!
//! Conflicting notes that started earlier and matter no more than the new one are cut at its onset;
//! otherwise the new note is dropped. Last, accompaniment velocities are put under the melody's.

use super::melody::fit_range;
use super::{ArrangeSettings, Role, Voice, MAX_NOTES_PER_HAND};
use crate::notes::{CoverNote, Hand};

const EPS: f64 = 1e-9;

pub fn enforce(voices: Vec<Voice>, s: &ArrangeSettings) -> Vec<CoverNote> {
    enforce_after(voices, s, f64::NEG_INFINITY)
}

/// [`enforce`] where the notes starting before `played_before` were already played (Live mode):
/// such a note is never dropped; whatever still sounds against it is cut at its onset instead.
fn enforce_after(mut voices: Vec<Voice>, s: &ArrangeSettings, played_before: f64) -> Vec<CoverNote> {
    voices.retain_mut(|v| {
        if !(v.start.is_finite() && v.end.is_finite() && v.end > v.start) {
            return false;
        }
        match fit_range(v.pitch as i32, s.lowest_key, s.highest_key) {
            Some(p) => {
                v.pitch = p;
                true
            }
            None => false,
        }
    });
    voices.sort_by(|a, b| {
        a.start
            .total_cmp(&b.start)
            .then(b.role.cmp(&a.role))
            .then(a.hand.cmp(&b.hand))
            .then(match a.hand {
                Hand::Right => b.pitch.cmp(&a.pitch),
                Hand::Left => a.pitch.cmp(&b.pitch),
            })
            .then(a.end.total_cmp(&b.end))
            .then(a.velocity.cmp(&b.velocity))
    });
    let span = s.hand_span as i32;
    let mut kept: Vec<Voice> = Vec::with_capacity(voices.len());
    let mut active: Vec<usize> = Vec::new();
    'notes: for n in voices {
        let t = n.start;
        active.retain(|&i| kept[i].end > t + EPS);
        let played = t < played_before;
        let removable = |v: &Voice| v.start < t - EPS && (v.role <= n.role || played);
        let mut cut: Vec<usize> = Vec::new();
        for &i in &active {
            let o = &kept[i];
            let conflict = o.pitch == n.pitch
                || (n.role == Role::Melody && o.pitch >= n.pitch)
                || (o.role == Role::Melody && o.pitch <= n.pitch)
                || (o.hand != n.hand
                    && match n.hand {
                        Hand::Right => o.pitch >= n.pitch,
                        Hand::Left => o.pitch <= n.pitch,
                    });
            if conflict {
                if removable(o) {
                    cut.push(i);
                } else {
                    continue 'notes;
                }
            }
        }
        // Own hand: count and span.
        let mut hand: Vec<usize> = active.iter().copied().filter(|i| kept[*i].hand == n.hand && !cut.contains(i)).collect();
        loop {
            let (mut lo, mut hi) = (n.pitch as i32, n.pitch as i32);
            for &i in &hand {
                lo = lo.min(kept[i].pitch as i32);
                hi = hi.max(kept[i].pitch as i32);
            }
            if hand.len() < MAX_NOTES_PER_HAND && hi - lo <= span {
                break;
            }
            // Cut the removable note farthest from the new one.
            let pick = hand
                .iter()
                .enumerate()
                .filter(|(_, &i)| removable(&kept[i]))
                .max_by(|(_, &a), (_, &b)| {
                    let (va, vb) = (&kept[a], &kept[b]);
                    (va.pitch as i32 - n.pitch as i32).abs().cmp(&(vb.pitch as i32 - n.pitch as i32).abs()).then(vb.role.cmp(&va.role)).then(b.cmp(&a))
                })
                .map(|(k, _)| k);
            match pick {
                Some(k) => cut.push(hand.swap_remove(k)),
                None => continue 'notes,
            }
        }
        for &i in &cut {
            kept[i].end = t;
        }
        active.retain(|i| !cut.contains(i));
        active.push(kept.len());
        kept.push(n);
    }
    let mut out: Vec<CoverNote> = kept
        .into_iter()
        .filter(|v| v.end > v.start)
        .map(|v| CoverNote { start_beat: v.start, end_beat: v.end, pitch: v.pitch, velocity: v.velocity, hand: v.hand, melody: v.role == Role::Melody })
        .collect();
    out.sort_by(|a, b| a.start_beat.total_cmp(&b.start_beat).then(a.pitch.cmp(&b.pitch)));
    // The melody above what is struck with it.
    super::dynamics::melody_over_accompaniment(&mut out);
    out
}

/// [`enforce`] over a finished cover (the Live arranger's merge of notes already played, those
/// starting before `played_before`, with a new arrangement): roles are read back from the notes
/// (melody; the lowest left-hand note of an onset is the bass), so a cover that was playable comes
/// back unchanged, and a played note is never dropped.
pub fn enforce_cover(notes: &[CoverNote], s: &ArrangeSettings, played_before: f64) -> Vec<CoverNote> {
    // The lowest left-hand pitch of each onset, from the left hand's notes in time order (this runs
    // on every Live hop over the whole take: no pairwise scan).
    let mut left: Vec<&CoverNote> = notes.iter().filter(|n| n.hand == Hand::Left).collect();
    left.sort_by(|a, b| a.start_beat.total_cmp(&b.start_beat).then(a.pitch.cmp(&b.pitch)));
    let lowest_at = |t: f64| {
        let k = left.partition_point(|o| o.start_beat <= t - EPS);
        left.get(k).filter(|o| o.start_beat < t + EPS).map(|o| o.pitch)
    };
    let voices = notes
        .iter()
        .map(|n| {
            let bass = n.hand == Hand::Left && lowest_at(n.start_beat).is_some_and(|p| p >= n.pitch);
            let role = match (n.melody, n.hand) {
                (true, _) => Role::Melody,
                (false, Hand::Right) => Role::Harmony,
                (false, Hand::Left) if bass => Role::Bass,
                (false, Hand::Left) => Role::Chord,
            };
            Voice { start: n.start_beat, end: n.end_beat, pitch: n.pitch, velocity: n.velocity, hand: n.hand, role }
        })
        .collect();
    enforce_after(voices, s, played_before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(start: f64, end: f64, pitch: u8, hand: Hand, role: Role) -> Voice {
        Voice { start, end, pitch, velocity: 60, hand, role }
    }

    #[test]
    fn cuts_restruck_keys_and_keeps_melody_on_top() {
        let s = ArrangeSettings::default();
        let out = enforce(
            vec![
                v(0.0, 4.0, 60, Hand::Left, Role::Chord),
                v(1.0, 2.0, 60, Hand::Left, Role::Chord),
                v(1.0, 3.0, 59, Hand::Right, Role::Melody),
                v(2.0, 3.0, 70, Hand::Right, Role::Harmony),
            ],
            &s,
        );
        // The held 60 is cut at beat 1 by the melody (under it now); the new 60 is above the melody
        // and dropped; the harmony note above the melody is dropped.
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].pitch, out[0].end_beat), (60, 1.0));
        assert!(out[1].melody);
    }

    #[test]
    fn hands_hold_at_most_five_within_span() {
        let s = ArrangeSettings::default();
        let vs: Vec<Voice> = (0..10).map(|k| v(0.0, 1.0, 40 + 2 * k, Hand::Left, Role::Chord)).collect();
        let out = enforce(vs, &s);
        assert!(out.len() <= 5);
        let (lo, hi) = (out.iter().map(|n| n.pitch).min().unwrap(), out.iter().map(|n| n.pitch).max().unwrap());
        assert!(hi - lo <= 14);
    }
}
