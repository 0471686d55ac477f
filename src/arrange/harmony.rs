//! Harmony: the key of the piece and a chord per beat.
//!
//! A band's chords come from what is heard ([`heard`]): per beat the chord (triads, sevenths,
//! sus4, open fifths, with the bass the music puts under it) whose tones best match the notes
//! sounding, held by a Viterbi search until the music changes, the local key only breaking ties.
//! A lone melody's harmony is not heard: it is invented with an HMM counted in Bach chorales, in
//! each of the melody's likely keys, read again with the melody around each beat by a small
//! network trained on the same chorales, and voiced as a chorale's lower voices are expected to
//! sound, with the note the melody strikes on the beat a chord tone ([`harmonise_melody`],
//! [`closest_voicing`]); where that chord is uncertain, an inner voice moves through the likely
//! tones inside the beat ([`inner`]).

use super::melody::MelNote;
use super::{BeatNote, Meter};

pub mod heard;
pub mod inner;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Quality {
    Major,
    Minor,
    Diminished,
    /// Suspended fourth: root, fourth, fifth.
    Sus4,
    /// Root and fifth alone (an open fifth, a power chord).
    Power,
    /// Major triad and minor seventh.
    Dominant7,
    Major7,
    Minor7,
    /// Diminished triad and minor seventh (m7b5).
    HalfDiminished7,
}

impl Quality {
    /// Every quality, triads first.
    pub const ALL: [Quality; 9] = [
        Quality::Major,
        Quality::Minor,
        Quality::Diminished,
        Quality::Sus4,
        Quality::Power,
        Quality::Dominant7,
        Quality::Major7,
        Quality::Minor7,
        Quality::HalfDiminished7,
    ];

    /// Semitones above the root, the root first.
    pub fn intervals(self) -> &'static [u8] {
        match self {
            Quality::Major => &[0, 4, 7],
            Quality::Minor => &[0, 3, 7],
            Quality::Diminished => &[0, 3, 6],
            Quality::Sus4 => &[0, 5, 7],
            Quality::Power => &[0, 7],
            Quality::Dominant7 => &[0, 4, 7, 10],
            Quality::Major7 => &[0, 4, 7, 11],
            Quality::Minor7 => &[0, 3, 7, 10],
            Quality::HalfDiminished7 => &[0, 3, 6, 10],
        }
    }

    /// The triad this chord colours (what a key's diatonic prior knows about).
    pub fn triad(self) -> Quality {
        match self {
            Quality::Minor | Quality::Minor7 => Quality::Minor,
            Quality::Diminished | Quality::HalfDiminished7 => Quality::Diminished,
            _ => Quality::Major,
        }
    }
}

/// A chord: root pitch class, quality, and the pitch class in the bass (the root unless the music
/// puts another note under it: an inversion or a pedal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Chord {
    pub root: u8,
    pub quality: Quality,
    pub bass: u8,
    /// Chord tones the music leaves out (bit `pc`; never the bass): not voiced.
    pub omits: u16,
    /// Tones outside the chord that the music holds with it (bit `pc`: an added ninth, sixth or
    /// fourth): voiced with it.
    pub adds: u16,
}

impl Chord {
    /// The chord in root position.
    pub const fn new(root: u8, quality: Quality) -> Self {
        Self { root, quality, bass: root, omits: 0, adds: 0 }
    }

    /// Pitch classes, the root first, then upwards (the bass is not listed when it is not a
    /// chord tone; tones left out are).
    pub fn pcs(&self) -> Vec<u8> {
        self.quality.intervals().iter().map(|i| (self.root + i) % 12).collect()
    }

    /// Whether `pc` is one of the chord's tones.
    pub fn contains(&self, pc: u8) -> bool {
        self.quality.intervals().iter().any(|i| (self.root + i) % 12 == pc % 12)
    }

    /// What a pianist plays: the chord tones not left out, the bass, and the tones added.
    pub fn sounding_pcs(&self) -> Vec<u8> {
        let mut v = self.pcs();
        v.retain(|&pc| self.omits & (1 << pc) == 0 || pc == self.bass % 12);
        if !v.contains(&(self.bass % 12)) {
            v.push(self.bass % 12);
        }
        for pc in 0..12u8 {
            if self.adds & (1 << pc) != 0 && !v.contains(&pc) {
                v.push(pc);
            }
        }
        v
    }
}

/// Key: tonic pitch class and mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub tonic: u8,
    pub minor: bool,
}

/// The harmonic analysis: the key and a chord for every beat from `first_beat` on (None where
/// nothing sounds near).
#[derive(Clone, Debug, PartialEq)]
pub struct Harmony {
    pub key: Key,
    pub first_beat: i64,
    pub chords: Vec<Option<Chord>>,
    /// How an invented chord moves inside its beat, beat for beat with `chords` ([`inner`]);
    /// empty for harmony that is heard (the music says what sounds).
    pub motion: Vec<Option<inner::BeatMotion>>,
}

impl Harmony {
    pub fn at(&self, beat: i64) -> Option<Chord> {
        let i = beat - self.first_beat;
        if i < 0 {
            return None;
        }
        self.chords.get(i as usize).copied().flatten()
    }

    /// The inner voice of `beat`, where its chord was invented and is uncertain.
    pub fn motion_at(&self, beat: i64) -> Option<inner::BeatMotion> {
        let i = usize::try_from(beat - self.first_beat).ok()?;
        self.motion.get(i).copied().flatten()
    }
}

/// How much the share of the profile outside a key's scale counts against it (a melody's
/// pitch-class weights alone mislead the profiles: it dwells on the 2nd and 5th degrees).
const OUT_OF_SCALE_WEIGHT: f64 = 2.0;

const MAJOR_PROFILE: [f64; 12] = [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88];
const MINOR_PROFILE: [f64; 12] = [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17];
/// Aarden-Essen key profiles: pitch-class frequencies of melodies (Essen folksong collection).
const AE_MAJOR: [f64; 12] = [17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624, 8.15494, 0.232998, 4.95122];
const AE_MINOR: [f64; 12] = [18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621, 1.93186, 7.37619, 1.75623];

/// A beat with nothing sounding keeps a chord if notes sound within this many beats.
const HOLD_BEATS: i64 = 2;

