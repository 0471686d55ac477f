//! Harmony from what is heard: for a band (not a lone line), the chord of each beat is the one
//! whose tones best match the pitch classes sounding in it, from a vocabulary real songs use
//! (triads, sevenths, sus4, open fifths), with the note in the bass kept when it is not the root.
//! A Viterbi search holds a chord until the evidence changes (the chord rhythm comes from the
//! music), and the key (estimated locally, so it may change) only breaks ties: where the audio
//! is ambiguous or silent.

use super::{beat_runs, cosine, dense_run, diatonic_prior, key_of, push_run, spread, Chord, Harmony, Key, Quality};
use crate::arrange::melody::MelNote;
use crate::arrange::{BeatNote, Meter};

/// One beat's evidence: the pitch classes of all notes, and of the low notes alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BeatEvidence {
    pub all: [f64; 12],
    pub low: [f64; 12],
}

impl BeatEvidence {
    const EMPTY: Self = Self { all: [0.0; 12], low: [0.0; 12] };
}

/// Weight of the diatonic prior of the local key (its range is about -0.15..0.14) beside the
/// evidence's cosine (0..1): enough to decide between chords that fit the notes alike.
const PRIOR_WEIGHT: f64 = 0.3;
/// Change penalty between beats, on a weak and a strong beat.
const CHANGE_COST_WEAK: f64 = 0.10;
const CHANGE_COST_STRONG: f64 = 0.05;
/// Beats on each side whose notes make the local key.
const KEY_WINDOW: i64 = 16;
/// A low pitch class is the bass when it has at least this share of the beat's low notes...
const BASS_SHARE: f64 = 0.5;
/// ...and, when it is not a chord tone (a pedal), this share.
const PEDAL_SHARE: f64 = 0.8;
/// Notes at or below this key count fully as bass evidence; above it half as much every
/// [`LOW_HALVING`] semitones, up to [`LOW_TOP`] (the lowest note of a chord leads).
const LOW_FULL: u8 = 28;
const LOW_HALVING: f64 = 6.0;
const LOW_TOP: u8 = 59;

/// A chord tone sounding less than this share of the beat's strongest pitch class is left out.
/// (0.1 kept fifths the band hardly plays; 0.3 left out thirds the synthetic dev set's comp
/// plays softly: mix cover_score 0.817 -> 0.803.)
const OMIT_SHARE: f64 = 0.2;
/// A tone outside the chord sounding at least this share of the beat's strongest pitch class is
/// played with it ([`with_adds`]).
const ADD_SHARE: f64 = 0.5;

/// Cost of a chord beyond a triad: a seventh or a sus must explain more than a triad does.
pub fn complexity(q: Quality) -> f64 {
    match q {
        Quality::Major | Quality::Minor => 0.0,
        Quality::Diminished => 0.02,
        Quality::Power => 0.03,
        Quality::Sus4 => 0.04,
        Quality::Dominant7 | Quality::Major7 | Quality::Minor7 | Quality::HalfDiminished7 => 0.03,
    }
}

/// Every root-position chord the search considers: each quality on each root.
pub fn vocabulary() -> Vec<Chord> {
    Quality::ALL.iter().flat_map(|&q| (0..12).map(move |r| Chord::new(r, q))).collect()
}

