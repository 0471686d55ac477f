//! Tempo and beat phase from transcribed notes, for the CLI when the user gives no `--bpm`, and the
//! song's own beat when a captured song does not follow the host's grid ([`song_grid`]; otherwise in the
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

// ---------------------------------------------------------------------------------------------
// The song's own beat against the host's grid (the plugin's Capture mode).

/// The song's own beats on the host's beat axis: song beat `s` is host beat `first + s * period`
/// (constant tempo; `period` is the song's beat in host beats).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SongGrid {
    pub first: f64,
    pub period: f64,
}

impl SongGrid {
    pub fn to_host(&self, song_beat: f64) -> f64 {
        self.first + song_beat * self.period
    }
    pub fn to_song(&self, host_beat: f64) -> f64 {
        (host_beat - self.first) / self.period
    }
    /// In plain words, for the panel: how the song's beat differs from the project's grid.
    pub fn describe(&self, seconds_per_host_beat: f64) -> String {
        let tempo_off = 1.0 / self.period - 1.0;
        let offset = self.first.rem_euclid(self.period);
        let offset = if offset > self.period / 2.0 { offset - self.period } else { offset };
        let mut parts = Vec::new();
        if tempo_off.abs() >= TEMPO_TOLERANCE {
            parts.push(format!("its tempo is {:.0} bpm, the project's {:.0}", 60.0 / (seconds_per_host_beat * self.period), 60.0 / seconds_per_host_beat));
        }
        if tempo_off.abs() < TEMPO_TOLERANCE || offset.abs() > 0.05 {
            parts.push(format!("its beats fall {:.2} s {} the grid's", (offset * seconds_per_host_beat).abs(), if offset >= 0.0 { "after" } else { "before" }));
        }
        format!("The song does not follow the project's grid ({}): the cover follows the song's own beat.", parts.join("; "))
    }
}

/// A tempo ratio closer to 1 than this is the host's tempo.
const TEMPO_TOLERANCE: f64 = 0.005;
/// The song's beat is looked for within this factor of the host's beat.
const GRID_SEARCH: f64 = 1.25;
/// The song's grid replaces the host's only when onsets sit on it this much better (the on-beat
/// score is 1 with every onset on a beat, about 0 for no relation)...
const GRID_MARGIN: f64 = 0.15;
/// ...and on it at least this well (a song with no clear beat keeps the host's grid).
const GRID_MIN_SCORE: f64 = 0.35;
/// Onsets needed, and host beats they must span, to judge.
const GRID_MIN_ONSETS: usize = 32;
const GRID_MIN_BEATS: f64 = 16.0;

/// How well weighted onsets (host beats) sit on beats of `period`: the resultant of their phases
/// (0..1) and the phase (host beats, in [0, period)) where they sit best.
fn on_beat(onsets: &[(f64, f64)], period: f64) -> (f64, f64) {
    let (mut c, mut s, mut w) = (0.0f64, 0.0f64, 0.0f64);
    for &(b, weight) in onsets {
        let a = std::f64::consts::TAU * b / period;
        c += weight * a.cos();
        s += weight * a.sin();
        w += weight;
    }
    if w <= 0.0 {
        return (0.0, 0.0);
    }
    ((c * c + s * s).sqrt() / w, (period * s.atan2(c) / std::f64::consts::TAU).rem_euclid(period))
}

