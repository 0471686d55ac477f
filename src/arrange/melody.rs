//! Melody: one note at a time, the most salient voice in the melody register.
//!
//! A Viterbi search over quarter-beat slots: each slot's state is one of the notes sounding there or a
//! rest. A note can only be entered at its onset slot (so a held accompaniment note never becomes the
//! melody half-way) and is scored per slot by its salience, amplitude and register; leaps cost, and a
//! rest earns a small constant so weak notes are not forced into the line.

use super::quantize::{position_prior, snap, snap_metrical};
use super::{ArrangeSettings, BeatNote, Role, Voice};
use crate::notes::Hand;

/// Slot length in beats.
const SLOT: f64 = 0.25;
/// Most candidate notes per slot.
const MAX_CANDIDATES: usize = 8;
/// Per-slot score of a rest.
const REST_SCORE: f64 = 0.10;
/// Cost of a leap, per octave.
const LEAP_COST: f64 = 0.12;
/// Cost of starting a note after a rest.
const ENTRY_COST: f64 = 0.02;
/// Extra score of a note in its onset slot, as a share of its per-slot weight. A voice's note
/// usually ends where its next one starts, but the transcriber's notes ring on (release, reverb) and
/// overlap the next; without this the line stays on the ringing note and skips the new one (the
/// note-level melody recall rose from 0.59 to 0.64 on mixes, 0.59 to 0.63 on vocal lines).
const ONSET_BONUS: f64 = 0.5;
/// Where a lone line's slots start, in slots before each grid point (a band's start on them).
/// A slot holds one onset; a sung sixteenth 20 ms early falls in the slot before its grid point
/// and collides there with the note before, which is lost (bwv1.6's runs). Centred on the grid
/// points, the vocal items' melody_f1 goes 0.924 -> 0.931 (bwv1.6 0.840 -> 0.893), and the one
/// real lone line, warzone_menu, keeps its melody_acc (0.568 -> 0.573). A band's notes ring on
/// and ghost: there the centred slots cost mix melody_f1 0.809 -> 0.771.
pub const LONE_SLOT_CENTRE: f64 = 0.5;
/// Notes below this are never melody (bass register).
const MELODY_FLOOR: u8 = 45;
/// Gaps up to this many beats between melody notes are filled (legato), so accompaniment onsets in a
/// short gap stay under the melody.
pub const LEGATO_GAP: f64 = 1.0;
/// Share of the contour salience in a note's strength (the rest: basic-pitch's amplitude). On the
/// dev set the amplitude alone picked the melody better (mix melody_f1 0.664 vs 0.644 at 0.6).
const SALIENCE_WEIGHT: f64 = 0.0;
/// Register preference per semitone above MIDI 62 (the top voice of an ensemble is usually the tune).
const REGISTER_SLOPE: f64 = 0.025;
/// Where the melody's median is carried to: `[RH_MEDIAN_LOW, RH_MEDIAN_LOW + 12)`.
pub const RH_MEDIAN_LOW: i32 = 64;

/// One melody note, in beats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MelNote {
    pub start: f64,
    pub end: f64,
    pub pitch: u8,
    /// 0..1, how strongly it was heard.
    pub weight: f32,
}

/// How much a note is worth per slot it fills as melody.
fn note_weight(n: &BeatNote) -> f64 {
    let strength = SALIENCE_WEIGHT * n.salience as f64 + (1.0 - SALIENCE_WEIGHT) * n.amplitude as f64;
    let register = (1.0 + REGISTER_SLOPE * (n.pitch as f64 - 62.0)).clamp(0.6, 1.4);
    strength * register
}

