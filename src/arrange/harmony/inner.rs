//! The inner voice of a harmonised melody. A lone melody leaves its chords uncertain: the same
//! soprano note sits under I or vi, under V or iii. Where it does, the accompaniment holds the
//! tones it is sure of (always the bass) and moves one inner voice through the others inside the
//! beat, as a chorale's alto and tenor do: a 5-6 motion (G then A over C and E), a passing or
//! neighbour tone, a seventh added on the way out. How long each tone sounds in the beat follows
//! how likely the lower voices are to sound it, so the cover's pitch classes point where the
//! song's most likely are, instead of betting the whole beat on one chord.
//!
//! The inner voice keeps to the chord's tones and the two likeliest others in the key's scale that
//! make no chromatic semitone (F against a held F#) with a held tone or the melody, and moves only
//! under the melody.
//!
//! Measured with `python3 scripts/eval_arranger_dev/inner_voice.py /tmp/chorales.pkl` (trained on
//! half the chorales, scored on the other half's lower voices, per-beat cosine of the pitch classes
//! weighted by how long they sound): the chord alone 0.675, with the inner voice 0.720. On the dev
//! set's vocal items (`scripts/eval_arranger.sh`, with `melody::extract`'s centred slots for a lone
//! line): harmony_sim 0.680 -> 0.719, cover_score 0.778 -> 0.806. What the rules cost there:
//! outside tones out of the key allowed too, 0.807; measured before the centred slots (0.802 with
//! them allowed), without the clash rule 0.808, with every semitone kept out 0.797. A hedge between
//! two keys' tones (E after E-flat in G minor) is heard as a wrong note more than as a passing
//! one, so the voice stays in the key.

use super::{Chord, Key};

/// Quarter-beat steps of the inner voice in a beat.
pub const STEPS: usize = 4;
/// How many tones outside the chord the inner voice may visit: the most likely ones in the key's
/// scale that clash with nothing held.
const EXTRA_TONES: usize = 2;
/// The gain in cosine a motion must bring over the chord held whole (ties keep the plain chord).
const MIN_GAIN: f64 = 1e-9;

/// How a harmonised beat's chord sounds inside the beat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BeatMotion {
    /// Chord tones held through the beat (bit `pc`): the bass and at least one more. The chord's
    /// other tones sound only where the inner voice takes them.
    pub held: u16,
    /// The inner voice's pitch class on each quarter of the beat (None: it rests).
    pub steps: [Option<u8>; STEPS],
}

impl BeatMotion {
    /// Whether `pc` is a chord tone the accompaniment stops holding in this beat.
    pub fn releases(&self, chord: &Chord, pc: u8) -> bool {
        self.held & (1 << (pc % 12)) == 0 && chord.sounding_pcs().contains(&(pc % 12))
    }

    /// The inner voice's notes: (first step, steps, pitch class), a held step one note.
    pub fn notes(&self) -> Vec<(usize, usize, u8)> {
        let mut out: Vec<(usize, usize, u8)> = Vec::new();
        for (k, step) in self.steps.iter().enumerate() {
            let Some(pc) = *step else { continue };
            match out.last_mut() {
                Some(last) if last.2 == pc && last.0 + last.1 == k => last.1 += 1,
                _ => out.push((k, 1, pc)),
            }
        }
        out
    }
}

/// A motion being weighed: its cosine, the held tones, the inner voice's tones and their quarters.
type Candidate = (f64, Vec<u8>, Vec<u8>, Vec<usize>);

/// The key's diatonic pitch classes (bit `pc`; natural minor): a semitone between two of them is
/// a passing dissonance (E against F), any other semitone a chromatic clash (F against F#).
pub fn scale(key: Key) -> u16 {
    let steps: [u8; 7] = if key.minor { [0, 2, 3, 5, 7, 8, 10] } else { [0, 2, 4, 5, 7, 9, 11] };
    steps.iter().fold(0, |m, &d| m | 1 << ((key.tonic + d) % 12))
}

/// Each of `n` items gets 0..=`total` quarters, summing to at most `total`: every way.
fn allotments(n: usize, total: usize, f: &mut impl FnMut(&[usize])) {
    fn rec(buf: &mut Vec<usize>, n: usize, left: usize, f: &mut impl FnMut(&[usize])) {
        if buf.len() == n {
            f(buf);
            return;
        }
        for c in 0..=left {
            buf.push(c);
            rec(buf, n, left - c, f);
            buf.pop();
        }
    }
    rec(&mut Vec::with_capacity(n), n, total, f);
}

