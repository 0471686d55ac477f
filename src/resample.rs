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

/// The sinc resampler's filter: taps, and sincs per tap interval (cubic interpolation between them).
const SINC_LEN: usize = 128;
const SINC_OVERSAMPLING: usize = 256;

/// Whether `input_rate -> out_rate` takes the sinc resampler (rates with a large smallest ratio,
/// which rubato's FFT resampler would need huge transforms for).
fn uses_sinc(input_rate: u32, out_rate: u32) -> bool {
    input_rate != out_rate && input_rate / gcd(input_rate, out_rate) > 2048
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
        } else if !uses_sinc(input_rate, out_rate) {
            let fft =
                Fft::<f32>::new(input_rate as usize, out_rate as usize, CHUNK, 1, FixedSync::Input).map_err(|e| ResampleError::Internal(e.to_string()))?;
            Some(Box::new(fft))
        } else {
            let params = SincInterpolationParameters {
                sinc_len: SINC_LEN,
                f_cutoff: None,
                oversampling_factor: SINC_OVERSAMPLING,
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

/// Resamples a whole clip to the model rate: the streaming path run to the end, or for a rate that
/// takes the sinc resampler (the CLI's clips heard in tune have such rates) [`sinc_clip`], the same
/// resampler computed for a whole clip at once (within 1e-6 of the stream's samples, ~5x faster).
pub fn to_model_rate(input: &[f32], input_rate: u32) -> Result<Vec<f32>, ResampleError> {
    if (MIN_RATE..=MAX_RATE).contains(&input_rate) && uses_sinc(input_rate, MODEL_SAMPLE_RATE) {
        return Ok(sinc_clip(input, input_rate, MODEL_SAMPLE_RATE));
    }
    let mut r = StreamResampler::new(input_rate)?;
    let mut out = Vec::with_capacity((input.len() as f64 * r.ratio) as usize + CHUNK);
    r.push(input, &mut out)?;
    r.finish(&mut out)?;
    Ok(out)
}

/// rubato's sinc table for these parameters, computed as `rubato::sinc::make_sincs` computes it (that
/// module is private): `SINC_OVERSAMPLING` rows of `SINC_LEN` taps, a squared Blackman-Harris
/// window (periodic, built in f64) times sinc, normalised to unit gain.
fn sinc_table(f_cutoff: f32) -> Vec<f32> {
    let total = SINC_LEN * SINC_OVERSAMPLING;
    let pi = std::f64::consts::PI;
    let mut y = Vec::with_capacity(total);
    let mut sum = 0.0f32;
    for x in 0..total {
        let phase = x as f64 / total as f64;
        let w = (0.35875 - 0.48829 * (2.0 * pi * phase).cos() + 0.14128 * (4.0 * pi * phase).cos() - 0.01168 * (6.0 * pi * phase).cos()) as f32;
        let arg = (x as f32 - (total / 2) as f32) * f_cutoff / SINC_OVERSAMPLING as f32;
        let sinc = if arg == 0.0 { 1.0 } else { (arg * std::f32::consts::PI).sin() / (arg * std::f32::consts::PI) };
        let v = w * w * sinc;
        sum += v;
        y.push(v);
    }
    sum /= SINC_OVERSAMPLING as f32;
    let mut rows = vec![0.0f32; total];
    for p in 0..SINC_LEN {
        for n in 0..SINC_OVERSAMPLING {
            rows[(SINC_OVERSAMPLING - n - 1) * SINC_LEN + p] = y[SINC_OVERSAMPLING * p + n] / sum;
        }
    }
    rows
}

/// [`StreamResampler`]'s sinc path (rubato's `Async` sinc resampler with cubic interpolation between
/// sincs) for a whole clip: output sample `m` is at input position
/// `(m + delay + 1) * in / out - (SINC_LEN - 1)` (rubato's first index and its trimmed delay), the
/// four sinc rows nearest that position's fraction dotted with the input and blended by a cubic,
/// as rubato does; zeros before and after the clip, `ceil(len * out / in)` samples out. The positions
/// are exact (rubato accumulates them in f64) and the dot products run in a different order, so
/// the samples differ from the stream's by float rounding (~1e-7); the loop is vectorised for the
/// CPU (rubato's per-sample overhead made it ~60 ns a sample, 13% of `pianola transcribe --jobs 1`).
pub fn sinc_clip(input: &[f32], input_rate: u32, out_rate: u32) -> Vec<f32> {
    let ratio = out_rate as f64 / input_rate as f64;
    let cutoff = rubato::calculate_cutoff::<f32>(SINC_LEN, WindowFunction::BlackmanHarris2);
    let table = sinc_table(if ratio < 1.0 { cutoff * ratio as f32 } else { cutoff });
    let delay = (SINC_LEN as f64 * ratio / 2.0) as u64;
    let expected = (input.len() as f64 * ratio).ceil() as usize;
    // Zeros around the clip cover every tap of the first and last outputs.
    const PAD: usize = 2 * SINC_LEN;
    let mut padded = vec![0.0f32; PAD + input.len() + PAD + POLY_TAPS];
    padded[PAD..PAD + input.len()].copy_from_slice(input);
    let mut out = vec![0.0f32; expected];
    let (in_rate, out_rate) = (input_rate as u64, out_rate as u64);
    let g = gcd(input_rate, out_rate as u32) as u64;
    let phases = (out_rate / g) as usize;
    // Positions repeat every `phases` outputs (`in / g` input samples on): with few enough phases
    // for the clip, each phase's two sincs are blended into one kernel once.
    let poly = (phases * 8 <= expected).then(|| Poly::new(&table, delay, in_rate, out_rate, phases));
    let job = SincJob { padded: &padded, table: &table, delay, input_rate: in_rate, out_rate, poly };
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features the function is compiled for.
            unsafe { job.run_avx512(&mut out) };
            return out;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: as above.
            unsafe { job.run_avx2(&mut out) };
            return out;
        }
    }
    job.run_portable(&mut out);
    out
}

