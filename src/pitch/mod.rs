//! The voice's pitch: SwiftF0 (PyPI `swift-f0==0.3.0`, MIT), a small pitch tracker made for
//! voices, run natively ([`native`], the default; tract is the reference) on 16 kHz audio: a pitch and a voicing confidence every 256 samples
//! (16 ms), 46.875..2093.75 Hz. [`PitchTracker::detect`] follows the package's `SwiftF0.detect`
//! (`swift_f0/core.py`): windows of frames with 11 frames of left context and 10 of lookahead
//! (the model's receptive field), confidence 0 for hops whose audio peaks below 1e-3 (the model
//! answers digital silence with random voiced frames), and the hop loudness in dB. `notes` folds
//! the curve into notes.
//!
//! The graph as shipped does not load in tract: its three `ConstantOfShape` nodes leave out the
//! `value` attribute (ONNX's default is a float32 zero) and tract's type inference then meets an
//! f64 where it expected f32; [`graph_for_tract`] writes the default in.

pub mod native;
pub mod notes;
pub mod stream;

use crate::model::ModelError;
use prost::Message;
use tract_onnx::pb;
use tract_onnx::prelude::*;

/// The SwiftF0 model, embedded like Basic Pitch (`cargo xtask fetch-model` puts it in `models/`).
pub static SWIFT_F0_ONNX: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/swift_f0.onnx"));
/// sha256 of [`SWIFT_F0_ONNX`], checked by the xtask and by a test.
pub const SWIFT_F0_SHA256: &str = "6385e8c2ebc3872e82c9ff5946228de44cd3be77a750ea53698b7dbfe94b0a22";

/// The tracker's sample rate.
pub const SAMPLE_RATE: u32 = 16000;
/// Samples per frame.
pub const HOP: usize = 256;
/// Seconds per frame.
pub const FRAME_SECONDS: f64 = HOP as f64 / SAMPLE_RATE as f64;
/// The model's pitch range, Hz.
pub const FMIN: f32 = 46.875;
pub const FMAX: f32 = 2093.75;
/// Frames after a frame that the model's receptive field reaches (a streamed frame is final then).
pub const LOOKAHEAD_FRAMES: usize = 10;
/// Frames before a frame that reproduce the whole-signal result.
pub const LEFT_FRAMES: usize = 11;
/// Frames per model run over a long signal: 250 (4 s). The package runs 1875 (30 s); with the
/// left context and lookahead every frame is the same either way (tests/pitch_parity.rs compares
/// against the package), and a short run keeps what a plugin instance holds small: a plan's
/// working memory grows with its length (10 s runs added ~80 MB to a long capture's resident set).
pub const WINDOW_FRAMES: usize = 250;
/// Hops whose audio peaks below this get confidence 0.
pub const SILENCE_PEAK: f32 = 1e-3;
/// A frame is voiced at this confidence or more (the model's calibration).
pub const VOICED: f32 = 0.5;

/// The tracker's output, one entry per frame (frame `i` at `i * FRAME_SECONDS`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PitchFrames {
    pub pitch_hz: Vec<f32>,
    pub confidence: Vec<f32>,
    /// Level of the 32 ms of audio around each frame, dB.
    pub loudness_db: Vec<f32>,
}

impl PitchFrames {
    pub fn len(&self) -> usize {
        self.pitch_hz.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pitch_hz.is_empty()
    }

    fn extend_from(&mut self, other: &PitchFrames, from: usize, to: usize) {
        self.pitch_hz.extend_from_slice(&other.pitch_hz[from..to]);
        self.confidence.extend_from_slice(&other.confidence[from..to]);
        self.loudness_db.extend_from_slice(&other.loudness_db[from..to]);
    }
}

