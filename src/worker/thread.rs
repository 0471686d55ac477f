//! The worker's thread and its life cycle: spawned in `activate()`, retired in `deactivate()`
//! without a join (it finishes what was captured on its own), handed to the next activation's
//! worker, which waits for it on its own thread and takes its model. Nothing here makes the
//! host's thread wait on the model, except destroying the plugin (see [`RetiredWorker`]).

use super::{live_config, Worker};
use crate::model::{ModelError, NoteModel};
use crate::params::PianolaParams;
use crate::ring::{CaptureReader, CaptureShared, RingLink};
use crate::status::Status;
use crate::timeline::Publisher;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

/// Loads a model (the plugin passes `model::load(model::plugin_backend())`; tests pass failures).
pub type ModelLoader = Box<dyn FnOnce() -> Result<Box<dyn NoteModel>, ModelError> + Send>;

/// Where a new worker gets its note model. Loading (a second or two) and waiting for a retiring
/// worker both happen on the new worker's thread, never in the host's `activate()`.
pub enum ModelSource {
    Ready(Box<dyn NoteModel>),
    Load(ModelLoader),
    /// The previous activation's worker, still finishing its audio after a deactivate: the new
    /// worker waits for it (so the capture it stores is the one restored) and takes its model, or
    /// loads one with `load` when it had none (its model had failed to load).
    AfterRetired {
        previous: RetiredWorker,
        load: ModelLoader,
    },
}

/// Everything a worker thread needs.
pub struct WorkerSetup {
    pub params: Arc<PianolaParams>,
    pub status: Arc<Status>,
    pub capture: Arc<CaptureShared>,
    pub reader: CaptureReader,
    pub publisher: Publisher,
    pub model: ModelSource,
}

/// Flags the owner sets for its worker thread.
#[derive(Debug, Default)]
struct Control {
    /// Finish: handle what is left in the ring, end the segment (its notes stored), then exit.
    stop: AtomicBool,
    /// Exit as soon as possible, dropping unfinished work (the plugin is being destroyed).
    abandon: AtomicBool,
}

type WorkerThread = JoinHandle<Option<Box<dyn NoteModel>>>;

/// The running thread. Dropping it abandons its work and joins it (see [`RetiredWorker`]).
pub struct WorkerHandle {
    thread: Option<WorkerThread>,
    control: Arc<Control>,
    link: Arc<RingLink>,
}

impl WorkerHandle {
    pub fn spawn(setup: WorkerSetup) -> std::io::Result<Self> {
        let control = Arc::new(Control::default());
        let link = setup.reader.link().clone();
        link.worker_gone.store(false, Ordering::Release);
        let control2 = control.clone();
        let thread = std::thread::Builder::new().name("pianola-worker".into()).spawn(move || run(setup, control2))?;
        Ok(Self { thread: Some(thread), control, link })
    }

    /// The thread, for `unpark` from the audio thread in offline rendering.
    pub fn thread(&self) -> Option<Thread> {
        self.thread.as_ref().map(|t| t.thread().clone())
    }

    /// Stops the thread, waits until it has handled what was captured and ended its segment, and
    /// returns its model.
    pub fn stop(mut self) -> Option<Box<dyn NoteModel>> {
        self.control.stop.store(true, Ordering::Release);
        let t = self.thread.take()?;
        t.thread().unpark();
        let model = t.join().ok().flatten();
        self.link.worker_gone.store(true, Ordering::Release);
        model
    }

    /// Returns at once (the host's `deactivate()` must not wait on the model): the thread goes on
    /// alone until it has handled what was captured, ended its segment and stored the capture; the
    /// next worker takes its model from the returned handle ([`ModelSource::AfterRetired`]).
    pub fn retire(mut self) -> RetiredWorker {
        self.control.stop.store(true, Ordering::Release);
        // The writer of this activation is gone: an offline writer must never wait on this thread.
        self.link.worker_gone.store(true, Ordering::Release);
        let thread = self.thread.take();
        if let Some(t) = &thread {
            t.thread().unpark();
        }
        RetiredWorker { thread, control: self.control.clone() }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            drop(RetiredWorker { thread: Some(t), control: self.control.clone() });
        }
        self.link.worker_gone.store(true, Ordering::Release);
    }
}

