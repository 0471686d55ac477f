//! Phrasing of the melody: how long each note is held, as a pianist shapes a sung line.
//!
//! The shaped line ([`super::melody::shape`]) is already legato within a phrase (short gaps filled,
//! each note held to the next). Two touches on top, both small and deterministic:
//! - a repeated note is detached: the key has to come up to be struck again, so the first of two
//!   notes of one pitch is released [`DETACH_BEATS`] early (a quarter of it at most);
//! - the last note of a phrase (before a rest, or the last of all) is released a little early, as
//!   a singer breathes before the next phrase.
//!
//! Onsets never move, so the melody's rhythm and the grid are untouched.

use super::melody::{MelNote, LEGATO_GAP};

/// How much earlier a repeated note or a phrase's last note is released (a thirty-second note).
pub const DETACH_BEATS: f64 = 0.125;
/// At most this share of a note is taken off.
const MAX_SHARE: f64 = 0.25;

/// The line (in time order, not overlapping) with its phrasing.
pub fn phrase(line: &[MelNote]) -> Vec<MelNote> {
    let mut out = line.to_vec();
    for i in 0..out.len() {
        let next = out.get(i + 1).copied();
        let n = &mut out[i];
        let len = n.end - n.start;
        let shorten = DETACH_BEATS.min(MAX_SHARE * len);
        let release_early = match next {
            // A repeated key, held up to the next strike.
            Some(m) => (m.pitch == n.pitch && m.start - n.end < DETACH_BEATS) || m.start - n.end > LEGATO_GAP,
            // The song's last note.
            None => true,
        };
        if release_early && len > 0.0 {
            n.end = match next {
                Some(m) if m.pitch == n.pitch => n.end.min(m.start) - shorten,
                _ => n.end - shorten,
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(start: f64, end: f64, pitch: u8) -> MelNote {
        MelNote { start, end, pitch, weight: 0.5 }
    }

    #[test]
    fn legato_kept_repeats_detached_and_phrase_ends_released() {
        let line = vec![m(0.0, 1.0, 72), m(1.0, 2.0, 74), m(2.0, 2.5, 74), m(2.5, 4.0, 76), m(6.0, 7.0, 72)];
        let p = phrase(&line);
        let ends: Vec<f64> = p.iter().map(|n| n.end).collect();
        // 72 -> 74 legato; 74 repeated: detached by 1/8; 76 ends a phrase before a two-beat rest;
        // the last note is released early too; a half-beat repeat loses at most a quarter.
        assert_eq!(ends, vec![1.0, 1.875, 2.5, 3.875, 6.875]);
        let short = phrase(&[m(0.0, 0.25, 60), m(0.25, 0.5, 60)]);
        assert_eq!(short[0].end, 0.25 - 0.0625);
        // Onsets never move, nothing overlaps.
        assert!(p.iter().zip(&line).all(|(a, b)| a.start == b.start && a.pitch == b.pitch));
        assert!(p.windows(2).all(|w| w[0].end <= w[1].start && w[0].end > w[0].start));
    }
}
