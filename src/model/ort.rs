//! ONNX Runtime inference (feature `onnxruntime`): about twice as fast as tract here and bit-exact
//! with the Python reference. The runtime library is loaded with `dlopen` from an absolute path
//! (a relative one would resolve next to the *host's* executable), once per process, because ONNX
//! Runtime allows one environment per process. One intra-op thread, no spinning: a plugin must not
//! eat the cores the DAW needs.

use super::{check_window, copy_output, ModelError, NoteModel, WindowFrames, WindowPlans, CONTOUR_OUTPUT, INPUT_NAME, NOTE_OUTPUT, ONSET_OUTPUT};
use ort::session::Session;
use ort::value::TensorRef;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where the runtime library is: `PIANOLA_ORT_DYLIB` if set (must be absolute), else the copy the
/// xtask fetched into this checkout's `models/`.
pub fn dylib_path() -> PathBuf {
    match std::env::var_os("PIANOLA_ORT_DYLIB") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/models/libonnxruntime.so")),
    }
}

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

fn environment() -> Result<&'static ort::environment::Environment, ModelError> {
    ENVIRONMENT
        .get_or_init(|| {
            let path = dylib_path();
            if !path.is_absolute() {
                return Err(format!("ONNX Runtime path {} is not absolute", path.display()));
            }
            if !path.exists() {
                return Err(format!("ONNX Runtime library not found at {} (run `cargo xtask fetch-model`)", path.display()));
            }
            ort::init_from(&path)
                .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", path.display()))?
                .with_name("pianola")
                .build()
                .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| ModelError::Load(e.clone()))
}

/// Whether ONNX Runtime's library loads in this process (it is loaded at most once).
pub fn available() -> bool {
    environment().is_ok()
}

/// Whether ONNX Runtime's library loads, and why not.
pub fn environment_status() -> Result<(), String> {
    environment().map(|_| ()).map_err(|e| e.to_string())
}

pub struct OrtModel {
    /// One session per window length.
    sessions: WindowPlans<Session>,
}

impl OrtModel {
    pub fn from_bytes(onnx: &[u8]) -> Result<Self, ModelError> {
        Ok(Self { sessions: WindowPlans::new(onnx, session)? })
    }
}

/// A session for one window length (its graph's shapes are fixed).
fn session(onnx: &[u8], _frames: usize) -> Result<Session, ModelError> {
    let env = environment()?;
    let load = |e: ort::Error| ModelError::Load(e.to_string());
    Session::builder(env)
        .map_err(load)?
        .with_intra_threads(1)
        .map_err(|e| ModelError::Load(e.to_string()))?
        .with_intra_op_spinning(false)
        .map_err(|e| ModelError::Load(e.to_string()))?
        .commit_from_memory(onnx)
        .map_err(load)
}

impl NoteModel for OrtModel {
    fn backend(&self) -> &'static str {
        "ort"
    }

    fn run_window(&mut self, window: &[f32], out: &mut WindowFrames) -> Result<(), ModelError> {
        let frames = check_window(window)?;
        let session = self.sessions.get(frames, session)?;
        out.set_frames(frames);
        let err = |e: ort::Error| ModelError::Inference(e.to_string());
        let input = TensorRef::from_array_view(([1usize, window.len(), 1], window)).map_err(err)?;
        let outputs = session.run(ort::inputs![INPUT_NAME => input]).map_err(err)?;
        for (dst, name) in [(&mut out.note, NOTE_OUTPUT), (&mut out.onset, ONSET_OUTPUT), (&mut out.contour, CONTOUR_OUTPUT)] {
            let value = outputs.get(name).ok_or_else(|| ModelError::Inference(format!("no output {name}")))?;
            let (_, data) = value.try_extract_tensor::<f32>().map_err(err)?;
            copy_output(dst, data, name)?;
        }
        Ok(())
    }

    fn prepare_window(&mut self, frames: usize) -> Result<(), ModelError> {
        self.sessions.get(frames, session).map(|_| ())
    }
}
