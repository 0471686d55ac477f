//! Parity of `pianola::decode` with Python basic-pitch 0.4.0's note creation.
//!
//! Reads fixtures made by `scripts/reference_fixtures.py` from the directory in `PIANOLA_FIXTURES`
//! (default `target/fixtures` under the crate root): for every item, the reference's unwrapped model
//! outputs (`note.f32`, `onset.f32`, `contour.f32`) and the notes `model_output_to_notes` made from
//! them (`decode_only.json`). The Rust decoder must give the same notes: same count, same pitch,
//! start/end within 1e-6 s, amplitude within 1e-5. Also prints the note-level onset F1 (50 ms, same
//! pitch) against the end-to-end reference (`notes.json`, from `basic_pitch.inference.predict`).
//!
//!     python3 scripts/reference_fixtures.py DEVSET_DIR target/fixtures
//!     cargo test --release --test decode_parity -- --nocapture

use std::path::{Path, PathBuf};

use pianola::decode::{notes_from_frames, DecodeParams};
use pianola::notes::{FrameOutputs, Note, N_CONTOUR_BINS, N_KEYS};

const TIME_TOL_S: f64 = 1e-6;
const AMPLITUDE_TOL: f32 = 1e-5;
const ONSET_TOL_S: f64 = 0.05;

