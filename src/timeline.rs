//! The cover keyed in beats, handed from the worker to the audio thread without locks.
//!
//! The worker builds an immutable [`Timeline`] snapshot and publishes it; the audio thread picks up the
//! newest one at the start of a block. Snapshots travel as `Arc`s through a wait-free SPSC ring
//! (rtrb), and the worker keeps a clone of every snapshot it published until it is the only owner
//! left, so the audio thread's `Arc` drops never free memory (they only decrement a count). The
//! worker frees the retired snapshots on its own thread.

use crate::notes::{Cover, CoverNote, PedalSpan};
use std::sync::Arc;

/// One published state of the cover.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    /// Sorted by `start_beat` (then pitch).
    pub notes: Vec<CoverNote>,
    /// Sustain-pedal presses, sorted and disjoint.
    pub pedal: Vec<PedalSpan>,
    /// Increases with every publication of an instance; the audio thread re-targets sounding notes
    /// when it changes.
    pub generation: u64,
}

impl Timeline {
    pub fn new(cover: Cover, generation: u64) -> Self {
        let Cover { mut notes, mut pedal } = cover;
        notes.retain(|n| n.start_beat.is_finite() && n.end_beat.is_finite());
        notes.sort_by(|a, b| a.start_beat.total_cmp(&b.start_beat).then(a.pitch.cmp(&b.pitch)));
        // The emitter relies on presses that are sorted and never overlap.
        pedal.retain(|p| p.down_beat.is_finite() && p.up_beat.is_finite() && p.up_beat > p.down_beat);
        pedal.sort_by(|a, b| a.down_beat.total_cmp(&b.down_beat));
        let mut kept: Vec<PedalSpan> = Vec::with_capacity(pedal.len());
        for p in pedal {
            match kept.last_mut() {
                Some(last) if p.down_beat < last.up_beat => last.up_beat = last.up_beat.max(p.up_beat),
                _ => kept.push(p),
            }
        }
        Self { notes, pedal: kept, generation }
    }

    /// Notes starting in `[from, to)`.
    pub fn starting_in(&self, from: f64, to: f64) -> &[CoverNote] {
        let a = self.notes.partition_point(|n| n.start_beat < from);
        let b = a + self.notes[a..].partition_point(|n| n.start_beat < to);
        &self.notes[a..b]
    }
}

/// Snapshots in flight at most; the publisher keeps the newest pending one when the ring is full.
const RING: usize = 16;

/// Worker side.
pub struct Publisher {
    producer: rtrb::Producer<Arc<Timeline>>,
    /// Every snapshot still possibly referenced by the audio thread.
    retained: Vec<Arc<Timeline>>,
    /// Newest snapshot not yet in the ring (ring full).
    pending: Option<Arc<Timeline>>,
    generation: u64,
}

/// Audio-thread side.
pub struct Reader {
    consumer: rtrb::Consumer<Arc<Timeline>>,
    current: Arc<Timeline>,
}

/// A connected pair; `initial` is what the reader sees before the first publication.
pub fn channel(initial: Arc<Timeline>) -> (Publisher, Reader) {
    let (producer, consumer) = rtrb::RingBuffer::new(RING);
    let generation = initial.generation;
    let publisher = Publisher { producer, retained: vec![initial.clone()], pending: None, generation };
    (publisher, Reader { consumer, current: initial })
}

impl Publisher {
    /// Publishes a new cover (sorted here) and returns the snapshot.
    pub fn publish(&mut self, cover: Cover) -> Arc<Timeline> {
        self.generation += 1;
        let snapshot = Arc::new(Timeline::new(cover, self.generation));
        self.pending = Some(snapshot.clone());
        self.flush();
        snapshot
    }

    /// Moves a pending snapshot into the ring if there is room and frees snapshots nobody else holds.
    /// Call regularly.
    pub fn flush(&mut self) {
        if let Some(s) = self.pending.take() {
            self.retained.push(s.clone());
            if let Err(rtrb::PushError::Full(s)) = self.producer.push(s) {
                self.retained.pop();
                self.pending = Some(s);
            }
        }
        // strong_count == 1: only `retained` holds it (not the ring, not the reader), so it can go.
        self.retained.retain(|s| Arc::strong_count(s) > 1);
    }

    /// Snapshots kept alive for the reader (for tests).
    pub fn retained(&self) -> usize {
        self.retained.len()
    }
}

impl Reader {
    /// Takes the newest published snapshot, if any. Never allocates or frees. Returns true when
    /// the snapshot changed.
    pub fn update(&mut self) -> bool {
        let mut changed = false;
        while let Ok(s) = self.consumer.pop() {
            // The publisher still holds a clone of the old one: this only decrements a count.
            self.current = s;
            changed = true;
        }
        changed
    }

    pub fn current(&self) -> &Timeline {
        &self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::Hand;

    fn note(b: f64, p: u8) -> CoverNote {
        CoverNote { start_beat: b, end_beat: b + 1.0, pitch: p, velocity: 64, hand: Hand::Left, melody: false }
    }

    #[test]
    fn reader_sees_the_newest_and_the_worker_frees_old_ones() {
        let (mut publisher, mut reader) = channel(Arc::new(Timeline::default()));
        assert!(!reader.update());
        for k in 0..40 {
            publisher.publish(Cover { notes: vec![note(2.0, 60), note(k as f64 * 0.0, 61 + (k % 3) as u8)], pedal: vec![] });
            publisher.flush();
        }
        assert!(reader.update());
        assert_eq!(reader.current().generation, RING as u64, "the ring filled up; later ones wait");
        // The ring held the first 16; the rest are pending in turn.
        for _ in 0..10 {
            publisher.flush();
            reader.update();
        }
        assert_eq!(reader.current().generation, 40);
        assert_eq!(reader.current().notes[0].start_beat, 0.0, "sorted");
        publisher.flush();
        assert_eq!(publisher.retained(), 1, "only the reader's snapshot stays");
    }

    #[test]
    fn starting_in_selects_half_open_ranges() {
        let t = Timeline::new(Cover { notes: vec![note(1.0, 60), note(0.0, 60), note(2.0, 60)], pedal: vec![] }, 1);
        assert_eq!(t.starting_in(0.0, 1.0).len(), 1);
        assert_eq!(t.starting_in(1.0, 3.0).len(), 2);
        assert_eq!(t.starting_in(3.0, 4.0).len(), 0);
    }

    #[test]
    fn pedal_presses_are_sorted_and_merged() {
        let span = |d, u| PedalSpan { down_beat: d, up_beat: u };
        let t = Timeline::new(Cover { notes: vec![], pedal: vec![span(4.0, 6.0), span(0.0, 2.0), span(1.0, 3.0), span(5.0, f64::NAN), span(7.0, 7.0)] }, 1);
        assert_eq!(t.pedal, vec![span(0.0, 3.0), span(4.0, 6.0)]);
    }
}