/// The melody line of `notes` (sorted as [`super::cleaned`] leaves them), in time order, not
/// overlapping, unquantised. `lone`: the notes are a lone line ([`one_voice`] applied), whose
/// slots are centred on the grid points ([`LONE_SLOT_CENTRE`]).
pub fn extract(notes: &[BeatNote], lone: bool) -> Vec<MelNote> {
    let cand: Vec<usize> = (0..notes.len()).filter(|&i| notes[i].pitch >= MELODY_FLOOR).collect();
    if cand.is_empty() {
        return Vec::new();
    }
    let origin = cand.iter().map(|&i| notes[i].start_beat).fold(f64::INFINITY, f64::min).floor();
    let centre = if lone { LONE_SLOT_CENTRE } else { 0.0 };
    let slot_of = |x: f64| ((x - origin) / SLOT + centre).floor() as i64;
    // (slot, note, emission) for every slot each candidate overlaps.
    let mut pairs: Vec<(i64, u32, f64)> = Vec::new();
    for &i in &cand {
        let n = &notes[i];
        let w = note_weight(n);
        let (a, b) = (slot_of(n.start_beat), slot_of(n.end_beat - 1e-9).max(slot_of(n.start_beat)));
        for k in a..=b {
            let s0 = origin + (k as f64 - centre) * SLOT;
            let ov = (n.end_beat.min(s0 + SLOT) - n.start_beat.max(s0)).max(0.0) / SLOT;
            let onset = if k == a { ONSET_BONUS * w } else { 0.0 };
            pairs.push((k, i as u32, w * ov + onset));
        }
    }
    pairs.sort_by(|x, y| x.0.cmp(&y.0).then(y.2.total_cmp(&x.2)).then(x.1.cmp(&y.1)));
    // Group by slot, keeping the strongest candidates (a note's onset slot is always kept if it is
    // among them; later slots of a note not kept at its onset are useless and dropped).
    let mut groups: Vec<(i64, usize, usize)> = Vec::new(); // slot, range in `states`
    let mut states: Vec<(u32, f64)> = Vec::new();
    let mut i = 0;
    while i < pairs.len() {
        let slot = pairs[i].0;
        let lo = states.len();
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == slot {
            if states.len() - lo < MAX_CANDIDATES {
                states.push((pairs[j].1, pairs[j].2));
            }
            j += 1;
        }
        // Deterministic order inside a group: by note index.
        states[lo..].sort_by_key(|s| s.0);
        groups.push((slot, lo, states.len()));
        i = j;
    }
    // Viterbi. Per group: scores of its notes then the rest state (last); back pointers index the
    // previous group's states.
    let mut score: Vec<f64> = Vec::new();
    let mut back: Vec<u32> = Vec::new();
    let mut offs: Vec<usize> = Vec::new(); // start of each group's states in `score` (len + 1 each)
    let mut prev: Option<usize> = None; // previous group index
    for (g, &(slot, lo, hi)) in groups.iter().enumerate() {
        let off = score.len();
        offs.push(off);
        let n_here = hi - lo;
        let contiguous = prev.is_some_and(|p| groups[p].0 + 1 == slot);
        let (p_off, p_n) = prev.map_or((0, 0), |p| (offs[p], groups[p].2 - groups[p].1));
        // Best previous state overall (entering through a rest after a gap).
        let mut best_prev = (0u32, 0.0f64);
        if prev.is_some() {
            best_prev = (0, f64::NEG_INFINITY);
            for k in 0..=p_n {
                if score[p_off + k] > best_prev.1 {
                    best_prev = (k as u32, score[p_off + k]);
                }
            }
        }
        for k in 0..n_here {
            let (note, emit) = states[lo + k];
            let n = &notes[note as usize];
            let mut best = (0u32, f64::NEG_INFINITY);
            if contiguous {
                let (plo, _) = (groups[prev.unwrap()].1, ());
                for q in 0..p_n {
                    if states[plo + q].0 == note && score[p_off + q] > best.1 {
                        best = (q as u32, score[p_off + q]);
                    }
                }
            }
            if slot_of(n.start_beat) == slot {
                if contiguous {
                    let plo = groups[prev.unwrap()].1;
                    for q in 0..=p_n {
                        let cost = if q == p_n {
                            ENTRY_COST
                        } else {
                            let pp = notes[states[plo + q].0 as usize].pitch;
                            if states[plo + q].0 == note {
                                continue;
                            }
                            LEAP_COST * (pp.abs_diff(n.pitch).min(24) as f64) / 12.0
                        };
                        let v = score[p_off + q] - cost;
                        if v > best.1 {
                            best = (q as u32, v);
                        }
                    }
                } else {
                    let v = best_prev.1 - ENTRY_COST;
                    if v > best.1 {
                        best = (best_prev.0, v);
                    }
                }
            }
            score.push(best.1 + emit);
            back.push(best.0);
        }
        // Rest.
        if contiguous {
            let mut best = (0u32, f64::NEG_INFINITY);
            for q in 0..=p_n {
                if score[p_off + q] > best.1 {
                    best = (q as u32, score[p_off + q]);
                }
            }
            score.push(best.1 + REST_SCORE);
            back.push(best.0);
        } else {
            score.push(best_prev.1 + REST_SCORE);
            back.push(best_prev.0);
        }
        prev = Some(g);
    }
    // Backtrack.
    let last = groups.len() - 1;
    let n_last = groups[last].2 - groups[last].1;
    let mut k = (0..=n_last).fold(0usize, |b, q| if score[offs[last] + q] > score[offs[last] + b] { q } else { b });
    let mut path: Vec<Option<u32>> = vec![None; groups.len()];
    for g in (0..groups.len()).rev() {
        let (_, lo, hi) = groups[g];
        path[g] = if k < hi - lo { Some(states[lo + k].0) } else { None };
        k = back[offs[g] + k] as usize;
    }
    // Runs of one note -> melody notes.
    let mut line: Vec<MelNote> = Vec::new();
    let mut last_note: Option<u32> = None;
    for (g, st) in path.iter().enumerate() {
        let _ = g;
        if let Some(nidx) = *st {
            if last_note != Some(nidx) {
                let n = &notes[nidx as usize];
                if let Some(prev) = line.last_mut() {
                    prev.end = prev.end.min(n.start_beat).max(prev.start);
                }
                line.push(MelNote { start: n.start_beat, end: n.end_beat, pitch: n.pitch, weight: n.amplitude.max(n.salience) });
            }
        }
        last_note = *st;
    }
    line.retain(|m| m.end > m.start);
    line
}

