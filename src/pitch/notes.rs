//! Notes from a sung pitch curve (pure). A voice never sits on a pitch: it glides into a note,
//! wavers with vibrato (~5-6 Hz, up to half a semitone), breathes between phrases and now and
//! then jumps an octave in the tracker's eyes. A note is a stretch of voiced frames whose pitch,
//! the running median over one vibrato period, stays near one semitone for at least [`MIN_NOTE_S`]; a glide
//! between two notes belongs to the note it lands on (its onset is where the pitch left the old
//! note), so a portamento is not a chromatic run; a short unvoiced gap (a consonant) inside a note
//! is bridged; an isolated octave jump is folded back. A repeated note sung legato (the pitch
//! never moves) is told by the note model's onsets where the voice re-articulates
//! ([`with_model_onsets`], [`SungLine`]): splitting at loudness dips of 4 dB alone made 146 notes
//! of the 122 sung in a dev-set vocal and lowered its note F1 at 100 ms from 0.913 to 0.873, and
//! the note model's onsets alone split a vibrato into many notes.

use super::{PitchFrames, FRAME_SECONDS, VOICED};
use crate::notes::Note;

/// Shortest note kept, seconds.
pub const MIN_NOTE_S: f64 = 0.07;
/// Unvoiced gaps up to this long inside a note are bridged (consonants, a tracker dropout).
pub const MAX_GAP_S: f64 = 0.05;
/// Frames of the running median that takes out vibrato: 7 frames (112 ms) holds the centre of a
/// 5.5 Hz vibrato (11 frames a period) within a fifth of its swing, and still lets a 125 ms note
/// of a fast run through.
pub const SMOOTH_FRAMES: usize = 7;
/// How far (semitones) the smoothed pitch may drift from a note before it counts as leaving it.
pub const LEAVE_SEMITONES: f64 = 0.6;

/// MIDI pitch (fractional) of `hz`, with the recording's tuning (cents from A440) taken out.
pub fn midi_of(hz: f32, tuning_cents: f64) -> f64 {
    69.0 + 12.0 * (hz as f64 / 440.0).log2() - tuning_cents / 100.0
}

/// Voiced runs `[from, to)` of frames, gaps up to [`MAX_GAP_S`] bridged.
fn voiced_runs(f: &PitchFrames) -> Vec<(usize, usize)> {
    let max_gap = (MAX_GAP_S / FRAME_SECONDS).round() as usize;
    let mut runs: Vec<(usize, usize)> = vec![];
    let mut k = 0;
    while k < f.len() {
        if f.confidence[k] < VOICED || !f.pitch_hz[k].is_finite() || f.pitch_hz[k] <= 0.0 {
            k += 1;
            continue;
        }
        let start = k;
        while k < f.len() && f.confidence[k] >= VOICED {
            k += 1;
        }
        match runs.last_mut() {
            Some(last) if start - last.1 <= max_gap => last.1 = k,
            _ => runs.push((start, k)),
        }
    }
    runs
}

/// Folds isolated octave jumps back: a frame more than 9 semitones from the median of its
/// neighbours moves by whole octaves toward it.
fn fold_octaves(m: &mut [f64]) {
    const RADIUS: usize = 5;
    let original = m.to_vec();
    for k in 0..m.len() {
        let lo = k.saturating_sub(RADIUS);
        let hi = (k + RADIUS + 1).min(m.len());
        let mut around: Vec<f64> = original[lo..hi].to_vec();
        around.sort_by(f64::total_cmp);
        let median = around[around.len() / 2];
        while m[k] - median > 9.0 {
            m[k] -= 12.0;
        }
        while median - m[k] > 9.0 {
            m[k] += 12.0;
        }
    }
}

/// Centered running median over `width` frames (shorter at the edges): over a whole vibrato
/// period it sits at the vibrato's centre, and unlike a mean it steps across a glide in a frame
/// or two instead of walking through every semitone on the way.
fn smooth(m: &[f64], width: usize) -> Vec<f64> {
    let half = width / 2;
    let mut window = Vec::with_capacity(width);
    (0..m.len())
        .map(|k| {
            let lo = k.saturating_sub(half);
            let hi = (k + half + 1).min(m.len());
            window.clear();
            window.extend_from_slice(&m[lo..hi]);
            window.sort_by(f64::total_cmp);
            window[window.len() / 2]
        })
        .collect()
}

