//! The model contract: one window of mono 22050 Hz audio in, 172 frames of note, onset and contour
//! posteriors out (Live mode runs shorter windows, down to [`MIN_WINDOW_FRAMES`] frames, through
//! [`graph`]). Everything above this module (engine, plugin) talks to `dyn NoteModel`, so a better
//! model can replace Basic Pitch by implementing the trait with its own window geometry constants.
//!
//! Backends: [`native::NativeModel`] (Basic Pitch computed in Rust, ~1.9x ONNX Runtime's speed and
//! within 1e-4 of it; the default without ONNX Runtime: a bundle without the `onnxruntime` feature
//! is one self-contained file), [`tract::TractModel`] (pure Rust graph runtime, the reference) and,
//! with that feature, [`ort::OrtModel`] (ONNX Runtime loaded by absolute path), which the plugin
//! still prefers when its library loads ([`plugin_backend`]) because Live mode's latency settings
//! (`live::config_for`) are measured for it.

use crate::notes::{FrameOutputs, N_CONTOUR_BINS, N_KEYS};

pub mod graph;
pub mod native;
#[cfg(feature = "onnxruntime")]
pub mod ort;
pub mod tract;

pub use crate::notes::{FFT_HOP, FRAMES_PER_SECOND, FRAMES_PER_WINDOW, FRAME_SECONDS, MODEL_SAMPLE_RATE, WINDOW_SAMPLES};

/// The shortest window the graph runs (see [`graph`]): 130 frames, 1.5 s.
pub const MIN_WINDOW_FRAMES: usize = 130;

/// Samples of a window of `frames` frames: the 2 s window shortened by whole hops, so every CQT
/// octave keeps the same rounding.
pub const fn window_samples(frames: usize) -> usize {
    WINDOW_SAMPLES - FFT_HOP * (FRAMES_PER_WINDOW - frames)
}

/// The frames of a window of `samples` samples, if the model runs that length.
pub fn window_frames(samples: usize) -> Option<usize> {
    (MIN_WINDOW_FRAMES..=FRAMES_PER_WINDOW).find(|&f| window_samples(f) == samples)
}

/// The Basic Pitch ICASSP-2022 model (`nmp.onnx` from basic-pitch 0.4.0), embedded so the plugin
/// bundle is one self-contained file. `cargo xtask fetch-model` puts it in `models/`.
pub static BASIC_PITCH_ONNX: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/nmp.onnx"));
/// sha256 of [`BASIC_PITCH_ONNX`], checked by the xtask and by a test.
pub const BASIC_PITCH_SHA256: &str = "2c3c1d144bfa61ad236e92e169c13535c880469a12a047d4e73451f2c059a0ec";

/// ONNX tensor names of the Basic Pitch graph.
pub const INPUT_NAME: &str = "serving_default_input_2:0";
pub const NOTE_OUTPUT: &str = "StatefulPartitionedCall:1";
pub const ONSET_OUTPUT: &str = "StatefulPartitionedCall:2";
pub const CONTOUR_OUTPUT: &str = "StatefulPartitionedCall:0";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the note model could not be loaded: {0}")]
    Load(String),
    #[error("the note model failed on a window: {0}")]
    Inference(String),
    #[error("window has {got} samples; the model takes {WINDOW_SAMPLES}, or fewer by whole hops of 256 down to {MIN_WINDOW_FRAMES} frames")]
    WindowLength { got: usize },
}

/// Frame outputs of one window, row-major `[frames][bins]` ([`FRAMES_PER_WINDOW`] unless the window
/// was shorter).
#[derive(Clone, Debug, PartialEq)]
pub struct WindowFrames {
    pub note: Vec<f32>,
    pub onset: Vec<f32>,
    pub contour: Vec<f32>,
}

impl Default for WindowFrames {
    fn default() -> Self {
        Self::with_frames(FRAMES_PER_WINDOW)
    }
}

impl WindowFrames {
    pub fn with_frames(frames: usize) -> Self {
        Self { note: vec![0.0; frames * N_KEYS], onset: vec![0.0; frames * N_KEYS], contour: vec![0.0; frames * N_CONTOUR_BINS] }
    }

    pub fn n_frames(&self) -> usize {
        self.note.len() / N_KEYS
    }

