//! What a finished capture segment keeps so a sensitivity change can re-decode it, in a fraction of
//! the memory of the model's raw frames.
//!
//! Raw frames are 88 note + 88 onset + 264 contour f32 per frame (1760 bytes, 86 frames/s: ~545 MB
//! per captured hour). Re-decoding needs the note and onset posteriors, and the arranger's salience
//! needs of the contour only, per key, the largest of the key's three bins (`3k-1..=3k+1`; those
//! triples tile the 264 bins), so 88 values. All three are probabilities in `0..=1` (sigmoid outputs)
//! and are kept as `u16` fixed point (`round(p * 65535)`, error <= 7.7e-6): 528 bytes per frame,
//! ~163 MB per captured hour. tests/hardening/length.rs checks on the dev set's reference frames that
//! decoding and arranging from these gives the same notes and the same cover as the raw frames.

use crate::notes::{FrameOutputs, N_CONTOUR_BINS, N_KEYS};

/// Fixed-point scale of the stored probabilities.
const SCALE: f32 = u16::MAX as f32;

/// Bytes one model frame takes in a [`CompactFrames`].
pub const BYTES_PER_FRAME: usize = 3 * N_KEYS * std::mem::size_of::<u16>();

#[inline]
fn quantise(p: f32) -> u16 {
    // NaN and negatives -> 0 (the decoder treats NaN as 0 too); above 1 -> 1.
    if p.is_nan() {
        0
    } else {
        (p.clamp(0.0, 1.0) * SCALE).round() as u16
    }
}

#[inline]
fn expand(q: u16) -> f32 {
    q as f32 / SCALE
}

/// Frames in fixed point, row-major `[frame][key]` like [`FrameOutputs`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompactFrames {
    note: Vec<u16>,
    onset: Vec<u16>,
    /// Per key, the largest contour bin of the key's three.
    salience: Vec<u16>,
}

impl CompactFrames {
    pub fn from_frames(frames: &FrameOutputs) -> Self {
        let n = frames.note.len().min(frames.onset.len()) / N_KEYS;
        let n_contour = (frames.contour.len() / N_CONTOUR_BINS).min(n);
        let mut salience = Vec::with_capacity(n * N_KEYS);
        for t in 0..n {
            if t < n_contour {
                let row = frames.contour_row(t);
                for k in 0..N_KEYS {
                    let c = 3 * k;
                    let (lo, hi) = (c.saturating_sub(1), (c + 1).min(N_CONTOUR_BINS - 1));
                    salience.push(quantise(row[lo..=hi].iter().fold(0.0f32, |m, &v| m.max(v))));
                }
            } else {
                salience.extend(std::iter::repeat_n(0, N_KEYS));
            }
        }
        Self {
            note: frames.note[..n * N_KEYS].iter().map(|&p| quantise(p)).collect(),
            onset: frames.onset[..n * N_KEYS].iter().map(|&p| quantise(p)).collect(),
            salience,
        }
    }

    pub fn n_frames(&self) -> usize {
        self.note.len() / N_KEYS
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        (self.note.capacity() + self.onset.capacity() + self.salience.capacity()) * std::mem::size_of::<u16>()
    }

    /// Frames the decoder and the arranger read as they read the raw ones: each key's salience sits
    /// in the middle bin of its three, the other two bins are 0, so the arranger's per-key maximum
    /// over the three bins is the stored value.
    pub fn to_frames(&self) -> FrameOutputs {
        let mut contour = vec![0.0f32; self.n_frames() * N_CONTOUR_BINS];
        for (t, row) in self.salience.chunks_exact(N_KEYS).enumerate() {
            for (k, &q) in row.iter().enumerate() {
                contour[t * N_CONTOUR_BINS + 3 * k] = expand(q);
            }
        }
        FrameOutputs { note: self.note.iter().map(|&q| expand(q)).collect(), onset: self.onset.iter().map(|&q| expand(q)).collect(), contour }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_within_the_fixed_point_step_and_keeps_each_keys_salience() {
        let n = 5;
        let mut f = FrameOutputs {
            note: (0..n * N_KEYS).map(|i| (i % 97) as f32 / 96.0).collect(),
            onset: (0..n * N_KEYS).map(|i| (i % 13) as f32 / 12.0).collect(),
            contour: (0..n * N_CONTOUR_BINS).map(|i| (i % 7) as f32 / 6.0).collect(),
        };
        f.note[3] = f32::NAN;
        f.onset[4] = 1.5;
        let c = CompactFrames::from_frames(&f);
        assert_eq!(c.n_frames(), n);
        assert_eq!(c.bytes(), n * BYTES_PER_FRAME);
        let back = c.to_frames();
        assert_eq!(back.note[3], 0.0);
        assert_eq!(back.onset[4], 1.0);
        for (a, b) in f.note.iter().zip(&back.note).filter(|(a, _)| a.is_finite()) {
            assert!((a - b).abs() <= 0.5 / SCALE + 1e-7);
        }
        for t in 0..n {
            for k in 0..N_KEYS {
                let c = 3 * k;
                let want = f.contour_row(t)[c.saturating_sub(1)..=(c + 1).min(N_CONTOUR_BINS - 1)].iter().fold(0.0f32, |m, &v| m.max(v));
                let got = back.contour_row(t)[c.saturating_sub(1)..=(c + 1).min(N_CONTOUR_BINS - 1)].iter().fold(0.0f32, |m, &v| m.max(v));
                assert!((want - got).abs() <= 0.5 / SCALE + 1e-7);
            }
        }
    }
}
