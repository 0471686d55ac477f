//! Audio-thread note emission: turns the cover (notes keyed in beats) into sample-accurate note on/off
//! events for one block of the host's transport. Pure logic with no allocation, so it is unit-tested
//! here without a host and driven by the plugin's `process()`.
//!
//! How a block is cut: a block covers the beats `[beat0, beat0 + len * tempo / 60 / sr)`. Hosts give
//! `beat0` in fixed point (CLAP: 2^-31 beats), so the previous block's computed end and this block's
//! `beat0` differ by a rounding step, and selecting events by comparing beats against each block's own
//! range fires an event on a boundary twice (or never). Instead, while the transport runs on
//! continuously the selection ranges are *chained*: this block selects `[previous end, this end)`,
//! where both ends are computed here, so every beat belongs to exactly one block. The ends sit half a
//! sample before each block's end, so an event goes to the block holding its rounded sample
//! position; its beat is then converted to that sample offset inside the block.
//!
//! Safety nets: every sounding key is tracked in a fixed array; all of them are released on stop,
//! seek, loop wrap (the block does not start where the previous one ended), a tempo jump, bypass and
//! deactivate; a note-on for a key that is still sounding is preceded by that key's note-off.
//!
//! The sustain pedal is emitted the same way: its presses are chained across blocks like notes, it
//! goes up on stop, seek, loop, tempo jump and bypass, and a press is not started after a seek into
//! its middle (as a note is not). At one instant the order is note-offs, pedal up, note-ons, pedal
//! down: the old chord's keys and pedal go up before the new keys are struck, and the pedal catches
//! the new keys. A pedal that is down where the newest cover has no press goes up at once.

use crate::notes::{CoverNote, PedalSpan};

/// Relative tempo change between two consecutive blocks that counts as a jump (releases notes).
/// Smooth tempo ramps change the tempo by far less per block and keep notes sounding.
pub const TEMPO_JUMP: f64 = 0.01;

/// One block of the host transport as the emitter needs it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockTransport {
    pub playing: bool,
    /// Beat (quarter note) position at the block's first sample.
    pub beat: f64,
    /// Tempo in beats per minute.
    pub tempo: f64,
    pub sample_rate: f64,
    /// Block length in samples.
    pub len: u32,
}

impl BlockTransport {
    /// Samples per beat.
    pub fn samples_per_beat(&self) -> f64 {
        self.sample_rate * 60.0 / self.tempo
    }
    /// Beat position just past the block's last sample.
    pub fn end_beat(&self) -> f64 {
        self.beat + self.len as f64 / self.samples_per_beat()
    }
    fn is_valid(&self) -> bool {
        self.beat.is_finite() && self.tempo.is_finite() && self.tempo > 0.0 && self.sample_rate > 0.0 && self.len > 0
    }
}

/// A note event at a sample offset inside the current block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitEvent {
    On {
        offset: u32,
        key: u8,
        velocity: u8,
    },
    Off {
        offset: u32,
        key: u8,
    },
    /// Sustain pedal (CC64) down or up.
    Pedal {
        offset: u32,
        down: bool,
    },
}