/// A lone voice sings one note at a time: each note (overtones aside) ends where the next
/// one starts, so a note ringing on in the room does not hide the next (`notes` sorted by start).
pub fn one_voice(notes: &mut [BeatNote], partial: &[bool]) {
    // Onsets closer than this are one chord (or a doubled note), not one note after another.
    const TOGETHER: f64 = 0.1;
    let mut j = 0;
    for i in 0..notes.len() {
        if partial[i] {
            continue;
        }
        j = j.max(i + 1);
        while j < notes.len() && (partial[j] || notes[j].start_beat <= notes[i].start_beat + TOGETHER) {
            j += 1;
        }
        if j < notes.len() && notes[i].end_beat > notes[j].start_beat {
            notes[i].end_beat = notes[j].start_beat;
        }
    }
}

/// Quantises the line (onsets with the settings' strength), keeps it monophonic, fills short gaps,
/// and carries it by octaves into the right-hand register and the user's key range.
pub fn shape(line: &[MelNote], s: &ArrangeSettings) -> Vec<MelNote> {
    let g = s.grid_per_beat;
    let min_len = 0.5 / g as f64;
    // Onsets go to the grid point the line's own rhythm makes likely (a late sung note to its eighth).
    let prior = position_prior(line.iter().map(|m| m.start), g);
    let mut q: Vec<MelNote> = line
        .iter()
        .map(|m| {
            let start = snap_metrical(m.start, g, s.quantize_strength, &prior);
            MelNote { start, end: snap(m.end, g, s.quantize_strength).max(start + min_len), ..*m }
        })
        .collect();
    q.sort_by(|a, b| a.start.total_cmp(&b.start).then(b.weight.total_cmp(&a.weight)).then(a.pitch.cmp(&b.pitch)));
    // Two notes on one onset: keep the stronger (first after the sort).
    q.dedup_by(|later, earlier| later.start <= earlier.start + 1e-9);
    for i in 0..q.len() {
        if i + 1 < q.len() {
            let next = q[i + 1].start;
            if q[i].end > next || next - q[i].end <= LEGATO_GAP {
                q[i].end = next;
            }
        }
    }
    // Octave: the duration-weighted median into the right-hand register.
    if !q.is_empty() {
        let mut by_pitch: Vec<(u8, f64)> = q.iter().map(|m| (m.pitch, m.end - m.start)).collect();
        by_pitch.sort_by_key(|a| a.0);
        let total: f64 = by_pitch.iter().map(|x| x.1).sum();
        let mut acc = 0.0;
        let mut median = by_pitch[0].0 as i32;
        for (p, d) in &by_pitch {
            acc += d;
            median = *p as i32;
            if acc >= total / 2.0 {
                break;
            }
        }
        let shift = 12 * (RH_MEDIAN_LOW - median).div_euclid(12) + if (RH_MEDIAN_LOW - median).rem_euclid(12) != 0 { 12 } else { 0 };
        for m in q.iter_mut() {
            m.pitch = fit_range(m.pitch as i32 + shift, s.lowest_key, s.highest_key).unwrap_or(0);
        }
        q.retain(|m| m.pitch != 0);
    }
    q
}

