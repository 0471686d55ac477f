//! The grid: onset lag removal and quantisation with a strength.

use super::{BeatNote, Meter, Voice};

/// Largest systematic lag (seconds) that [`align_lag`] removes; a larger phase offset is taken to
/// be the music's (syncopation, a pickup), not the transcriber's.
pub const MAX_LAG_S: f64 = 0.16;
/// Smallest early offset (seconds, negative) that is corrected.
pub const MIN_LAG_S: f64 = -0.04;

/// The transcriber's systematic onset lag against the beat, in beats: the weighted circular mean of
/// the onsets' phase within the beat, if the phases agree enough and it lies in
/// [`MIN_LAG_S`, `MAX_LAG_S`]; else the same within the half beat (a line in eighths puts half its
/// onsets on the off-beat, which cancels the phase within the beat), if that lag is short enough to
/// be unambiguous (under a quarter beat); else 0.
pub fn onset_lag(notes: &[BeatNote], meter: &Meter) -> f64 {
    let in_range = |lag: f64| (MIN_LAG_S..=MAX_LAG_S).contains(&(lag * meter.seconds_per_beat));
    let (lag, r) = onset_phase(notes, 1.0);
    if r >= MIN_AGREEMENT {
        return if in_range(lag) { lag } else { 0.0 };
    }
    let (lag, r) = onset_phase(notes, 0.5);
    if r >= MIN_AGREEMENT && in_range(lag) && lag.abs() < 0.25 {
        lag
    } else {
        0.0
    }
}

/// Smallest resultant length (0..1) of the onset phases for a lag to be trusted.
pub const MIN_AGREEMENT: f64 = 0.25;