/// The SwiftF0 graph with the `value` attribute its `ConstantOfShape` nodes leave to the ONNX
/// default written in (a float32 zero), so tract types it.
pub fn graph_for_tract(onnx: &[u8]) -> Result<Vec<u8>, ModelError> {
    let bad = |why: String| ModelError::Load(format!("the pitch model: {why}"));
    let mut model = pb::ModelProto::decode(onnx).map_err(|e| bad(e.to_string()))?;
    let graph = model.graph.as_mut().ok_or_else(|| bad("no graph".into()))?;
    for node in graph.node.iter_mut().filter(|n| n.op_type == "ConstantOfShape") {
        if !node.attribute.iter().any(|a| a.name == "value") {
            let zero = pb::TensorProto { dims: vec![1], data_type: pb::tensor_proto::DataType::Float as i32, float_data: vec![0.0], ..Default::default() };
            node.attribute.push(pb::AttributeProto {
                name: "value".into(),
                r#type: pb::attribute_proto::AttributeType::Tensor as i32,
                t: Some(zero),
                ..Default::default()
            });
        }
    }
    let mut out = Vec::with_capacity(onnx.len() + 64);
    model.encode(&mut out).map_err(|e| bad(e.to_string()))?;
    Ok(out)
}

/// Plans kept at once: a signal needs at most three lengths (first, middle and last window).
const MAX_PLANS: usize = 3;

/// SwiftF0: the native engine ([`native`]) by default; tract, the reference, with
/// [`PitchTracker::tract`]. tract cannot plan the graph for a symbolic length (its padding
/// depends on the length modulo a hop), so there each signal length gets its own plan, made on
/// first use (a few ms for this 14k-parameter model) and kept for the next signal of that length.
pub struct PitchTracker {
    /// The native engine, or `None` for tract.
    native: Option<Box<native::NativeSwiftF0>>,
    graph: Vec<u8>,
    /// (samples, state): tract keeps its scratch buffers in the state.
    plans: Vec<(usize, TypedSimpleState)>,
}

impl PitchTracker {
    /// Loads the embedded model.
    pub fn load() -> Result<Self, ModelError> {
        Self::from_bytes(SWIFT_F0_ONNX)
    }

    /// Loads a SwiftF0 graph into the native engine, which refuses a graph of another shape.
    pub fn from_bytes(onnx: &[u8]) -> Result<Self, ModelError> {
        Ok(Self { native: Some(Box::new(native::NativeSwiftF0::from_bytes(onnx)?)), graph: Vec::new(), plans: Vec::new() })
    }

    /// The embedded model on tract (the reference the native engine is tested against), planned
    /// once for one hop so a corrupt model fails here.
    pub fn tract() -> Result<Self, ModelError> {
        let mut tracker = Self { native: None, graph: graph_for_tract(SWIFT_F0_ONNX)?, plans: Vec::new() };
        tracker.plan(HOP)?;
        Ok(tracker)
    }

    /// Whether this tracker runs the native engine (not tract).
    pub fn is_native(&self) -> bool {
        self.native.is_some()
    }