fn correlation(a: &[f64; 12], b: &[f64; 12]) -> f64 {
    let ma = a.iter().sum::<f64>() / 12.0;
    let mb = b.iter().sum::<f64>() / 12.0;
    let (mut num, mut da, mut db) = (0.0, 0.0, 0.0);
    for i in 0..12 {
        num += (a[i] - ma) * (b[i] - mb);
        da += (a[i] - ma).powi(2);
        db += (b[i] - mb).powi(2);
    }
    if da <= 0.0 || db <= 0.0 {
        0.0
    } else {
        num / (da * db).sqrt()
    }
}

/// Krumhansl-Schmuckler key of a pitch-class profile (ties: the lowest tonic, major first).
pub fn key_of(profile: &[f64; 12]) -> Key {
    let mut best = (Key { tonic: 0, minor: false }, f64::NEG_INFINITY);
    for (k, c) in key_scores(profile) {
        if c > best.1 {
            best = (k, c);
        }
    }
    best.0
}

/// Every key's fit to a pitch-class profile: profile correlation less the out-of-scale share.
pub fn key_scores(profile: &[f64; 12]) -> Vec<(Key, f64)> {
    let mut out = Vec::with_capacity(24);
    for minor in [false, true] {
        for tonic in 0..12u8 {
            let base = if minor { MINOR_PROFILE } else { MAJOR_PROFILE };
            let rot: [f64; 12] = std::array::from_fn(|i| base[(i + 12 - tonic as usize) % 12]);
            let scale: &[usize] = if minor { &[0, 2, 3, 5, 7, 8, 10, 11] } else { &[0, 2, 4, 5, 7, 9, 11] };
            let sum: f64 = profile.iter().sum();
            let inside: f64 = scale.iter().map(|&d| profile[(d + tonic as usize) % 12]).sum();
            let out_share = if sum > 0.0 { 1.0 - inside / sum } else { 0.0 };
            let c = correlation(profile, &rot) - OUT_OF_SCALE_WEIGHT * out_share;
            out.push((Key { tonic, minor }, c));
        }
    }
    out
}

/// How likely a chord is in a key, as a score offset.
pub fn diatonic_prior(c: Chord, key: Key) -> f64 {
    let deg = (c.root + 12 - key.tonic) % 12;
    use Quality::*;
    if !key.minor {
        match (deg, c.quality.triad()) {
            (0, Major) => 0.14,
            (7, Major) => 0.13,
            (5, Major) => 0.11,
            (9, Minor) => 0.07,
            (2, Minor) => 0.07,
            (4, Minor) => 0.02,
            (11, Diminished) => 0.0,
            (2, Major) | (4, Major) | (9, Major) | (0, Minor) => -0.04,
            _ => -0.15,
        }
    } else {
        match (deg, c.quality.triad()) {
            (0, Minor) => 0.14,
            (7, Major) => 0.13,
            (5, Minor) => 0.11,
            (8, Major) => 0.07,
            (3, Major) => 0.06,
            (10, Major) => 0.03,
            (2, Diminished) | (11, Diminished) => 0.0,
            (0, Major) | (5, Major) | (7, Minor) => -0.03,
            _ => -0.15,
        }
    }
}

/// Cosine between a pitch-class profile and the chord's template (its tones, the root weighing a
/// little more than the third, the fifth and seventh a little less).
pub fn cosine(profile: &[f64; 12], c: Chord) -> f64 {
    let norm = profile.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm <= 0.0 {
        return 0.0;
    }
    let (mut dot, mut tn) = (0.0, 0.0);
    for &i in c.quality.intervals() {
        let w = match i {
            0 => 1.1,
            6 | 7 | 10 | 11 => 0.9,
            _ => 1.0,
        };
        dot += profile[((c.root + i) % 12) as usize] * w;
        tn += w * w;
    }
    dot / (norm * tn.sqrt())
}

/// Adds `w` spread over the integer beats that `[start, end)` overlaps, weighted by overlap. (Counting
/// a note's first beat double when it starts on the beat was tried: it cost 0.02 cover_score on mixes.)
fn spread(out: &mut Vec<(i64, u8, f64)>, start: f64, end: f64, pc: u8, w: f64) {
    let (a, b) = (start.floor() as i64, (end - 1e-9).floor() as i64);
    for k in a..=b.max(a) {
        let ov = (end.min(k as f64 + 1.0) - start.max(k as f64)).max(0.0);
        if ov > 0.0 {
            out.push((k, pc, w * ov));
        }
    }
}

/// Weight of a note that looks like an overtone of a louder note under it.
const PARTIAL_WEIGHT: f64 = 0.1;
/// Intervals (semitones) at which an overtone adds a new pitch class: the 3rd, 5th and 6th partials
/// (12th, 2 octaves + major 3rd, 2 octaves + 5th).
const PARTIAL_INTERVALS: [u8; 3] = [19, 28, 31];
/// How many neighbours on each side (in start order) are looked at.
const PARTIAL_WINDOW: usize = 24;

/// Per note: whether it is probably an overtone the transcriber reported as a note (a sung or
/// blown line's 3rd / 5th / 6th partial): a note at one of [`PARTIAL_INTERVALS`] above a note that
/// is at least as loud and covers most of it. Such notes would add a fifth or third that is not
/// played to the harmony. `notes` sorted by start.
pub fn partial_like(notes: &[BeatNote]) -> Vec<bool> {
    let mut out = vec![false; notes.len()];
    for (i, n) in notes.iter().enumerate() {
        let len = n.end_beat - n.start_beat;
        let lo = i.saturating_sub(PARTIAL_WINDOW);
        let hi = (i + PARTIAL_WINDOW + 1).min(notes.len());
        out[i] = notes[lo..hi].iter().any(|m| {
            n.pitch > m.pitch
                && PARTIAL_INTERVALS.contains(&(n.pitch - m.pitch))
                && m.amplitude >= 0.8 * n.amplitude
                && (n.end_beat.min(m.end_beat) - n.start_beat.max(m.start_beat)) >= 0.5 * len
        });
    }
    out
}