/// The weighted circular mean of the onsets' phase within `period` beats (beats, in
/// (-period / 2, period / 2]) and the resultant length (0: no agreement, 1: all onsets at one
/// phase). Long, loud notes weigh most: they fall on beats far more often than short passing notes.
pub fn onset_phase(notes: &[BeatNote], period: f64) -> (f64, f64) {
    let (mut c, mut s, mut w) = (0.0f64, 0.0f64, 0.0f64);
    for n in notes {
        let weight = (n.amplitude as f64).max(0.05) * (n.end_beat - n.start_beat).clamp(0.0, 1.0);
        let phase = std::f64::consts::TAU * (n.start_beat / period).rem_euclid(1.0);
        c += weight * phase.cos();
        s += weight * phase.sin();
        w += weight;
    }
    if w <= 0.0 {
        return (0.0, 0.0);
    }
    (period * s.atan2(c) / std::f64::consts::TAU, (c * c + s * s).sqrt() / w)
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

/// Spread of the transcriber's onsets around their grid point, in grid steps, for
/// [`snap_metrical`]. Sung notes on the dev set lie a median 0.07 beat (0.3 step of a sixteenth)
/// from their lag-corrected position, one in ten more than 0.15 beat; the wider 0.5 lets the piece's
/// rhythm decide the ambiguous ones (dev set melody_f1 0.74 / 0.78 / 0.79 on vocal items at 0.2 /
/// 0.4 / 0.5, mixes 0.73 / 0.77 / 0.78).
pub const ONSET_SPREAD_STEPS: f64 = 0.5;

/// How often each grid position within the beat (0 = on the beat) holds an onset of `onsets`
/// (beats), as log probabilities (add-one smoothed). A chorale puts almost nothing on the
/// sixteenths, a funk line plenty: the piece's own rhythm says how likely each position is.
pub fn position_prior(onsets: impl Iterator<Item = f64>, grid: u32) -> Vec<f64> {
    let g = grid.max(1) as usize;
    let mut count = vec![1.0f64; g];
    for x in onsets {
        count[((x * g as f64).round() as i64).rem_euclid(g as i64) as usize] += 1.0;
    }
    let total: f64 = count.iter().sum();
    count.iter().map(|c| (c / total).ln()).collect()
}

/// As [`snap`], but the onset goes to whichever of the two grid points around it is more likely
/// given its distance (Gaussian, [`ONSET_SPREAD_STEPS`]) and the position's prior (from
/// [`position_prior`]): a sung note 60 % of a sixteenth late lands on the eighth it belongs to when
/// the piece hardly uses sixteenths.
pub fn snap_metrical(x: f64, grid: u32, strength: f32, log_prior: &[f64]) -> f64 {
    let g = grid.max(1) as f64;
    if log_prior.len() != grid.max(1) as usize || !x.is_finite() {
        return snap(x, grid, strength);
    }
    let sigma = ONSET_SPREAD_STEPS;
    let k0 = (x * g).floor();
    let cost = |k: f64| {
        let d = (x * g - k) / sigma;
        0.5 * d * d - log_prior[(k as i64).rem_euclid(grid.max(1) as i64) as usize]
    };
    let k = if cost(k0 + 1.0) < cost(k0) { k0 + 1.0 } else { k0 };
    let target = k / g;
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
    fn metrical_snap_follows_the_pieces_rhythm() {
        // A line on beats and eighths: an onset 60 % of a sixteenth late goes back to its eighth...
        let onsets = (0..40).map(|i| i as f64 * 0.5);
        let prior = position_prior(onsets, 4);
        assert!(prior[0] > prior[1] && prior[2] > prior[3]);
        assert_eq!(snap_metrical(1.15, 4, 1.0, &prior), 1.0);
        assert_eq!(snap_metrical(1.65, 4, 1.0, &prior), 1.5);
        // ...but where sixteenths are merely rarer (one onset in five), one close to a sixteenth
        // stays there, and the result is always on the grid.
        let some16 = (0..40).map(|i| i as f64 * 0.5 + if i % 5 == 0 { 0.25 } else { 0.0 });
        assert_eq!(snap_metrical(1.22, 4, 1.0, &position_prior(some16, 4)), 1.25);
        // In a line full of sixteenths the nearest point wins, as with `snap`.
        let prior16 = position_prior((0..64).map(|i| i as f64 * 0.25), 4);
        assert_eq!(snap_metrical(1.15, 4, 1.0, &prior16), 1.25);
        for i in 0..400 {
            let x = i as f64 * 0.0371 - 5.0;
            let y = snap_metrical(x, 4, 1.0, &prior);
            assert_eq!(y * 4.0, (y * 4.0).round());
            assert!((y - x).abs() <= 0.25 + 1e-12);
            assert_eq!(snap_metrical(x, 4, 0.0, &prior), x);
        }
    }

    #[test]
    fn lag_is_found_and_removed() {
        let meter = Meter { beats_per_bar: 4, first_downbeat: 0.0, seconds_per_beat: 0.5 };
        let mut notes: Vec<BeatNote> =
            (0..32).map(|i| BeatNote { start_beat: i as f64 + 0.2, end_beat: i as f64 + 1.1, pitch: 60, amplitude: 0.5, salience: 0.5 }).collect();
        assert!((onset_lag(&notes, &meter) - 0.2).abs() < 1e-9);
        align_lag(&mut notes, &meter);
        assert!((notes[3].start_beat - 3.0).abs() < 1e-9);
        // A phase offset that is too large to be latency is left alone.
        let off: Vec<BeatNote> =
            (0..32).map(|i| BeatNote { start_beat: i as f64 + 0.45, end_beat: i as f64 + 1.0, pitch: 60, amplitude: 0.5, salience: 0.5 }).collect();
        assert_eq!(onset_lag(&off, &meter), 0.0);
        // A line in eighths: the phase within the beat cancels, the half beat's finds the lag.
        let eighths: Vec<BeatNote> =
            (0..64).map(|i| BeatNote { start_beat: i as f64 * 0.5 + 0.1, end_beat: i as f64 * 0.5 + 0.55, pitch: 60, amplitude: 0.5, salience: 0.5 }).collect();
        assert!(onset_phase(&eighths, 1.0).1 < 0.01);
        assert!((onset_lag(&eighths, &meter) - 0.1).abs() < 1e-9);
    }
}