/// Per occupied beat (sorted), the evidence of `notes` (sorted by start; `partial` marks notes
/// that are probably overtones, which count little): each note adds its weight times its overlap
/// with the beat.
pub fn evidence(notes: &[BeatNote], partial: &[bool]) -> Vec<(i64, BeatEvidence)> {
    let mut all: Vec<(i64, u8, f64)> = Vec::new();
    let mut low: Vec<(i64, u8, f64)> = Vec::new();
    for (n, &is_partial) in notes.iter().zip(partial) {
        let w = (0.2 + n.amplitude as f64) * if is_partial { super::PARTIAL_WEIGHT } else { 1.0 };
        let bass = if n.pitch < 55 { 1.5 } else { 1.0 };
        spread(&mut all, n.start_beat, n.end_beat, n.pitch % 12, w * bass);
        let lw = if n.pitch <= LOW_TOP { (-((n.pitch.max(LOW_FULL) - LOW_FULL) as f64) / LOW_HALVING).exp2() } else { 0.0 };
        if lw > 0.0 && !is_partial {
            spread(&mut low, n.start_beat, n.end_beat, n.pitch % 12, w * lw);
        }
    }
    let mut out: Vec<(i64, BeatEvidence)> = Vec::new();
    let mut add = |b: i64, f: &dyn Fn(&mut BeatEvidence)| {
        let i = out.partition_point(|e| e.0 < b);
        if out.get(i).is_none_or(|e| e.0 != b) {
            out.insert(i, (b, BeatEvidence::EMPTY));
        }
        f(&mut out[i].1);
    };
    for &(b, pc, w) in &all {
        add(b, &|e| e.all[pc as usize] += w);
    }
    for &(b, pc, w) in &low {
        add(b, &|e| e.low[pc as usize] += w);
    }
    out
}

/// The bass pitch class a beat's low notes show, if one clearly leads: `(pc, share)`.
pub fn heard_bass(low: &[f64; 12]) -> Option<(u8, f64)> {
    let sum: f64 = low.iter().sum();
    if sum <= 0.0 {
        return None;
    }
    let best = (0..12).fold(0usize, |b, i| if low[i] > low[b] { i } else { b });
    let share = low[best] / sum;
    (share >= BASS_SHARE).then_some((best as u8, share))
}

/// The chord with its bass: the heard bass when it is a chord tone, or a pedal held strongly
/// enough under it; else the root.
pub fn with_bass(c: Chord, low: &[f64; 12]) -> Chord {
    match heard_bass(low) {
        Some((pc, share)) if c.contains(pc) || share >= PEDAL_SHARE => Chord { bass: pc, ..c },
        _ => c,
    }
}

/// The chord with the tones the beat does not sound (below [`OMIT_SHARE`] of its strongest pitch
/// class) left out of the voicing, as a pianist leaves out a fifth nobody plays; the bass stays.
/// Where the band sounds the bass alone (a unison riff, an octave pedal), so does the pianist:
/// the left hand plays it in octaves ([`accompaniment`](crate::arrange::accompaniment)) rather
/// than invent a fifth or a third (keeping a second tone added an unheard one on 1 beat in 5 of
/// some real tracks and cost their harmony_margin 0.03 on average).
pub fn with_omits(c: Chord, all: &[f64; 12], omit_share: f64) -> Chord {
    let top = all.iter().fold(0.0f64, |m, &v| m.max(v));
    if top <= 0.0 {
        return c;
    }
    let mut out = c;
    let tones = c.sounding_pcs();
    let mut kept = tones.len();
    // The weakest first.
    let mut weak: Vec<u8> = tones.into_iter().filter(|&pc| pc != c.bass % 12 && all[pc as usize] < omit_share * top).collect();
    weak.sort_by(|&a, &b| all[a as usize].total_cmp(&all[b as usize]).then(a.cmp(&b)));
    for pc in weak {
        if kept <= 1 {
            break;
        }
        out.omits |= 1 << pc;
        kept -= 1;
    }
    out
}

/// The chord with the strongest tones the beat sounds outside it (at least `add_share` of its
/// strongest pitch class; at most [`MAX_ADDS`]) added, as a pianist keeps the ninth or sixth the
/// band holds over the chord; not the pitch classes in `melody` (bit `pc`): a passing note of the
/// tune is heard in the tune, not doubled under it.
pub fn with_adds(c: Chord, all: &[f64; 12], add_share: f64, melody: u16) -> Chord {
    let top = all.iter().fold(0.0f64, |m, &v| m.max(v));
    if top <= 0.0 || add_share <= 0.0 {
        return c;
    }
    let tones = c.sounding_pcs();
    let mut extra: Vec<u8> = (0..12u8).filter(|&pc| !tones.contains(&pc) && melody & (1 << pc) == 0 && all[pc as usize] >= add_share * top).collect();
    extra.sort_by(|&a, &b| all[b as usize].total_cmp(&all[a as usize]).then(a.cmp(&b)));
    extra.truncate(MAX_ADDS);
    let mut out = c;
    for pc in extra {
        out.adds |= 1 << pc;
    }
    out
}