    fn plan(&mut self, samples: usize) -> Result<&mut TypedSimpleState, ModelError> {
        if let Some(i) = self.plans.iter().position(|(n, _)| *n == samples) {
            return Ok(&mut self.plans[i].1);
        }
        let load = |e: TractError| ModelError::Load(format!("the pitch model: {e:#}"));
        let state = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(&self.graph))
            .map_err(load)?
            .with_input_fact(0, f32::fact([1, samples]).into())
            .map_err(load)?
            .with_input_fact(1, f32::fact([0usize; 0]).into())
            .map_err(load)?
            .with_input_fact(2, f32::fact([0usize; 0]).into())
            .map_err(load)?
            .into_optimized()
            .map_err(load)?
            .into_runnable()
            .map_err(load)?
            .spawn()
            .map_err(load)?;
        if self.plans.len() == MAX_PLANS {
            self.plans.remove(0);
        }
        self.plans.push((samples, state));
        Ok(&mut self.plans.last_mut().expect("just pushed").1)
    }

    /// The graph's outputs (pitch, confidence) on tract.
    fn run_tract(&mut self, audio: &[f32], fmin: f32, fmax: f32) -> Result<(Vec<f32>, Vec<f32>), ModelError> {
        let failed = |e: TractError| ModelError::Inference(format!("the pitch model: {e:#}"));
        let input = tract_ndarray::Array2::from_shape_vec((1, audio.len()), audio.to_vec()).map_err(|e| ModelError::Inference(e.to_string()))?;
        let out = self.plan(audio.len())?.run(tvec!(input.into_tensor().into(), tensor0(fmin).into(), tensor0(fmax).into())).map_err(failed)?;
        let as_f32 = |t: &Tensor| -> Result<Vec<f32>, ModelError> {
            let t = t.cast_to::<f32>().map_err(failed)?;
            let view = t.try_as_plain_ram().map_err(failed)?;
            Ok(view.as_slice::<f32>().map_err(failed)?.to_vec())
        };
        Ok((as_f32(&out[0])?, as_f32(&out[1])?))
    }

    /// One model run on `audio` (16 kHz): pitch, confidence and loudness for its
    /// `max(1, len / HOP)` frames, with the package's silence gate.
    pub(crate) fn run(&mut self, audio: &[f32], fmin: f32, fmax: f32) -> Result<PitchFrames, ModelError> {
        let (pitch, mut confidence) = match self.native.as_mut() {
            Some(engine) => {
                let n = (audio.len() / HOP).max(1);
                let (mut pitch, mut confidence) = (Vec::with_capacity(n), Vec::with_capacity(n));
                engine.run(audio, fmin, fmax, &mut pitch, &mut confidence);
                (pitch, confidence)
            }
            None => self.run_tract(audio, fmin, fmax)?,
        };
        let n = confidence.len();
        // The package's hop view: whole hops, or the short signal as one hop.
        let hop_of = |k: usize| -> &[f32] {
            if audio.len() >= HOP {
                &audio[k * HOP..((k + 1) * HOP).min(audio.len())]
            } else {
                audio
            }
        };
        let mut power = vec![0.0f64; n];
        for k in 0..n {
            let hop = hop_of(k);
            if hop.iter().fold(0.0f32, |m, x| m.max(x.abs())) < SILENCE_PEAK {
                confidence[k] = 0.0;
            }
            power[k] = hop.iter().map(|&x| x as f64 * x as f64).sum();
        }
        let loudness_db = (0..n).map(|k| (20.0 * (((if k > 0 { power[k - 1] } else { 0.0 }) + power[k]) / 512.0).sqrt().max(1e-7).log10()) as f32).collect();
        Ok(PitchFrames { pitch_hz: pitch, confidence, loudness_db })
    }

    /// The pitch of a whole 16 kHz signal, as `SwiftF0.detect` computes it: windows of
    /// [`WINDOW_FRAMES`] frames with their left context and lookahead.
    pub fn detect(&mut self, audio: &[f32]) -> Result<PitchFrames, ModelError> {
        if audio.is_empty() {
            return Ok(PitchFrames::default());
        }
        let n = (audio.len() / HOP).max(1);
        let mut out = PitchFrames::default();
        let mut start = 0;
        while start < n {
            let end = (start + WINDOW_FRAMES).min(n);
            let left = start.saturating_sub(LEFT_FRAMES);
            let window = if end < n { &audio[left * HOP..((end + LOOKAHEAD_FRAMES) * HOP).min(audio.len())] } else { &audio[left * HOP..] };
            let part = self.run(window, FMIN, FMAX)?;
            out.extend_from(&part, start - left, (end - left).min(part.len()));
            start = end;
        }
        Ok(out)
    }
}

/// The recording's reference pitch in cents from A440 (-50..50), from the voiced frames: the
/// circular mean of each frame's offset from the nearest semitone, weighted by confidence (vibrato
/// swings both ways and averages out). 0 when nothing is voiced.
pub fn tuning_cents(f: &PitchFrames) -> f64 {
    let (mut x, mut y) = (0.0f64, 0.0f64);
    for k in 0..f.len() {
        let (c, hz) = (f.confidence[k], f.pitch_hz[k]);
        if c >= VOICED && hz > 0.0 && hz.is_finite() {
            let angle = 2.0 * std::f64::consts::PI * notes::midi_of(hz, 0.0);
            x += c as f64 * angle.cos();
            y += c as f64 * angle.sin();
        }
    }
    if x == 0.0 && y == 0.0 {
        return 0.0;
    }
    100.0 * y.atan2(x) / (2.0 * std::f64::consts::PI)
}

