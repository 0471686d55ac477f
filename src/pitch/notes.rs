//! Notes from a sung pitch curve (pure). A voice never sits on a pitch: it glides into a note,
//! wavers with vibrato (~5-6 Hz, up to half a semitone), breathes between phrases and now and
//! then jumps an octave in the tracker's eyes. A note is a stretch of voiced frames whose pitch,
//! the running median over one vibrato period, stays near one semitone for at least [`MIN_NOTE_S`]; a glide
//! between two notes belongs to the note it lands on (its onset is where the pitch left the old
//! note), so a portamento is not a chromatic run; a short unvoiced gap (a consonant) inside a note
//! is bridged; an isolated octave jump is folded back.

use super::{PitchFrames, FRAME_SECONDS, VOICED};
use crate::notes::Note;

/// Shortest note kept, seconds.
pub const MIN_NOTE_S: f64 = 0.07;
/// Unvoiced gaps up to this long inside a note are bridged (consonants, a tracker dropout).
pub const MAX_GAP_S: f64 = 0.05;
/// Frames of the running median that takes out vibrato (one period at ~5.5 Hz is 11 frames of
/// 16 ms).
pub const SMOOTH_FRAMES: usize = 11;
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
        // Pitch over the run; bridged unvoiced frames take the last voiced pitch.
        let mut m = Vec::with_capacity(to - from);
        let mut last = None;
        for k in from..to {
            let voiced = f.confidence[k] >= VOICED && f.pitch_hz[k] > 0.0;
            let v = if voiced { midi_of(f.pitch_hz[k], tuning_cents) } else { last.unwrap_or_else(|| midi_of(f.pitch_hz[from], tuning_cents)) };
            last = Some(v);
            m.push(v);
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
    fn nothing_voiced_gives_no_notes() {
        assert!(notes_from_pitch(&frames(&vec![None; 100]), 0.0).is_empty());
        assert!(notes_from_pitch(&PitchFrames::default(), 0.0).is_empty());
        // Too short to be a note.
        assert!(notes_from_pitch(&frames(&vec![Some(60.0); 3]), 0.0).is_empty());
    }
}