/// The song's own grid, when the captured onsets (host beats, weights) clearly do not follow the
/// host's: another tempo, or beats offset from the grid's by more than the transcriber's onset lag
/// (`lag_window`: host beats, the early and late ends the arranger removes as lag itself). None
/// when the song follows the grid, or when it is too short or has no clear beat to tell.
pub fn song_grid(onsets: &[(f64, f64)], lag_window: (f64, f64)) -> Option<SongGrid> {
    let onsets: Vec<(f64, f64)> = onsets.iter().copied().filter(|(b, w)| b.is_finite() && w.is_finite() && *w > 0.0).collect();
    let (lo, hi) = onsets.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), o| (lo.min(o.0), hi.max(o.0)));
    if onsets.len() < GRID_MIN_ONSETS || hi - lo < GRID_MIN_BEATS {
        return None;
    }
    // The host's grid, allowing the lag the arranger removes.
    let (r, phase) = on_beat(&onsets, 1.0);
    let signed = if phase > 0.5 { phase - 1.0 } else { phase };
    let allowed = signed.clamp(lag_window.0, lag_window.1);
    let host_score = r * (std::f64::consts::TAU * (signed - allowed)).cos();
    // The best constant-tempo grid near it.
    let mut best = (f64::NEG_INFINITY, 1.0, 0.0);
    let mut period = 1.0 / GRID_SEARCH;
    while period <= GRID_SEARCH {
        let (score, phase) = on_beat(&onsets, period);
        if score > best.0 {
            best = (score, period, phase);
        }
        period *= 1.0005;
    }
    let (score, period, phase) = best;
    if score < GRID_MIN_SCORE || score - host_score < GRID_MARGIN {
        return None;
    }
    // The song's beat 0 nearest the host's beat 0.
    let first = phase - period * (phase / period).round();
    Some(SongGrid { first, period })
}

/// The cover arranged on the song's grid, back on the host's beats.
pub fn cover_to_host(cover: crate::notes::Cover, grid: &SongGrid) -> crate::notes::Cover {
    let mut cover = cover;
    for n in &mut cover.notes {
        n.start_beat = grid.to_host(n.start_beat);
        n.end_beat = grid.to_host(n.end_beat);
    }
    for p in &mut cover.pedal {
        p.down_beat = grid.to_host(p.down_beat);
        p.up_beat = grid.to_host(p.up_beat);
    }
    cover
}

#[cfg(test)]
mod grid_tests {
    use super::*;

    /// A band's onsets: strong on every beat, weaker eighths between, over `beats` song beats.
    fn band(grid: SongGrid, beats: usize) -> Vec<(f64, f64)> {
        (0..beats * 2).map(|k| (grid.to_host(k as f64 * 0.5), if k % 2 == 0 { 1.0 } else { 0.3 })).collect()
    }

    #[test]
    fn a_song_on_the_grid_or_late_by_the_transcribers_lag_follows_it() {
        let lag = (-0.08, 0.32);
        assert_eq!(song_grid(&band(SongGrid { first: 0.0, period: 1.0 }, 64), lag), None);
        assert_eq!(song_grid(&band(SongGrid { first: 0.2, period: 1.0 }, 64), lag), None, "a choir's slow attack");
        assert_eq!(song_grid(&band(SongGrid { first: 0.0, period: 1.0 }, 6), lag), None, "too short to tell");
    }

    #[test]
    fn offsets_and_another_tempo_are_found() {
        let lag = (-0.08, 0.32);
        for truth in [
            SongGrid { first: 0.5, period: 1.0 },
            SongGrid { first: 0.716, period: 1.0 },
            SongGrid { first: 0.0, period: 1.07 },
            SongGrid { first: 0.3, period: 0.93 },
        ] {
            let found = song_grid(&band(truth, 64), lag).unwrap_or_else(|| panic!("{truth:?} not found"));
            // Same beats: every true beat is on a found beat within 1/50 beat.
            for k in 0..64 {
                let s = found.to_song(truth.to_host(k as f64));
                assert!((s - s.round()).abs() < 0.02, "{truth:?}: beat {k} -> song beat {s} of {found:?}");
            }
        }
    }

    #[test]
    fn the_cover_goes_back_to_host_beats() {
        let g = SongGrid { first: 0.5, period: 2.0 };
        let cover = crate::notes::Cover {
            notes: vec![crate::notes::CoverNote { start_beat: 1.0, end_beat: 2.0, pitch: 60, velocity: 80, hand: crate::notes::Hand::Left, melody: false }],
            pedal: vec![crate::notes::PedalSpan { down_beat: 1.0, up_beat: 3.0 }],
        };
        let back = cover_to_host(cover, &g);
        assert_eq!((back.notes[0].start_beat, back.notes[0].end_beat), (2.5, 4.5));
        assert_eq!((back.pedal[0].down_beat, back.pedal[0].up_beat), (2.5, 6.5));
        assert!(g.describe(0.5).contains("after the grid"), "{}", g.describe(0.5));
    }
}
