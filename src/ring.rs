//! The capture ring between the audio thread and the worker: each playing block is downmixed to
//! mono into a preallocated ring (rtrb) together with a [`Stamp`] of the transport at the block's
//! start ([`CaptureWriter`], audio thread); the worker pops them ([`CaptureReader`]). No allocation, lock,
//! log or wait in real time: when the ring is full the block is dropped and counted, and the worker
//! sees the gap in the sample counter as a discontinuity. Only in offline rendering does the writer
//! wait (for ring space, and for the worker to catch up after a jump: see [`CaptureWriter::push_block`]).
//!
//! Ordering: a block's samples are written before its stamp, so a reader that has popped a stamp
//! always finds its `len` samples in the sample ring.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Transport state at the first sample of a block, as the worker needs it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stamp {
    /// Sequence number of this stamp (1, 2, ...) since activation.
    pub seq: u64,
    /// Running count of samples processed since activation (playing or not) at the block's start.
    pub sample_index: u64,
    /// Mono samples of this block that follow in the sample ring (0 for a stop marker).
    pub len: u32,
    pub playing: bool,
    /// Beat (quarter note) position at the block start.
    pub beat: f64,
    /// Tempo in beats per minute.
    pub tempo: f64,
    /// Quarter notes per bar (time signature numerator * 4 / denominator, at least 1).
    pub beats_per_bar: u32,
    /// Beat position of the current bar's start.
    pub bar_start_beat: f64,
    pub sample_rate: f32,
}

impl Stamp {
    /// Beat just past the block's last sample.
    pub fn end_beat(&self) -> f64 {
        self.beat + self.len as f64 * self.tempo / 60.0 / self.sample_rate as f64
    }
}

/// How far a block's beat position may sit from where the previous block ended and still count as
/// the same run of the transport. Hosts round the position they report: CLAP to fixed point, Ardour 7
/// to 1/1920 beat (~12 samples at 116 bpm, 44.1 kHz), which at half a sample of slack turned every
/// block into a "seek". 1/960 beat plus a sample covers that rounding and is still far below any seek
/// a user can make (0.5 ms at 120 bpm).
pub fn continuity_slack_beats(samples_per_beat: f64) -> f64 {
    1.0 / 960.0 + 1.0 / samples_per_beat.max(1.0)
}

/// Whether block `next` continues where a block ending at `end_beat` with `tempo`/`rate` stopped.
pub fn continues(end_beat: f64, tempo: f64, rate: f32, next: &Stamp) -> bool {
    let tolerance = continuity_slack_beats(rate as f64 * 60.0 / tempo);
    next.sample_rate == rate && (next.beat - end_beat).abs() <= tolerance
}

/// The transport as the plugin reads it from the host, for one block.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TransportInfo {
    pub playing: bool,
    pub beat: Option<f64>,
    pub tempo: Option<f64>,
    pub time_sig: Option<(i32, i32)>,
    pub bar_start_beat: Option<f64>,
    pub sample_rate: f32,
}

impl TransportInfo {
    pub fn beats_per_bar(&self) -> u32 {
        match self.time_sig {
            Some((num, den)) if num > 0 && den > 0 => ((num as f64 * 4.0 / den as f64).round() as u32).max(1),
            _ => 4,
        }
    }
}

/// Counters shared by the writer, the worker and the editor.
#[derive(Debug, Default)]
pub struct CaptureShared {
    /// Samples dropped because the ring was full.
    pub dropped_samples: AtomicU64,
    /// Mono samples the audio thread has put into the ring since the plugin was created.
    pub pushed_samples: AtomicU64,
    /// Mono samples the worker has popped and handled; `pushed - handled` is the worker's backlog.
    pub handled_samples: AtomicU64,
    /// Largest backlog seen since the plugin was created (the editor's "worst lag").
    pub max_backlog_samples: AtomicU64,
}

impl CaptureShared {
    /// Samples captured but not yet handled by the worker (how far it is behind the audio).
    pub fn backlog_samples(&self) -> u64 {
        let handled = self.handled_samples.load(Ordering::Acquire);
        self.pushed_samples.load(Ordering::Acquire).saturating_sub(handled)
    }

    /// Records the current backlog in `max_backlog_samples` (the writer after each push, the worker
    /// before draining). Lock-free: one `fetch_max`, safe on the audio thread.
    pub fn note_backlog(&self) {
        self.max_backlog_samples.fetch_max(self.backlog_samples(), Ordering::Relaxed);
    }
}

