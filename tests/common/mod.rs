//! Helpers shared by the integration tests: where the dev set and the reference fixtures are, and
//! readers for their files. The dev set comes from `python3 ../shared/eval/make_devset.py DIR`
//! (env `PIANOLA_DEVSET`, default `target/devset`); the fixtures from
//! `python3 scripts/reference_fixtures.py DEVSET FIXTURES` (env `PIANOLA_FIXTURES`, default
//! `target/fixtures`). `.ci/run` makes both. A missing directory fails the test with that advice.
#![allow(dead_code)]

use pianola::notes::Note;
use std::path::{Path, PathBuf};

pub const ONSET_TOL_S: f64 = 0.05;

pub fn devset_dir() -> PathBuf {
    let dir = match std::env::var_os("PIANOLA_DEVSET") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("devset"),
    };
    assert!(
        dir.join("index.json").is_file(),
        "dev set {} is missing: build it with `python3 ../shared/eval/make_devset.py {}` or set PIANOLA_DEVSET",
        dir.display(),
        dir.display()
    );
    dir
}

/// Item folders of a directory that contain `marker`, sorted.
pub fn items_with(dir: &Path, marker: &str) -> Vec<PathBuf> {
    let mut items: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.join(marker).is_file())
        .collect();
    items.sort();
    items
}

pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("PIANOLA_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("fixtures"),
    }
}

pub fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert_eq!(bytes.len() % 4, 0, "{}: not a whole number of f32s", path.display());
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// `{"n_frames": N, "notes": [[start_s, end_s, pitch, amplitude], ...]}`. serde_json checks the shape;
/// the numbers are re-read with `str::parse` because serde_json (without its `float_roundtrip`
/// feature) may be 1 ulp off Python's repr, and the decoder is expected to be bit-exact.
pub fn read_notes(path: &Path) -> (usize, Vec<Note>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    let n_frames = json["n_frames"].as_u64().unwrap_or_else(|| panic!("{}: no n_frames", path.display()));
    let rows = json["notes"].as_array().unwrap_or_else(|| panic!("{}: no notes array", path.display()));
    assert!(rows.iter().all(|r| r.as_array().is_some_and(|r| r.len() == 4)), "{}: rows of 4 expected", path.display());
    let notes_at = text.find("\"notes\"").expect("notes key") + "\"notes\"".len();
    let numbers: Vec<f64> = text[notes_at..]
        .split(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or_else(|e| panic!("{}: bad number {s:?}: {e}", path.display())))
        .collect();
    assert_eq!(numbers.len(), rows.len() * 4, "{}: unexpected tokens in notes", path.display());
    let notes = numbers.chunks_exact(4).map(|r| Note { start_s: r[0], end_s: r[1], pitch: r[2] as u8, amplitude: r[3] as f32 }).collect();
    (n_frames as usize, notes)
}

pub fn sort_notes(notes: &mut [Note]) {
    notes.sort_by(|a, b| {
        a.start_s.total_cmp(&b.start_s).then(a.pitch.cmp(&b.pitch)).then(a.end_s.total_cmp(&b.end_s)).then(a.amplitude.total_cmp(&b.amplitude))
    });
}

/// Note-level onset F1: one-to-one matches of the same pitch with onsets within `ONSET_TOL_S`.
/// Per pitch, a two-pointer sweep over sorted onsets (a maximum matching for a fixed window).
pub fn onset_f1(est: &[Note], reference: &[Note]) -> f64 {
    if est.is_empty() && reference.is_empty() {
        return 1.0;
    }
    let mut matched = 0usize;
    for pitch in 0..=127u8 {
        let mut e: Vec<f64> = est.iter().filter(|n| n.pitch == pitch).map(|n| n.start_s).collect();
        let mut r: Vec<f64> = reference.iter().filter(|n| n.pitch == pitch).map(|n| n.start_s).collect();
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
