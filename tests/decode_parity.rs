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

mod common;
use common::*;
use std::path::PathBuf;

use pianola::decode::{notes_from_frames, DecodeParams};
use pianola::notes::{FrameOutputs, Note, N_CONTOUR_BINS, N_KEYS};

const TIME_TOL_S: f64 = 1e-6;
const AMPLITUDE_TOL: f32 = 1e-5;

/// Differences between decoded and reference notes (empty when they agree).
fn compare(decoded: &[Note], reference: &[Note]) -> Vec<String> {
    let mut problems = Vec::new();
    if decoded.len() != reference.len() {
        problems.push(format!("{} notes decoded, {} in the reference", decoded.len(), reference.len()));
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
        let frames =
            FrameOutputs { note: read_f32(&item.join("note.f32")), onset: read_f32(&item.join("onset.f32")), contour: read_f32(&item.join("contour.f32")) };
        assert_eq!(frames.note.len(), n_frames * N_KEYS, "{name}: note.f32 size");
        assert_eq!(frames.onset.len(), n_frames * N_KEYS, "{name}: onset.f32 size");
        assert_eq!(frames.contour.len(), n_frames * N_CONTOUR_BINS, "{name}: contour.f32 size");

        let decoded = notes_from_frames(&frames, &params);
        sort_notes(&mut reference);
        let max_dt = decoded.iter().zip(&reference).map(|(d, r)| (d.start_s - r.start_s).abs().max((d.end_s - r.end_s).abs())).fold(0.0f64, f64::max);
        let max_da = decoded.iter().zip(&reference).map(|(d, r)| (d.amplitude - r.amplitude).abs()).fold(0.0f32, f32::max);
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
    assert!(failures.is_empty(), "decoder differs from basic-pitch on {} item(s):\n{}", failures.len(), failures.join("\n"));
}