struct SincJob<'a> {
    padded: &'a [f32],
    table: &'a [f32],
    delay: u64,
    input_rate: u64,
    out_rate: u64,
    poly: Option<Poly>,
}

/// Taps of a blended kernel: `SINC_LEN` and one more (the second sinc may start a sample later),
/// rounded up to whole vectors.
const POLY_TAPS: usize = 144;

/// One kernel per output phase: output `q * phases + p` is kernel `p` dotted with the input from
/// `q * step + bases[p]`.
struct Poly {
    kernels: Vec<f32>,
    bases: Vec<i64>,
    phases: usize,
    step: usize,
}

impl Poly {
    fn new(table: &[f32], delay: u64, in_rate: u64, out_rate: u64, phases: usize) -> Self {
        let os = SINC_OVERSAMPLING as i64;
        let mut kernels = vec![0.0f32; phases * POLY_TAPS];
        let mut bases = vec![0i64; phases];
        for (p, (k, base)) in kernels.chunks_exact_mut(POLY_TAPS).zip(&mut bases).enumerate() {
            let (whole, sub0, x) = position(p as u64, delay, in_rate, out_rate);
            *base = whole;
            let r0 = &table[sub0 as usize * SINC_LEN..][..SINC_LEN];
            for (k, &r) in k.iter_mut().zip(r0) {
                *k = (1.0 - x) * r;
            }
            // The next sinc, or past the last one the first, a sample later.
            let (r1, k1) = if sub0 + 1 < os { (&table[(sub0 + 1) as usize * SINC_LEN..][..SINC_LEN], &mut k[..]) } else { (&table[..SINC_LEN], &mut k[1..]) };
            for (k, &r) in k1.iter_mut().zip(r1) {
                *k += x * r;
            }
        }
        let g = out_rate / phases as u64;
        Poly { kernels, bases, phases, step: (in_rate / g) as usize }
    }
}

