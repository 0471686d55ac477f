//! A synthetic singer the tests can regenerate: a known melody sung on a vowel, with vibrato,
//! glides between legato notes, breath noise in the rests, and attack/release envelopes. Not a
//! real voice, but it has what trips a note transcriber on one: a pitch that never sits still,
//! slides that pass through the semitones between two notes, and noise where no note is.
// Included by several test crates, each using a part.
#![allow(dead_code)]

/// One sung note: start and length in seconds, MIDI pitch; `legato` glides into it from the
/// previous note.
#[derive(Clone, Copy, Debug)]
pub struct Sung {
    pub start_s: f64,
    pub dur_s: f64,
    pub pitch: u8,
    pub legato: bool,
}

fn hz(midi: f64) -> f64 {
    440.0 * 2f64.powf((midi - 69.0) / 12.0)
}

/// A small deterministic generator (xorshift) for noise and jitter.
struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// A melody of phrases: four-note phrases of steps and leaps in a singer's range (C4..A4 for
/// `low = 60`), legato inside a phrase, a breath between phrases.
pub fn melody(low: u8, phrases: usize) -> Vec<Sung> {
    const STEPS: [i8; 16] = [0, 2, 4, 2, 5, 4, 2, 0, 7, 5, 4, 2, 4, 5, 7, 9];
    const LENS: [f64; 4] = [0.45, 0.3, 0.6, 0.9];
    let mut out = vec![];
    let mut t = 0.3;
    for p in 0..phrases {
        for k in 0..4 {
            let i = (p * 4 + k) % STEPS.len();
            let dur = LENS[(p + k) % 4];
            out.push(Sung { start_s: t, dur_s: dur, pitch: (low as i8 + STEPS[i]) as u8, legato: k > 0 });
            t += dur;
        }
        t += 0.5; // a breath
    }
    out
}

/// The voice singing `notes` at `sample_rate`, `seconds` long.
pub fn sing(notes: &[Sung], sample_rate: u32, seconds: f64) -> Vec<f32> {
    sing_detuned(notes, sample_rate, seconds, 0.0)
}

/// The same, sung `cents` off A440 (an old recording, a choir that drifted).
pub fn sing_detuned(notes: &[Sung], sample_rate: u32, seconds: f64, cents: f64) -> Vec<f32> {
    let sr = sample_rate as f64;
    let n = (seconds * sr) as usize;
    let mut out = vec![0.0f32; n];
    let mut rng = Rng(0x9e3779b97f4a7c15);
    // Vowel /a/: harmonic weights shaped by two formants (~700 and ~1200 Hz).
    let formant = |f: f64| 1.0 / (1.0 + ((f - 700.0) / 250.0).powi(2)) + 0.6 / (1.0 + ((f - 1200.0) / 300.0).powi(2)) + 0.05;
    let mut phase = 0.0f64;
    for (k, note) in notes.iter().enumerate() {
        let from = if note.legato && k > 0 { notes[k - 1].pitch as f64 } else { note.pitch as f64 };
        let (a, b) = ((note.start_s * sr) as usize, (((note.start_s + note.dur_s) * sr) as usize).min(n));
        if !note.legato {
            phase = 0.0;
        }
        for (i, o) in out.iter_mut().enumerate().take(b).skip(a) {
            let t = (i - a) as f64 / sr;
            // 80 ms glide from the previous note, then vibrato (5.5 Hz, +-35 cents) after 150 ms.
            let glide = (t / 0.08).min(1.0);
            let vib = if t > 0.15 { 0.35 * ((t - 0.15) / 0.1).min(1.0) * (2.0 * std::f64::consts::PI * 5.5 * t).sin() } else { 0.0 };
            let f0 = hz(from + (note.pitch as f64 - from) * glide + vib + cents / 100.0) * (1.0 + 0.002 * rng.unit());
            phase += f0 / sr;
            let attack = if note.legato { 1.0 } else { (t / 0.04).min(1.0) };
            let release = ((note.dur_s - t) / 0.06).clamp(0.0, 1.0);
            let mut s = 0.0;
            let mut h = 1.0;
            while h * f0 < sr / 2.0 - 500.0 && h <= 30.0 {
                s += formant(h * f0) * (2.0 * std::f64::consts::PI * h * phase).sin() / h.powf(0.7);
                h += 1.0;
            }
            *o += (0.12 * attack * release * s) as f32;
        }
    }
    // Breath noise in the rests, 40 dB under the voice.
    let mut last = 0.0;
    for (i, o) in out.iter_mut().enumerate() {
        let t = i as f64 / sr;
        let inside = notes.iter().any(|s| t >= s.start_s - 0.05 && t < s.start_s + s.dur_s + 0.05);
        let white = rng.unit();
        last = 0.9 * last + 0.1 * white;
        if !inside {
            *o += (0.004 * last) as f32;
        }
    }
    out
}