/// Where the melody of a cover comes from: the user's choice in the panel and the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VoiceMode {
    /// Decide from the audio ([`lone_voice`]).
    #[default]
    Auto,
    /// A lone voice: its notes come from the pitch tracker.
    Voice,
    /// A mix: the note model's notes.
    Mix,
}

impl std::str::FromStr for VoiceMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(VoiceMode::Auto),
            "voice" => Ok(VoiceMode::Voice),
            "mix" => Ok(VoiceMode::Mix),
            other => Err(format!("unknown voice mode '{other}' (auto, voice, mix)")),
        }
    }
}

/// Voiced share of the audible frames above which a lone line counts as a voice.
pub const LONE_VOICE_VOICED_SHARE: f64 = 0.5;
/// Frames quieter than this are not counted (silence, room noise).
pub const AUDIBLE_DB: f32 = -50.0;

/// Whether the audio is a lone voice, and why, in plain words: the note model hears a lone line
/// (the arranger's own test, overtones left out: few notes at once, no thirds held together) and the pitch tracker finds most of
/// the audible frames voiced.
pub fn lone_voice(model_notes: &[crate::notes::Note], frames: &PitchFrames) -> (bool, String) {
    use crate::arrange::{harmony, BeatNote};
    let mut beats: Vec<BeatNote> = model_notes
        .iter()
        .map(|n| BeatNote { start_beat: n.start_s, end_beat: n.end_s, pitch: n.pitch, amplitude: n.amplitude, salience: n.amplitude })
        .collect();
    beats.sort_by(|a, b| a.start_beat.total_cmp(&b.start_beat));
    let partial = harmony::partial_like(&beats);
    let lone = harmony::is_lone_line(&beats, &partial);
    let poly = harmony::polyphony(&beats, &partial);
    let thirds = harmony::held_thirds(&beats, &partial);
    let audible: Vec<usize> = (0..frames.len()).filter(|&k| frames.loudness_db[k] > AUDIBLE_DB).collect();
    let voiced = audible.iter().filter(|&&k| frames.confidence[k] >= VOICED).count() as f64 / audible.len().max(1) as f64;
    let voice = lone && voiced >= LONE_VOICE_VOICED_SHARE;
    let why = format!(
        // held_thirds sums the pairs' time over the sounding time: the thirds held at once, on average.
        "{}: {:.1} notes sounding at once, {:.2} thirds or sixths held at once, {:.0}% of the audible audio voiced",
        if voice { "a lone voice" } else { "a mix" },
        poly,
        thirds,
        100.0 * voiced
    );
    (voice, why)
}

/// Mono audio at `sample_rate`, resampled to 16 kHz and tracked.
pub fn track(tracker: &mut PitchTracker, mono: &[f32], sample_rate: u32) -> Result<PitchFrames, ModelError> {
    let resample = |e: crate::resample::ResampleError| ModelError::Inference(e.to_string());
    let mut audio = Vec::with_capacity(mono.len() * SAMPLE_RATE as usize / sample_rate.max(1) as usize + HOP);
    let mut r = crate::resample::StreamResampler::to_rate(sample_rate, SAMPLE_RATE).map_err(resample)?;
    r.push(mono, &mut audio).map_err(resample)?;
    r.finish(&mut audio).map_err(resample)?;
    tracker.detect(&audio)
}

/// The notes to arrange from a whole recording (`mono` at `sample_rate`) whose note model heard
/// `heard`, and where the melody came from in words: the sung line timed by the model's onsets
/// when it is a lone voice (forced, or told with `Auto`), else `heard`. The CLI's `cover` and the
/// Live benchmark's offline reference use this.
pub fn melody_notes(
    mode: VoiceMode,
    tracker: &mut PitchTracker,
    mono: &[f32],
    sample_rate: u32,
    heard: &[crate::notes::Note],
) -> Result<(Vec<crate::notes::Note>, String), ModelError> {
    if mode == VoiceMode::Mix {
        return Ok((heard.to_vec(), "mix, as asked".into()));
    }
    let curve = track(tracker, mono, sample_rate)?;
    let melody = choose_melody(mode, &curve, heard);
    Ok(match melody.sung {
        Some(sung) => (notes::with_model_onsets(&sung, heard), melody.why),
        None => (heard.to_vec(), melody.why),
    })
}