/// The notes of a sung line. `tuning_cents` is the recording's reference pitch from A440.
/// `amplitude` is the note's mean confidence (0..1).
pub fn notes_from_pitch(f: &PitchFrames, tuning_cents: f64) -> Vec<Note> {
    let min_frames = (MIN_NOTE_S / FRAME_SECONDS).ceil() as usize;
    let mut out = vec![];
    for (from, to) in voiced_runs(f) {
        // Pitch over the run; a bridged unvoiced gap takes the pitch of the voiced frame after it:
        // the gap is the articulation before the next note, so a new note starts where it began.
        let voiced = |k: usize| f.confidence[k] >= VOICED && f.pitch_hz[k] > 0.0;
        let mut m = vec![0.0; to - from];
        let mut next = midi_of(f.pitch_hz[to - 1], tuning_cents);
        for k in (from..to).rev() {
            if voiced(k) {
                next = midi_of(f.pitch_hz[k], tuning_cents);
            }
            m[k - from] = next;
        }
        fold_octaves(&mut m);
        let s = smooth(&m, SMOOTH_FRAMES);
        // Walk the run: a note holds while the smoothed pitch stays within LEAVE_SEMITONES of it;
        // a new one needs min_frames of smoothed pitch near a new semitone.
        let mut k = 0;
        let mut current: Option<(usize, i32)> = None; // (start frame in run, semitone)
        let mut left_at: Option<usize> = None; // where the pitch left the current note
        while k < m.len() {
            let q = s[k].round() as i32;
            match current {
                None => {
                    if stays(&s, k, q, min_frames) {
                        current = Some((k, q));
                    }
                }
                Some((start, p)) => {
                    let near = (s[k] - p as f64).abs() <= LEAVE_SEMITONES;
                    if near {
                        left_at = None;
                    } else {
                        // The glide began before the median stepped: back to the last frame
                        // whose own pitch was still on the old note.
                        let leave = *left_at.get_or_insert_with(|| glide_start(&m, k, start, p));
                        if q != p && stays(&s, k, q, min_frames) {
                            push(&mut out, f, &m, from, start, leave, p);
                            current = Some((leave, q));
                            left_at = None;
                        }
                    }
                }
            }
            k += 1;
        }
        if let Some((start, p)) = current {
            push(&mut out, f, &m, from, start, m.len(), p);
        }
    }
    out
}

/// Longest glide looked back over, frames (~130 ms).
const MAX_GLIDE_FRAMES: usize = 8;

/// The first frame of the move away from semitone `p` that the smoothed pitch saw at `k`: the
/// frames just before `k` whose own pitch is already off `p` (no earlier than `floor`).
fn glide_start(m: &[f64], k: usize, floor: usize, p: i32) -> usize {
    let mut at = k;
    while at > floor + 1 && k - at < MAX_GLIDE_FRAMES && (m[at - 1] - p as f64).abs() > 0.5 {
        at -= 1;
    }
    at
}

/// Whether the smoothed pitch stays near semitone `q` for `n` frames from `k`.
fn stays(s: &[f64], k: usize, q: i32, n: usize) -> bool {
    k + n <= s.len() && s[k..k + n].iter().all(|&x| (x - q as f64).abs() <= 0.5)
}

fn push(out: &mut Vec<Note>, f: &PitchFrames, m: &[f64], run_from: usize, start: usize, end: usize, pitch: i32) {
    let min_frames = (MIN_NOTE_S / FRAME_SECONDS).ceil() as usize;
    if end <= start || end - start < min_frames || !(21..=108).contains(&pitch) {
        return;
    }
    let _ = m;
    let conf = f.confidence[run_from + start..run_from + end].iter().map(|&c| c as f64).sum::<f64>() / (end - start) as f64;
    out.push(Note {
        start_s: (run_from + start) as f64 * FRAME_SECONDS,
        end_s: (run_from + end) as f64 * FRAME_SECONDS,
        pitch: pitch as u8,
        amplitude: conf.clamp(0.0, 1.0) as f32,
    });
}

/// A voice re-articulates a held pitch (a consonant, a new breath push) with an attack: its level
/// rises at least this many dB within [`ARTICULATION_SPAN_S`]. A vibrato's swell is slower and
/// smaller; the dev set's repeated sung notes rise 8-11 dB (a dip before them is often absent: the
/// old note fades into the new attack).
pub const ARTICULATION_RISE_DB: f32 = 3.0;
/// How soon after its start an attack's rise is measured.
pub const ARTICULATION_SPAN_S: f64 = 0.05;
/// A note-model onset inside a sung note splits it only this close to a re-articulation.
pub const ARTICULATION_TOLERANCE_S: f64 = 0.1;