/// Output `m`'s position, `(m + delay + 1) * in / out - (SINC_LEN - 1)` input samples: its whole
/// part, the sinc below its fraction, and the fraction between that sinc and the next.
#[inline(always)]
fn position(m: u64, delay: u64, in_rate: u64, out_rate: u64) -> (i64, i64, f32) {
    let num = (m + delay + 1) * in_rate;
    let whole = (num / out_rate) as i64 - (SINC_LEN as i64 - 1);
    let scaled = (num % out_rate) as f64 / out_rate as f64 * SINC_OVERSAMPLING as f64;
    let sub0 = scaled.floor();
    (whole, sub0 as i64, (scaled - sub0) as f32)
}

impl SincJob<'_> {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn run_avx512(&self, out: &mut [f32]) {
        self.run::<Avx512>(out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, out: &mut [f32]) {
        self.run::<Avx2>(out)
    }

    fn run_portable(&self, out: &mut [f32]) {
        self.run::<Portable>(out)
    }

    #[inline(always)]
    fn run<D: Dot>(&self, out: &mut [f32]) {
        const PAD: i64 = 2 * SINC_LEN as i64;
        if let Some(poly) = &self.poly {
            // Blocks of phases, so their kernels stay in cache while every period runs them.
            const PHASE_BLOCK: usize = 128;
            let periods = out.len().div_ceil(poly.phases);
            for p0 in (0..poly.phases).step_by(PHASE_BLOCK) {
                let p1 = (p0 + PHASE_BLOCK).min(poly.phases);
                for q in 0..periods {
                    let first = q * poly.phases;
                    let n = out.len();
                    let block = &mut out[(first + p0).min(n)..(first + p1).min(n)];
                    for (p, o) in (p0..).zip(block) {
                        let start = ((q * poly.step) as i64 + poly.bases[p] + PAD) as usize;
                        *o = D::dot(&self.padded[start..start + POLY_TAPS], &poly.kernels[p * POLY_TAPS..(p + 1) * POLY_TAPS]);
                    }
                }
            }
            return;
        }
        let os = SINC_OVERSAMPLING as i64;
        // Output m's position times out_rate is (m + delay + 1) * in - (SINC_LEN - 1) * out: kept as
        // a whole part and a remainder, stepped without division.
        let (step_whole, step_rem) = ((self.input_rate / self.out_rate) as i64, self.input_rate % self.out_rate);
        let first = (self.delay + 1) * self.input_rate;
        let mut whole = (first / self.out_rate) as i64 - (SINC_LEN as i64 - 1);
        let mut rem = first % self.out_rate;
        let inv_out = 1.0 / self.out_rate as f64;
        for o in out.iter_mut() {
            let frac = rem as f64 * inv_out;
            let scaled = frac * SINC_OVERSAMPLING as f64;
            let sub0 = scaled.floor();
            let x = (scaled - sub0) as f32;
            let sub0 = sub0 as i64;
            // The two sincs either side of the position's fraction, blended linearly: with 256
            // sincs per tap the blend is within 2e-7 of rubato's cubic through four (measured on
            // the dev set) at half the work.
            let (index1, sub1) = if sub0 + 1 < os { (whole, sub0 + 1) } else { (whole + 1, 0) };
            let at = |index: i64, sub: i64| {
                let (start, row) = ((index + PAD) as usize, sub as usize * SINC_LEN);
                (&self.padded[start..start + SINC_LEN], &self.table[row..row + SINC_LEN])
            };
            *o = D::blend2([at(whole, sub0), at(index1, sub1)], [1.0 - x, x]);
            whole += step_whole;
            rem += step_rem;
            if rem >= self.out_rate {
                rem -= self.out_rate;
                whole += 1;
            }
        }
    }
}

