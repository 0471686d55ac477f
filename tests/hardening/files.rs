//! Files row: the CLI's audio decoding and MIDI writing on arbitrary input (proptest: arbitrary bytes,
//! and real files in every format with bytes overwritten and cut), and the `pianola` binary on
//! unreadable, empty, garbage and huge files: a clear error and a non-zero exit, never a panic.
//!
//! CI runs `FUZZ_CASES` (default 256) cases per property; a longer run:
//!     PROPTEST_CASES=20000 cargo test --release --features onnxruntime,assert_process_allocs,standalone --test hardening files::

use pianola::audio_file::{self, AudioClip, AudioFileError};
use pianola::midi_file;
use pianola::notes::{BeatGrid, Cover, CoverNote, Hand, Note, PedalSpan};
use proptest::prelude::*;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
}

fn wav(rate: u32, channels: u16, bits: u16, float: bool, frames: usize) -> Vec<u8> {
    let mut cursor = Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float { hound::SampleFormat::Float } else { hound::SampleFormat::Int },
    };
    let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
    for i in 0..frames * channels as usize {
        let x = ((i as f32) * 0.05).sin() * 0.5;
        match (float, bits) {
            (true, _) => w.write_sample(x).unwrap(),
            (false, 8) => w.write_sample((x * 127.0) as i8).unwrap(),
            (false, 16) => w.write_sample((x * 32767.0) as i16).unwrap(),
            _ => w.write_sample((x * 8_388_607.0) as i32).unwrap(),
        }
    }
    w.finalize().unwrap();
    cursor.into_inner()
}

fn data(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)).unwrap()
}

/// Real files of every format the CLI reads, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    vec![
        wav(22050, 2, 16, false, 4000),
        wav(8000, 1, 8, false, 3000),
        wav(48000, 6, 24, false, 1000),
        wav(44100, 1, 32, true, 3000),
        data("tone.flac"),
        data("tone.ogg"),
        data("tone.mp3"),
    ]
}

/// What a decoded clip must look like.
fn check_clip(r: Result<AudioClip, AudioFileError>) -> Result<(), TestCaseError> {
    if let Ok(clip) = r {
        prop_assert!(clip.channels >= 1 && clip.sample_rate > 0);
        prop_assert!(!clip.interleaved.is_empty() && clip.interleaved.len() % clip.channels == 0);
        prop_assert!(clip.mono().iter().all(|x| x.is_finite()), "the mono mix the model hears is finite");
    }
    Ok(())
}

#[test]
fn every_seed_decodes() {
    for (i, s) in seeds().into_iter().enumerate() {
        let clip = audio_file::read_bytes(s).unwrap_or_else(|e| panic!("seed {i}: {e}"));
        assert!(clip.seconds() > 0.015, "seed {i}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        check_clip(audio_file::read_bytes(bytes))?;
    }

    #[test]
    fn damaged_real_files_never_panic_the_decoder(
        seed in 0usize..7,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..24),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = seeds().swap_remove(seed);
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(bytes.len() + 1));
        }
        check_clip(audio_file::read_bytes(bytes))?;
    }

    #[test]
    fn any_transcription_writes_a_valid_midi_file(notes in proptest::collection::vec(
        (any::<f64>(), any::<f64>(), any::<u8>(), any::<f32>()), 0..64)) {
        let notes: Vec<Note> = notes.into_iter().map(|(a, b, p, x)| Note { start_s: a, end_s: b, pitch: p, amplitude: x }).collect();
        let bytes = midi_file::notes_to_smf(&notes).unwrap();
        check_midi(&bytes, notes.len())?;
    }

    #[test]
    fn any_cover_writes_a_valid_midi_file(notes in proptest::collection::vec(
        (any::<f64>(), any::<f64>(), any::<u8>(), any::<u8>(), any::<bool>()), 0..64), bpm in any::<f64>(), bpb in any::<u32>()) {
        let cover: Vec<CoverNote> = notes.into_iter()
            .map(|(a, b, p, v, r)| CoverNote { start_beat: a, end_beat: b, pitch: p, velocity: v, hand: if r { Hand::Right } else { Hand::Left }, melody: r })
            .collect();
        let grid = BeatGrid { bpm, beats_per_bar: bpb, ..BeatGrid::new(120.0) };
        // Presses from the same hostile numbers: the pedal must not upset the notes.
        let pedal = cover.iter().map(|n| PedalSpan { down_beat: n.start_beat, up_beat: n.end_beat }).collect();
        let n = cover.len();
        let bytes = midi_file::cover_to_smf(&Cover { notes: cover, pedal }, &grid).unwrap();
        check_midi(&bytes, n)?;
    }
}