/// A sung line: its notes, and where the voice re-articulated (seconds): attacks in its level and
/// voiced frames after a short unvoiced gap. A note-model onset inside a held note splits it only
/// at one of these: a vibrato swings the note model's onset head too (on the synthetic singer
/// it split 32 sung notes into 84), a repeated note is sung with a new attack.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SungLine {
    pub notes: Vec<Note>,
    pub articulations: Vec<f64>,
}

impl SungLine {
    /// The line of a pitch curve ([`notes_from_pitch`], [`articulations`]).
    pub fn from_curve(f: &PitchFrames, tuning_cents: f64) -> Self {
        Self { notes: notes_from_pitch(f, tuning_cents), articulations: articulations(f) }
    }

    /// Everything `seconds` later (a curve that started later in the take).
    pub fn shifted(mut self, seconds: f64) -> Self {
        for n in &mut self.notes {
            n.start_s += seconds;
            n.end_s += seconds;
        }
        for a in &mut self.articulations {
            *a += seconds;
        }
        self
    }
}

/// Where the voice re-articulates (seconds, ascending): a frame from which the level rises at
/// least [`ARTICULATION_RISE_DB`] within [`ARTICULATION_SPAN_S`] (the foot of an attack), and a
/// voiced frame after unvoiced ones. One attack counts once.
pub fn articulations(f: &PitchFrames) -> Vec<f64> {
    let span = (ARTICULATION_SPAN_S / FRAME_SECONDS).round().max(1.0) as usize;
    let l = &f.loudness_db;
    let voiced = |k: usize| f.confidence[k] >= VOICED && f.pitch_hz[k] > 0.0;
    let mut out = vec![];
    let mut last: Option<usize> = None;
    for k in 1..f.len() {
        let attack = || {
            let peak = l[k + 1..(k + 1 + span).min(f.len())].iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            l[k] <= l[k - 1] && peak - l[k] >= ARTICULATION_RISE_DB
        };
        if (voiced(k) && !voiced(k - 1)) || (k + 1 < f.len() && attack()) {
            if last.is_none_or(|j| k > j + span) {
                out.push(k as f64 * FRAME_SECONDS);
            }
            last = Some(k);
        }
    }
    out
}

/// How far before a sung note's start the note model's onset of the same pitch class may be and
/// still be its onset (a voice's pitch settles after the attack the note model hears). A slow
/// legato step (a choir's, a slow ballad's) crosses between two pitches over ~150 ms: at 0.12 s
/// the dev set's vocal melody_f1 was 0.898, at 0.2 s 0.924 (0.3 s: the same); the synthetic
/// singer is unchanged (tests/voice_melody.rs).
pub const ONSET_LEAD_S: f64 = 0.2;
/// ... and how far after.
pub const ONSET_LAG_S: f64 = 0.03;

/// The sung notes with their onsets taken from the note model where it heard them: the pitch
/// tracker knows the pitch and how long it is held, the note model when a note is struck. A
/// note-model onset of the same pitch class from [`ONSET_LEAD_S`] before to [`ONSET_LAG_S`] after a
/// sung note's start moves the start there (not before the previous note's start plus
/// [`MIN_NOTE_S`]); one inside a sung note, [`MIN_NOTE_S`] from both its ends and within
/// [`ARTICULATION_TOLERANCE_S`] of one of the line's re-articulations, is a repeated note and
/// splits it.
pub fn with_model_onsets(line: &SungLine, model: &[Note]) -> Vec<Note> {
    timed_by_onsets(line, model, true)
}

/// [`with_model_onsets`] for a line still being sung (Live mode): a held note splits only at
/// attacks, because whether an onset inside it is a lone one is known only when it ends, and a
/// split once played cannot be taken back.
pub fn with_model_onsets_streaming(line: &SungLine, model: &[Note]) -> Vec<Note> {
    timed_by_onsets(line, model, false)
}

