//! Sample-rate conversion to the model's 22050 Hz with rubato, as a stream: the plugin feeds it block
//! by block and the CLI feeds a whole file through the same code, so a capture and `pianola cover` of
//! the same audio see the same samples. Rates with a small common divisor with 22050 (44.1, 48, 96 kHz,
//! ...) use rubato's FFT resampler; odd rates fall back to its sinc resampler.

use crate::model::MODEL_SAMPLE_RATE;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Async, Fft, FixedAsync, FixedSync, Indexing, Resampler, SincInterpolationParameters, SincInterpolationType, WindowFunction};

/// Input frames per resampler call.
const CHUNK: usize = 1024;
/// Lowest and highest input rates accepted.
pub const MIN_RATE: u32 = 4000;
pub const MAX_RATE: u32 = 768_000;

#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("sample rate {0} Hz is outside {MIN_RATE}..{MAX_RATE} Hz")]
    UnsupportedRate(u32),
    #[error("resampler failed: {0}")]
    Internal(String),
}

pub struct StreamResampler {
    /// `None` when the input is already at the model rate.
    inner: Option<Box<dyn Resampler<f32> + Send>>,
    ratio: f64,
    /// Input not yet forming a whole chunk.
    pending: Vec<f32>,
    chunk_out: Vec<f32>,
    /// Output frames still to drop at the start (the resampler's delay).
    to_trim: usize,
    input_total: u64,
    output_total: u64,
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl StreamResampler {
    /// To the note model's rate.
    pub fn new(input_rate: u32) -> Result<Self, ResampleError> {
        Self::to_rate(input_rate, MODEL_SAMPLE_RATE)
    }

    /// To `out_rate` (the pitch tracker runs at 16 kHz).
    pub fn to_rate(input_rate: u32, out_rate: u32) -> Result<Self, ResampleError> {
        if !(MIN_RATE..=MAX_RATE).contains(&input_rate) {
            return Err(ResampleError::UnsupportedRate(input_rate));
        }
        let ratio = out_rate as f64 / input_rate as f64;
        let inner: Option<Box<dyn Resampler<f32> + Send>> = if input_rate == out_rate {
            None
        } else if input_rate / gcd(input_rate, out_rate) <= 2048 {
            let fft =
                Fft::<f32>::new(input_rate as usize, out_rate as usize, CHUNK, 1, FixedSync::Input).map_err(|e| ResampleError::Internal(e.to_string()))?;
            Some(Box::new(fft))
        } else {
            let params = SincInterpolationParameters {
                sinc_len: 128,
                f_cutoff: None,
                oversampling_factor: 256,
                interpolation: SincInterpolationType::Cubic,
                window: WindowFunction::BlackmanHarris2,
            };
            let sinc = Async::<f32>::new_sinc(ratio, 1.0, &params, CHUNK, 1, FixedAsync::Input).map_err(|e| ResampleError::Internal(e.to_string()))?;
            Some(Box::new(sinc))
        };
        let (to_trim, out_max) = match &inner {
            Some(r) => (r.output_delay(), r.output_frames_max()),
            None => (0, 0),
        };
        Ok(Self { inner, ratio, pending: Vec::with_capacity(CHUNK), chunk_out: vec![0.0; out_max], to_trim, input_total: 0, output_total: 0 })
    }

    /// Resamples `input`, appending whatever output is ready to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), ResampleError> {
        self.input_total += input.len() as u64;
        if self.inner.is_none() {
            out.extend_from_slice(input);
            self.output_total += input.len() as u64;
            return Ok(());
        }
        let mut rest = input;
        while !rest.is_empty() {
            let take = (CHUNK - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == CHUNK {
                self.run_chunk(None, out)?;
            }
        }
        Ok(())
    }

    /// Flushes the tail: the output ends up exactly `ceil(input * ratio)` samples long.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), ResampleError> {
        if self.inner.is_none() {
            return Ok(());
        }
        let expected = (self.input_total as f64 * self.ratio).ceil() as u64;
        let mut partial = self.pending.len();
        while self.output_total < expected {
            self.pending.resize(CHUNK, 0.0);
            self.run_chunk(Some(partial), out)?;
            partial = 0;
        }
        out.truncate(out.len() - (self.output_total - expected) as usize);
        self.output_total = expected;
        Ok(())
    }

    fn run_chunk(&mut self, partial: Option<usize>, out: &mut Vec<f32>) -> Result<(), ResampleError> {
        let r = self.inner.as_mut().expect("only called with a resampler");
        let internal = |e: &dyn std::fmt::Display| ResampleError::Internal(e.to_string());
        let input = InterleavedSlice::new(&self.pending[..], 1, CHUNK).map_err(|e| internal(&e))?;
        let n_out = self.chunk_out.len();
        let mut output = InterleavedSlice::new_mut(&mut self.chunk_out[..], 1, n_out).map_err(|e| internal(&e))?;
        let indexing = Indexing { partial_len: partial, ..Indexing::default() };
        let (_, produced) = r.process_into_buffer(&input, &mut output, Some(&indexing)).map_err(|e| internal(&e))?;
        self.pending.clear();
        let trim = self.to_trim.min(produced);
        self.to_trim -= trim;
        out.extend_from_slice(&self.chunk_out[trim..produced]);
        self.output_total += (produced - trim) as u64;
        Ok(())
    }

    /// Model-rate samples this resampler will still emit for input already pushed (its delay).
    pub fn latency_out_samples(&self) -> usize {
        self.to_trim + (self.pending.len() as f64 * self.ratio) as usize
    }
}

/// Resamples a whole clip to the model rate (the streaming path, run to the end).
pub fn to_model_rate(input: &[f32], input_rate: u32) -> Result<Vec<f32>, ResampleError> {
    let mut r = StreamResampler::new(input_rate)?;
    let mut out = Vec::with_capacity((input.len() as f64 * r.ratio) as usize + CHUNK);
    r.push(input, &mut out)?;
    r.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, seconds: f32) -> Vec<f32> {
        (0..(rate as f32 * seconds) as usize).map(|i| (i as f32 * hz * std::f32::consts::TAU / rate as f32).sin()).collect()
    }

    #[test]
    fn length_and_pitch_survive_every_rate() {
        for rate in [8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000, 44101] {
            let out = to_model_rate(&sine(rate, 440.0, 1.0), rate).unwrap();
            let expected = (rate as f64 * MODEL_SAMPLE_RATE as f64 / rate as f64).ceil() as usize;
            assert!(out.len().abs_diff(expected) <= 1, "{rate}: {} vs {expected}", out.len());
            // Zero crossings of a 440 Hz sine over the middle half second: ~440.
            let mid = &out[out.len() / 4..out.len() * 3 / 4];
            let crossings = mid.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
            assert!((218..=222).contains(&crossings), "{rate}: {crossings} crossings");
            // The delay is trimmed: the sine starts at once, not after silence.
            assert!(out[20..60].iter().any(|x| x.abs() > 0.5), "{rate}: leading silence");
        }
    }

    #[test]
    fn streaming_in_odd_blocks_equals_one_shot() {
        let input = sine(48000, 523.0, 0.7);
        let whole = to_model_rate(&input, 48000).unwrap();
        let mut r = StreamResampler::new(48000).unwrap();
        let mut out = Vec::new();
        for block in input.chunks(333) {
            r.push(block, &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        assert_eq!(out, whole);
    }

    #[test]
    fn rejects_absurd_rates() {
        assert!(StreamResampler::new(0).is_err());
        assert!(StreamResampler::new(10_000_000).is_err());
    }
}