    /// Resizes for a window of `frames` (a no-op, no allocation, when it already is).
    pub fn set_frames(&mut self, frames: usize) {
        self.note.resize(frames * N_KEYS, 0.0);
        self.onset.resize(frames * N_KEYS, 0.0);
        self.contour.resize(frames * N_CONTOUR_BINS, 0.0);
    }

    /// Appends this window's frames `keep` to `out`.
    pub fn append_to(&self, keep: std::ops::Range<usize>, out: &mut FrameOutputs) {
        out.note.extend_from_slice(&self.note[keep.start * N_KEYS..keep.end * N_KEYS]);
        out.onset.extend_from_slice(&self.onset[keep.start * N_KEYS..keep.end * N_KEYS]);
        out.contour.extend_from_slice(&self.contour[keep.start * N_CONTOUR_BINS..keep.end * N_CONTOUR_BINS]);
    }
}

/// A backend's compiled graphs, one per window length, each made once when first asked for: the
/// full window's at load, Live mode's shorter one on `prepare_window` or its first window.
pub(crate) struct WindowPlans<T> {
    /// The ONNX file, kept to make plans for other window lengths (230 kB).
    onnx: Vec<u8>,
    plans: Vec<(usize, T)>,
}

impl<T> WindowPlans<T> {
    /// Plans the full window with `make`, which gets the ONNX bytes and the window's frames.
    pub fn new(onnx: &[u8], make: impl FnOnce(&[u8], usize) -> Result<T, ModelError>) -> Result<Self, ModelError> {
        let full = make(onnx, FRAMES_PER_WINDOW)?;
        Ok(Self { onnx: onnx.to_vec(), plans: vec![(FRAMES_PER_WINDOW, full)] })
    }

    /// The plan for windows of `frames`, made with `make` on the resized graph the first time.
    pub fn get(&mut self, frames: usize, make: impl FnOnce(&[u8], usize) -> Result<T, ModelError>) -> Result<&mut T, ModelError> {
        let i = match self.plans.iter().position(|(f, _)| *f == frames) {
            Some(i) => i,
            None => {
                let plan = make(&graph::with_window_frames(&self.onnx, frames)?, frames)?;
                self.plans.push((frames, plan));
                self.plans.len() - 1
            }
        };
        Ok(&mut self.plans[i].1)
    }
}

/// A note-transcription model: windows in, frames out. `Send` so it can live on a worker thread.
pub trait NoteModel: Send {
    /// Short name of the backend, for status lines and benchmarks.
    fn backend(&self) -> &'static str;
    /// Runs one window of [`WINDOW_SAMPLES`] samples, or of [`window_samples`]`(frames)` for a shorter
    /// one, writing its frames into `out` (reused between calls, resized to the window's frames).
    fn run_window(&mut self, window: &[f32], out: &mut WindowFrames) -> Result<(), ModelError>;
    /// Gets ready to run windows of `frames` frames (a backend plans each length once), so the first
    /// such window does not stall.
    fn prepare_window(&mut self, frames: usize) -> Result<(), ModelError> {
        let _ = frames;
        Ok(())
    }
    /// A streaming engine for Live mode ([`FrameStreamer`]), for backends that keep what earlier
    /// hops computed (the native engine); `None`: Live runs whole windows (`run_window`).
    fn streamer(&self, settings: &StreamSettings) -> Option<Box<dyn FrameStreamer>> {
        let _ = settings;
        None
    }
}

/// How a [`FrameStreamer`] works (from `live::LiveConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSettings {
    /// Frames between two runs (the Live hop).
    pub hop_frames: usize,
    /// Frames committed behind the newest one (the Live right context).
    pub right_context_frames: usize,
    /// Model input columns recomputed at the right edge each run, beyond the new ones.
    pub refresh_frames: usize,
    /// Columns of the running normalisation of the log-CQT (a window's worth in the windowed path).
    pub norm_frames: usize,
}

