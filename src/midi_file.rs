//! Standard MIDI files out (midly): raw transcriptions (one track, like basic-pitch's own MIDI) and
//! piano covers (a tempo track plus `right hand` and `left hand` tracks, beat 0 at 0 s, the sustain
//! pedal (CC64) in both hand tracks so each hand's instrument gets it). Note-offs are written before
//! note-ons on the same tick so a repeated key is never swallowed; a pedal lift after the old keys'
//! note-offs, a pedal press after the new keys' note-ons.

use crate::notes::{BeatGrid, Cover, Hand, Note};
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

/// Ticks per quarter note.
pub const PPQ: u16 = 480;

const NOTE_OFF: u8 = 0;
const PEDAL_UP: u8 = 1;
const NOTE_ON: u8 = 2;
const PEDAL_DOWN: u8 = 3;
/// MIDI controller number of the sustain pedal.
pub const SUSTAIN_CC: u8 = 64;

#[derive(Clone, Copy)]
struct Timed {
    tick: u64,
    /// What happens, in the order of a shared tick: [`NOTE_OFF`], [`PEDAL_UP`], [`NOTE_ON`], [`PEDAL_DOWN`].
    order: u8,
    key: u8,
    velocity: u8,
}

fn track_from(name: &'static [u8], channel: u8, mut events: Vec<Timed>) -> Vec<TrackEvent<'static>> {
    events.sort_by_key(|e| (e.tick, e.order, e.key));
    let mut track = vec![TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::TrackName(name)) }];
    let mut last = 0u64;
    // Notes holding each key. Overlapping notes on one key (pitches past 127 fold onto 127) are
    // played as the plugin plays them: the key is released before it is struck again, and only the
    // last note's end releases it, so every note-on in the file has exactly one note-off after it.
    let mut holding = [0u32; 128];
    let mut push = |track: &mut Vec<TrackEvent<'static>>, tick: u64, message| {
        let delta = (tick - last).min(u28::max_value().as_int() as u64) as u32;
        last = tick;
        track.push(TrackEvent { delta: u28::new(delta), kind: TrackEventKind::Midi { channel: u4::new(channel & 15), message } });
    };
    for e in events {
        if e.order == PEDAL_UP || e.order == PEDAL_DOWN {
            let value = u7::new(if e.order == PEDAL_DOWN { 127 } else { 0 });
            push(&mut track, e.tick, MidiMessage::Controller { controller: u7::new(SUSTAIN_CC), value });
            continue;
        }
        let k = e.key.min(127);
        let key = u7::new(k);
        let held = &mut holding[k as usize];
        if e.order == NOTE_OFF {
            *held = held.saturating_sub(1);
            if *held == 0 {
                push(&mut track, e.tick, MidiMessage::NoteOff { key, vel: u7::new(0) });
            }
        } else {
            if *held > 0 {
                push(&mut track, e.tick, MidiMessage::NoteOff { key, vel: u7::new(0) });
            }
            *held += 1;
            push(&mut track, e.tick, MidiMessage::NoteOn { key, vel: u7::new(e.velocity.clamp(1, 127)) });
        }
    }
    track.push(TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
    track
}

fn note_pair(start: u64, end: u64, key: u8, velocity: u8) -> [Timed; 2] {
    let start = start.min(u64::MAX - 1);
    let end = end.max(start + 1);
    [Timed { tick: start, order: NOTE_ON, key, velocity }, Timed { tick: end, order: NOTE_OFF, key, velocity: 0 }]
}

fn tempo_track(bpm: f64, beats_per_bar: u32) -> Vec<TrackEvent<'static>> {
    // A tempo that is no number (NaN, infinite, <= 0) is written as 120 bpm, never as 0 µs per beat.
    let bpm = if bpm.is_finite() && bpm > 0.0 { bpm.clamp(1.0, 1000.0) } else { 120.0 };
    let micros = (60_000_000.0 / bpm).round() as u32;
    vec![
        TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(micros.min(0xFF_FFFF)))) },
        TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::TimeSignature(beats_per_bar.clamp(1, 32) as u8, 2, 24, 8)) },
        TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) },
    ]
}

fn to_bytes(smf: &Smf) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    smf.write_std(&mut out)?;
    Ok(out)
}

/// A transcription as MIDI: one piano track at 120 bpm, velocity from the note's amplitude.
pub fn notes_to_smf(notes: &[Note]) -> std::io::Result<Vec<u8>> {
    let ticks_per_s = PPQ as f64 * 2.0; // 120 bpm
    let tick = |s: f64| (s.max(0.0) * ticks_per_s).round() as u64;
    let events = notes.iter().flat_map(|n| note_pair(tick(n.start_s), tick(n.end_s), n.pitch, (n.amplitude * 127.0).round().clamp(1.0, 127.0) as u8)).collect();
    let smf = Smf {
        header: Header::new(Format::Parallel, Timing::Metrical(u15::new(PPQ))),
        tracks: vec![tempo_track(120.0, 4), track_from(b"transcription", 0, events)],
    };
    to_bytes(&smf)
}

