//! Tempo and beat phase from transcribed notes, for the CLI when the user gives no `--bpm` (in the
//! plugin the host's transport is the grid). An onset-strength signal at 10 ms resolution is
//! autocorrelated over 60..180 bpm with a mild preference for moderate tempi; the phase is the offset
//! that puts the most onset strength on beats. Pure and deterministic.

use crate::notes::{BeatGrid, Note};

const STEP_S: f64 = 0.01;

/// Estimated grid (4/4, beat 0 at the first strong beat found, first downbeat there too).
pub fn estimate(notes: &[Note]) -> BeatGrid {
    let end = notes.iter().map(|n| n.start_s).fold(0.0f64, f64::max);
    let n_steps = (end / STEP_S) as usize + 2;
    if notes.len() < 8 || n_steps < 200 {
        return BeatGrid::new(120.0);
    }
    let mut envelope = vec![0.0f64; n_steps];
    for n in notes {
        let i = (n.start_s.max(0.0) / STEP_S).round() as usize;
        // Spread over neighbours so slightly early or late onsets still reinforce each other.
        for (d, w) in [(0usize, 1.0), (1, 0.5)] {
            if let Some(e) = envelope.get_mut(i + d) {
                *e += w * n.amplitude as f64;
            }
            if d > 0 && i >= d {
                envelope[i - d] += w * n.amplitude as f64;
            }
        }
    }
    let autocorr = |lag: f64| -> f64 {
        let lag_steps = lag / STEP_S;
        let k = lag_steps.floor() as usize;
        let frac = lag_steps - k as f64;
        (0..n_steps.saturating_sub(k + 1)).map(|i| envelope[i] * (envelope[i + k] * (1.0 - frac) + envelope[i + k + 1] * frac)).sum()
    };
    let mut best = (0.0f64, 120.0f64);
    let mut bpm = 60.0f64;
    while bpm <= 180.0 {
        let period = 60.0 / bpm;
        // Beat and half-beat periodicities both count; log-Gaussian prior around 110 bpm.
        let score = (autocorr(period) + 0.5 * autocorr(period * 2.0) + 0.25 * autocorr(period / 2.0)) * (-0.5 * ((bpm / 110.0).log2() / 0.9).powi(2)).exp();
        if score > best.0 {
            best = (score, bpm);
        }
        bpm += 0.5;
    }
    // Refine to 0.02 bpm: over a whole song a 0.5 bpm error drifts the phase by a large part of a beat.
    let coarse = best.1;
    let mut bpm = coarse;
    let mut best_fine = f64::MIN;
    let mut candidate = coarse - 0.5;
    while candidate <= coarse + 0.5 {
        let score = autocorr(60.0 / candidate) + 0.5 * autocorr(120.0 / candidate) + autocorr(240.0 / candidate);
        if score > best_fine {
            best_fine = score;
            bpm = candidate;
        }
        candidate += 0.02;
    }
    let period = 60.0 / bpm;
    let phase_steps = (period / STEP_S).round() as usize;
    let phase = (0..phase_steps)
        .map(|p| {
            let s: f64 = (0..).map(|k| p as f64 * STEP_S + k as f64 * period).take_while(|t| *t < end).map(|t| envelope[(t / STEP_S).round() as usize]).sum();
            (s, p)
        })
        .fold((f64::MIN, 0), |a, b| if b.0 > a.0 { b } else { a })
        .1;
    BeatGrid { bpm, beats_per_bar: 4, first_beat_s: phase as f64 * STEP_S, first_downbeat_beat: 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metronome(bpm: f64, offset: f64, beats: usize) -> Vec<Note> {
        (0..beats)
            .map(|b| {
                let t = offset + b as f64 * 60.0 / bpm;
                Note { start_s: t, end_s: t + 0.2, pitch: 60 + (b % 5) as u8, amplitude: if b % 4 == 0 { 0.9 } else { 0.6 } }
            })
            .collect()
    }

    #[test]
    fn finds_tempo_and_phase_of_a_steady_pulse() {
        for bpm in [72.0, 96.0, 116.0, 126.0] {
            let grid = estimate(&metronome(bpm, 0.37, 64));
            assert!((grid.bpm - bpm).abs() <= 1.0, "{bpm}: got {}", grid.bpm);
            let period = 60.0 / bpm;
            let phase_err = ((grid.first_beat_s - 0.37) / period).rem_euclid(1.0);
            // Within 40 ms: the envelope has 10 ms steps, and a 1/16 at 126 bpm is 119 ms.
            assert!(phase_err.min(1.0 - phase_err) * period < 0.04, "{bpm}: phase {}", grid.first_beat_s);
        }
    }

    #[test]
    fn too_little_music_falls_back_to_120() {
        assert_eq!(estimate(&metronome(90.0, 0.0, 3)).bpm, 120.0);
        assert_eq!(estimate(&[]).bpm, 120.0);
    }
}