fn timed_by_onsets(line: &SungLine, model: &[Note], split_lone: bool) -> Vec<Note> {
    let (sung, articulations) = (&line.notes, &line.articulations);
    let articulated = |t: f64| {
        let i = articulations.partition_point(|&a| a < t - ARTICULATION_TOLERANCE_S);
        articulations.get(i).is_some_and(|&a| a <= t + ARTICULATION_TOLERANCE_S)
    };
    let mut onsets: Vec<(f64, u8)> = model.iter().map(|n| (n.start_s, n.pitch % 12)).collect();
    onsets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<Note> = Vec::with_capacity(sung.len());
    for n in sung {
        let pc = n.pitch % 12;
        let floor = out.last().map_or(f64::NEG_INFINITY, |p: &Note| p.start_s + MIN_NOTE_S);
        let lo = onsets.partition_point(|o| o.0 < n.start_s - ONSET_LEAD_S);
        let start = onsets[lo..]
            .iter()
            .take_while(|o| o.0 <= n.start_s + ONSET_LAG_S)
            .filter(|o| o.1 == pc && o.0 >= floor)
            .map(|o| o.0)
            .min_by(|a, b| (a - n.start_s).abs().total_cmp(&(b - n.start_s).abs()))
            .unwrap_or(n.start_s);
        if let Some(prev) = out.last_mut() {
            prev.end_s = prev.end_s.min(start);
        }
        let mut piece = Note { start_s: start, ..*n };
        let inner = onsets.partition_point(|o| o.0 < start + MIN_NOTE_S);
        let inside: Vec<f64> = onsets[inner..].iter().take_while(|o| o.0 <= n.end_s - MIN_NOTE_S).filter(|o| o.1 == pc).map(|o| o.0).collect();
        // A lone onset inside a held pitch is a repeated note even where the level shows no
        // attack (a legato repeat); a train of them is the vibrato, split only at attacks.
        let lone = split_lone && inside.len() == 1;
        for &o in &inside {
            if o >= piece.start_s + MIN_NOTE_S && (lone || articulated(o)) {
                out.push(Note { end_s: o, ..piece });
                piece.start_s = o;
            }
        }
        out.push(piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of a pitch curve given per frame in MIDI (None: unvoiced).
    fn frames(curve: &[Option<f64>]) -> PitchFrames {
        PitchFrames {
            pitch_hz: curve.iter().map(|m| m.map_or(0.0, |m| (440.0 * 2f64.powf((m - 69.0) / 12.0)) as f32)).collect(),
            confidence: curve.iter().map(|m| if m.is_some() { 0.9 } else { 0.0 }).collect(),
            loudness_db: vec![-20.0; curve.len()],
        }
    }

    fn secs(n: f64) -> usize {
        (n / FRAME_SECONDS).round() as usize
    }

    #[test]
    fn vibrato_stays_one_note_and_a_glide_is_not_a_run() {
        let mut curve = vec![];
        // 0.5 s of A4 with +-40 cents vibrato at 5.5 Hz, a 100 ms glide up to C#5, 0.5 s there.
        for k in 0..secs(0.5) {
            curve.push(Some(69.0 + 0.4 * (2.0 * std::f64::consts::PI * 5.5 * k as f64 * FRAME_SECONDS).sin()));
        }
        let g = secs(0.1);
        for k in 0..g {
            curve.push(Some(69.0 + 4.0 * k as f64 / g as f64));
        }
        for k in 0..secs(0.5) {
            curve.push(Some(73.0 + 0.4 * (2.0 * std::f64::consts::PI * 5.5 * k as f64 * FRAME_SECONDS).sin()));
        }
        let notes = notes_from_pitch(&frames(&curve), 0.0);
        let pitches: Vec<u8> = notes.iter().map(|n| n.pitch).collect();
        assert_eq!(pitches, vec![69, 73], "{notes:?}");
        // The second note starts where the glide left A4, within 50 ms of the glide's start.
        assert!((notes[1].start_s - 0.5).abs() <= 0.05, "{notes:?}");
    }

    #[test]
    fn a_breath_ends_a_note_and_a_consonant_does_not() {
        let mut curve = vec![Some(60.0); secs(0.4)];
        curve.extend(vec![None; secs(0.03)]);
        curve.extend(vec![Some(60.0); secs(0.4)]);
        curve.extend(vec![None; secs(0.3)]);
        curve.extend(vec![Some(62.0); secs(0.4)]);
        let notes = notes_from_pitch(&frames(&curve), 0.0);
        assert_eq!(notes.iter().map(|n| n.pitch).collect::<Vec<_>>(), vec![60, 62], "{notes:?}");
        assert!(notes[0].end_s > 0.8, "{notes:?}");
    }

    #[test]
    fn an_octave_slip_is_folded_back_and_tuning_is_taken_out() {
        let mut curve = vec![Some(64.3); secs(0.6)];
        for c in curve.iter_mut().skip(10).take(3) {
            *c = Some(76.3);
        }
        let notes = notes_from_pitch(&frames(&curve), 30.0);
        assert_eq!(notes.iter().map(|n| n.pitch).collect::<Vec<_>>(), vec![64], "{notes:?}");
        // 40 cents sharp without the tuning offset would still be E4; 70 cents sharp is F4.
        let sharp = notes_from_pitch(&frames(&vec![Some(64.7); secs(0.6)]), 0.0);
        assert_eq!(sharp[0].pitch, 65);
        assert_eq!(notes_from_pitch(&frames(&vec![Some(64.7); secs(0.6)]), 40.0)[0].pitch, 64);
    }

    #[test]
    fn model_onsets_fix_late_starts_and_split_repeated_notes() {
        let n = |s: f64, e: f64, p: u8| Note { start_s: s, end_s: e, pitch: p, amplitude: 0.9 };
        let sung = [n(0.86, 1.30, 60), n(1.30, 2.0, 62)];
        // The note model heard C4 at 0.78 (the pitch settled 80 ms later), C4 again at 1.0 (a
        // repeated note), D4 at 1.26, and an E4 nobody sang.
        let model = [n(0.78, 1.0, 60), n(1.0, 1.25, 60), n(1.26, 2.0, 62), n(1.5, 1.6, 64)];
        // The voice re-articulated at 1.03.
        let line = SungLine { notes: sung.to_vec(), articulations: vec![1.03] };
        let out = with_model_onsets(&line, &model);
        let got: Vec<(f64, u8)> = out.iter().map(|x| (x.start_s, x.pitch)).collect();
        assert_eq!(got, vec![(0.78, 60), (1.0, 60), (1.26, 62)], "{out:?}");
        assert!((out[1].end_s - 1.26).abs() < 1e-9, "the note before ends where the next starts: {out:?}");
        // Without model onsets nothing changes.
        assert_eq!(with_model_onsets(&line, &[]), sung.to_vec());
        // Without an attack, a lone onset inside the held note still splits it (a legato repeat),
        // except while the line is still being sung (Live cannot know it stays lone).
        let held = SungLine { notes: sung.to_vec(), articulations: vec![] };
        let starts = |v: Vec<Note>| v.iter().map(|x| (x.start_s, x.pitch)).collect::<Vec<_>>();
        assert_eq!(starts(with_model_onsets(&held, &model)), vec![(0.78, 60), (1.0, 60), (1.26, 62)]);
        assert_eq!(starts(with_model_onsets_streaming(&held, &model)), vec![(0.78, 60), (1.26, 62)]);
        // A train of onsets inside it (a vibrato's swings) splits only at the attack.
        let mut train = model.to_vec();
        train.push(n(1.18, 1.25, 60));
        train.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
        assert_eq!(starts(with_model_onsets(&held, &train)), vec![(0.78, 60), (1.26, 62)]);
        assert_eq!(starts(with_model_onsets(&line, &train)), vec![(0.78, 60), (1.0, 60), (1.26, 62)]);
    }

    #[test]
    fn articulations_are_level_dips_and_new_voicing() {
        let mut f = frames(&vec![Some(60.0); secs(1.0)]);
        // An attack at 0.4 s (the level rises 8 dB in two frames and stays), a 2 dB swell
        // (vibrato) at 0.7 s, and a consonant at 0.2 s.
        let dip = secs(0.4);
        for (k, l) in f.loudness_db.iter_mut().enumerate() {
            *l = if k <= dip {
                -28.0
            } else if k == dip + 1 {
                -24.0
            } else {
                -20.0
            };
        }
        f.loudness_db[secs(0.7)] += 2.0;
        let gap = secs(0.2);
        f.confidence[gap] = 0.1;
        f.confidence[gap + 1] = 0.1;
        let got = articulations(&f);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!((got[0] - (gap + 2) as f64 * FRAME_SECONDS).abs() < 1e-9, "{got:?}");
        // The attack's foot: within the rise's span before the loud frames.
        let span = ARTICULATION_SPAN_S + 1e-9;
        assert!(got[1] <= dip as f64 * FRAME_SECONDS + 1e-9 && got[1] >= dip as f64 * FRAME_SECONDS - span, "{got:?}");
        assert!(articulations(&PitchFrames::default()).is_empty());
    }

    #[test]
    fn nothing_voiced_gives_no_notes() {
        assert!(notes_from_pitch(&frames(&vec![None; 100]), 0.0).is_empty());
        assert!(notes_from_pitch(&PitchFrames::default(), 0.0).is_empty());
        // Too short to be a note.
        assert!(notes_from_pitch(&frames(&[Some(60.0); 3]), 0.0).is_empty());
    }
}
