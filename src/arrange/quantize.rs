//! The grid: onset lag removal and quantisation with a strength.

use super::{BeatNote, Meter, Voice};

/// Largest systematic lag (seconds) that [`align_lag`] removes; a larger phase offset is taken to
/// be the music's (syncopation, a pickup), not the transcriber's.
pub const MAX_LAG_S: f64 = 0.16;
/// Smallest early offset (seconds, negative) that is corrected.
pub const MIN_LAG_S: f64 = -0.04;

/// The transcriber's systematic onset lag against the beat, in beats: the weighted circular mean of
/// the onsets' phase within the beat, if the phases agree enough and it lies in
/// [`MIN_LAG_S`, `MAX_LAG_S`]; else 0.
pub fn onset_lag(notes: &[BeatNote], meter: &Meter) -> f64 {
    let (lag, r) = onset_phase(notes);
    let lag_s = lag * meter.seconds_per_beat;
    if r >= MIN_AGREEMENT && (MIN_LAG_S..=MAX_LAG_S).contains(&lag_s) {
        lag
    } else {
        0.0
    }
}

/// Smallest resultant length (0..1) of the onset phases for a lag to be trusted.
pub const MIN_AGREEMENT: f64 = 0.25;

/// The weighted circular mean of the onsets' phase within the beat (beats, in (-0.5, 0.5]) and the
/// resultant length (0: no agreement, 1: all onsets at one phase). Long, loud notes weigh most:
/// they fall on beats far more often than short passing notes.
pub fn onset_phase(notes: &[BeatNote]) -> (f64, f64) {
    let (mut c, mut s, mut w) = (0.0f64, 0.0f64, 0.0f64);
    for n in notes {
        let weight = (n.amplitude as f64).max(0.05) * (n.end_beat - n.start_beat).clamp(0.0, 1.0);
        let phase = std::f64::consts::TAU * n.start_beat.rem_euclid(1.0);
        c += weight * phase.cos();
        s += weight * phase.sin();
        w += weight;
    }
    if w <= 0.0 {
        return (0.0, 0.0);
    }
    (s.atan2(c) / std::f64::consts::TAU, (c * c + s * s).sqrt() / w)
}

/// Moves every note earlier by the measured [`onset_lag`].
pub fn align_lag(notes: &mut [BeatNote], meter: &Meter) {
    let lag = onset_lag(notes, meter);
    if lag != 0.0 {
        for n in notes.iter_mut() {
            n.start_beat -= lag;
            n.end_beat -= lag;
        }
    }
}

/// `x` (beats) moved toward the nearest multiple of `1 / grid` by `strength` (exactly onto it at 1).
pub fn snap(x: f64, grid: u32, strength: f32) -> f64 {
    let g = grid.max(1) as f64;
    let target = (x * g).round() / g;
    if strength >= 1.0 {
        target
    } else if strength <= 0.0 {
        x
    } else {
        x + strength as f64 * (target - x)
    }
}

/// Quantises a voice's onset and end; the note keeps at least half a grid step.
pub fn snap_voice(v: &mut Voice, grid: u32, strength: f32) {
    let start = snap(v.start, grid, strength);
    let min_len = 0.5 / grid.max(1) as f64;
    let end = snap(v.end, grid, strength).max(start + min_len);
    v.start = start;
    v.end = end;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snap_is_exact_at_full_strength() {
        for i in 0..1000 {
            let x = i as f64 * 0.0371 - 5.0;
            let y = snap(x, 4, 1.0);
            assert_eq!(y * 4.0, (y * 4.0).round());
            assert!((y - x).abs() <= 0.125 + 1e-12);
        }
        assert_eq!(snap(1.3, 4, 0.0), 1.3);
        assert!((snap(1.3, 4, 0.5) - 1.275).abs() < 1e-12);
    }

    #[test]
    fn lag_is_found_and_removed() {
        let meter = Meter { beats_per_bar: 4, first_downbeat: 0.0, seconds_per_beat: 0.5 };
        let mut notes: Vec<BeatNote> = (0..32)
            .map(|i| BeatNote { start_beat: i as f64 + 0.2, end_beat: i as f64 + 1.1, pitch: 60, amplitude: 0.5, salience: 0.5 })
            .collect();
        assert!((onset_lag(&notes, &meter) - 0.2).abs() < 1e-9);
        align_lag(&mut notes, &meter);
        assert!((notes[3].start_beat - 3.0).abs() < 1e-9);
        // A phase offset that is too large to be latency is left alone.
        let off: Vec<BeatNote> = (0..32)
            .map(|i| BeatNote { start_beat: i as f64 + 0.45, end_beat: i as f64 + 1.0, pitch: 60, amplitude: 0.5, salience: 0.5 })
            .collect();
        assert_eq!(onset_lag(&off, &meter), 0.0);
    }
}