/// `p` moved by octaves into `lo..=hi`, or None if the range holds no key of its pitch class.
pub fn fit_range(p: i32, lo: u8, hi: u8) -> Option<u8> {
    let (lo, hi) = (lo as i32, hi as i32);
    let mut p = p;
    while p < lo {
        p += 12;
    }
    while p > hi {
        p -= 12;
    }
    (p >= lo && p <= hi).then_some(p as u8)
}

/// The melody as right-hand voices, louder than anything else.
pub fn voices(line: &[MelNote], s: &ArrangeSettings) -> Vec<Voice> {
    line.iter()
        .map(|m| Voice {
            start: m.start,
            end: m.end,
            pitch: m.pitch,
            velocity: ((88.0 + 24.0 * m.weight.clamp(0.0, 1.0)) * s.velocity_scale).round().clamp(2.0, 127.0) as u8,
            hand: Hand::Right,
            role: Role::Melody,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bn(s: f64, e: f64, p: u8, a: f32) -> BeatNote {
        BeatNote { start_beat: s, end_beat: e, pitch: p, amplitude: a, salience: a }
    }

    #[test]
    fn a_lone_lines_sixteenths_sung_a_little_early_are_all_kept() {
        // Sixteenths on beats 0, 0.25, 0.5, each of the last two sung 0.02 beats early: in slots
        // that start on the grid points the second falls in the first's slot and is lost.
        let notes = vec![bn(0.0, 0.23, 67, 0.9), bn(0.23, 0.48, 69, 0.9), bn(0.48, 1.0, 71, 0.9)];
        let pitches = |lone| extract(&notes, lone).iter().map(|m| m.pitch).collect::<Vec<u8>>();
        assert_eq!(pitches(true), vec![67, 69, 71]);
        assert!(pitches(false).len() < 3);
    }

    #[test]
    fn picks_salient_top_line_one_at_a_time() {
        // A melody over sustained chords, with a weak high ghost note.
        let mut notes = vec![];
        for b in 0..8 {
            notes.push(bn(b as f64, b as f64 + 1.0, [72, 74, 76, 77, 79, 77, 76, 74][b], 0.8));
            notes.push(bn(b as f64, b as f64 + 1.0, 60, 0.6));
            notes.push(bn(b as f64, b as f64 + 1.0, 48, 0.6));
        }
        notes.push(bn(2.5, 2.75, 96, 0.05));
        notes.sort_by(|a, b| a.start_beat.total_cmp(&b.start_beat).then(a.pitch.cmp(&b.pitch)));
        let line = extract(&notes, false);
        let pitches: Vec<u8> = line.iter().map(|m| m.pitch).collect();
        assert_eq!(pitches, vec![72, 74, 76, 77, 79, 77, 76, 74]);
        for w in line.windows(2) {
            assert!(w[0].end <= w[1].start);
        }
    }

    #[test]
    fn shape_quantises_fills_gaps_and_moves_to_the_right_hand() {
        let line = vec![
            MelNote { start: 0.02, end: 0.4, pitch: 50, weight: 0.5 },
            MelNote { start: 1.01, end: 1.9, pitch: 52, weight: 0.5 },
            MelNote { start: 4.0, end: 5.0, pitch: 53, weight: 0.5 },
        ];
        let q = shape(&line, &ArrangeSettings::default());
        assert_eq!(q[0].start, 0.0);
        assert_eq!(q[0].end, 1.0); // gap filled
        assert_eq!(q[1].end, 2.0); // a 2-beat gap is left
        assert_eq!(q[1].pitch, 64); // the median (52) is carried to 64..76
        assert_eq!(q[0].pitch % 12, 50 % 12);
    }

    #[test]
    fn one_voice_cuts_ringing_notes_at_the_next_onset() {
        // Each sung note rings half a beat into the next; an overtone (flagged) is left alone, and
        // two notes struck together do not cut each other.
        let mut notes = vec![bn(0.0, 1.5, 60, 0.7), bn(0.02, 1.5, 79, 0.3), bn(1.0, 2.5, 62, 0.7), bn(2.0, 3.0, 64, 0.7), bn(2.05, 3.0, 67, 0.7)];
        let partial = vec![false, true, false, false, false];
        one_voice(&mut notes, &partial);
        let ends: Vec<f64> = notes.iter().map(|n| n.end_beat).collect();
        assert_eq!(ends, vec![1.0, 1.5, 2.0, 3.0, 3.0]);
    }

    #[test]
    fn fit_range_moves_by_octaves() {
        assert_eq!(fit_range(10, 21, 108), Some(22));
        assert_eq!(fit_range(120, 21, 108), Some(108));
        assert_eq!(fit_range(61, 62, 65), None);
    }
}