/// The pitch classes (bit `pc`) the melody line sounds during beat `b`.
pub fn melody_pcs(line: &[MelNote], b: i64) -> u16 {
    let (t0, t1) = (b as f64, b as f64 + 1.0);
    let i = line.partition_point(|m| m.end <= t0);
    line[i..].iter().take_while(|m| m.start < t1).filter(|m| m.end > t0).fold(0u16, |mask, m| mask | 1 << (m.pitch % 12))
}

/// Most tones added to a chord: a ninth and a sixth at most, never a cluster.
const MAX_ADDS: usize = 2;

/// Key of each occupied beat: Krumhansl's from the notes within [`KEY_WINDOW`] beats.
pub fn local_keys(beats: &[(i64, BeatEvidence)]) -> Vec<Key> {
    let mut out = Vec::with_capacity(beats.len());
    let (mut lo, mut hi) = (0usize, 0usize);
    let mut sum = [0.0f64; 12];
    for &(b, _) in beats {
        while hi < beats.len() && beats[hi].0 <= b + KEY_WINDOW {
            for (s, v) in sum.iter_mut().zip(&beats[hi].1.all) {
                *s += v;
            }
            hi += 1;
        }
        while beats[lo].0 < b - KEY_WINDOW {
            for (s, v) in sum.iter_mut().zip(&beats[lo].1.all) {
                *s -= v;
            }
            lo += 1;
        }
        out.push(key_of(&sum.map(|x| x.max(0.0))));
    }
    out
}

