//! Arranger cost per minute of music: a dense synthetic transcription of one minute at 120 bpm
//! (a melody, four-part chords on eighths, a bass line, ghost notes: ~1400 notes), arranged at three
//! densities, and a lone sung minute (the melody harmoniser's path). The plugin re-arranges the
//! growing capture, so this must stay far below a frame budget.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use pianola::arrange::{arrange, ArrangeInput, ArrangeSettings, BeatNote, Style};
use std::hint::black_box;

fn minute_at_120() -> ArrangeInput {
    let mut notes = Vec::new();
    // Deterministic pseudo-random jitter (no rand dependency).
    let mut seed = 0x2545_f491_u32;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed % 1000) as f64 / 1000.0
    };
    let prog: [[u8; 4]; 4] = [[48, 55, 60, 64], [45, 52, 57, 60], [41, 53, 57, 60], [43, 55, 59, 62]];
    for b in 0..120 {
        let beat = b as f64;
        let chord = prog[(b / 4) % 4];
        // Melody: eighths.
        for k in 0..2 {
            let s = beat + 0.5 * k as f64 + 0.03 * rnd();
            let p = 67 + ((b * 3 + k * 5) % 12) as u8;
            notes.push(BeatNote { start_beat: s, end_beat: s + 0.45, pitch: p, amplitude: 0.7, salience: 0.6 });
        }
        // Chords on eighths, bass on beats.
        for k in 0..2 {
            for &p in &chord[1..] {
                let s = beat + 0.5 * k as f64 + 0.02 * rnd();
                notes.push(BeatNote { start_beat: s, end_beat: s + 0.5, pitch: p, amplitude: 0.4 + 0.2 * rnd() as f32, salience: 0.4 });
            }
        }
        notes.push(BeatNote { start_beat: beat, end_beat: beat + 0.9, pitch: chord[0] - 12, amplitude: 0.6, salience: 0.5 });
        // Ghost notes and overtones.
        let g = beat + rnd();
        notes.push(BeatNote { start_beat: g, end_beat: g + 0.2, pitch: 70 + (rnd() * 20.0) as u8, amplitude: 0.2, salience: 0.1 });
        notes.push(BeatNote { start_beat: beat, end_beat: beat + 0.8, pitch: chord[0] + 19, amplitude: 0.3, salience: 0.2 });
    }
    notes.sort_by(|a, b| a.start_beat.total_cmp(&b.start_beat));
    ArrangeInput { notes, beats_per_bar: 4, first_downbeat_beat: 0.0, seconds_per_beat: 0.5, loudness: Default::default() }
}

/// A lone sung line, one minute at 120 bpm: eighths and quarters that ring into the next note, with
/// an overtone now and then (~190 notes). Takes the melody harmoniser's path (HMM per beat).
fn sung_minute_at_120() -> ArrangeInput {
    let mut notes = Vec::new();
    let tune: [u8; 8] = [67, 69, 71, 72, 74, 72, 71, 69];
    let mut t = 0.0;
    let mut k = 0usize;
    while t < 120.0 {
        let len = if k % 3 == 2 { 1.0 } else { 0.5 };
        let p = tune[k % 8] - if (k / 8) % 2 == 1 { 5 } else { 0 };
        notes.push(BeatNote { start_beat: t + 0.06, end_beat: t + len + 0.3, pitch: p, amplitude: 0.7, salience: 0.6 });
        if k.is_multiple_of(5) {
            notes.push(BeatNote { start_beat: t + 0.07, end_beat: t + len, pitch: p + 19, amplitude: 0.3, salience: 0.2 });
        }
        t += len;
        k += 1;
    }
    ArrangeInput { notes, beats_per_bar: 4, first_downbeat_beat: 0.0, seconds_per_beat: 0.5, loudness: Default::default() }
}

fn bench(c: &mut Criterion) {
    let input = minute_at_120();
    let mut g = c.benchmark_group("arrange_one_minute_120bpm");
    for d in [0.2f32, 0.5, 1.0] {
        let s = ArrangeSettings { density: d, style: Style::Arpeggio, ..Default::default() };
        g.bench_with_input(BenchmarkId::from_parameter(d), &s, |b, s| b.iter(|| arrange(black_box(&input), black_box(s))));
    }
    g.finish();
    let sung = sung_minute_at_120();
    let mut g = c.benchmark_group("arrange_sung_minute_120bpm");
    let s = ArrangeSettings { density: 0.5, ..Default::default() };
    g.bench_function("0.5", |b| b.iter(|| arrange(black_box(&sung), black_box(&s))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