/// A cover as MIDI: tempo track, then `right hand` (channel 1) and `left hand` (channel 2), each
/// with the pedal.
pub fn cover_to_smf(cover: &Cover, grid: &BeatGrid) -> std::io::Result<Vec<u8>> {
    let tick = |b: f64| (b.max(0.0) * PPQ as f64).round() as u64;
    let pedal = cover.pedal.iter().filter(|p| p.up_beat > p.down_beat).flat_map(|p| {
        let (down, up) = (tick(p.down_beat), tick(p.up_beat));
        [Timed { tick: down, order: PEDAL_DOWN, key: 0, velocity: 0 }, Timed { tick: up.max(down + 1), order: PEDAL_UP, key: 0, velocity: 0 }]
    });
    let hand_events = |hand: Hand| -> Vec<Timed> {
        cover
            .notes
            .iter()
            .filter(|n| n.hand == hand)
            .flat_map(|n| note_pair(tick(n.start_beat), tick(n.end_beat), n.pitch, n.velocity))
            .chain(pedal.clone())
            .collect()
    };
    let smf = Smf {
        header: Header::new(Format::Parallel, Timing::Metrical(u15::new(PPQ))),
        tracks: vec![
            tempo_track(grid.bpm, grid.beats_per_bar),
            track_from(b"right hand", 0, hand_events(Hand::Right)),
            track_from(b"left hand", 1, hand_events(Hand::Left)),
        ],
    };
    to_bytes(&smf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::{CoverNote, PedalSpan};

    #[test]
    fn cover_round_trips_through_a_parser() {
        let notes = vec![
            CoverNote { start_beat: 0.0, end_beat: 1.0, pitch: 72, velocity: 100, hand: Hand::Right, melody: true },
            CoverNote { start_beat: 1.0, end_beat: 2.0, pitch: 72, velocity: 100, hand: Hand::Right, melody: true },
            CoverNote { start_beat: 0.5, end_beat: 2.0, pitch: 48, velocity: 70, hand: Hand::Left, melody: false },
        ];
        let bytes = cover_to_smf(&Cover { notes, pedal: vec![] }, &BeatGrid::new(96.0)).unwrap();
        let smf = Smf::parse(&bytes).unwrap();
        assert_eq!(smf.tracks.len(), 3);
        let names: Vec<_> = smf.tracks[1..]
            .iter()
            .map(|t| match t[0].kind {
                TrackEventKind::Meta(MetaMessage::TrackName(n)) => String::from_utf8_lossy(n).into_owned(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(names, ["right hand", "left hand"]);
        assert!(matches!(smf.tracks[0][0].kind, TrackEventKind::Meta(MetaMessage::Tempo(t)) if t.as_int() == 625_000));
        // Right hand: on@0, off@480 before on@480, off@960.
        let kinds: Vec<(u32, bool)> = smf.tracks[1][1..5]
            .iter()
            .map(|e| (e.delta.as_int(), matches!(e.kind, TrackEventKind::Midi { message: MidiMessage::NoteOn { .. }, .. })))
            .collect();
        assert_eq!(kinds, [(0, true), (480, false), (0, true), (480, false)]);
    }

    #[test]
    fn pedal_goes_to_both_hands_after_the_old_keys_and_new_chord() {
        let notes = vec![
            CoverNote { start_beat: 0.0, end_beat: 1.0, pitch: 48, velocity: 70, hand: Hand::Left, melody: false },
            CoverNote { start_beat: 1.0, end_beat: 2.0, pitch: 43, velocity: 70, hand: Hand::Left, melody: false },
            CoverNote { start_beat: 0.0, end_beat: 2.0, pitch: 72, velocity: 90, hand: Hand::Right, melody: true },
        ];
        let pedal = vec![PedalSpan { down_beat: 0.125, up_beat: 1.0 }, PedalSpan { down_beat: 1.125, up_beat: 2.0 }];
        let bytes = cover_to_smf(&Cover { notes, pedal }, &BeatGrid::new(120.0)).unwrap();
        let smf = Smf::parse(&bytes).unwrap();
        for track in &smf.tracks[1..] {
            let mut tick = 0u32;
            let mut seen = vec![];
            for e in track {
                tick += e.delta.as_int();
                if let TrackEventKind::Midi { message, .. } = e.kind {
                    seen.push(match message {
                        MidiMessage::Controller { controller, value } if controller.as_int() == SUSTAIN_CC => {
                            (tick, if value.as_int() >= 64 { "down" } else { "up" })
                        }
                        MidiMessage::NoteOn { .. } => (tick, "on"),
                        MidiMessage::NoteOff { .. } => (tick, "off"),
                        _ => (tick, "?"),
                    });
                }
            }
            let pedal: Vec<_> = seen.iter().filter(|e| e.1 == "down" || e.1 == "up").copied().collect();
            assert_eq!(pedal, [(60, "down"), (480, "up"), (540, "down"), (960, "up")]);
            // At beat 1 the left hand's old key goes up, then the pedal, then the new key goes down.
            let at_one: Vec<&str> = seen.iter().filter(|e| e.0 == 480).map(|e| e.1).collect();
            if at_one.len() == 3 {
                assert_eq!(at_one, ["off", "up", "on"]);
            }
        }
    }
}