/// The key and a chord per beat of a band's notes (`line`: its melody, sorted).
pub fn analyze(notes: &[BeatNote], partial: &[bool], line: &[MelNote], meter: &Meter) -> Harmony {
    let beats = evidence(notes, partial);
    if beats.is_empty() {
        return Harmony { key: Key { tonic: 0, minor: false }, first_beat: 0, chords: Vec::new(), motion: Vec::new() };
    }
    let mut total = [0.0f64; 12];
    for (_, e) in &beats {
        for (t, v) in total.iter_mut().zip(&e.all) {
            *t += v;
        }
    }
    let key = key_of(&total);
    let keys = local_keys(&beats);
    let first = beats[0].0;
    let vocab = vocabulary();
    let nc = vocab.len();
    let mut chords: Vec<Option<Chord>> = Vec::new();
    let mut k_at = 0usize;
    for run in beat_runs(&beats) {
        let (b0, ev) = dense_run(run, BeatEvidence::EMPTY);
        let len = ev.len();
        // The local key of each beat in the run (an empty beat takes the one before).
        let mut run_keys = Vec::with_capacity(len);
        for t in 0..len {
            if k_at < beats.len() && beats[k_at].0 == b0 + t as i64 {
                run_keys.push(keys[k_at]);
                k_at += 1;
            } else {
                run_keys.push(run_keys.last().copied().unwrap_or(key));
            }
        }
        let mut score = vec![0.0f64; nc];
        let mut back = vec![0u16; len * nc];
        for t in 0..len {
            let emit: Vec<f64> = vocab.iter().map(|&c| cosine(&ev[t].all, c) + PRIOR_WEIGHT * diatonic_prior(c, run_keys[t]) - complexity(c.quality)).collect();
            if t == 0 {
                score.copy_from_slice(&emit);
                continue;
            }
            let change = if meter.is_strong(b0 + t as i64) { CHANGE_COST_STRONG } else { CHANGE_COST_WEAK };
            let best_prev = (0..nc).fold(0usize, |b, c| if score[c] > score[b] { c } else { b });
            let second = (0..nc).filter(|&c| c != best_prev).fold(usize::MAX, |b, c| if b == usize::MAX || score[c] > score[b] { c } else { b });
            let mut next = vec![0.0f64; nc];
            for c in 0..nc {
                let other = if best_prev != c { best_prev } else { second };
                let (from, v) = if score[other] - change > score[c] { (other, score[other] - change) } else { (c, score[c]) };
                next[c] = v + emit[c];
                back[t * nc + c] = from as u16;
            }
            score = next;
        }
        let mut c = (0..nc).fold(0, |b, c| if score[c] > score[b] { c } else { b });
        let mut path = vec![0usize; len];
        for t in (0..len).rev() {
            path[t] = c;
            c = back[t * nc + c] as usize;
        }
        push_run(
            &mut chords,
            first,
            b0,
            path.iter().enumerate().map(|(t, &c)| {
                let c = with_bass(vocab[c], &ev[t].low);
                with_adds(with_omits(c, &ev[t].all, OMIT_SHARE), &ev[t].all, ADD_SHARE, melody_pcs(line, b0 + t as i64))
            }),
        );
    }
    Harmony { key, first_beat: first, chords, motion: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bn(s: f64, e: f64, p: u8) -> BeatNote {
        BeatNote { start_beat: s, end_beat: e, pitch: p, amplitude: 0.6, salience: 0.6 }
    }

    fn run(notes: &mut [BeatNote]) -> Harmony {
        notes.sort_by(|a, b| a.start_beat.total_cmp(&b.start_beat).then(a.pitch.cmp(&b.pitch)));
        let partial = vec![false; notes.len()];
        analyze(notes, &partial, &[], &Meter { beats_per_bar: 4, first_downbeat: 0.0, seconds_per_beat: 0.5 })
    }

    #[test]
    fn sevenths_power_chords_and_inversions_are_heard() {
        // Bars of: G7 (G B D F), an open fifth on D (D A), C/E (E under C E G), Am7 (A C E G).
        let mut notes = vec![];
        for (bar, pitches) in [[43u8, 59, 62, 65], [38, 50, 57, 62], [40, 48, 55, 60], [45, 60, 64, 67]].iter().enumerate() {
            for &p in pitches {
                notes.push(bn(bar as f64 * 4.0, bar as f64 * 4.0 + 4.0, p));
            }
        }
        let h = run(&mut notes);
        assert_eq!(h.at(1), Some(Chord::new(7, Quality::Dominant7)));
        assert_eq!(h.at(5), Some(Chord::new(2, Quality::Power)));
        assert_eq!(h.at(9), Some(Chord { bass: 4, ..Chord::new(0, Quality::Major) }));
        assert_eq!(h.at(13), Some(Chord::new(9, Quality::Minor7)));
    }

    #[test]
    fn the_chord_holds_until_the_music_changes_and_the_key_only_breaks_ties() {
        // C E G for 3 beats, then F A C for 1 beat: the F chord is heard and taken, even on a
        // weak beat.
        let mut notes = vec![];
        for p in [48u8, 52, 55] {
            notes.push(bn(0.0, 3.0, p));
        }
        for p in [53u8, 57, 60] {
            notes.push(bn(3.0, 4.0, p));
        }
        let h = run(&mut notes);
        let roots: Vec<u8> = (0..4).map(|b| h.at(b).unwrap().root).collect();
        assert_eq!(roots, vec![0, 0, 0, 5]);
        // A lone C and G: an open fifth, not a guessed third.
        let mut notes = vec![bn(0.0, 2.0, 48), bn(0.0, 2.0, 55)];
        assert_eq!(run(&mut notes).at(0).unwrap().quality, Quality::Power);
    }

    #[test]
    fn bass_is_kept_when_it_is_a_chord_tone_or_a_pedal() {
        let mut low = [0.0; 12];
        low[4] = 1.0;
        low[0] = 0.3;
        assert_eq!(heard_bass(&low), Some((4, 1.0 / 1.3)));
        assert_eq!(with_bass(Chord::new(0, Quality::Major), &low).bass, 4);
        // D under a C chord with 77% of the low notes: not enough for a pedal.
        let mut low = [0.0; 12];
        low[2] = 1.0;
        low[7] = 0.3;
        assert_eq!(with_bass(Chord::new(0, Quality::Major), &low).bass, 0);
        low[7] = 0.1;
        assert_eq!(with_bass(Chord::new(0, Quality::Major), &low).bass, 2);
        assert_eq!(heard_bass(&[0.0; 12]), None);
    }

    #[test]
    fn unheard_tones_are_left_out() {
        // C and E strong, G silent: G is left out; the bass always stays.
        let c = Chord::new(0, Quality::Major);
        let mut all = [0.0; 12];
        (all[0], all[4], all[6]) = (1.0, 0.8, 0.2);
        assert_eq!(with_omits(c, &all, 0.1).sounding_pcs(), vec![0, 4]);
        assert_eq!(with_omits(c, &all, 0.1).omits, 1 << 7);
        let mut all = [0.0; 12];
        all[0] = 1.0;
        assert_eq!(with_omits(c, &all, 0.1).sounding_pcs(), vec![0], "the root alone");
        let e_bass = Chord { bass: 4, ..c };
        all[4] = 0.0;
        assert!(with_omits(e_bass, &all, 0.1).sounding_pcs().contains(&4), "the bass stays");
    }

    #[test]
    fn tones_the_band_holds_over_the_chord_are_added() {
        // C major with a strong D (an added ninth) and a faint F#: D is added, F# is not.
        let c = Chord::new(0, Quality::Major);
        let mut all = [0.0; 12];
        (all[0], all[4], all[7], all[2], all[6]) = (1.0, 0.8, 0.7, 0.6, 0.2);
        let added = with_adds(c, &all, 0.5, 0);
        assert_eq!(added.adds, 1 << 2);
        assert_eq!(added.sounding_pcs(), vec![0, 4, 7, 2]);
        assert!(!added.contains(2), "an added tone is not a chord tone (the bass rules see the triad)");
        // At most two, the strongest first; nothing to add to a silent beat.
        (all[5], all[9], all[11]) = (0.9, 0.95, 0.55);
        assert_eq!(with_adds(c, &all, 0.5, 0).adds, 1 << 9 | 1 << 5);
        assert_eq!(with_adds(c, &[0.0; 12], 0.5, 0), c);
        // What the melody plays in the beat is not doubled under it.
        assert_eq!(with_adds(c, &all, 0.5, 1 << 9).adds, 1 << 5 | 1 << 2);
        let line = [MelNote { start: 0.5, end: 1.25, pitch: 69, weight: 0.8 }, MelNote { start: 1.25, end: 2.0, pitch: 71, weight: 0.8 }];
        assert_eq!((melody_pcs(&line, 0), melody_pcs(&line, 1), melody_pcs(&line, 2)), (1 << 9, 1 << 9 | 1 << 11, 0));
    }

    #[test]
    fn the_key_follows_a_modulation() {
        let mut beats = vec![];
        let scale = |tonic: u8| -> BeatEvidence {
            let mut all = [0.0; 12];
            for (d, w) in [(0, 3.0), (2, 1.0), (4, 2.0), (5, 1.0), (7, 2.5), (9, 1.0), (11, 1.0)] {
                all[((tonic + d) % 12) as usize] = w;
            }
            BeatEvidence { all, low: [0.0; 12] }
        };
        for b in 0..40 {
            beats.push((b, scale(if b < 20 { 0 } else { 7 })));
        }
        let keys = local_keys(&beats);
        assert_eq!(keys[0], Key { tonic: 0, minor: false });
        assert_eq!(keys[39], Key { tonic: 7, minor: false });
    }
}