/// Live mode's streaming inference: the take's model-rate audio in, frames on the Live grid
/// (frame `j` centred on sample `j * 256`) out, each run computing only what the new audio changed.
pub trait FrameStreamer: Send {
    /// Appends the take's next model-rate samples.
    fn push_audio(&mut self, audio: &[f32]);
    /// Computes the frames through `last_frame` from the samples a window ending with that frame
    /// holds (zeros past what was pushed; nothing after it is read) and writes frames `commit`
    /// (before `last_frame`, after the previous run's) into `out`. Allocates nothing.
    fn run(&mut self, last_frame: usize, commit: std::ops::Range<usize>, out: &mut WindowFrames) -> Result<(), ModelError>;
}

/// Which inference backend to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backend {
    #[default]
    Tract,
    /// tract without its kernel rewrites: within 1e-6 of the reference, ~3.4x slower.
    TractExact,
    #[cfg(feature = "onnxruntime")]
    Ort,
    /// The native engine ([`native`]): Basic Pitch computed in Rust, within 1e-4 of ONNX Runtime.
    Native,
}

impl Backend {
    /// The name `FromStr` accepts.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Tract => "tract",
            Backend::TractExact => "tract-exact",
            #[cfg(feature = "onnxruntime")]
            Backend::Ort => "ort",
            Backend::Native => "native",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tract" => Ok(Backend::Tract),
            "tract-exact" => Ok(Backend::TractExact),
            "native" => Ok(Backend::Native),
            #[cfg(feature = "onnxruntime")]
            "ort" | "onnxruntime" => Ok(Backend::Ort),
            #[cfg(not(feature = "onnxruntime"))]
            "ort" | "onnxruntime" => Err("this build has no ONNX Runtime backend (build with --features onnxruntime)".into()),
            other => Err(format!("unknown backend '{other}' (native, tract, tract-exact, ort)")),
        }
    }
}

/// The backend the plugin runs and why, said in the panel and the log (no silent fallback).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendChoice {
    pub backend: Backend,
    /// Why this backend, in plain words.
    pub reason: String,
    /// Set when what was asked for could not be had (an unknown `PIANOLA_BACKEND`, an ONNX
    /// Runtime that did not load): the panel shows it as a warning.
    pub fallback: Option<String>,
}

/// The backend the plugin runs: the native engine (the fastest: ~1.9x ONNX Runtime per window,
/// in the plugin's own binary, nothing to find at run time). `PIANOLA_BACKEND=native|tract|
/// tract-exact|ort` chooses; an unknown value is refused and ONNX Runtime that does not load falls
/// back to the native engine (both said). Decided once per process, so the latency reported at
/// activation and the model the worker loads agree.
pub fn plugin_backend() -> Backend {
    plugin_backend_choice().backend
}

/// [`plugin_backend`] with its reason.
pub fn plugin_backend_choice() -> &'static BackendChoice {
    static CHOSEN: std::sync::OnceLock<BackendChoice> = std::sync::OnceLock::new();
    CHOSEN.get_or_init(|| choose_backend(std::env::var("PIANOLA_BACKEND").ok().as_deref(), ort_status))
}

/// Whether ONNX Runtime loads in this process (`Err` says why not).
fn ort_status() -> Result<(), String> {
    #[cfg(feature = "onnxruntime")]
    return ort::environment_status();
    #[cfg(not(feature = "onnxruntime"))]
    Err("this build has no ONNX Runtime backend (built without --features onnxruntime)".into())
}

/// The choice for a `PIANOLA_BACKEND` value, given whether ONNX Runtime loads (pure, tested;
/// `ort` is asked only when ONNX Runtime is named, and a build without it never asks).
#[cfg_attr(not(feature = "onnxruntime"), allow(unused_variables))]
pub fn choose_backend(env: Option<&str>, ort: impl FnOnce() -> Result<(), String>) -> BackendChoice {
    match env.map(str::trim).filter(|s| !s.is_empty()) {
        None => native_default(None),
        Some(value) => match value.parse::<Backend>() {
            #[cfg(feature = "onnxruntime")]
            Ok(Backend::Ort) => match ort() {
                Ok(()) => BackendChoice { backend: Backend::Ort, reason: format!("ONNX Runtime (PIANOLA_BACKEND={value})"), fallback: None },
                Err(e) => native_default(Some(format!("PIANOLA_BACKEND={value}: ONNX Runtime did not load ({e}); running the native engine"))),
            },
            Ok(backend) => BackendChoice { backend, reason: format!("{} (PIANOLA_BACKEND={value})", backend.name()), fallback: None },
            Err(e) => native_default(Some(format!("PIANOLA_BACKEND={value} refused: {e}"))),
        },
    }
}