/// A worker finishing the audio of an activation that ended. Dropping it (the plugin destroyed
/// with no activation after) abandons what is left and waits for the thread, which then ends
/// within one model window: a host may unload the library right after, and no thread of ours may
/// still run its code.
pub struct RetiredWorker {
    thread: Option<WorkerThread>,
    control: Arc<Control>,
}

impl RetiredWorker {
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits for the thread to finish its work (on the next worker's thread) and returns its
    /// model; gives up the work when `abandon` is set meanwhile.
    fn join(mut self, abandon: &AtomicBool) -> Option<Box<dyn NoteModel>> {
        while !self.is_finished() {
            if abandon.load(Ordering::Acquire) {
                self.control.abandon.store(true, Ordering::Release);
            }
            std::thread::park_timeout(Duration::from_millis(5));
        }
        self.thread.take().and_then(|t| t.join().ok().flatten())
    }
}

impl Drop for RetiredWorker {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.control.abandon.store(true, Ordering::Release);
            self.control.stop.store(true, Ordering::Release);
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

pub(super) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_else(|| "unknown panic".into())
}

fn acquire_model(source: ModelSource, control: &Control) -> Result<Box<dyn NoteModel>, ModelError> {
    match source {
        ModelSource::Ready(m) => Ok(m),
        ModelSource::Load(load) => load(),
        ModelSource::AfterRetired { previous, load } => match previous.join(&control.abandon) {
            Some(m) => Ok(m),
            None => load(),
        },
    }
}

/// What `load` gave, a caught panic included; a failure is said in the panel with what Pianola
/// does without `what`.
fn loaded<T>(status: &Status, what: &str, without: &str, load: impl FnOnce() -> Result<T, ModelError>) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(load)) {
        Ok(Ok(t)) => Some(t),
        Ok(Err(e)) => {
            status.set_error(format!("{e}; {without}"));
            None
        }
        Err(p) => {
            status.set_error(format!("loading {what} panicked: {}; {without}", panic_message(p.as_ref())));
            None
        }
    }
}

fn run(setup: WorkerSetup, control: Arc<Control>) -> Option<Box<dyn NoteModel>> {
    let link = setup.reader.link().clone();
    let (mut w, source) = Worker::new(setup);
    let status = w.status.clone();
    w.model = loaded(&status, "the model", "Pianola passes the audio through but cannot transcribe", || acquire_model(source, &control)).map(|mut m| {
        // Plan Live mode's shorter window now, while the panel says the model is loading, so
        // switching to Live does not stall its first notes (a failure is handled when Live starts).
        let _ = catch_unwind(AssertUnwindSafe(|| m.prepare_window(live_config(false).window_frames)));
        status.model_ready.store(true, Ordering::Release);
        m
    });
    // The voice tracker (small: 135 kB, planned in a few ms). Without it melodies come from the
    // note model, and the panel says so.
    w.tracker = loaded(&status, "the voice tracker", "melodies come from the note model", crate::pitch::PitchTracker::load);
    if let Err(p) = catch_unwind(AssertUnwindSafe(|| w.restore())) {
        w.status.set_error(format!("restoring the capture panicked: {}", panic_message(p.as_ref())));
    }
    loop {
        if control.abandon.load(Ordering::Acquire) {
            break;
        }
        let stopping = control.stop.load(Ordering::Acquire);
        match catch_unwind(AssertUnwindSafe(|| w.step(&control.abandon))) {
            Ok(true) => {}
            // Stopping and nothing left in the ring: whatever was being recorded is kept (Capture mode).
            Ok(false) if stopping => {
                let _ = catch_unwind(AssertUnwindSafe(|| w.end_take()));
                break;
            }
            Ok(false) => std::thread::park_timeout(Duration::from_millis(5)),
            Err(p) => {
                w.status.set_error(format!("the worker recovered from a panic: {}", panic_message(p.as_ref())));
                w.recover();
            }
        }
    }
    link.worker_gone.store(true, Ordering::Release);
    status.recording.store(false, Ordering::Release);
    w.model.take()
}
