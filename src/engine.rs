//! The transcription pipeline: model-rate audio -> overlapping windows exactly as basic-pitch
//! cuts them (3840 zeros in front, a window every 36164 samples, 15 frames dropped at each side) ->
//! model -> unwrapped frames -> notes. [`FrameStream`] does it incrementally for the plugin's worker;
//! the offline path is the same stream run to the end, so both give identical frames.

use crate::audio_file::AudioClip;
use crate::decode::{self, DecodeParams};
use crate::model::{ModelError, NoteModel, WindowFrames, FFT_HOP, FRAMES_PER_SECOND, FRAMES_PER_WINDOW, MODEL_SAMPLE_RATE, WINDOW_SAMPLES};
use crate::notes::{FrameOutputs, Note, N_CONTOUR_BINS, N_KEYS};
use crate::resample;

/// Frames of overlap between neighbouring windows, as the model was run in training/reference.
pub const OVERLAP_FRAMES: usize = 30;
/// Zeros put in front of the audio (half the overlap).
pub const LEAD_IN_SAMPLES: usize = OVERLAP_FRAMES / 2 * FFT_HOP;
/// Distance between window starts.
pub const HOP_SAMPLES: usize = WINDOW_SAMPLES - OVERLAP_FRAMES * FFT_HOP;
/// Frames each window contributes after dropping the overlap.
pub const KEPT_FRAMES: usize = FRAMES_PER_WINDOW - OVERLAP_FRAMES;

/// Number of frames the reference keeps for `n` model-rate samples.
pub fn frames_for_samples(n: usize) -> usize {
    (n as u64 * FRAMES_PER_SECOND as u64 / MODEL_SAMPLE_RATE as u64) as usize
}

/// Incremental windowing + inference. Holds only the audio the next windows still need.
pub struct FrameStream {
    /// Lead-in + audio, starting at padded index `buffer_start`.
    buffer: Vec<f32>,
    buffer_start: usize,
    /// Model-rate samples received (without the lead-in).
    received: usize,
    next_window: usize,
    frames: FrameOutputs,
    scratch: WindowFrames,
    window: Vec<f32>,
}

impl Default for FrameStream {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameStream {
    pub fn new() -> Self {
        let mut buffer = Vec::with_capacity(WINDOW_SAMPLES * 2);
        buffer.resize(LEAD_IN_SAMPLES, 0.0);
        Self {
            buffer,
            buffer_start: 0,
            received: 0,
            next_window: 0,
            frames: FrameOutputs::default(),
            scratch: WindowFrames::default(),
            window: vec![0.0; WINDOW_SAMPLES],
        }
    }

    /// Model-rate samples received so far.
    pub fn samples_received(&self) -> usize {
        self.received
    }

    /// Frames committed so far (whole windows only; may run past the audio until `finish` trims).
    pub fn frames(&self) -> &FrameOutputs {
        &self.frames
    }

    /// Frames that are final and lie inside the audio received so far.
    pub fn final_frames(&self) -> usize {
        self.frames.n_frames().min(frames_for_samples(self.received))
    }

    /// Adds model-rate audio and runs every window that is now complete. Returns frames added.
    pub fn push(&mut self, model: &mut dyn NoteModel, audio: &[f32]) -> Result<usize, ModelError> {
        self.buffer.extend_from_slice(audio);
        self.received += audio.len();
        let before = self.frames.n_frames();
        while self.next_window * HOP_SAMPLES + WINDOW_SAMPLES <= self.buffer_start + self.buffer.len() {
            self.run_next_window(model)?;
        }
        Ok(self.frames.n_frames() - before)
    }

    /// Runs the remaining, zero-padded windows and trims to the reference's frame count.
    pub fn finish(mut self, model: &mut dyn NoteModel) -> Result<FrameOutputs, ModelError> {
        let padded_len = LEAD_IN_SAMPLES + self.received;
        while self.next_window * HOP_SAMPLES < padded_len {
            self.run_next_window(model)?;
        }
        self.frames.truncate_frames(frames_for_samples(self.received));
        Ok(self.frames)
    }