fn fixtures_dir() -> PathBuf {
    match std::env::var_os("PIANOLA_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("fixtures"),
    }
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert_eq!(bytes.len() % 4, 0, "{}: not a whole number of f32s", path.display());
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// `{"n_frames": N, "notes": [[start_s, end_s, pitch, amplitude], ...]}`. serde_json checks the shape;
/// the numbers are re-read with `str::parse` because serde_json (without its `float_roundtrip`
/// feature) may be 1 ulp off Python's repr, and the decoder is expected to be bit-exact.
fn read_notes(path: &Path) -> (usize, Vec<Note>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    let n_frames = json["n_frames"]
        .as_u64()
        .unwrap_or_else(|| panic!("{}: no n_frames", path.display()));
    let rows = json["notes"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no notes array", path.display()));
    assert!(
        rows.iter().all(|r| r.as_array().is_some_and(|r| r.len() == 4)),
        "{}: rows of 4 expected",
        path.display()
    );
    let notes_at = text.find("\"notes\"").expect("notes key") + "\"notes\"".len();
    let numbers: Vec<f64> = text[notes_at..]
        .split(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .unwrap_or_else(|e| panic!("{}: bad number {s:?}: {e}", path.display()))
        })
        .collect();
    assert_eq!(
        numbers.len(),
        rows.len() * 4,
        "{}: unexpected tokens in notes",
        path.display()
    );
    let notes = numbers
        .chunks_exact(4)
        .map(|r| Note {
            start_s: r[0],
            end_s: r[1],
            pitch: r[2] as u8,
            amplitude: r[3] as f32,
        })
        .collect();
    (n_frames as usize, notes)
}

fn sort_notes(notes: &mut [Note]) {
    notes.sort_by(|a, b| {
        a.start_s
            .total_cmp(&b.start_s)
            .then(a.pitch.cmp(&b.pitch))
            .then(a.end_s.total_cmp(&b.end_s))
            .then(a.amplitude.total_cmp(&b.amplitude))
    });
}

/// Note-level onset F1: one-to-one matches of the same pitch with onsets within `ONSET_TOL_S`.
/// Per pitch, a two-pointer sweep over sorted onsets (a maximum matching for a fixed window).
fn onset_f1(est: &[Note], reference: &[Note]) -> f64 {
    if est.is_empty() && reference.is_empty() {
        return 1.0;
    }
    let mut matched = 0usize;
    for pitch in 0..=127u8 {
        let mut e: Vec<f64> = est.iter().filter(|n| n.pitch == pitch).map(|n| n.start_s).collect();
        let mut r: Vec<f64> = reference
            .iter()
            .filter(|n| n.pitch == pitch)
            .map(|n| n.start_s)
            .collect();
        e.sort_by(f64::total_cmp);
        r.sort_by(f64::total_cmp);
        let (mut i, mut j) = (0, 0);
        while i < e.len() && j < r.len() {
            if (e[i] - r[j]).abs() <= ONSET_TOL_S {
                matched += 1;
                i += 1;
                j += 1;
            } else if e[i] < r[j] {
                i += 1;
            } else {
                j += 1;
            }
        }
    }
    let p = matched as f64 / est.len().max(1) as f64;
    let r = matched as f64 / reference.len().max(1) as f64;
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

/// Differences between decoded and reference notes (empty when they agree).
fn compare(decoded: &[Note], reference: &[Note]) -> Vec<String> {
    let mut problems = Vec::new();
    if decoded.len() != reference.len() {
        problems.push(format!(
            "{} notes decoded, {} in the reference",
            decoded.len(),
            reference.len()
        ));
    }
    for (i, (d, r)) in decoded.iter().zip(reference).enumerate() {
        let ok = d.pitch == r.pitch
            && (d.start_s - r.start_s).abs() <= TIME_TOL_S
            && (d.end_s - r.end_s).abs() <= TIME_TOL_S
            && (d.amplitude - r.amplitude).abs() <= AMPLITUDE_TOL;
        if !ok {
            problems.push(format!("note {i}: decoded {d:?}, reference {r:?}"));
        }
        if problems.len() >= 5 {
            break;
        }
    }
    problems
}

#[test]
fn decoder_matches_basic_pitch_on_every_fixture() {
    let dir = fixtures_dir();
    assert!(
        dir.is_dir(),
        "fixture directory {} is missing: generate it with \
         `python3 scripts/reference_fixtures.py DEVSET_DIR {}` (DEVSET_DIR from \
         `python3 ../shared/eval/make_devset.py DIR`), or point PIANOLA_FIXTURES at an existing one",
        dir.display(),
        dir.display()
    );
    let mut items: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.join("decode_only.json").is_file())
        .collect();
    items.sort();
    assert!(
        items.len() >= 3,
        "only {} fixture items in {} (need at least 3): regenerate with `python3 scripts/reference_fixtures.py`",
        items.len(),
        dir.display()
    );

    let params = DecodeParams::default();
    let mut failures = Vec::new();
    for item in &items {
        let name = item.file_name().unwrap().to_string_lossy().into_owned();
        let (n_frames, mut reference) = read_notes(&item.join("decode_only.json"));
        let frames = FrameOutputs {
            note: read_f32(&item.join("note.f32")),
            onset: read_f32(&item.join("onset.f32")),
            contour: read_f32(&item.join("contour.f32")),
        };
        assert_eq!(frames.note.len(), n_frames * N_KEYS, "{name}: note.f32 size");
        assert_eq!(frames.onset.len(), n_frames * N_KEYS, "{name}: onset.f32 size");
        assert_eq!(
            frames.contour.len(),
            n_frames * N_CONTOUR_BINS,
            "{name}: contour.f32 size"
        );

        let decoded = notes_from_frames(&frames, &params);
        sort_notes(&mut reference);
        let max_dt = decoded
            .iter()
            .zip(&reference)
            .map(|(d, r)| (d.start_s - r.start_s).abs().max((d.end_s - r.end_s).abs()))
            .fold(0.0f64, f64::max);
        let max_da = decoded
            .iter()
            .zip(&reference)
            .map(|(d, r)| (d.amplitude - r.amplitude).abs())
            .fold(0.0f32, f32::max);
        let exact = decoded == reference;
        let f1 = match item.join("notes.json") {
            p if p.is_file() => format!("{:.4}", onset_f1(&decoded, &read_notes(&p).1)),
            _ => "n/a".to_string(),
        };
        println!(
            "{name}: {} decoded / {} reference notes, max |dt| {max_dt:.1e} s, max |d amp| {max_da:.1e}, \
             bit-exact {exact}, onset F1 vs predict {f1}",
            decoded.len(),
            reference.len()
        );
        let problems = compare(&decoded, &reference);
        if !problems.is_empty() {
            failures.push(format!("{name}:\n  {}", problems.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "decoder differs from basic-pitch on {} item(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