/// What one activation's writer and its worker share (a new pair each activation: a worker that
/// is still finishing the previous activation's audio after a deactivate has its own).
#[derive(Debug, Default)]
pub struct RingLink {
    /// Highest stamp sequence number the worker has fully handled (and published the result of).
    pub done_seq: AtomicU64,
    /// Set when the worker stops, so an offline writer never waits on a dead worker.
    pub worker_gone: AtomicBool,
}

/// Ring sizes: ~6 s of mono audio at 96 kHz, and room for 1-sample blocks for ~1/3 s at 96 kHz.
pub const SAMPLE_RING: usize = 1 << 19;
pub const STAMP_RING: usize = 1 << 15;
/// Longest an offline writer waits for the worker before giving up on that block.
pub const OFFLINE_WAIT: Duration = Duration::from_secs(60);

pub struct CaptureWriter {
    samples: rtrb::Producer<f32>,
    stamps: rtrb::Producer<Stamp>,
    shared: Arc<CaptureShared>,
    link: Arc<RingLink>,
    worker: Option<Thread>,
    counter: u64,
    seq: u64,
    /// (end beat, tempo, rate) of the last pushed playing block.
    last: Option<(f64, f64, f32)>,
    /// Real time, after a dropped block: blocks are dropped until the ring is half empty again, so
    /// a worker that fell behind resumes with one long stretch instead of a block here and there
    /// (each one a segment of its own, costing a model window and giving nothing).
    recovering: bool,
    /// A stop marker is owed to the worker: a playing block (or the marker itself) was dropped after
    /// the last one that went in. Pushed with the next stopped block, or the worker's segment would
    /// stay open (its notes unsaved) until the transport next plays.
    stop_pending: bool,
}

pub struct CaptureReader {
    samples: rtrb::Consumer<f32>,
    stamps: rtrb::Consumer<Stamp>,
    link: Arc<RingLink>,
}

/// What [`CaptureWriter::push_block`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Nothing to capture (stopped, or no beat/tempo from the host).
    Nothing,
    /// Stamp `seq` went into the ring.
    Stamp { seq: u64, discontinuity: bool },
    /// The ring was full: the block was dropped.
    Dropped,
}

/// A connected writer/reader pair with preallocated rings.
pub fn channel(shared: Arc<CaptureShared>) -> (CaptureWriter, CaptureReader) {
    let (sp, sc) = rtrb::RingBuffer::new(SAMPLE_RING);
    let (tp, tc) = rtrb::RingBuffer::new(STAMP_RING);
    let link = Arc::new(RingLink::default());
    (
        CaptureWriter {
            samples: sp,
            stamps: tp,
            shared,
            link: link.clone(),
            worker: None,
            counter: 0,
            seq: 0,
            last: None,
            recovering: false,
            stop_pending: false,
        },
        CaptureReader { samples: sc, stamps: tc, link },
    )
}

/// Mono mean of the channels at frame `i`, non-finite samples as silence: the same arithmetic as
/// `audio_file::downmix`, so a capture and a file read of the same audio give the same samples.
/// Samples are clipped and scaled before the sum (`audio_file::mono_part`): samples up to `f32::MAX`
/// can neither add up to infinity nor overflow the resampler.
#[inline]
fn mono_at<C: AsRef<[f32]>>(channels: &[C], i: usize, scale: f32) -> f32 {
    channels.iter().map(|c| crate::audio_file::mono_part(c.as_ref()[i], scale)).sum::<f32>()
}

impl CaptureWriter {
    /// The worker thread to wake in offline mode.
    pub fn set_worker(&mut self, worker: Option<Thread>) {
        self.worker = worker;
    }

    pub fn shared(&self) -> &Arc<CaptureShared> {
        &self.shared
    }

    /// What this writer shares with its worker.
    pub fn link(&self) -> &Arc<RingLink> {
        &self.link
    }

    /// Whether the worker has handled every stamp pushed so far (or is gone).
    pub fn worker_caught_up(&self) -> bool {
        self.link.done_seq.load(Ordering::Acquire) >= self.seq || self.link.worker_gone.load(Ordering::Acquire)
    }

    /// Running sample counter (samples processed since activation).
    pub fn sample_index(&self) -> u64 {
        self.counter
    }