    fn run_next_window(&mut self, model: &mut dyn NoteModel) -> Result<(), ModelError> {
        let start = self.next_window * HOP_SAMPLES - self.buffer_start;
        let available = self.buffer.len().saturating_sub(start).min(WINDOW_SAMPLES);
        self.window[..available].copy_from_slice(&self.buffer[start..start + available]);
        self.window[available..].fill(0.0);
        model.run_window(&self.window, &mut self.scratch)?;
        let keep = OVERLAP_FRAMES / 2..FRAMES_PER_WINDOW - OVERLAP_FRAMES / 2;
        self.scratch.append_to(keep, &mut self.frames);
        self.next_window += 1;
        // Drop audio no later window reads.
        let next_start = self.next_window * HOP_SAMPLES;
        let drop = (next_start - self.buffer_start).min(self.buffer.len());
        self.buffer.drain(..drop);
        self.buffer_start += drop;
        Ok(())
    }
}

/// Frames for a whole model-rate clip.
pub fn frames_from_model_rate(model: &mut dyn NoteModel, audio: &[f32]) -> Result<FrameOutputs, ModelError> {
    let mut stream = FrameStream::new();
    stream.push(model, audio)?;
    stream.finish(model)
}

/// Number of windows the reference runs over `n` model-rate samples (the lead-in counts too, so even
/// empty audio has one window; `finish` trims its frames away).
pub fn windows_for_samples(n: usize) -> usize {
    (LEAD_IN_SAMPLES + n).div_ceil(HOP_SAMPLES)
}

/// Frames for a whole model-rate clip with its windows spread over several models, one thread each
/// (the CLI on a single song uses every core this way). Windows are independent, so the frames equal
/// [`frames_from_model_rate`]'s for any number of models; one model runs on the calling thread.
pub fn frames_from_model_rate_parallel(models: &mut [Box<dyn NoteModel>], audio: &[f32]) -> Result<FrameOutputs, ModelError> {
    let n_windows = windows_for_samples(audio.len());
    let workers = models.len().min(n_windows);
    if workers <= 1 {
        // One model: the windows run on this thread, straight from the clip (the stream would
        // move the rest of the clip down its buffer after every window: ~5 ms a song).
        let model = models.first_mut().ok_or_else(|| ModelError::Inference("no model to run".into()))?;
        let mut frames = FrameOutputs {
            note: vec![0.0; n_windows * KEPT_FRAMES * N_KEYS],
            onset: vec![0.0; n_windows * KEPT_FRAMES * N_KEYS],
            contour: vec![0.0; n_windows * KEPT_FRAMES * N_CONTOUR_BINS],
        };
        run_windows_into(model.as_mut(), audio, 0..n_windows, &mut frames.note, &mut frames.onset, &mut frames.contour)?;
        frames.truncate_frames(frames_for_samples(audio.len()));
        return Ok(frames);
    }
    let mut frames = FrameOutputs {
        note: vec![0.0; n_windows * KEPT_FRAMES * N_KEYS],
        onset: vec![0.0; n_windows * KEPT_FRAMES * N_KEYS],
        contour: vec![0.0; n_windows * KEPT_FRAMES * N_CONTOUR_BINS],
    };
    // Contiguous runs of windows per worker, the first ones one window longer when it does not divide.
    let per_worker = |w: usize| n_windows / workers + usize::from(w < n_windows % workers);
    let results: Vec<Result<(), ModelError>> = std::thread::scope(|scope| {
        let (mut note, mut onset, mut contour) = (&mut frames.note[..], &mut frames.onset[..], &mut frames.contour[..]);
        let mut first = 0;
        let mut handles = Vec::with_capacity(workers);
        for (w, model) in models.iter_mut().take(workers).enumerate() {
            let count = per_worker(w);
            let (n, rest_n) = std::mem::take(&mut note).split_at_mut(count * KEPT_FRAMES * N_KEYS);
            let (o, rest_o) = std::mem::take(&mut onset).split_at_mut(count * KEPT_FRAMES * N_KEYS);
            let (c, rest_c) = std::mem::take(&mut contour).split_at_mut(count * KEPT_FRAMES * N_CONTOUR_BINS);
            (note, onset, contour) = (rest_n, rest_o, rest_c);
            let windows = first..first + count;
            first += count;
            handles.push(scope.spawn(move || run_windows_into(model.as_mut(), audio, windows, n, o, c)));
        }
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(ModelError::Inference("a model thread panicked".into())))).collect()
    });
    results.into_iter().collect::<Result<(), _>>()?;
    frames.truncate_frames(frames_for_samples(audio.len()));
    Ok(frames)
}