/// The default: the native engine; `fallback` says what was asked for and could not be had.
fn native_default(fallback: Option<String>) -> BackendChoice {
    BackendChoice { backend: Backend::Native, reason: "the native engine".into(), fallback }
}

/// Loads the embedded Basic Pitch model on the chosen backend.
pub fn load(backend: Backend) -> Result<Box<dyn NoteModel>, ModelError> {
    load_from_bytes(backend, BASIC_PITCH_ONNX)
}

/// Loads a Basic Pitch-shaped model from ONNX bytes (tests feed corrupt bytes through here).
pub fn load_from_bytes(backend: Backend, onnx: &[u8]) -> Result<Box<dyn NoteModel>, ModelError> {
    match backend {
        Backend::Tract => Ok(Box::new(tract::TractModel::from_bytes(onnx, tract::TractPrecision::Fast)?)),
        Backend::TractExact => Ok(Box::new(tract::TractModel::from_bytes(onnx, tract::TractPrecision::Exact)?)),
        #[cfg(feature = "onnxruntime")]
        Backend::Ort => Ok(Box::new(ort::OrtModel::from_bytes(onnx)?)),
        Backend::Native => Ok(Box::new(native::NativeModel::from_bytes(onnx)?)),
    }
}

/// Checks a window's length before it reaches a backend, so a wrong caller gets an error, not a
/// panic. Returns the window's frames.
pub fn check_window(window: &[f32]) -> Result<usize, ModelError> {
    window_frames(window.len()).ok_or(ModelError::WindowLength { got: window.len() })
}

/// Copies one named output into its slot, checking the element count.
pub(crate) fn copy_output(dst: &mut [f32], src: &[f32], name: &str) -> Result<(), ModelError> {
    if src.len() != dst.len() {
        return Err(ModelError::Inference(format!("output {name} has {} values, expected {}", src.len(), dst.len())));
    }
    dst.copy_from_slice(src);
    Ok(())
}

#[cfg(test)]
mod backend_choice_tests {
    use super::*;

    #[test]
    fn unknown_values_are_refused_and_said() {
        let c = choose_backend(Some("cuda"), || Ok(()));
        let said = c.fallback.expect("the refusal is said");
        assert!(said.contains("PIANOLA_BACKEND=cuda refused"), "{said}");
        assert_eq!(c.backend, Backend::Native);
    }

    #[test]
    fn native_is_named_and_the_default_without_onnx_runtime() {
        assert_eq!("native".parse::<Backend>(), Ok(Backend::Native));
        assert_eq!(Backend::Native.name(), "native");
        let c = choose_backend(Some("native"), || Ok(()));
        assert_eq!(c.backend, Backend::Native);
        assert!(c.reason.contains("PIANOLA_BACKEND=native") && c.fallback.is_none(), "{c:?}");
        assert_eq!(choose_backend(None, || Ok(())).backend, Backend::Native, "the default, whether ONNX Runtime loads or not");
    }

    #[test]
    fn a_named_backend_is_taken_with_its_reason() {
        let c = choose_backend(Some("tract-exact"), || Err("no".into()));
        assert_eq!(c.backend, Backend::TractExact);
        assert!(c.reason.contains("PIANOLA_BACKEND=tract-exact") && c.fallback.is_none(), "{c:?}");
        assert_eq!(choose_backend(Some("  "), || Ok(())), choose_backend(None, || Ok(())));
    }

    #[cfg(feature = "onnxruntime")]
    #[test]
    fn onnx_runtime_that_does_not_load_falls_back_to_native_with_the_reason() {
        let asked = choose_backend(Some("ort"), || Err("libonnxruntime.so not found".into()));
        assert_eq!(asked.backend, Backend::Native);
        assert!(asked.fallback.as_deref().is_some_and(|f| f.contains("libonnxruntime.so not found")), "{asked:?}");
        assert_eq!(choose_backend(Some("ort"), || Ok(())).backend, Backend::Ort);
    }
}