/// The key and a chord per beat, from all notes and the (shaped) melody line: a lone line is
/// harmonised as a church musician would ([`harmonise_melody`], with its inner voice where
/// `inner_voice`), a band from what is heard ([`heard::analyze`]).
pub fn analyze(notes: &[BeatNote], line: &[MelNote], meter: &Meter, inner_voice: bool) -> Harmony {
    let partial = partial_like(notes);
    // A lone line: the harmony is not heard, so it is invented from the melody. (Choosing among
    // the best few keys by the HMM's likelihood was tried: it prefers the relative major.)
    if !line.is_empty() && is_sung_line(notes, &partial) {
        return harmonise_melody(line, &melody_key_weights(line), inner_voice);
    }
    heard::analyze(notes, &partial, line, meter)
}

/// Below this mean number of notes sounding (when any sounds) the input is a lone line, a sung
/// melody: its harmony is not heard and has to be invented ([`harmonise_melody`]). A legato line
/// whose notes ring into the next measures 1.1..1.4 on the dev set, a band 2.0..4.6.
const LONE_LINE_POLYPHONY: f64 = 1.7;

/// At or above this share of its sounding time holding a third or a sixth (notes sounding
/// together for most of the shorter one), a thin texture is harmony heard, not a lone line: strings
/// or pads in thirds. A sung line's notes overlap only at its steps and in decoder ghosts (0..0.11
/// of the time on the dev set's vocal items); sustained strings in thirds measure 0.24.
const HELD_THIRDS_SHARE: f64 = 0.15;

/// Whether `notes` (sorted by start; `partial` from [`partial_like`]) are a lone line: few notes
/// sounding at once ([`polyphony`]) and no thirds or sixths held together ([`held_thirds`]).
pub fn is_lone_line(notes: &[BeatNote], partial: &[bool]) -> bool {
    polyphony(notes, partial) < LONE_LINE_POLYPHONY && held_thirds(notes, partial) < HELD_THIRDS_SHARE
}

/// The time two notes (not overtones) sound together a third or a sixth apart (any octave), each
/// pair counted where the overlap lasts at least half of the shorter note (not a legato step's
/// tail), over the time any note sounds. `notes` sorted by start.
pub fn held_thirds(notes: &[BeatNote], partial: &[bool]) -> f64 {
    let kept: Vec<&BeatNote> = notes.iter().zip(partial).filter(|(_, &p)| !p).map(|(n, _)| n).collect();
    let mut held = 0.0;
    for (i, a) in kept.iter().enumerate() {
        for b in kept[i + 1..].iter().take_while(|b| b.start_beat < a.end_beat) {
            let overlap = a.end_beat.min(b.end_beat) - a.start_beat.max(b.start_beat);
            let shorter = (a.end_beat - a.start_beat).min(b.end_beat - b.start_beat);
            if overlap > 0.0 && overlap >= 0.5 * shorter && matches!(a.pitch.abs_diff(b.pitch) % 12, 3 | 4 | 8 | 9) {
                held += overlap;
            }
        }
    }
    let union = sounding_time(notes, partial);
    if union > 0.0 {
        held / union
    } else {
        0.0
    }
}

/// Below this share of its time sounding, a lone line is not a melody sung or played alone but
/// what a transcriber hears of a sparse or quiet mix (holes between a few notes): its harmony is
/// taken from what is heard. Sung lines on the dev set cover 0.97-1.00 of their time; the lone
/// lines of real instrumental tracks 0.45-0.62.
const SUNG_COVERAGE: f64 = 0.75;

/// Whether `notes` are a lone melody to harmonise ([`harmonise_melody`]): a lone line
/// ([`is_lone_line`]) that sounds most of the time ([`coverage`]).
pub fn is_sung_line(notes: &[BeatNote], partial: &[bool]) -> bool {
    is_lone_line(notes, partial) && coverage(notes) >= SUNG_COVERAGE
}

/// Share of the time from the first note's start to the last note's end during which a note
/// sounds (`notes` sorted by start).
pub fn coverage(notes: &[BeatNote]) -> f64 {
    let (Some(first), Some(last_end)) = (notes.first(), notes.iter().map(|n| n.end_beat).max_by(f64::total_cmp)) else {
        return 0.0;
    };
    let mut union = 0.0;
    let mut cur = (first.start_beat, first.end_beat);
    for n in &notes[1..] {
        if n.start_beat <= cur.1 {
            cur.1 = cur.1.max(n.end_beat);
        } else {
            union += cur.1 - cur.0;
            cur = (n.start_beat, n.end_beat);
        }
    }
    union += cur.1 - cur.0;
    let span = last_end - first.start_beat;
    if span > 0.0 {
        union / span
    } else {
        0.0
    }
}

/// Mean number of notes sounding while any note (not an overtone) sounds.
pub fn polyphony(notes: &[BeatNote], partial: &[bool]) -> f64 {
    let total: f64 = notes.iter().zip(partial).filter(|(_, &p)| !p).map(|(n, _)| n.end_beat - n.start_beat).sum();
    let union = sounding_time(notes, partial);
    if union > 0.0 {
        total / union
    } else {
        0.0
    }
}

/// The time during which a note (not an overtone) sounds; `notes` sorted by start.
fn sounding_time(notes: &[BeatNote], partial: &[bool]) -> f64 {
    let mut union = 0.0;
    let mut cur: Option<(f64, f64)> = None;
    for (n, _) in notes.iter().zip(partial).filter(|(_, &p)| !p) {
        cur = match cur {
            Some((s, e)) if n.start_beat <= e => Some((s, e.max(n.end_beat))),
            Some((s, e)) => {
                union += e - s;
                Some((n.start_beat, n.end_beat))
            }
            None => Some((n.start_beat, n.end_beat)),
        };
    }
    if let Some((s, e)) = cur {
        union += e - s;
    }
    union
}

/// Weight of the melody's evidence (log-probabilities per beat) against the chord transitions in
/// [`harmonise_melody`]: 1, a plain HMM. (0.5..1.5 all score alike on the dev set.)
const MELODY_EMISSION_WEIGHT: f64 = 1.0;
/// A melody note struck on the beat counts this much more than one passing through it: it is a
/// chord tone far more often.
const ON_BEAT_WEIGHT: f64 = 1.5;