/// Parses, and checks that each key's note-ons and note-offs alternate, one pair per note, with a
/// positive tempo.
fn check_midi(bytes: &[u8], n_notes: usize) -> Result<(), TestCaseError> {
    use midly::{MetaMessage, MidiMessage, Smf, TrackEventKind};
    let smf = Smf::parse(bytes).map_err(|e| TestCaseError::fail(format!("unparseable MIDI: {e}")))?;
    let mut pairs = 0;
    for track in &smf.tracks {
        let mut down = [[false; 128]; 16];
        for e in track {
            match e.kind {
                TrackEventKind::Midi { channel, message: MidiMessage::NoteOn { key, vel } } if vel.as_int() > 0 => {
                    let d = &mut down[channel.as_int() as usize][key.as_int() as usize];
                    prop_assert!(!*d, "note-on for a key already down");
                    *d = true;
                }
                TrackEventKind::Midi { channel, message: MidiMessage::NoteOff { key, .. } | MidiMessage::NoteOn { key, .. } } => {
                    let d = &mut down[channel.as_int() as usize][key.as_int() as usize];
                    prop_assert!(*d, "note-off for a key that is up");
                    *d = false;
                    pairs += 1;
                }
                TrackEventKind::Meta(MetaMessage::Tempo(t)) => prop_assert!(t.as_int() > 0, "tempo of 0 µs per beat"),
                _ => {}
            }
        }
        prop_assert!(down.iter().all(|c| c.iter().all(|d| !d)), "a note left on");
    }
    prop_assert_eq!(pairs, n_notes);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The CLI on bad files

fn tmp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pianola-hardening-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `pianola ARGS`, expects failure, returns stderr.
fn pianola_fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pianola")).args(args).output().expect("running pianola");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "pianola {args:?} succeeded:\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "pianola {args:?} did not exit with 1 (a crash?):\n{stderr}");
    assert!(!stderr.contains("panicked"), "pianola {args:?} panicked:\n{stderr}");
    stderr
}

#[test]
fn the_cli_refuses_bad_files_clearly() {
    let dir = tmp_dir();
    let out = dir.join("out.mid");
    let out = out.to_str().unwrap();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();

    // Missing, and unreadable (a path through a file; a symlink loop: root reads any mode bits).
    let e = pianola_fails(&["transcribe", "/nonexistent/song.wav", "-o", out]);
    assert!(e.contains("cannot open /nonexistent/song.wav"), "{e}");
    std::fs::write(p("plain"), b"x").unwrap();
    let e = pianola_fails(&["transcribe", &format!("{}/song.wav", p("plain")), "-o", out]);
    assert!(e.contains("cannot open") && e.contains("Not a directory"), "{e}");
    let _ = std::fs::remove_file(p("loop.wav"));
    std::os::unix::fs::symlink(p("loop.wav"), p("loop.wav")).unwrap();
    let e = pianola_fails(&["transcribe", &p("loop.wav"), "-o", out]);
    assert!(e.contains("cannot open") && e.contains("symbolic links"), "{e}");
    // A folder given as the song.
    let e = pianola_fails(&["transcribe", dir.to_str().unwrap(), "-o", out]);
    assert!(e.contains("reading") && e.contains(dir.to_str().unwrap()), "{e}");

    // Empty, garbage, a WAV header with no samples.
    std::fs::write(p("empty.wav"), b"").unwrap();
    let e = pianola_fails(&["transcribe", &p("empty.wav"), "-o", out]);
    assert!(e.contains("not a supported audio file"), "{e}");
    std::fs::write(p("garbage.mp3"), (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>()).unwrap();
    let e = pianola_fails(&["transcribe", &p("garbage.mp3"), "-o", out]);
    assert!(e.contains("not a supported audio file") || e.contains("damaged") || e.contains("holds no audio"), "{e}");
    std::fs::write(p("header.wav"), wav(44100, 2, 16, false, 0)).unwrap();
    let e = pianola_fails(&["transcribe", &p("header.wav"), "-o", out]);
    assert!(e.contains("holds no audio"), "{e}");

    // Huge: 8 GB of nothing (sparse), and a real WAV past the length limit (8 kHz, 8 bit: 29 MB).
    let huge = std::fs::File::create(p("huge.wav")).unwrap();
    huge.set_len(8 << 30).unwrap();
    drop(huge);
    let e = pianola_fails(&["transcribe", &p("huge.wav"), "-o", out]);
    assert!(e.contains("not a supported audio file"), "{e}");
    let long_frames = (audio_file::MAX_SECONDS as usize + 2) * 8000;
    {
        // 8-bit unsigned PCM, mono, 8 kHz, written directly: a triangle wave.
        let n = long_frames as u32;
        let mut bytes = Vec::with_capacity(44 + long_frames);
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&(36 + n).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
        bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
        bytes.extend_from_slice(&8000u32.to_le_bytes());
        bytes.extend_from_slice(&8000u32.to_le_bytes()); // bytes per second
        bytes.extend_from_slice(&1u16.to_le_bytes()); // block align
        bytes.extend_from_slice(&8u16.to_le_bytes());
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&n.to_le_bytes());
        bytes.extend((0..long_frames).map(|i| (28 + (i % 200).min(200 - i % 200)) as u8));
        std::fs::write(p("long.wav"), bytes).unwrap();
    }
    let e = pianola_fails(&["transcribe", &p("long.wav"), "-o", out]);
    assert!(e.contains("longer than 60 minutes"), "{e}");

    // A batch: the bad files are reported by name and the good one is still covered.
    std::fs::write(p("good.wav"), wav(22050, 1, 16, false, 22050 * 3)).unwrap();
    let outdir = dir.join("covers");
    let cmd = Command::new(env!("CARGO_BIN_EXE_pianola"))
        .args(["cover", &p("empty.wav"), &p("good.wav"), &p("header.wav"), "--bpm", "120", "--out-dir", outdir.to_str().unwrap()])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&cmd.stderr);
    assert_eq!(cmd.status.code(), Some(1), "{e}");
    assert!(e.contains("2 of 3 songs failed") && e.contains("empty.wav") && e.contains("header.wav"), "{e}");
    assert!(outdir.join("good.mid").exists(), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