impl EmitEvent {
    pub fn offset(&self) -> u32 {
        match *self {
            EmitEvent::On { offset, .. } | EmitEvent::Off { offset, .. } | EmitEvent::Pedal { offset, .. } => offset,
        }
    }
    /// The key of a note event (None for the pedal).
    pub fn key(&self) -> Option<u8> {
        match *self {
            EmitEvent::On { key, .. } | EmitEvent::Off { key, .. } => Some(key),
            EmitEvent::Pedal { .. } => None,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Sounding {
    active: bool,
    start_beat: f64,
    end_beat: f64,
}

const SILENT: Sounding = Sounding { active: false, start_beat: 0.0, end_beat: 0.0 };

/// Where the previous block ended, to chain the next one onto it.
#[derive(Clone, Copy, Debug)]
struct Previous {
    /// Beat just past the block's last sample.
    end_beat: f64,
    /// Where its event selection ended (half a sample earlier).
    sel_end: f64,
    tempo: f64,
    samples_per_beat: f64,
}

/// Note on/off state across blocks. Fixed size; never allocates.
#[derive(Clone, Debug)]
pub struct Emitter {
    sounding: [Sounding; 128],
    n_sounding: usize,
    pedal_down: bool,
    previous: Option<Previous>,
}

impl Default for Emitter {
    fn default() -> Self {
        Self::new()
    }
}

impl Emitter {
    pub fn new() -> Self {
        Self { sounding: [SILENT; 128], n_sounding: 0, pedal_down: false, previous: None }
    }

    /// Whether the sustain pedal is down.
    pub fn pedal_is_down(&self) -> bool {
        self.pedal_down
    }

    /// Number of keys currently held down.
    pub fn sounding_count(&self) -> usize {
        self.n_sounding
    }

    pub fn is_sounding(&self, key: u8) -> bool {
        self.sounding[key as usize & 127].active
    }

    /// Forgets where the transport was, so the next block is not chained onto the last one.
    pub fn break_chain(&mut self) {
        self.previous = None;
    }

    /// Releases every sounding key at `offset`. `send` returns false when the host refused the
    /// event; such a key stays marked as sounding so the next call retries it.
    pub fn release_all(&mut self, offset: u32, send: &mut impl FnMut(EmitEvent) -> bool) {
        if self.pedal_down && send(EmitEvent::Pedal { offset, down: false }) {
            self.pedal_down = false;
        }
        if self.n_sounding == 0 {
            return;
        }
        for key in 0..128u8 {
            if self.sounding[key as usize].active && send(EmitEvent::Off { offset, key }) {
                self.sounding[key as usize] = SILENT;
                self.n_sounding -= 1;
            }
        }
    }

    /// After the cover changed (re-arranged, a longer transcription): sounding notes take the end
    /// of the same note (pitch and start) in the new cover, so a note extended by later audio is not
    /// cut at its old end. Notes no longer in the cover keep their old end.
    pub fn retarget(&mut self, notes: &[CoverNote]) {
        if self.n_sounding == 0 {
            return;
        }
        for key in 0..128usize {
            let s = self.sounding[key];
            if !s.active {
                continue;
            }
            let from = notes.partition_point(|n| n.start_beat < s.start_beat - 1e-9);
            for n in &notes[from..] {
                if n.start_beat > s.start_beat + 1e-9 {
                    break;
                }
                if n.pitch as usize == key {
                    self.sounding[key].end_beat = n.end_beat;
                    break;
                }
            }
        }
    }

    /// Emits the events of one block, in time order (at equal offsets: note-offs, pedal up, note-ons,
    /// pedal down). `notes` must be sorted by `start_beat`, `pedal` sorted and disjoint (as a
    /// [`crate::timeline::Timeline`] keeps them). When the transport stops, jumps or the block is
    /// invalid, sounding notes and the pedal are released at offset 0 first.
    pub fn process(&mut self, block: &BlockTransport, notes: &[CoverNote], pedal: &[PedalSpan], send: &mut impl FnMut(EmitEvent) -> bool) {
        if !block.playing || !block.is_valid() {
            self.release_all(0, send);
            self.previous = None;
            return;
        }
        let spb = block.samples_per_beat();
        // Events are cut at half samples: one at sample position p (from the block start) goes to
        // offset round(p), so this block owns p in [-0.5, len - 0.5) and the next block the rest.
        let sel_end = block.beat + (block.len as f64 - 0.5) / spb;
        let sel_start = match self.previous {
            Some(p) if self.is_continuation(&p, block) => p.sel_end,
            _ => {
                self.release_all(0, send);
                block.beat - 0.5 / spb
            }
        };
        let last = block.len - 1;
        let offset = |beat: f64| -> u32 {
            let x = ((beat - block.beat) * spb).round();
            if x <= 0.0 {
                0
            } else if x >= last as f64 {
                last
            } else {
                x as u32
            }
        };

        let mut i = notes.partition_point(|n| n.start_beat < sel_start);
        let j = i + notes[i..].partition_point(|n| n.start_beat < sel_end);
        // The pedal's next change: press `k`'s down (`k_down`) or its up. A pedal down where the
        // cover has no press any more (it was re-arranged) goes up now.
        let mut k = pedal.partition_point(|p| p.up_beat < sel_start);
        let mut k_down = pedal.get(k).is_some_and(|p| p.down_beat >= sel_start);
        if self.pedal_down && !pedal.get(k).is_some_and(|p| p.down_beat < sel_start) && send(EmitEvent::Pedal { offset: 0, down: false }) {
            self.pedal_down = false;
        }
        loop {
            // The next pedal change inside the selection; at equal beats a lift goes before the
            // note-ons and a press after them.
            let ped = pedal.get(k).map(|p| if k_down { (p.down_beat, true) } else { (p.up_beat, false) }).filter(|&(b, _)| b < sel_end);
            let next_on = if i < j { Some(notes[i].start_beat) } else { None };
            let next_off = self.earliest_off(sel_end);
            if let Some((b, down)) = ped {
                let before_off = next_off.is_none_or(|(o, _)| b < o);
                let before_on = next_on.is_none_or(|on| if down { b < on } else { b <= on });
                if before_off && before_on {
                    if down != self.pedal_down && send(EmitEvent::Pedal { offset: offset(b), down }) {
                        self.pedal_down = down;
                    }
                    if down {
                        k_down = false;
                    } else {
                        k += 1;
                        k_down = true;
                    }
                    continue;
                }
            }
            let (off, on) = (next_off, next_on);
            match (off, on) {
                (None, None) => break,
                (Some((b, key)), on) if on.is_none_or(|on| b <= on) => {
                    if send(EmitEvent::Off { offset: offset(b), key: key as u8 }) {
                        self.sounding[key] = SILENT;
                        self.n_sounding -= 1;
                    } else {
                        // Host buffer full: out of this block's selection, retried at the start
                        // of the next block (whose selection begins at this `sel_end`).
                        self.sounding[key].end_beat = sel_end;
                        if on.is_none() {
                            break;
                        }
                    }
                }
                (_, Some(start)) => {
                    let n = notes[i];
                    i += 1;
                    // Also skips notes with NaN ends (a NaN compares false).
                    if n.end_beat.partial_cmp(&n.start_beat) != Some(std::cmp::Ordering::Greater) || n.pitch > 127 {
                        continue;
                    }
                    let key = n.pitch as usize;
                    let at = offset(start);
                    if self.sounding[key].active {
                        if send(EmitEvent::Off { offset: at, key: n.pitch }) {
                            self.sounding[key] = SILENT;
                            self.n_sounding -= 1;
                        } else {
                            continue;
                        }
                    }
                    if send(EmitEvent::On { offset: at, key: n.pitch, velocity: n.velocity.clamp(1, 127) }) {
                        self.sounding[key] = Sounding { active: true, start_beat: n.start_beat, end_beat: n.end_beat };
                        self.n_sounding += 1;
                    }
                }
                (Some(_), None) => unreachable!("handled by the guard above"),
            }
        }
        self.previous = Some(Previous { end_beat: block.end_beat(), sel_end, tempo: block.tempo, samples_per_beat: spb });
    }

    /// The earliest pending note-off before `sel_end`: (beat, key).
    fn earliest_off(&self, sel_end: f64) -> Option<(f64, usize)> {
        let mut off: Option<(f64, usize)> = None;
        if self.n_sounding > 0 {
            for (key, s) in self.sounding.iter().enumerate() {
                if s.active && s.end_beat < sel_end && off.is_none_or(|(b, _)| s.end_beat < b) {
                    off = Some((s.end_beat, key));
                }
            }
        }
        off
    }

    fn is_continuation(&self, p: &Previous, block: &BlockTransport) -> bool {
        // Host rounding of the position is not a seek (the selection stays contiguous either way).
        let tolerance = crate::ring::continuity_slack_beats(p.samples_per_beat);
        (block.beat - p.end_beat).abs() <= tolerance && ((block.tempo - p.tempo).abs() / p.tempo) <= TEMPO_JUMP
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::Hand;

    fn note(start: f64, end: f64, pitch: u8) -> CoverNote {
        CoverNote { start_beat: start, end_beat: end, pitch, velocity: 80, hand: Hand::Right, melody: false }
    }

    /// Runs a transport of blocks and returns (absolute sample, event) pairs.
    fn run(emitter: &mut Emitter, notes: &[CoverNote], blocks: &[BlockTransport], start_sample: u64) -> Vec<(u64, EmitEvent)> {
        run_pedalled(emitter, notes, &[], blocks, start_sample)
    }

    fn run_pedalled(emitter: &mut Emitter, notes: &[CoverNote], pedal: &[PedalSpan], blocks: &[BlockTransport], start_sample: u64) -> Vec<(u64, EmitEvent)> {
        let mut out = vec![];
        let mut pos = start_sample;
        for b in blocks {
            emitter.process(b, notes, pedal, &mut |e| {
                assert!(e.offset() < b.len.max(1), "offset inside the block");
                out.push((pos + e.offset() as u64, e));
                true
            });
            pos += b.len as u64;
        }
        out
    }

    /// Blocks of `len` samples from `beat`, like a CLAP host with fixed-point beats.
    fn blocks(beat: f64, tempo: f64, sr: f64, len: u32, n: usize) -> Vec<BlockTransport> {
        (0..n)
            .map(|k| {
                let exact = beat + (k as f64 * len as f64) * tempo / 60.0 / sr;
                let fixed = (exact * (1u64 << 31) as f64).round() / (1u64 << 31) as f64;
                BlockTransport { playing: true, beat: fixed, tempo, sample_rate: sr, len }
            })
            .collect()
    }

    fn check_balanced(events: &[(u64, EmitEvent)]) {
        let mut on = [false; 128];
        for (_, e) in events {
            match *e {
                EmitEvent::On { key, .. } => {
                    assert!(!on[key as usize], "duplicate note-on for {key}");
                    on[key as usize] = true;
                }
                EmitEvent::Off { key, .. } => {
                    assert!(on[key as usize], "note-off for silent {key}");
                    on[key as usize] = false;
                }
                EmitEvent::Pedal { .. } => {}
            }
        }
        assert!(on.iter().all(|x| !x), "stuck note");
        let mut down = false;
        for (_, e) in events {
            if let EmitEvent::Pedal { down: d, .. } = *e {
                assert_ne!(d, down, "the pedal changed to the state it was in");
                down = d;
            }
        }
        assert!(!down, "the pedal was left down");
    }

    #[test]
    fn events_land_on_their_samples_at_every_block_size() {
        // 120 bpm at 48 kHz: 24000 samples per beat.
        let notes: Vec<_> = (0..40).map(|k| note(k as f64 * 0.25, k as f64 * 0.25 + 0.2, 60 + (k % 5) as u8)).collect();
        for len in [1u32, 64, 333, 4096] {
            let n = (11.0 * 24000.0 / len as f64).ceil() as usize;
            let mut bl = blocks(0.0, 120.0, 48000.0, len, n);
            bl.push(BlockTransport { playing: false, ..bl[0] });
            let mut em = Emitter::new();
            let ev = run(&mut em, &notes, &bl, 0);
            let ons: Vec<u64> = ev.iter().filter(|(_, e)| matches!(e, EmitEvent::On { .. })).map(|(s, _)| *s).collect();
            let expected: Vec<u64> = notes.iter().map(|n| (n.start_beat * 24000.0).round() as u64).collect();
            assert_eq!(ons, expected, "block size {len}");
            let offs: Vec<u64> = ev.iter().filter(|(_, e)| matches!(e, EmitEvent::Off { .. })).map(|(s, _)| *s).collect();
            let expected_offs: Vec<u64> = notes.iter().map(|n| (n.end_beat * 24000.0).round() as u64).collect();
            assert_eq!(offs, expected_offs, "block size {len}");
            check_balanced(&ev);
        }
    }

    #[test]
    fn ardour_tick_rounding_is_not_a_seek() {
        // Ardour 7 reports the block's beat rounded to 1/1920 beat: ~12 samples at 116 bpm, 44.1 kHz.
        let (tempo, sr, len) = (116.0, 44100.0, 1024u32);
        let spb = sr * 60.0 / tempo;
        let notes: Vec<_> = (0..32).map(|k| note(k as f64 * 0.5, k as f64 * 0.5 + 0.45, 60 + (k % 7) as u8)).collect();
        let n = (16.5 * spb / len as f64).ceil() as usize;
        let mut bl: Vec<BlockTransport> =
            blocks(0.0, tempo, sr, len, n).into_iter().map(|b| BlockTransport { beat: (b.beat * 1920.0).round() / 1920.0, ..b }).collect();
        bl.push(BlockTransport { playing: false, ..bl[0] });
        let ev = run(&mut Emitter::new(), &notes, &bl, 0);
        let ons: Vec<u64> = ev.iter().filter(|(_, e)| matches!(e, EmitEvent::On { .. })).map(|(s, _)| *s).collect();
        assert_eq!(ons.len(), notes.len(), "every note plays once, none is cut by a false seek");
        for (s, n) in ons.iter().zip(&notes) {
            assert!((*s as f64 - n.start_beat * spb).abs() <= 13.0, "note at beat {} landed at sample {s}", n.start_beat);
        }
        // No release-all mid-run: each note is held for its length (0.45 beat), not cut short.
        let offs: Vec<u64> = ev.iter().filter(|(_, e)| matches!(e, EmitEvent::Off { .. })).map(|(s, _)| *s).collect();
        for (on, off) in ons.iter().zip(&offs) {
            assert!(((off - on) as f64 - 0.45 * spb).abs() <= 26.0);
        }
        check_balanced(&ev);
    }

    #[test]
    fn boundary_events_fire_once_with_fixed_point_beats() {
        // Notes exactly on block boundaries, at an awkward rate.
        let len = 333u32;
        let spb = 44100.0 * 60.0 / 97.0;
        let notes: Vec<_> = (1..200)
            .map(|k| {
                let b = (k * len) as f64 / spb;
                note(b, b + 0.01, 40 + (k % 40) as u8)
            })
            .collect();
        let bl = blocks(0.0, 97.0, 44100.0, len, 210);
        let mut em = Emitter::new();
        let ev = run(&mut em, &notes, &bl, 0);
        let ons = ev.iter().filter(|(_, e)| matches!(e, EmitEvent::On { .. })).count();
        assert_eq!(ons, notes.len());
    }

    fn step(em: &mut Emitter, notes: &[CoverNote], b: BlockTransport) -> Vec<EmitEvent> {
        let mut ev = vec![];
        em.process(&b, notes, &[], &mut |e| {
            ev.push(e);
            true
        });
        ev
    }

    #[test]
    fn loop_wrap_and_seek_release_and_replay() {
        let notes = vec![note(0.0, 3.0, 60), note(1.0, 1.5, 64), note(2.5, 6.0, 67)];
        let mut em = Emitter::new();
        let at = |beat: f64| BlockTransport { playing: true, beat, tempo: 60.0, sample_rate: 1000.0, len: 250 };
        // Play beats 0..3 at 60 bpm, 1000 Hz: 1000 samples per beat, blocks of 250.
        for k in 0..12 {
            step(&mut em, &notes, at(k as f64 * 0.25));
        }
        // 60 and 67 are sounding at beat 3; loop back to 0: released at offset 0, then 60 again.
        assert_eq!(em.sounding_count(), 2);
        let ev = step(&mut em, &notes, at(0.0));
        assert_eq!(ev, vec![EmitEvent::Off { offset: 0, key: 60 }, EmitEvent::Off { offset: 0, key: 67 }, EmitEvent::On { offset: 0, key: 60, velocity: 80 }]);
        // Seek into the middle of note 67: it does not start (its onset is in the past).
        let ev = step(&mut em, &notes, at(4.0));
        assert_eq!(ev, vec![EmitEvent::Off { offset: 0, key: 60 }]);
        assert_eq!(em.sounding_count(), 0);
    }

    #[test]
    fn stop_and_tempo_jump_release() {
        let notes = vec![note(0.0, 10.0, 60)];
        let mut em = Emitter::new();
        let mut ev = vec![];
        let mut send = |e| {
            ev.push(e);
            true
        };
        let b = BlockTransport { playing: true, beat: 0.0, tempo: 120.0, sample_rate: 48000.0, len: 480 };
        em.process(&b, &notes, &[], &mut send);
        // A small ramp keeps it sounding.
        let b2 = BlockTransport { beat: b.end_beat(), tempo: 120.5, ..b };
        em.process(&b2, &notes, &[], &mut send);
        assert_eq!(em.sounding_count(), 1);
        // A jump releases it.
        let b3 = BlockTransport { beat: b2.end_beat(), tempo: 150.0, ..b };
        em.process(&b3, &notes, &[], &mut send);
        assert_eq!(em.sounding_count(), 0);
        em.process(&BlockTransport { playing: false, ..b3 }, &notes, &[], &mut send);
        assert_eq!(ev, vec![EmitEvent::On { offset: 0, key: 60, velocity: 80 }, EmitEvent::Off { offset: 0, key: 60 }]);
    }

    #[test]
    fn overlapping_same_key_gets_an_off_first() {
        let notes = vec![note(0.0, 2.0, 60), note(1.0, 1.5, 60)];
        let mut em = Emitter::new();
        let bl = blocks(0.0, 60.0, 1000.0, 100, 30);
        let mut ev = run(&mut em, &notes, &bl, 0);
        em.process(&BlockTransport { playing: false, ..bl[0] }, &notes, &[], &mut |e| {
            ev.push((3000, e));
            true
        });
        check_balanced(&ev);
        let keys: Vec<_> = ev.iter().map(|(s, e)| (*s, matches!(e, EmitEvent::On { .. }))).collect();
        assert_eq!(keys, vec![(0, true), (1000, false), (1000, true), (1500, false)]);
    }

    #[test]
    fn host_refusing_events_never_strands_a_note() {
        let notes: Vec<_> = (0..20).map(|k| note(k as f64 * 0.1, k as f64 * 0.1 + 0.05, 60)).collect();
        let mut em = Emitter::new();
        let mut ev = vec![];
        let mut n = 0;
        for b in blocks(0.0, 60.0, 1000.0, 37, 80) {
            em.process(&b, &notes, &[], &mut |e| {
                n += 1;
                if n % 3 == 0 {
                    return false;
                }
                ev.push((0, e));
                true
            });
        }
        em.process(&BlockTransport { playing: false, beat: 0.0, tempo: 60.0, sample_rate: 1000.0, len: 1 }, &notes, &[], &mut |e| {
            ev.push((0, e));
            true
        });
        check_balanced(&ev);
    }

    #[test]
    fn retarget_extends_a_sounding_note() {
        let mut em = Emitter::new();
        let short = vec![note(0.0, 1.0, 60)];
        let b = BlockTransport { playing: true, beat: 0.0, tempo: 60.0, sample_rate: 1000.0, len: 500 };
        em.process(&b, &short, &[], &mut |_| true);
        let long = vec![note(0.0, 2.0, 60)];
        em.retarget(&long);
        let mut ev = vec![];
        em.process(&BlockTransport { beat: 0.5, len: 1000, ..b }, &long, &[], &mut |e| {
            ev.push(e);
            true
        });
        assert!(ev.is_empty(), "not cut at the old end");
        assert!(em.is_sounding(60));
    }

    fn span(down: f64, up: f64) -> PedalSpan {
        PedalSpan { down_beat: down, up_beat: up }
    }

    fn pedal_events(ev: &[(u64, EmitEvent)]) -> Vec<(u64, bool)> {
        ev.iter().filter_map(|(s, e)| if let EmitEvent::Pedal { down, .. } = *e { Some((*s, down)) } else { None }).collect()
    }

    #[test]
    fn pedal_lands_on_its_samples_in_order_with_the_notes() {
        // 120 bpm at 48 kHz: 24000 samples per beat. Chords at 0 and 2; the pedal lifts at 2 and
        // catches the new chord at 2.125.
        let notes = vec![note(0.0, 2.0, 48), note(2.0, 4.0, 43)];
        let pedal = vec![span(0.125, 2.0), span(2.125, 4.0)];
        for len in [1u32, 64, 333, 4096] {
            let n = (5.0 * 24000.0 / len as f64).ceil() as usize;
            let mut bl = blocks(0.0, 120.0, 48000.0, len, n);
            bl.push(BlockTransport { playing: false, ..bl[0] });
            let ev = run_pedalled(&mut Emitter::new(), &notes, &pedal, &bl, 0);
            assert_eq!(pedal_events(&ev), vec![(3000, true), (48000, false), (51000, true), (96000, false)], "block size {len}");
            // At sample 48000: the old key goes up, then the pedal, then the new key goes down.
            let at: Vec<EmitEvent> = ev.iter().filter(|(s, _)| *s == 48000).map(|(_, e)| *e).collect();
            assert!(matches!(at[..], [EmitEvent::Off { key: 48, .. }, EmitEvent::Pedal { down: false, .. }, EmitEvent::On { key: 43, .. }]), "{at:?}");
            check_balanced(&ev);
        }
    }

    #[test]
    fn pedal_goes_up_on_stop_seek_loop_and_tempo_jump() {
        let notes = vec![note(0.0, 8.0, 48)];
        let pedal = vec![span(0.125, 8.0)];
        let at = |beat: f64, tempo: f64| BlockTransport { playing: true, beat, tempo, sample_rate: 1000.0, len: 250 };
        let mut em = Emitter::new();
        let pedal_at = |em: &mut Emitter, b: BlockTransport| -> Vec<EmitEvent> {
            let mut ev = vec![];
            em.process(&b, &notes, &pedal, &mut |e| {
                ev.push(e);
                true
            });
            ev.into_iter().filter(|e| matches!(e, EmitEvent::Pedal { .. })).collect()
        };
        // 60 bpm, 1000 Hz: 1000 samples per beat. Down at beat 0.125.
        assert_eq!(pedal_at(&mut em, at(0.0, 60.0)), vec![EmitEvent::Pedal { offset: 125, down: true }]);
        assert!(em.pedal_is_down());
        // Stop.
        assert_eq!(pedal_at(&mut em, BlockTransport { playing: false, ..at(0.25, 60.0) }), vec![EmitEvent::Pedal { offset: 0, down: false }]);
        // Play from 0 again, then loop back to 0: up at once, down again at 0.125.
        pedal_at(&mut em, at(0.0, 60.0));
        assert_eq!(pedal_at(&mut em, at(0.0, 60.0)), vec![EmitEvent::Pedal { offset: 0, down: false }, EmitEvent::Pedal { offset: 125, down: true }]);
        // Seek into the middle of the press: up, and not pressed again mid-press (as notes).
        assert_eq!(pedal_at(&mut em, at(4.0, 60.0)), vec![EmitEvent::Pedal { offset: 0, down: false }]);
        assert!(!em.pedal_is_down());
        // From a fresh start, a tempo jump lifts it.
        pedal_at(&mut em, at(0.0, 60.0));
        assert!(em.pedal_is_down());
        assert_eq!(pedal_at(&mut em, at(0.25, 90.0)), vec![EmitEvent::Pedal { offset: 0, down: false }]);
        // Bypass/deactivate call release_all.
        pedal_at(&mut em, at(0.0, 60.0));
        let mut ev = vec![];
        em.release_all(0, &mut |e| {
            ev.push(e);
            true
        });
        assert!(ev.contains(&EmitEvent::Pedal { offset: 0, down: false }) && !em.pedal_is_down());
    }

    #[test]
    fn a_pedal_the_new_cover_does_not_press_goes_up() {
        let notes = vec![note(0.0, 8.0, 48)];
        let mut em = Emitter::new();
        let b = |beat: f64| BlockTransport { playing: true, beat, tempo: 60.0, sample_rate: 1000.0, len: 250 };
        let mut ev = vec![];
        em.process(&b(0.0), &notes, &[span(0.125, 8.0)], &mut |e| {
            ev.push(e);
            true
        });
        assert!(em.pedal_is_down());
        // Re-arranged: the press now ends at 0.2, already passed.
        ev.clear();
        em.process(&b(0.25), &notes, &[span(0.125, 0.2)], &mut |e| {
            ev.push(e);
            true
        });
        assert_eq!(ev, vec![EmitEvent::Pedal { offset: 0, down: false }]);
    }
}