    /// Captures one block of `len` frames of `channels`. In real time this never blocks. With
    /// `offline`, it waits for ring space, and after a discontinuity (start, seek, loop wrap, stop)
    /// it waits until the worker has handled this stamp, so a bounce sees the same cover as a
    /// real-time pass that left the worker time to finish.
    pub fn push_block<C: AsRef<[f32]>>(&mut self, channels: &[C], len: usize, t: &TransportInfo, offline: bool) -> Pushed {
        let index = self.counter;
        self.counter += len as u64;
        let (beat, tempo) = match (t.playing, t.beat, t.tempo) {
            (true, Some(b), Some(tempo)) if b.is_finite() && tempo.is_finite() && tempo > 0.0 && len > 0 && t.sample_rate > 0.0 => (b, tempo),
            _ => {
                // Stopped (or unusable transport): one stop marker ends the worker's segment.
                if self.last.take().is_some() || std::mem::take(&mut self.stop_pending) {
                    let stamp = Stamp { sample_index: index, sample_rate: t.sample_rate, ..Stamp::default() };
                    let pushed = self.push_stamp(stamp, &[] as &[C], 0, true, offline);
                    self.stop_pending = pushed == Pushed::Dropped;
                    return pushed;
                }
                return Pushed::Nothing;
            }
        };
        let stamp = Stamp {
            seq: 0,
            sample_index: index,
            len: len as u32,
            playing: true,
            beat,
            tempo,
            beats_per_bar: t.beats_per_bar(),
            bar_start_beat: t.bar_start_beat.unwrap_or(0.0),
            sample_rate: t.sample_rate,
        };
        let discontinuity = !matches!(self.last, Some((end, tempo, rate)) if continues(end, tempo, rate, &stamp));
        self.last = Some((stamp.end_beat(), tempo, t.sample_rate));
        self.push_stamp(stamp, channels, len, discontinuity, offline)
    }