/// The keys of a melody with their fit, best first: correlation of its duration-weighted pitch
/// classes with the Aarden-Essen profiles (made from folk-song melodies).
pub fn melody_keys(line: &[MelNote]) -> Vec<(Key, f64)> {
    let mut prof = [0.0f64; 12];
    for m in line {
        prof[(m.pitch % 12) as usize] += m.end - m.start;
    }
    let mut keys: Vec<(Key, f64)> = Vec::with_capacity(24);
    for minor in [false, true] {
        for tonic in 0..12u8 {
            let mut rot = [0.0; 12];
            for (i, r) in rot.iter_mut().enumerate() {
                *r = if minor { AE_MINOR } else { AE_MAJOR }[(i + 12 - tonic as usize) % 12];
            }
            keys.push((Key { tonic, minor }, correlation(&prof, &rot)));
        }
    }
    keys.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.tonic.cmp(&b.0.tonic)).then(a.0.minor.cmp(&b.0.minor)));
    keys
}

/// The occupied beats split into runs no more than [`HOLD_BEATS`] apart: each run is harmonised on
/// its own (after a longer silence the harmony starts afresh).
fn beat_runs<T>(beats: &[(i64, T)]) -> impl Iterator<Item = &[(i64, T)]> {
    let mut rest = beats;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = 1 + rest.windows(2).take_while(|w| w[1].0 - w[0].0 <= HOLD_BEATS).count();
        let (run, tail) = rest.split_at(len);
        rest = tail;
        Some(run)
    })
}

/// A run's per-beat values laid out on every beat from its first (empty beats get `empty`).
fn dense_run<T: Copy>(run: &[(i64, T)], empty: T) -> (i64, Vec<T>) {
    let b0 = run[0].0;
    let mut dense = vec![empty; (run[run.len() - 1].0 - b0 + 1) as usize];
    for (b, v) in run {
        dense[(b - b0) as usize] = *v;
    }
    (b0, dense)
}

/// Appends a run's chords from beat `b0`, with no chord on the empty beats before it.
fn push_run(chords: &mut Vec<Option<Chord>>, first_beat: i64, b0: i64, run: impl Iterator<Item = Chord>) {
    let have = first_beat + chords.len() as i64;
    chords.extend((have..b0).map(|_| None));
    chords.extend(run.map(Some));
}

/// ln of the sum of the exponentials, without overflow.
fn log_sum_exp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = xs.clone().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + xs.map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// The chord to play on a beat of a harmonised melody, given `lower`, the pitch classes a
/// chorale's alto, tenor and bass are expected to sound on it (the chord posterior times each
/// chord's mean lower voices, [`super::chorale_stats`]): of the `chords` the keys allow, alone or
/// with one more tone, the one whose pitch classes point closest (cosine) to it. Where the melody
/// leaves I and vi equally likely the answer is their common tones plus the tone that tips it
/// (C-E-G-A). A fourth tone that completes a seventh chord makes it one (V7, ii7); any other is
/// an added tone. Per-beat cosine against the chorale's lower voices, on the dev set's true
/// melodies: 0.638 with the triad with most notes in common with the likely ones, 0.663 with
/// this; on held-out chorales 0.588 -> 0.626 (scripts/eval_arranger_dev/chorale_tables.py).
/// `melody_pc`: the pitch class the melody strikes on the beat; where any voicing holds it, only
/// those compete.
pub fn closest_voicing(lower: &[f64; 12], chords: &[(u8, Quality)], melody_pc: Option<u8>) -> Chord {
    let mut best = (f64::NEG_INFINITY, chords[0].0, chords[0].1, None::<u8>);
    // A note the melody strikes on the beat is a chord tone (an on-beat dissonance in the melody
    // is the chorale's exception, and a cover's accompaniment should not make one): only voicings
    // that hold it compete, where any of them does.
    for constrained in [melody_pc.is_some(), false] {
        let holds = |tones: u16| !constrained || melody_pc.is_some_and(|pc| tones & 1 << pc != 0);
        for &(root, quality) in chords {
            let tones: u16 = quality.intervals().iter().fold(0, |m, i| m | 1 << ((root + i) % 12));
            let base: f64 = (0..12).filter(|pc| tones & 1 << pc != 0).map(|pc| lower[pc]).sum();
            let n = tones.count_ones() as f64;
            if holds(tones) && base / n.sqrt() > best.0 + 1e-12 {
                best = (base / n.sqrt(), root, quality, None);
            }
            for extra in (0..12u8).filter(|pc| tones & 1 << pc == 0) {
                let fit = (base + lower[extra as usize]) / (n + 1.0).sqrt();
                if holds(tones | 1 << extra) && fit > best.0 + 1e-12 {
                    best = (fit, root, quality, Some(extra));
                }
            }
        }
        if best.0 > f64::NEG_INFINITY {
            break;
        }
    }
    let (_, root, quality, extra) = best;
    let mut chord = Chord::new(root, quality);
    if let Some(extra) = extra {
        chord.quality = match (quality, (extra + 12 - root) % 12) {
            (Quality::Major, 10) => Quality::Dominant7,
            (Quality::Major, 11) => Quality::Major7,
            (Quality::Minor, 10) => Quality::Minor7,
            (Quality::Diminished, 10) => Quality::HalfDiminished7,
            _ => quality,
        };
        if chord.quality == quality {
            chord.adds = 1 << extra;
        }
    }
    chord
}

/// How many of a melody's best-fitting keys the harmoniser weighs, and how sharply it prefers the
/// best ([`melody_key_weights`]): a lone melody often fits two keys almost equally (G minor and
/// F major for a line on G, A, B-flat and C), and a chord good in both is safer than one good in
/// the wrong one. On held-out chorales: 0.626 (the best key alone) -> 0.638; the dev set's true
/// melodies are unchanged (0.663), and bwv2.6 with F major taken as its key goes 0.565 -> 0.640.
const KEY_CANDIDATES: usize = 3;
const KEY_SOFTNESS: f64 = 10.0;

/// The keys a lone melody is harmonised in, with weights summing to 1: the best-fitting
/// [`KEY_CANDIDATES`] of [`melody_keys`], weighted by `exp(KEY_SOFTNESS * fit)`.
pub fn melody_key_weights(line: &[MelNote]) -> Vec<(Key, f64)> {
    let keys = melody_keys(line);
    let best = keys[0].1;
    let mut out: Vec<(Key, f64)> = keys.iter().take(KEY_CANDIDATES).map(|&(k, fit)| (k, (KEY_SOFTNESS * (fit - best)).exp())).collect();
    let total: f64 = out.iter().map(|k| k.1).sum();
    for k in &mut out {
        k.1 /= total;
    }
    out
}

