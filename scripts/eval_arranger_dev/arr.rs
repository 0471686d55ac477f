//! Dev driver: runs the arranger on the dev set's reference transcriptions and writes MIDI
//! (tracks `right hand` / `left hand`, the song's tempo, beat 0 at 0 s).
//! Build it in a scratch crate named `pianola` with src/lib.rs = `pub mod notes; pub mod arrange;`
//! (notes.rs copied, src/arrange linked from the repo) and this file as a [[bin]] named `arr`;
//! Cargo.toml.scratch is that crate's manifest; `scripts/eval_arranger_dev/setup.sh DIR` sets it up.
//! Then: `ARR_BIN=DIR/target/release/arr NOTES=target/fixtures scripts/eval_arranger.sh target/devset OUT`.
//! `LAG=1` prints each item's measured onset lag and key; `CHORDS=dir` writes each item's key and
//! chord per beat (`dir/<id>.txt`, without the lone-line note cut that `arrange` applies first).
//! usage: arr DEVSET NOTES_DIR OUT_DIR DENSITY QUANTIZE [STYLE]
use pianola::arrange::*;
use pianola::notes::*;
use std::path::Path;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (devset, notes_dir, out_dir) = (Path::new(&a[1]), Path::new(&a[2]), Path::new(&a[3]));
    let density: f32 = a[4].parse().unwrap();
    let q: f32 = a[5].parse().unwrap();
    let style = match a.get(6).map(|s| s.as_str()) {
        Some("block") => Style::Block,
        Some("arpeggio") => Style::Arpeggio,
        _ => Style::Broken,
    };
    std::fs::create_dir_all(out_dir).unwrap();
    let index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(devset.join("index.json")).unwrap()).unwrap();
    let mut total_us = 0u128;
    for item in index.as_array().unwrap() {
        let id = item["id"].as_str().unwrap();
        let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(devset.join(id).join("meta.json")).unwrap()).unwrap();
        let nj: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(notes_dir.join(id).join("notes.json")).unwrap()).unwrap();
        let notes: Vec<Note> = nj["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| Note { start_s: n[0].as_f64().unwrap(), end_s: n[1].as_f64().unwrap(), pitch: n[2].as_u64().unwrap() as u8, amplitude: n[3].as_f64().unwrap() as f32 })
            .collect();
        let contour_path = notes_dir.join(id).join("contour.f32");
        let frames = if std::env::var("NO_CONTOUR").is_ok() {
            None
        } else {
            std::fs::read(&contour_path).ok().map(|b| FrameOutputs {
                note: vec![],
                onset: vec![],
                contour: b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            })
        };
        let bpm = meta["bpm"].as_f64().unwrap();
        let bpb = meta["beats_per_bar"].as_u64().unwrap() as u32;
        let mut grid = BeatGrid::new(bpm);
        grid.beats_per_bar = bpb;
        grid.first_downbeat_beat = grid.beat_at(meta["first_downbeat_s"].as_f64().unwrap());
        let input = ArrangeInput::from_transcription(&notes, frames.as_ref(), &grid);
        let settings = ArrangeSettings { density, quantize_strength: q, style, ..Default::default() };
        if std::env::var("LAG").is_ok() {
            let m = Meter::of(&input);
            let c = cleaned(&input);
            let lag = quantize::onset_lag(&c, &m);
            let (ph, r) = quantize::onset_phase(&c, 1.0);
            let h = harmony::analyze(&c, &[], &m);
            eprint!("key {:?} ", h.key);
            eprintln!("{id:35} lag {:.3} s  phase {:.3} s r {:.2}", lag * m.seconds_per_beat, ph * m.seconds_per_beat, r);
        }
        if let Ok(dir) = std::env::var("CHORDS") {
            // The harmony the arranger hears, per beat: key, then (beat, root, quality) lines.
            let m = Meter::of(&input);
            let mut c = cleaned(&input);
            quantize::align_lag(&mut c, &m);
            let line = melody::shape(&melody::extract(&c), &settings);
            let h = harmony::analyze(&c, &line, &m);
            let mut txt = format!("key {} {}\n", h.key.tonic, h.key.minor as u8);
            for (i, ch) in h.chords.iter().enumerate() {
                if let Some(ch) = ch {
                    txt += &format!("{} {} {:?}\n", h.first_beat + i as i64, ch.root, ch.quality);
                }
            }
            std::fs::write(Path::new(&dir).join(format!("{id}.txt")), txt).unwrap();
        }
        let t = std::time::Instant::now();
        let cover = arrange(&input, &settings);
        total_us += t.elapsed().as_micros();
        write_mid(&out_dir.join(format!("{id}.mid")), &cover, bpm, bpb);
    }
    eprintln!("arrange total {} us", total_us);
}

fn write_mid(path: &Path, cover: &[CoverNote], bpm: f64, bpb: u32) {
    use midly::*;
    const TPB: u16 = 480;
    let tick = |b: f64| (b * TPB as f64).round().max(0.0) as u64;
    let mut tracks = vec![];
    let mut t0 = vec![
        TrackEvent { delta: 0.into(), kind: TrackEventKind::Meta(MetaMessage::Tempo(((60_000_000.0 / bpm).round() as u32).into())) },
        TrackEvent { delta: 0.into(), kind: TrackEventKind::Meta(MetaMessage::TimeSignature(bpb as u8, 2, 24, 8)) },
    ];
    t0.push(TrackEvent { delta: 0.into(), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
    tracks.push(t0);
    for (hand, name, ch) in [(Hand::Right, "right hand", 0u8), (Hand::Left, "left hand", 1u8)] {
        let mut ev: Vec<(u64, u8, u8, u8)> = vec![]; // tick, kind(0 off 1 on), key, vel
        for n in cover.iter().filter(|n| n.hand == hand && n.end_beat > 0.0) {
            ev.push((tick(n.start_beat), 1, n.pitch, n.velocity));
            ev.push((tick(n.end_beat), 0, n.pitch, 0));
        }
        ev.sort();
        let mut tr = vec![TrackEvent { delta: 0.into(), kind: TrackEventKind::Meta(MetaMessage::TrackName(name.as_bytes())) }];
        let mut last = 0u64;
        for (t, k, key, vel) in ev {
            let msg = if k == 1 { MidiMessage::NoteOn { key: key.into(), vel: vel.into() } } else { MidiMessage::NoteOff { key: key.into(), vel: 0.into() } };
            tr.push(TrackEvent { delta: ((t - last) as u32).into(), kind: TrackEventKind::Midi { channel: ch.into(), message: msg } });
            last = t;
        }
        tr.push(TrackEvent { delta: 0.into(), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
        tracks.push(tr);
    }
    let smf = Smf { header: Header::new(Format::Parallel, Timing::Metrical(TPB.into())), tracks };
    smf.save(path).unwrap();
}