/// Runs windows `windows` of `audio` (lead-in included, zero-padded past the end) and writes their
/// kept frames, in order, into the three slices.
fn run_windows_into(
    model: &mut dyn NoteModel,
    audio: &[f32],
    windows: std::ops::Range<usize>,
    note: &mut [f32],
    onset: &mut [f32],
    contour: &mut [f32],
) -> Result<(), ModelError> {
    let mut window = vec![0.0f32; WINDOW_SAMPLES];
    let mut scratch = WindowFrames::default();
    let keep = OVERLAP_FRAMES / 2..FRAMES_PER_WINDOW - OVERLAP_FRAMES / 2;
    for (i, w) in windows.enumerate() {
        // Padded index p holds audio[p - LEAD_IN_SAMPLES]; outside the audio it is zero.
        let start = w * HOP_SAMPLES;
        window.fill(0.0);
        let from = start.max(LEAD_IN_SAMPLES);
        let to = (start + WINDOW_SAMPLES).min(LEAD_IN_SAMPLES + audio.len());
        if from < to {
            window[from - start..to - start].copy_from_slice(&audio[from - LEAD_IN_SAMPLES..to - LEAD_IN_SAMPLES]);
        }
        model.run_window(&window, &mut scratch)?;
        note[i * KEPT_FRAMES * N_KEYS..(i + 1) * KEPT_FRAMES * N_KEYS].copy_from_slice(&scratch.note[keep.start * N_KEYS..keep.end * N_KEYS]);
        onset[i * KEPT_FRAMES * N_KEYS..(i + 1) * KEPT_FRAMES * N_KEYS].copy_from_slice(&scratch.onset[keep.start * N_KEYS..keep.end * N_KEYS]);
        contour[i * KEPT_FRAMES * N_CONTOUR_BINS..(i + 1) * KEPT_FRAMES * N_CONTOUR_BINS]
            .copy_from_slice(&scratch.contour[keep.start * N_CONTOUR_BINS..keep.end * N_CONTOUR_BINS]);
    }
    Ok(())
}