/// Calls `f(beat, note, overlap, struck)` for each beat each note of `line` sounds in: `overlap`
/// how long it sounds there (beats, > 0), `struck` whether it starts on that beat (within 0.05).
fn for_each_beat(line: &[MelNote], mut f: impl FnMut(i64, &MelNote, f64, bool)) {
    for m in line {
        let (a, b) = (m.start.floor() as i64, (m.end - 1e-9).floor() as i64);
        for k in a..=b.max(a) {
            let ov = (m.end.min(k as f64 + 1.0) - m.start.max(k as f64)).max(0.0);
            if ov > 0.0 {
                f(k, m, ov, (m.start - k as f64).abs() < 0.05);
            }
        }
    }
}

/// Per occupied beat of `line`, the melody's evidence for each of the key's chord labels: ln P of
/// its pitch classes under the chord, weighted by how long they sound in the beat.
fn melody_evidence(line: &[MelNote], key: Key, emit: &[[f32; 12]; super::chorale_stats::N_LABELS]) -> Vec<(i64, [f64; super::chorale_stats::N_LABELS])> {
    use super::chorale_stats::N_LABELS;
    let mut beats: Vec<(i64, [f64; N_LABELS])> = Vec::new();
    for_each_beat(line, |k, m, ov, struck| {
        let deg = ((m.pitch % 12 + 12 - key.tonic) % 12) as usize;
        let w = ov * if struck { ON_BEAT_WEIGHT } else { 1.0 };
        if beats.last().is_none_or(|x| x.0 != k) {
            beats.push((k, [0.0; N_LABELS]));
        }
        let e = &mut beats.last_mut().unwrap().1;
        for l in 0..N_LABELS {
            e[l] += MELODY_EMISSION_WEIGHT * w * emit[l][deg] as f64;
        }
    });
    beats
}

/// Per beat the melody sounds in ([`melody_beats`]), by absolute pitch class: how long it sounds
/// there (in beats) and whether a note of it starts on the beat.
type MelodyBeats = std::collections::BTreeMap<i64, ([f64; 12], [bool; 12])>;

/// The melody's [`MelodyBeats`], counted as [`melody_evidence`] counts them.
fn melody_beats(line: &[MelNote]) -> MelodyBeats {
    let mut beats = MelodyBeats::new();
    for_each_beat(line, |k, m, ov, struck| {
        let pc = (m.pitch % 12) as usize;
        let e = beats.entry(k).or_insert(([0.0; 12], [false; 12]));
        e.0[pc] += ov;
        e.1[pc] |= struck;
    });
    beats
}

/// The pitch class the melody strikes on `beat` (the longest-sounding of those starting there).
fn struck_on_beat(melody: &MelodyBeats, beat: i64) -> Option<u8> {
    let (dur, on) = melody.get(&beat)?;
    (0..12u8).filter(|&pc| on[pc as usize]).max_by(|&a, &b| dur[a as usize].total_cmp(&dur[b as usize]))
}

/// The harmoniser network's inputs for `beat` in the key with this `tonic` (pitch classes as
/// semitones above it), in `chorale_net`'s order: the melody's duration per pitch class on
/// the beats two before to two after, the pitch classes starting on the beat, whether the next
/// and the previous beat have no melody, and the HMM's expected lower voices on it.
fn net_inputs(melody: &MelodyBeats, beat: i64, tonic: u8, hmm_lower: &[f64; 12]) -> [f64; super::chorale_net::N_INPUTS] {
    let mut x = [0.0; super::chorale_net::N_INPUTS];
    let rel = |pc: usize| (pc + 12 - tonic as usize) % 12;
    for (k, offset) in (-2..=2).enumerate() {
        if let Some((dur, _)) = melody.get(&(beat + offset)) {
            for (pc, &d) in dur.iter().enumerate() {
                x[12 * k + rel(pc)] += d;
            }
        }
    }
    if let Some((_, on)) = melody.get(&beat) {
        for pc in (0..12).filter(|&pc| on[pc]) {
            x[60 + rel(pc)] = 1.0;
        }
    }
    // A beat is in the map only where the melody sounds.
    x[72] = f64::from(u8::from(!melody.contains_key(&(beat + 1))));
    x[73] = f64::from(u8::from(!melody.contains_key(&(beat - 1))));
    x[74..86].copy_from_slice(hmm_lower);
    x
}

/// The network's prediction of the lower voices' unit pitch-class vector (key's frame).
fn net_lower(net: &super::chorale_net::Net, x: &[f64; super::chorale_net::N_INPUTS]) -> [f64; 12] {
    let hidden: [f64; super::chorale_net::N_HIDDEN] =
        std::array::from_fn(|h| (net.w1[h].iter().zip(x).map(|(&w, &x)| w as f64 * x).sum::<f64>() + net.b1[h] as f64).max(0.0));
    std::array::from_fn(|o| net.w2[o].iter().zip(&hidden).map(|(&w, &h)| w as f64 * h).sum::<f64>() + net.b2[o] as f64)
}