/// The motion of a beat whose lower voices are expected to sound `lower` (pitch-class weights,
/// as `harmonise_melody` predicts them) under `chord`: the held tones and the inner voice's
/// quarters whose duration-weighted pitch classes point closest (cosine) to `lower`. None when
/// holding the whole chord is as close. `prev` are the pitch classes sounding in the beat before
/// (bit `pc`) and `next` the next beat's chord tones: the inner voice starts on a tone it can keep
/// from before and ends on one that leads on, as a voice moves. `melody`: the pitch classes the
/// melody sounds in the beat (bit `pc`).
pub fn motion(lower: &[f64; 12], chord: &Chord, scale: u16, melody: u16, prev: u16, next: u16) -> Option<BeatMotion> {
    let l: [f64; 12] = std::array::from_fn(|pc| lower[pc].max(0.0));
    let bass = chord.bass % 12;
    let tones = chord.sounding_pcs();
    let upper: Vec<u8> = tones.iter().copied().filter(|&pc| pc != bass).collect();
    if upper.is_empty() {
        return None;
    }
    let mut outside: Vec<u8> = (0..12u8).filter(|pc| !tones.contains(pc) && l[*pc as usize] > 0.0).collect();
    outside.sort_by(|a, b| l[*b as usize].total_cmp(&l[*a as usize]).then(a.cmp(b)));
    let fit = |held: &[u8], moving: &[u8], quarters: &[usize]| {
        let q = |c: usize| c as f64 / STEPS as f64;
        let dot: f64 = held.iter().map(|&pc| l[pc as usize]).sum::<f64>() + moving.iter().zip(quarters).map(|(&pc, &c)| q(c) * l[pc as usize]).sum::<f64>();
        let norm = (held.len() as f64 + quarters.iter().map(|&c| q(c) * q(c)).sum::<f64>()).sqrt();
        dot / norm
    };
    let whole: Vec<u8> = std::iter::once(bass).chain(upper.iter().copied()).collect();
    let plain = fit(&whole, &[], &[]);
    let mut best: Option<Candidate> = None;
    // Which of the upper tones are held besides the bass (at least one): the rest may move.
    for mask in 1u32..(1 << upper.len()) {
        let held: Vec<u8> = std::iter::once(bass).chain(upper.iter().enumerate().filter(|(i, _)| mask & 1 << i != 0).map(|(_, &pc)| pc)).collect();
        // A tone outside the chord a semitone from a held one or from the melody (F# against a
        // held F) is a clash, not a passing tone: the voice does not go there.
        let near = held.iter().fold(melody, |m, &pc| m | 1 << pc);
        let diatonic = |pc: u8| scale & 1 << (pc % 12) != 0;
        let clash = |pc: u8| [(pc + 1) % 12, (pc + 11) % 12].iter().any(|&o| near & 1 << o != 0 && !(diatonic(pc) && diatonic(o)));
        let extras = outside.iter().copied().filter(|&pc| diatonic(pc) && !clash(pc)).take(EXTRA_TONES);
        let moving: Vec<u8> = upper.iter().enumerate().filter(|(i, _)| mask & 1 << i == 0).map(|(_, &pc)| pc).chain(extras).collect();
        allotments(moving.len(), STEPS, &mut |quarters| {
            let f = fit(&held, &moving, quarters);
            if best.as_ref().is_none_or(|b| f > b.0 + MIN_GAIN) {
                best = Some((f, held.clone(), moving.clone(), quarters.to_vec()));
            }
        });
    }
    let (f, held, moving, quarters) = best?;
    if f <= plain + MIN_GAIN {
        return None;
    }
    // The inner voice's tones in the order a voice would take them: one it can keep from the
    // beat before first, one that belongs to the next chord last.
    let mut order: Vec<(u8, usize)> = moving.iter().copied().zip(quarters.iter().copied()).filter(|&(_, c)| c > 0).collect();
    let rank = |pc: u8| i32::from(next & 1 << pc != 0) - i32::from(prev & 1 << pc != 0);
    order.sort_by_key(|&(pc, _)| (rank(pc), pc));
    let mut steps = [None; STEPS];
    let mut k = 0;
    for (pc, c) in order {
        for _ in 0..c {
            steps[k] = Some(pc);
            k += 1;
        }
    }
    Some(BeatMotion { held: held.iter().fold(0u16, |m, &pc| m | 1 << pc), steps })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrange::harmony::Quality;

    const C_MAJOR: u16 = 1 | 1 << 2 | 1 << 4 | 1 << 5 | 1 << 7 | 1 << 9 | 1 << 11;

    fn weights(pcs: &[(u8, f64)]) -> [f64; 12] {
        let mut l = [0.0; 12];
        for &(pc, w) in pcs {
            l[pc as usize] = w;
        }
        l
    }

    #[test]
    fn a_sure_chord_is_held_whole() {
        let c = Chord::new(0, Quality::Major);
        assert_eq!(motion(&weights(&[(0, 0.6), (4, 0.55), (7, 0.55)]), &c, C_MAJOR, 0, 0, 0), None);
        // Negative weights (the network's regression can dip below zero) count as nothing.
        assert_eq!(motion(&weights(&[(0, 0.6), (4, 0.55), (7, 0.55), (9, -0.1)]), &c, C_MAJOR, 0, 0, 0), None);
    }

    #[test]
    fn i_or_vi_moves_the_fifth_to_the_sixth() {
        // The melody's E and C leave C major and A minor alike: C and E are sure, G or A is not.
        let c = Chord::new(0, Quality::Major);
        let m = motion(&weights(&[(0, 0.6), (4, 0.6), (7, 0.35), (9, 0.35)]), &c, C_MAJOR, 1 << 4, 1 << 7, 0).expect("an inner voice");
        assert_eq!(m.held, 1 << 0 | 1 << 4);
        // G kept from the beat before, then A: half a beat each.
        assert_eq!(m.steps, [Some(7), Some(7), Some(9), Some(9)]);
        assert_eq!(m.notes(), vec![(0, 2, 7), (2, 2, 9)]);
        assert!(m.releases(&c, 7) && !m.releases(&c, 0) && !m.releases(&c, 9));
    }

    #[test]
    fn the_bass_and_one_more_tone_are_always_held() {
        // Even where the bass is the least likely tone, it stays: the chord keeps its foot.
        let c = Chord { bass: 4, ..Chord::new(0, Quality::Major) };
        let lower = weights(&[(0, 0.5), (4, 0.05), (7, 0.5), (2, 0.4), (5, 0.4), (11, 0.3)]);
        let m = motion(&lower, &c, C_MAJOR, 0, 0, 0).expect("an inner voice");
        assert!(m.held & 1 << 4 != 0);
        assert!(m.held.count_ones() >= 2);
        // Only the chord's tones and the two most likely others are visited.
        assert!(m.steps.iter().flatten().all(|&pc| [0, 7, 2, 5].contains(&pc)), "{m:?}");
    }

    #[test]
    fn no_chromatic_semitone_against_a_held_tone_or_the_melody() {
        // G minor, D7 on the beat, hedging with B-flat major: F is likely, but F against the held
        // F# is a chromatic clash. E-flat against the melody's D is a diatonic semitone (a passing
        // dissonance) and may sound; C# against it may not.
        let g_minor = scale(Key { tonic: 7, minor: true });
        assert_eq!(g_minor, [7, 9, 10, 0, 2, 3, 5].iter().fold(0, |m, &pc| m | 1 << pc));
        let c = Chord::new(2, Quality::Dominant7);
        let lower = weights(&[(2, 0.6), (6, 0.5), (9, 0.4), (0, 0.3), (5, 0.45), (3, 0.3), (1, 0.3)]);
        let mut moved = 0;
        for melody in [1u16 << 2, 1 << 2 | 1 << 9, 1 << 9] {
            let Some(m) = motion(&lower, &c, g_minor, melody, 0, 0) else { continue };
            moved += 1;
            let sounding = m.held | m.steps.iter().flatten().fold(0u16, |acc, &pc| acc | 1 << pc);
            for pc in (0..12u8).filter(|&pc| sounding & 1 << pc != 0 && !c.contains(pc)) {
                // Outside the chord the voice stays in the key (C#, likely as it is, is not taken).
                assert!(g_minor & 1 << pc != 0, "{pc} is not in G minor: {m:?}");
                for other in [(pc + 1) % 12, (pc + 11) % 12] {
                    let against = m.held & 1 << other != 0 || melody & 1 << other != 0;
                    let diatonic = g_minor & 1 << pc != 0 && g_minor & 1 << other != 0;
                    assert!(!against || diatonic, "{pc} against {other} in {m:?}");
                }
            }
        }
        assert!(moved > 0, "the hedge between the keys moves an inner voice");
    }
}