/// Everything the transcriber found in a clip.
#[derive(Clone, Debug)]
pub struct Transcription {
    pub frames: FrameOutputs,
    pub notes: Vec<Note>,
    pub duration_s: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Resample(#[from] resample::ResampleError),
}

/// Downmixed clip -> model rate -> frames -> notes.
pub fn transcribe_clip(model: &mut dyn NoteModel, clip: &AudioClip, params: &DecodeParams) -> Result<Transcription, EngineError> {
    let mono = clip.mono();
    let audio = resample::to_model_rate(&mono, clip.sample_rate)?;
    let frames = frames_from_model_rate(model, &audio)?;
    let notes = decode::notes_from_frames(&frames, params);
    Ok(Transcription { frames, notes, duration_s: mono.len() as f64 / clip.sample_rate as f64 })
}

/// [`transcribe_clip`] with the clip's windows spread over several models (one thread each); the
/// result is the same.
pub fn transcribe_clip_parallel(models: &mut [Box<dyn NoteModel>], clip: &AudioClip, params: &DecodeParams) -> Result<Transcription, EngineError> {
    transcribe_mono_parallel(models, &clip.mono(), clip.sample_rate, params)
}

/// [`transcribe_clip_parallel`] on a clip's mono mix (`AudioClip::mono`) at `sample_rate`, for a
/// caller that has the mix already (the tuning estimate reads it too).
pub fn transcribe_mono_parallel(
    models: &mut [Box<dyn NoteModel>],
    mono: &[f32],
    sample_rate: u32,
    params: &DecodeParams,
) -> Result<Transcription, EngineError> {
    let audio = resample::to_model_rate(mono, sample_rate)?;
    let frames = frames_from_model_rate_parallel(models, &audio)?;
    let notes = decode::notes_from_frames(&frames, params);
    Ok(Transcription { frames, notes, duration_s: mono.len() as f64 / sample_rate as f64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in model whose frames encode which window and frame they came from, so the windowing
    /// and unwrapping can be checked without the network.
    struct Probe {
        windows: Vec<Vec<f32>>,
    }
    impl NoteModel for Probe {
        fn backend(&self) -> &'static str {
            "probe"
        }
        fn run_window(&mut self, window: &[f32], out: &mut WindowFrames) -> Result<(), ModelError> {
            crate::model::check_window(window)?;
            let w = self.windows.len() as f32;
            for t in 0..FRAMES_PER_WINDOW {
                out.note[t * N_KEYS] = w * 1000.0 + t as f32;
            }
            self.windows.push(window.to_vec());
            Ok(())
        }
    }

    #[test]
    fn geometry_matches_the_reference() {
        assert_eq!(LEAD_IN_SAMPLES, 3840);
        assert_eq!(HOP_SAMPLES, 36164);
        assert_eq!(KEPT_FRAMES, 142);
    }

    #[test]
    fn windows_and_unwrapping_follow_basic_pitch() {
        // 100 000 samples: padded 103 840 -> windows at 0, 36164, 72328 (ceil(103840/36164) = 3).
        let audio: Vec<f32> = (0..100_000).map(|i| i as f32).collect();
        let mut probe = Probe { windows: vec![] };
        let frames = frames_from_model_rate(&mut probe, &audio).unwrap();
        assert_eq!(probe.windows.len(), 3);
        // Window 0 starts with the lead-in zeros, then the audio.
        assert!(probe.windows[0][..LEAD_IN_SAMPLES].iter().all(|&x| x == 0.0));
        assert_eq!(probe.windows[0][LEAD_IN_SAMPLES], 0.0);
        assert_eq!(probe.windows[0][LEAD_IN_SAMPLES + 1], 1.0);
        // Window 1 starts at padded index 36164 = audio index 32324.
        assert_eq!(probe.windows[1][0], 32324.0);
        // The last window is zero-padded past the end.
        assert_eq!(*probe.windows[2].last().unwrap(), 0.0);
        // floor(100000 * 86 / 22050) = 390 frames; frame 0 is window 0's frame 15, frame 142 window 1's frame 15.
        assert_eq!(frames.n_frames(), 390);
        assert_eq!(frames.note_row(0)[0], 15.0);
        assert_eq!(frames.note_row(141)[0], 156.0);
        assert_eq!(frames.note_row(142)[0], 1015.0);
    }

    #[test]
    fn streaming_in_blocks_equals_offline() {
        let audio: Vec<f32> = (0..150_000).map(|i| ((i * 7919) % 1000) as f32).collect();
        let offline = frames_from_model_rate(&mut Probe { windows: vec![] }, &audio).unwrap();
        let mut probe = Probe { windows: vec![] };
        let mut stream = FrameStream::new();
        for block in audio.chunks(777) {
            stream.push(&mut probe, block).unwrap();
            assert!(stream.buffer.len() <= WINDOW_SAMPLES + 777, "stream keeps only what it needs");
        }
        let streamed = stream.finish(&mut probe).unwrap();
        assert_eq!(streamed, offline);
    }

    /// Frames that depend on the window's content only (its sum and first sample), so models on
    /// different threads must agree with a single one.
    struct Content;
    impl NoteModel for Content {
        fn backend(&self) -> &'static str {
            "content"
        }
        fn run_window(&mut self, window: &[f32], out: &mut WindowFrames) -> Result<(), ModelError> {
            crate::model::check_window(window)?;
            let sum: f32 = window.iter().sum();
            for t in 0..FRAMES_PER_WINDOW {
                out.note[t * N_KEYS] = sum + t as f32;
                out.onset[t * N_KEYS + 1] = window[t * FFT_HOP];
                out.contour[t * N_CONTOUR_BINS + 2] = window[WINDOW_SAMPLES - 1 - t];
            }
            Ok(())
        }
    }

    #[test]
    fn parallel_windows_equal_serial() {
        // Lengths around the window edges: empty, inside the lead-in's first window, exact hops, long.
        for n in [0, 1, 40_000, HOP_SAMPLES - LEAD_IN_SAMPLES, HOP_SAMPLES * 3 - LEAD_IN_SAMPLES + 1, 500_000] {
            let audio: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 * 1e-3).collect();
            let serial = frames_from_model_rate(&mut Content, &audio).unwrap();
            for workers in 1..=5 {
                let mut models: Vec<Box<dyn NoteModel>> = (0..workers).map(|_| Box::new(Content) as Box<dyn NoteModel>).collect();
                let parallel = frames_from_model_rate_parallel(&mut models, &audio).unwrap();
                assert_eq!(parallel, serial, "{n} samples on {workers} models");
            }
        }
    }

    #[test]
    fn parallel_windows_pass_errors_on() {
        let mut models: Vec<Box<dyn NoteModel>> = vec![Box::new(Content), Box::new(Probe { windows: vec![] })];
        assert!(frames_from_model_rate_parallel(&mut [], &[0.0; 10]).is_err());
        struct Failing;
        impl NoteModel for Failing {
            fn backend(&self) -> &'static str {
                "failing"
            }
            fn run_window(&mut self, _: &[f32], _: &mut WindowFrames) -> Result<(), ModelError> {
                Err(ModelError::Inference("broken".into()))
            }
        }
        models.push(Box::new(Failing));
        let err = frames_from_model_rate_parallel(&mut models, &vec![0.0; 300_000]).unwrap_err();
        assert!(err.to_string().contains("broken"), "{err}");
    }

    #[test]
    fn empty_audio_gives_no_frames() {
        let frames = frames_from_model_rate(&mut Probe { windows: vec![] }, &[]).unwrap();
        assert_eq!(frames.n_frames(), 0);
    }
}