/// `w[0] * (x_0 . sinc_0) + w[1] * (x_1 . sinc_1)` over two (input, sinc row) pairs of `SINC_LEN`
/// floats; the SIMD ones are only run from functions compiled for their features
/// (`SincJob::run_avx512`, `run_avx2`), after a check that the CPU has them.
trait Dot {
    fn blend2(pairs: [(&[f32], &[f32]); 2], w: [f32; 2]) -> f32;
    /// `x . k` over `POLY_TAPS` floats.
    fn dot(x: &[f32], k: &[f32]) -> f32;
}

struct Portable;
impl Dot for Portable {
    #[inline(always)]
    fn dot(x: &[f32], k: &[f32]) -> f32 {
        let mut acc = [0.0f32; 8];
        for (xc, kc) in x[..POLY_TAPS].chunks_exact(8).zip(k[..POLY_TAPS].chunks_exact(8)) {
            for ((a, &x), &k) in acc.iter_mut().zip(xc).zip(kc) {
                *a += x * k;
            }
        }
        ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
    }

    #[inline(always)]
    fn blend2(pairs: [(&[f32], &[f32]); 2], w: [f32; 2]) -> f32 {
        let mut acc = [0.0f32; 8];
        let [(x0, k0), (x1, k1)] = pairs;
        for (((x0, k0), x1), k1) in
            x0[..SINC_LEN].chunks_exact(8).zip(k0[..SINC_LEN].chunks_exact(8)).zip(x1[..SINC_LEN].chunks_exact(8)).zip(k1[..SINC_LEN].chunks_exact(8))
        {
            for (l, a) in acc.iter_mut().enumerate() {
                *a += x0[l] * (w[0] * k0[l]) + x1[l] * (w[1] * k1[l]);
            }
        }
        ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx512;
#[cfg(target_arch = "x86_64")]
impl Dot for Avx512 {
    #[inline(always)]
    fn dot(x: &[f32], k: &[f32]) -> f32 {
        use std::arch::x86_64::*;
        assert!(x.len() >= POLY_TAPS && k.len() >= POLY_TAPS);
        // SAFETY: both slices hold POLY_TAPS (9 x 16) floats; only inlined into `run_avx512`,
        // which runs on CPUs with AVX-512F.
        unsafe {
            let (px, pk) = (x.as_ptr(), k.as_ptr());
            let mut a0 = _mm512_mul_ps(_mm512_loadu_ps(px), _mm512_loadu_ps(pk));
            let mut a1 = _mm512_mul_ps(_mm512_loadu_ps(px.add(16)), _mm512_loadu_ps(pk.add(16)));
            for c in (32..POLY_TAPS - 16).step_by(32) {
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(px.add(c)), _mm512_loadu_ps(pk.add(c)), a0);
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(px.add(c + 16)), _mm512_loadu_ps(pk.add(c + 16)), a1);
            }
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(px.add(POLY_TAPS - 16)), _mm512_loadu_ps(pk.add(POLY_TAPS - 16)), a0);
            _mm512_reduce_add_ps(_mm512_add_ps(a0, a1))
        }
    }

    #[inline(always)]
    fn blend2(pairs: [(&[f32], &[f32]); 2], w: [f32; 2]) -> f32 {
        use std::arch::x86_64::*;
        for (x, k) in pairs {
            assert!(x.len() >= SINC_LEN && k.len() >= SINC_LEN);
        }
        // SAFETY: every slice holds SINC_LEN (8 x 16) floats; only inlined into `run_avx512`,
        // which runs on CPUs with AVX-512F.
        unsafe {
            let [(x0, k0), (x1, k1)] = pairs.map(|(x, k)| (x.as_ptr(), k.as_ptr()));
            let (w0, w1) = (_mm512_set1_ps(w[0]), _mm512_set1_ps(w[1]));
            let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            for c in (0..SINC_LEN).step_by(16) {
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x0.add(c)), _mm512_mul_ps(w0, _mm512_loadu_ps(k0.add(c))), a0);
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x1.add(c)), _mm512_mul_ps(w1, _mm512_loadu_ps(k1.add(c))), a1);
            }
            _mm512_reduce_add_ps(_mm512_add_ps(a0, a1))
        }
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx2;
#[cfg(target_arch = "x86_64")]
impl Dot for Avx2 {
    #[inline(always)]
    fn dot(x: &[f32], k: &[f32]) -> f32 {
        use std::arch::x86_64::*;
        assert!(x.len() >= POLY_TAPS && k.len() >= POLY_TAPS);
        // SAFETY: both slices hold POLY_TAPS (18 x 8) floats; only inlined into `run_avx2`, which
        // runs on CPUs with AVX2 and FMA.
        unsafe {
            let (px, pk) = (x.as_ptr(), k.as_ptr());
            let mut a0 = _mm256_mul_ps(_mm256_loadu_ps(px), _mm256_loadu_ps(pk));
            let mut a1 = _mm256_mul_ps(_mm256_loadu_ps(px.add(8)), _mm256_loadu_ps(pk.add(8)));
            for c in (16..POLY_TAPS).step_by(16) {
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(px.add(c)), _mm256_loadu_ps(pk.add(c)), a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(px.add(c + 8)), _mm256_loadu_ps(pk.add(c + 8)), a1);
            }
            let acc = _mm256_add_ps(a0, a1);
            let q = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
            let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
            _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)))
        }
    }

    #[inline(always)]
    fn blend2(pairs: [(&[f32], &[f32]); 2], w: [f32; 2]) -> f32 {
        use std::arch::x86_64::*;
        for (x, k) in pairs {
            assert!(x.len() >= SINC_LEN && k.len() >= SINC_LEN);
        }
        // SAFETY: every slice holds SINC_LEN (16 x 8) floats; only inlined into `run_avx2`, which
        // runs on CPUs with AVX2 and FMA.
        unsafe {
            let [(x0, k0), (x1, k1)] = pairs.map(|(x, k)| (x.as_ptr(), k.as_ptr()));
            let (w0, w1) = (_mm256_set1_ps(w[0]), _mm256_set1_ps(w[1]));
            let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for c in (0..SINC_LEN).step_by(8) {
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x0.add(c)), _mm256_mul_ps(w0, _mm256_loadu_ps(k0.add(c))), a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x1.add(c)), _mm256_mul_ps(w1, _mm256_loadu_ps(k1.add(c))), a1);
            }
            let acc = _mm256_add_ps(a0, a1);
            let q = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
            let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
            _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)))
        }
    }
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

    /// The whole-clip sinc path gives the stream's samples (the same rubato resampler), to float
    /// rounding, at rates up and down, with a clip ending mid-chunk.
    #[test]
    fn the_whole_clip_sinc_path_equals_the_stream() {
        // The short clip takes the direct path; the long one, one kernel per phase.
        for (rate, len) in [44202, 43999, 44257, 47_999, 9_001, 22_051].into_iter().flat_map(|r| [(r, 50_000), (r, 400_000)]) {
            let input: Vec<f32> = (0..len).map(|i| ((i as f32 * 0.031).sin() + (i as f32 * 0.4).sin() * 0.3) * 0.5).collect();
            assert!(uses_sinc(rate, MODEL_SAMPLE_RATE), "{rate}");
            let mut r = StreamResampler::new(rate).unwrap();
            let mut stream = Vec::new();
            r.push(&input, &mut stream).unwrap();
            r.finish(&mut stream).unwrap();
            let whole = to_model_rate(&input, rate).unwrap();
            assert_eq!(whole.len(), stream.len(), "{rate}");
            let diff = whole.iter().zip(&stream).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(diff < 1e-6, "{rate}, {len} samples: max diff {diff}");
        }
        assert!(to_model_rate(&[], 44202).unwrap().is_empty());
    }

    #[test]
    fn rejects_absurd_rates() {
        assert!(StreamResampler::new(0).is_err());
        assert!(StreamResampler::new(10_000_000).is_err());
    }
}