/// Where a stretch's melody comes from: decided once, the same way, for the CLI and the plugin.
#[derive(Clone, Debug, PartialEq)]
pub struct Melody {
    /// The sung line when the melody is the voice (not yet timed by the note model's onsets:
    /// `notes::with_model_onsets`).
    pub sung: Option<notes::SungLine>,
    /// The recording's reference pitch found in the curve, cents from A440.
    pub tuning_cents: f64,
    /// What was chosen and why, in plain words.
    pub why: String,
}

/// The melody for `mode` (`Auto` tells a lone voice with [`lone_voice`] from `heard`, the note
/// model's notes of the same audio): the pitch `curve`'s notes against its own tuning when the
/// melody is the voice.
pub fn choose_melody(mode: VoiceMode, curve: &PitchFrames, heard: &[crate::notes::Note]) -> Melody {
    let tuning_cents = tuning_cents(curve);
    let (voice, why) = match mode {
        VoiceMode::Voice => (true, "a voice, as asked".to_string()),
        VoiceMode::Mix => (false, "mix, as asked".to_string()),
        VoiceMode::Auto => lone_voice(heard, curve),
    };
    if voice {
        let why = format!("{why}; melody from the voice tracker, tuning {tuning_cents:+.0} cents");
        Melody { sung: Some(notes::SungLine::from_curve(curve, tuning_cents)), tuning_cents, why }
    } else {
        Melody { sung: None, tuning_cents, why }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuning_is_the_circular_mean_of_the_offsets() {
        let at = |cents: f64, n: usize| PitchFrames {
            pitch_hz: (0..n).map(|k| (440.0 * 2f64.powf(((60 + k % 7) as f64 + cents / 100.0 - 69.0) / 12.0)) as f32).collect(),
            confidence: vec![0.9; n],
            loudness_db: vec![-20.0; n],
        };
        for cents in [-40.0, -20.0, 0.0, 20.0, 40.0] {
            assert!((tuning_cents(&at(cents, 50)) - cents).abs() < 0.01, "{cents}");
        }
        assert_eq!(tuning_cents(&PitchFrames::default()), 0.0);
    }

    #[test]
    fn the_embedded_model_is_the_pinned_one() {
        use sha2::{Digest, Sha256};
        let got: String = Sha256::digest(SWIFT_F0_ONNX).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, SWIFT_F0_SHA256);
    }

    #[test]
    fn a_sung_a3_is_tracked_at_220_hz_and_silence_is_unvoiced() {
        let mut tracker = PitchTracker::load().expect("the pitch model loads in tract");
        let mut audio: Vec<f32> = (0..SAMPLE_RATE as usize)
            .map(|i| {
                let t = i as f32 / SAMPLE_RATE as f32;
                // A voice-like tone: a fundamental and decaying harmonics.
                (1..6).map(|h| (2.0 * std::f32::consts::PI * 220.0 * h as f32 * t).sin() * 0.3 / h as f32).sum()
            })
            .collect();
        audio.extend(std::iter::repeat_n(0.0, SAMPLE_RATE as usize / 2));
        let f = tracker.detect(&audio).unwrap();
        assert_eq!(f.len(), audio.len() / HOP);
        let voiced: Vec<f32> = (5..55).filter(|&k| f.confidence[k] >= VOICED).map(|k| f.pitch_hz[k]).collect();
        assert!(voiced.len() >= 45, "only {} of 50 frames of the tone voiced: {:?}", voiced.len(), &f.confidence[5..55]);
        for p in &voiced {
            assert!((p - 220.0).abs() < 3.0, "pitch {p} Hz for a 220 Hz tone");
        }
        let silent = &f.confidence[f.len() - 20..];
        assert!(silent.iter().all(|&c| c == 0.0), "silence voiced: {silent:?}");
    }
}