    fn push_stamp<C: AsRef<[f32]>>(&mut self, mut stamp: Stamp, channels: &[C], len: usize, discontinuity: bool, offline: bool) -> Pushed {
        let fits = |w: &Self| w.samples.slots() >= len && w.stamps.slots() >= 1;
        // A stop marker needs no sample room and always goes in when a stamp slot is free.
        if self.recovering && !offline && len > 0 {
            if self.samples.slots() >= SAMPLE_RING / 2 && self.stamps.slots() >= STAMP_RING / 2 {
                self.recovering = false;
            } else {
                self.shared.dropped_samples.fetch_add(len as u64, Ordering::Relaxed);
                self.last = None;
                self.stop_pending = true;
                return Pushed::Dropped;
            }
        }
        if !fits(self) {
            if offline {
                let start = Instant::now();
                while !fits(self) && !self.link.worker_gone.load(Ordering::Acquire) && start.elapsed() < OFFLINE_WAIT {
                    self.wake();
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            if !fits(self) {
                self.shared.dropped_samples.fetch_add(len as u64, Ordering::Relaxed);
                // The worker must not chain the next block onto this one.
                self.last = None;
                self.recovering = !offline;
                self.stop_pending = true;
                return Pushed::Dropped;
            }
        }
        if len > 0 {
            let scale = 1.0 / channels.len().max(1) as f32;
            if channels.is_empty() {
                if let Ok(chunk) = self.samples.write_chunk_uninit(len) {
                    chunk.fill_from_iter(std::iter::repeat(0.0));
                }
            } else if let Ok(chunk) = self.samples.write_chunk_uninit(len) {
                chunk.fill_from_iter((0..len).map(|i| mono_at(channels, i, scale)));
            }
        }
        self.shared.pushed_samples.fetch_add(len as u64, Ordering::Release);
        // The backlog peaks right after a push: record it here, where it is known for certain (the
        // worker's own look, before it drains, may come long after a burst of offline or fast blocks).
        self.shared.note_backlog();
        self.seq += 1;
        stamp.seq = self.seq;
        // Cannot fail: space was checked and this is the only producer.
        let _ = self.stamps.push(stamp);
        if offline && discontinuity {
            self.wait_for(stamp.seq);
        }
        Pushed::Stamp { seq: stamp.seq, discontinuity }
    }

    /// Offline only: waits until the worker has handled stamp `seq` (or is gone, or a minute passed).
    pub fn wait_for(&self, seq: u64) {
        let start = Instant::now();
        while self.link.done_seq.load(Ordering::Acquire) < seq && !self.link.worker_gone.load(Ordering::Acquire) && start.elapsed() < OFFLINE_WAIT {
            self.wake();
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Sequence number of the last stamp pushed.
    pub fn last_seq(&self) -> u64 {
        self.seq
    }

    fn wake(&self) {
        if let Some(w) = &self.worker {
            w.unpark();
        }
    }
}

impl CaptureReader {
    /// What this reader shares with its writer.
    pub fn link(&self) -> &Arc<RingLink> {
        &self.link
    }

    /// Pops the next stamp and appends its samples to `out`.
    pub fn pop(&mut self, out: &mut Vec<f32>) -> Option<Stamp> {
        let stamp = self.stamps.pop().ok()?;
        let n = stamp.len as usize;
        if n > 0 {
            match self.samples.read_chunk(n) {
                Ok(chunk) => {
                    let (a, b) = chunk.as_slices();
                    out.extend_from_slice(a);
                    out.extend_from_slice(b);
                    chunk.commit_all();
                }
                Err(_) => {
                    // Cannot happen (samples are written first); keep the ring consistent anyway.
                    let avail = self.samples.slots();
                    if let Ok(chunk) = self.samples.read_chunk(avail) {
                        chunk.commit_all();
                    }
                    out.resize(out.len() + n, 0.0);
                }
            }
        }
        Some(stamp)
    }

    /// Whether a stamp is waiting.
    pub fn is_empty(&self) -> bool {
        self.stamps.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playing(beat: f64) -> TransportInfo {
        TransportInfo { playing: true, beat: Some(beat), tempo: Some(120.0), time_sig: Some((3, 4)), bar_start_beat: Some(0.0), sample_rate: 48000.0 }
    }

    #[test]
    fn blocks_arrive_downmixed_with_their_stamps() {
        let (mut w, mut r) = channel(Arc::new(CaptureShared::default()));
        let l = [1.0f32, 2.0, f32::NAN];
        let rr = [3.0f32, 4.0, 5.0];
        let p = w.push_block(&[&l[..], &rr[..]], 3, &playing(0.0), false);
        assert_eq!(p, Pushed::Stamp { seq: 1, discontinuity: true });
        // Continuous block: 3 samples at 120 bpm / 48 kHz.
        let p = w.push_block(&[&l[..], &rr[..]], 3, &playing(3.0 * 2.0 / 48000.0), false);
        assert_eq!(p, Pushed::Stamp { seq: 2, discontinuity: false });
        // Stop: one marker, then nothing.
        assert!(matches!(w.push_block(&[&l[..], &rr[..]], 3, &TransportInfo::default(), false), Pushed::Stamp { .. }));
        assert_eq!(w.push_block(&[&l[..], &rr[..]], 3, &TransportInfo::default(), false), Pushed::Nothing);
        let mut out = vec![];
        let s = r.pop(&mut out).unwrap();
        assert_eq!((s.sample_index, s.len, s.beats_per_bar), (0, 3, 3));
        assert_eq!(out, vec![2.0, 3.0, 2.5]);
        let s = r.pop(&mut out).unwrap();
        assert_eq!(s.sample_index, 3);
        let s = r.pop(&mut out).unwrap();
        assert!(!s.playing && s.len == 0 && s.sample_index == 6);
        assert!(r.pop(&mut out).is_none());
        assert_eq!(w.sample_index(), 12);
    }

    #[test]
    fn a_full_ring_drops_and_counts() {
        let shared = Arc::new(CaptureShared::default());
        let (mut w, _r) = channel(shared.clone());
        let block = vec![0.5f32; 4096];
        let mut dropped = 0;
        for k in 0..(SAMPLE_RING / 4096 + 3) {
            if w.push_block(&[&block[..]], 4096, &playing(k as f64 * 4096.0 / 24000.0), false) == Pushed::Dropped {
                dropped += 1;
            }
        }
        assert_eq!(dropped, 3);
        assert_eq!(shared.dropped_samples.load(Ordering::Relaxed), 3 * 4096);
        // The stop after the drops still reaches the worker (its segment must end).
        assert!(matches!(w.push_block(&[&block[..]], 4096, &TransportInfo::default(), false), Pushed::Stamp { .. }));
        assert_eq!(w.push_block(&[&block[..]], 4096, &TransportInfo::default(), false), Pushed::Nothing);
    }

    #[test]
    fn after_a_drop_blocks_wait_for_half_the_ring() {
        let (mut w, mut r) = channel(Arc::new(CaptureShared::default()));
        let block = vec![0.5f32; 4096];
        let t = |k: usize| playing(k as f64 * 4096.0 * 2.0 / 48000.0);
        let mut k = 0;
        while w.push_block(&[&block[..]], 4096, &t(k), false) != Pushed::Dropped {
            k += 1;
        }
        let mut out = vec![];
        // Room for one block again: still dropped, the worker has not caught up.
        r.pop(&mut out);
        k += 1;
        assert_eq!(w.push_block(&[&block[..]], 4096, &t(k), false), Pushed::Dropped);
        for _ in 0..SAMPLE_RING / 2 / 4096 {
            r.pop(&mut out);
        }
        k += 1;
        assert!(matches!(w.push_block(&[&block[..]], 4096, &t(k), false), Pushed::Stamp { discontinuity: true, .. }));
        // Offline never drops for this reason: it waits.
        assert!(!w.recovering);
    }
}