/// Harmonises a lone melody as a church musician would: an HMM over each likely key's common
/// chords, one per beat, whose transitions and melody-under-chord probabilities were counted in
/// 361 Bach chorales ([`super::chorale_stats`]): V goes to I, IV to V, a melody note on the beat
/// is mostly a chord tone, a passing one need not be. `keys` are the keys to weigh
/// ([`melody_key_weights`]; the first is the harmony's key). The HMM sees the melody one beat at
/// a time; a small network trained on the same chorales (`chorale_net`, written by
/// scripts/eval_arranger_dev/chorale_net.py) reads the melody two beats either side of each beat
/// with the HMM's expectation and predicts the lower voices, and [`super::chorale_net::BLEND`] of
/// its prediction is taken with the rest of the HMM's. Each beat then gets the chord closest to
/// what the lower voices are expected to sound in every key ([`closest_voicing`]), holding the
/// note the melody strikes on the beat. Per-beat cosine against held-out chorales' lower voices
/// (trained on the other half): the HMM alone 0.638, with the network 0.675. On the dev set's
/// vocal items (their transcribed melodies): harmony_sim 0.663 -> 0.683, 0.680 with the struck
/// note held (Twinkle's D no longer under E minor), cover_score 0.767 -> 0.778. Each beat's
/// [`inner::motion`] is then chosen from the same expectation: 0.719 and 0.806 (with the lone
/// line's centred melody slots). Without `inner_voice` (Live) no motion is searched for.
pub fn harmonise_melody(line: &[MelNote], keys: &[(Key, f64)], inner_voice: bool) -> Harmony {
    use super::chorale_net::{BLEND, NET_MAJOR, NET_MINOR};
    use super::chorale_stats::*;
    let melody = melody_beats(line);
    let key = keys.first().map_or(Key { tonic: 0, minor: false }, |k| k.0);
    // The occupied beats do not depend on the key.
    let occupied = melody_evidence(line, key, &MELODY_MAJOR);
    if occupied.is_empty() {
        return Harmony { key, first_beat: 0, chords: Vec::new(), motion: Vec::new() };
    }
    let first = occupied[0].0;
    let span = (occupied[occupied.len() - 1].0 - first + 1) as usize;
    // Expected lower voices per beat (absolute pitch classes), and the chords any key allows.
    let mut lower = vec![[0.0f64; 12]; span];
    let mut allowed: Vec<(u8, Quality)> = Vec::new();
    for &(k, weight) in keys {
        let (labels, prior, trans, emit, voices, net) = if k.minor {
            (&LABELS_MINOR, &PRIOR_MINOR, &TRANSITION_MINOR, &MELODY_MINOR, &LOWER_VOICES_MINOR, &NET_MINOR)
        } else {
            (&LABELS_MAJOR, &PRIOR_MAJOR, &TRANSITION_MAJOR, &MELODY_MAJOR, &LOWER_VOICES_MAJOR, &NET_MAJOR)
        };
        for &(root, quality) in labels.iter() {
            let c = ((root + k.tonic) % 12, quality);
            if !allowed.contains(&c) {
                allowed.push(c);
            }
        }
        let beats = melody_evidence(line, k, emit);
        for run in beat_runs(&beats) {
            let (b0, ev) = dense_run(run, [0.0f64; N_LABELS]);
            let len = ev.len();
            // Forward-backward: each beat's chord posterior given the whole run.
            let mut fwd = vec![[0.0f64; N_LABELS]; len];
            let mut bwd = vec![[0.0f64; N_LABELS]; len];
            fwd[0] = std::array::from_fn(|l| prior[l] as f64 + ev[0][l]);
            for t in 1..len {
                for c in 0..N_LABELS {
                    fwd[t][c] = log_sum_exp((0..N_LABELS).map(|p| fwd[t - 1][p] + trans[p][c] as f64)) + ev[t][c];
                }
            }
            for t in (0..len - 1).rev() {
                for p in 0..N_LABELS {
                    bwd[t][p] = log_sum_exp((0..N_LABELS).map(|c| trans[p][c] as f64 + ev[t + 1][c] + bwd[t + 1][c]));
                }
            }
            for t in 0..len {
                let z = log_sum_exp((0..N_LABELS).map(|l| fwd[t][l] + bwd[t][l]));
                // The HMM's expected lower voices (key's frame), then the network's reading of
                // them with the melody around the beat.
                let mut hmm = [0.0f64; 12];
                for l in 0..N_LABELS {
                    let p = (fwd[t][l] + bwd[t][l] - z).exp();
                    for (d, &v) in voices[l].iter().enumerate() {
                        hmm[d] += p * v as f64;
                    }
                }
                let beat = b0 + t as i64;
                let predicted = net_lower(net, &net_inputs(&melody, beat, k.tonic, &hmm));
                let out = &mut lower[(beat - first) as usize];
                for d in 0..12 {
                    out[(d + k.tonic as usize) % 12] += weight * (BLEND * predicted[d] + (1.0 - BLEND) * hmm[d]);
                }
            }
        }
    }
    let mut chords: Vec<Option<Chord>> = Vec::new();
    for run in beat_runs(&occupied) {
        let b0 = run[0].0;
        let len = (run[run.len() - 1].0 - b0 + 1) as usize;
        let from = (b0 - first) as usize;
        let voicings = lower[from..from + len].iter().enumerate().map(|(t, v)| closest_voicing(v, &allowed, struck_on_beat(&melody, b0 + t as i64)));
        push_run(&mut chords, first, b0, voicings);
    }
    if !inner_voice {
        return Harmony { key, first_beat: first, chords, motion: Vec::new() };
    }
    // Where the chord is uncertain, the tones it is sure of are held and an inner voice moves
    // through the others ([`inner`]).
    let tones = |c: Option<Chord>| c.map_or(0u16, |c| c.sounding_pcs().iter().fold(0, |m, &pc| m | 1 << pc));
    let mut motion: Vec<Option<inner::BeatMotion>> = Vec::with_capacity(chords.len());
    let scale = inner::scale(key);
    for (i, c) in chords.iter().enumerate() {
        let m = c.and_then(|c| {
            // What sounded in the beat before: its inner voice's held tones and last step, else
            // its chord.
            let prev = i.checked_sub(1).map_or(0, |j| match motion[j] {
                Some(pm) => pm.held | pm.steps.iter().rev().flatten().next().map_or(0, |&pc| 1 << pc),
                None => tones(chords[j]),
            });
            let sung = melody.get(&(first + i as i64)).map_or(0u16, |(dur, _)| (0..12).filter(|&pc| dur[pc] > 0.0).fold(0, |m, pc| m | 1 << pc));
            inner::motion(&lower[i], &c, scale, sung, prev, tones(chords.get(i + 1).copied().flatten()))
        });
        motion.push(m);
    }
    Harmony { key, first_beat: first, chords, motion }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beats_split_into_runs_at_long_silences() {
        let beats: Vec<(i64, u8)> = [0, 1, 3, 6, 7, 10].iter().map(|&b| (b, 1)).collect();
        let runs: Vec<Vec<i64>> = beat_runs(&beats).map(|r| r.iter().map(|b| b.0).collect()).collect();
        assert_eq!(runs, vec![vec![0, 1, 3], vec![6, 7], vec![10]]);
        assert_eq!(dense_run(&beats[..3], 0), (0, vec![1, 1, 0, 1]));
        let mut chords = vec![];
        let c = Chord::new(0, Quality::Major);
        push_run(&mut chords, 2, 4, [c].into_iter());
        assert_eq!(chords, vec![None, None, Some(c)]);
    }

    #[test]
    fn chorale_tables_are_probabilities() {
        use crate::arrange::chorale_stats::*;
        let sum = |r: &[f32]| r.iter().map(|&x| (x as f64).exp()).sum::<f64>();
        for rows in [&TRANSITION_MAJOR, &TRANSITION_MINOR] {
            for r in rows.iter() {
                assert!((sum(r) - 1.0).abs() < 0.02, "{r:?}");
            }
        }
        for rows in [&MELODY_MAJOR, &MELODY_MINOR] {
            for r in rows.iter() {
                assert!((sum(r) - 1.0).abs() < 0.02, "{r:?}");
            }
        }
        assert!(sum(&PRIOR_MAJOR) <= 1.01 && sum(&PRIOR_MINOR) <= 1.01);
        // The tonic chord is the most common, and V goes to I more than I to V... in major.
        assert_eq!(LABELS_MAJOR[0], (0, Quality::Major));
        assert_eq!(LABELS_MINOR[0], (0, Quality::Minor));
        let v = LABELS_MAJOR.iter().position(|&l| l == (7, Quality::Major)).unwrap();
        assert!(TRANSITION_MAJOR[v][0] > TRANSITION_MAJOR[0][v]);
    }

    #[test]
    fn the_voicing_between_two_likely_chords_keeps_their_common_tones() {
        // Lower voices expected half on C major, half on A minor: C-E-G-A (C with an added
        // sixth), not either triad alone; on G major alone, the triad; a G major with F expected
        // too is G7.
        let mut lower = [0.0f64; 12];
        for pc in [0, 4, 7] {
            lower[pc] += 0.5;
        }
        for pc in [9, 0, 4] {
            lower[pc] += 0.5;
        }
        let chords = [(0, Quality::Major), (7, Quality::Major), (9, Quality::Minor)];
        let c = closest_voicing(&lower, &chords, None);
        let mut pcs = c.sounding_pcs();
        pcs.sort();
        assert_eq!(pcs, vec![0, 4, 7, 9], "{c:?}");
        assert_eq!(c.root, 0);
        let g = closest_voicing(&std::array::from_fn(|pc| if [7, 11, 2].contains(&pc) { 1.0 } else { 0.0 }), &chords, None);
        assert_eq!(g, Chord::new(7, Quality::Major));
        let g7 = closest_voicing(&std::array::from_fn(|pc| if [7, 11, 2, 5].contains(&pc) { 1.0 } else { 0.0 }), &chords, None);
        assert_eq!(g7, Chord::new(7, Quality::Dominant7));
    }

    #[test]
    fn the_network_reads_the_melody_in_the_keys_frame() {
        use crate::arrange::chorale_net::{BLEND, NET_MAJOR, N_INPUTS};
        use crate::arrange::chorale_stats::{LABELS_MAJOR, LOWER_VOICES_MAJOR};
        // G held over beats 4 and 5 in G major (tonic 7), struck on beat 4; nothing on beat 6.
        let line = [MelNote { start: 3.0, end: 4.0, pitch: 71, weight: 0.8 }, MelNote { start: 4.0, end: 6.0, pitch: 67, weight: 0.8 }];
        let melody = melody_beats(&line);
        assert_eq!(struck_on_beat(&melody, 4), Some(7));
        assert_eq!(struck_on_beat(&melody, 5), None);
        let hmm: [f64; 12] = std::array::from_fn(|d| LOWER_VOICES_MAJOR[0][d] as f64);
        let x = net_inputs(&melody, 4, 7, &hmm);
        assert_eq!(x.len(), N_INPUTS);
        // Beat 3 (offset -1) holds B = degree 4, beats 4 and 5 hold the tonic, beat 6 is silent.
        assert_eq!((x[12 + 4], x[24], x[36], x[48]), (1.0, 1.0, 1.0, 0.0));
        assert_eq!((x[60], x[72], x[73]), (1.0, 0.0, 0.0));
        assert_eq!(&x[74..86], &hmm[..]);
        assert_eq!(net_inputs(&melody, 5, 7, &hmm)[72], 1.0);
        // The tonic struck on the beat with the HMM expecting I: the blend still voices I (the
        // lower voices it expects lean to the third and fifth, the melody having the root).
        let predicted = net_lower(&NET_MAJOR, &x);
        let blended: [f64; 12] = std::array::from_fn(|d| BLEND * predicted[d] + (1.0 - BLEND) * hmm[d]);
        let c = closest_voicing(&blended, &LABELS_MAJOR, Some(0));
        assert_eq!((c.root, c.quality.triad()), (0, Quality::Major), "{c:?} from {predicted:?}");
        // A different melody around the same beat changes the prediction: the network reads it.
        let other = net_inputs(&melody_beats(&[MelNote { start: 3.0, end: 6.0, pitch: 69, weight: 0.8 }]), 4, 7, &hmm);
        let moved: f64 = net_lower(&NET_MAJOR, &other).iter().zip(&predicted).map(|(a, b)| (a - b).abs()).sum();
        assert!(moved > 0.1, "{moved}");
    }

    #[test]
    fn an_ambiguous_melody_weighs_its_likely_keys() {
        // G, A, B-flat, C, D: G minor and F/B-flat major fit alike; the weights sum to 1, best first.
        let line: Vec<MelNote> = [67u8, 69, 70, 72, 74, 72, 70, 69, 67]
            .iter()
            .enumerate()
            .map(|(i, &p)| MelNote { start: i as f64, end: i as f64 + 1.0, pitch: p, weight: 0.8 })
            .collect();
        let keys = melody_key_weights(&line);
        assert_eq!(keys.len(), KEY_CANDIDATES);
        assert!((keys.iter().map(|k| k.1).sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(keys.windows(2).all(|w| w[0].1 >= w[1].1));
        assert!(keys[1].1 > 0.1, "{keys:?}");
        assert_eq!(keys[0].0, melody_keys(&line)[0].0);
    }

    #[test]
    fn a_lone_melody_is_harmonised_with_a_cadence() {
        // "Twinkle twinkle" in G, a note per beat, ending D D C C B B A | G.
        let tune = [67u8, 67, 74, 74, 76, 76, 74, 74, 72, 72, 71, 71, 69, 69, 67, 67];
        let line: Vec<MelNote> = tune.iter().enumerate().map(|(i, &p)| MelNote { start: i as f64, end: i as f64 + 1.0, pitch: p, weight: 0.8 }).collect();
        let key = melody_keys(&line)[0].0;
        assert_eq!(key, Key { tonic: 7, minor: false });
        let h = harmonise_melody(&line, &melody_key_weights(&line), true);
        assert_eq!(h.key, key);
        // Every melody note on the beat is a chord tone, and the last beats are V (or V-like) to I.
        for m in &line {
            assert!(h.at(m.start as i64).unwrap().contains(m.pitch % 12), "{:?} under {}", h.at(m.start as i64), m.pitch);
        }
        // (The tonic chord may carry a sixth or a seventh: what a chorale's lower voices sound.)
        for b in [0, 15] {
            let c = h.at(b).unwrap();
            assert_eq!((c.root, c.quality.triad()), (7, Quality::Major), "beat {b}: {c:?}");
        }
        let notes: Vec<BeatNote> =
            line.iter().map(|m| BeatNote { start_beat: m.start, end_beat: m.end, pitch: m.pitch, amplitude: 0.7, salience: 0.7 }).collect();
        let partial = partial_like(&notes);
        assert!(is_lone_line(&notes, &partial));
        let mut band = notes.clone();
        for b in 0..16 {
            for p in [43u8, 55, 59] {
                band.push(BeatNote { start_beat: b as f64, end_beat: b as f64 + 1.0, pitch: p, amplitude: 0.5, salience: 0.5 });
            }
        }
        band.sort_by(|a, b| a.start_beat.total_cmp(&b.start_beat).then(a.pitch.cmp(&b.pitch)));
        assert!(!is_lone_line(&band, &partial_like(&band)));
        // The tune sung is a melody to harmonise; the same notes a beat each with three beats of
        // silence between (a transcriber hearing little of a mix) are not.
        assert!(is_sung_line(&notes, &partial) && coverage(&notes) == 1.0);
        let sparse: Vec<BeatNote> = notes.iter().map(|n| BeatNote { start_beat: n.start_beat * 4.0, end_beat: n.start_beat * 4.0 + 1.0, ..*n }).collect();
        assert!(is_lone_line(&sparse, &partial) && !is_sung_line(&sparse, &partial));
        assert!((coverage(&sparse) - 16.0 / 61.0).abs() < 1e-9);
    }

    #[test]
    fn strings_in_thirds_are_harmony_heard_not_a_lone_line() {
        let bn = |s: f64, e: f64, p: u8| BeatNote { start_beat: s, end_beat: e, pitch: p, amplitude: 0.6, salience: 0.6 };
        // A legato line whose notes ring a quarter beat into the next: steps, no thirds held.
        let line: Vec<BeatNote> = [60u8, 62, 64, 65, 67, 65, 64, 62].iter().enumerate().map(|(i, &p)| bn(i as f64, i as f64 + 1.25, p)).collect();
        let partial = partial_like(&line);
        assert_eq!(held_thirds(&line, &partial), 0.0);
        assert!(is_lone_line(&line, &partial));
        // The same line with a second voice a third under it on every other note (a string pad
        // in thirds): still few notes at once, but harmony is heard.
        let mut strings = line.clone();
        for i in (0..8).step_by(2) {
            strings.push(bn(i as f64, i as f64 + 1.0, line[i].pitch - 4));
        }
        strings.sort_by(|a, b| a.start_beat.total_cmp(&b.start_beat).then(a.pitch.cmp(&b.pitch)));
        let partial = partial_like(&strings);
        assert!(polyphony(&strings, &partial) < LONE_LINE_POLYPHONY);
        assert!((held_thirds(&strings, &partial) - 4.0 / 8.25).abs() < 1e-9);
        assert!(!is_lone_line(&strings, &partial));
        // A third that only overlaps a step's tail is not held.
        let tail = [bn(0.0, 1.0, 60), bn(0.9, 2.0, 64)];
        assert_eq!(held_thirds(&tail, &[false, false]), 0.0);
    }

    #[test]
    fn key_of_c_major_scale() {
        let mut p = [0.0; 12];
        for pc in [0, 2, 4, 5, 7, 9, 11] {
            p[pc] = 1.0;
        }
        p[0] = 2.0;
        p[7] = 1.5;
        assert_eq!(key_of(&p), Key { tonic: 0, minor: false });
    }

    #[test]
    fn chords_from_block_triads_and_from_a_melody_alone() {
        let meter = Meter { beats_per_bar: 4, first_downbeat: 0.0, seconds_per_beat: 0.5 };
        let bn = |s: f64, p: u8| BeatNote { start_beat: s, end_beat: s + 1.0, pitch: p, amplitude: 0.7, salience: 0.7 };
        // C F G C as block chords, two beats each.
        let mut notes = vec![];
        for (b, tri) in [(0.0, [48, 52, 55]), (2.0, [53, 57, 60]), (4.0, [55, 59, 62]), (6.0, [48, 52, 55])] {
            for p in tri {
                notes.push(bn(b, p));
                notes.push(bn(b + 1.0, p));
            }
        }
        let h = analyze(&notes, &[], &meter, true);
        let roots: Vec<u8> = (0..8).map(|b| h.at(b).unwrap().root).collect();
        assert_eq!(roots, vec![0, 0, 5, 5, 7, 7, 0, 0]);
        // A melody alone in C: E D C ... the chords must contain the melody notes.
        let mel: Vec<MelNote> = [64u8, 62, 60, 67, 65, 64, 62, 60]
            .iter()
            .enumerate()
            .map(|(i, &p)| MelNote { start: i as f64, end: i as f64 + 1.0, pitch: p, weight: 0.8 })
            .collect();
        let notes: Vec<BeatNote> = mel.iter().map(|m| bn(m.start, m.pitch)).collect();
        let h = analyze(&notes, &mel, &meter, true);
        assert_eq!(h.key, Key { tonic: 0, minor: false });
        for m in &mel {
            assert!(h.at(m.start as i64).unwrap().contains(m.pitch % 12), "{:?}", h.at(m.start as i64));
        }
    }
}
