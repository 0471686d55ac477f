//! A sung melody the repo makes (`common/voice.rs`: vibrato, glides between legato notes, breaths
//! between phrases, at 44.1 kHz like a file) through the voice tracker (`pianola::pitch`:
//! resampling, SwiftF0, notes from the pitch curve): note F1 against the sung melody, onsets within
//! 50 ms, pitch class exact (what `pianola cover --voice voice` and the plugin do before the note
//! model's onsets time the notes; the stand-in here has none). Also sung 20 and 40 cents flat and sharp: the tuning found is within 5
//! cents of it and the notes are the same.
//!
//! ```text
//!     cargo test --release --test voice_melody -- --nocapture
//! ```

#[path = "common/voice.rs"]
mod voice;

use pianola::notes::Note;
use pianola::pitch::{choose_melody, track, PitchTracker, VoiceMode};

/// Note F1: onsets within 50 ms, pitch class equal; each true note matched once.
fn note_f1(est: &[Note], truth: &[voice::Sung]) -> (f64, usize) {
    let mut used = vec![false; est.len()];
    let mut hit = 0;
    for t in truth {
        let best = est
            .iter()
            .enumerate()
            .filter(|(i, e)| !used[*i] && (e.pitch % 12 == t.pitch % 12) && (e.start_s - t.start_s).abs() <= 0.05)
            .min_by(|a, b| (a.1.start_s - t.start_s).abs().total_cmp(&(b.1.start_s - t.start_s).abs()));
        if let Some((i, _)) = best {
            used[i] = true;
            hit += 1;
        }
    }
    let (p, r) = (hit as f64 / est.len().max(1) as f64, hit as f64 / truth.len().max(1) as f64);
    (if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 }, hit)
}

#[test]
fn a_sung_melody_is_recovered_in_tune_and_detuned() {
    let mut tracker = PitchTracker::load().expect("the pitch model loads");
    let truth = voice::melody(57, 10);
    let seconds = truth.last().map_or(1.0, |n| n.start_s + n.dur_s) + 0.5;
    for cents in [0.0, -40.0, -20.0, 20.0, 40.0] {
        let detuned: Vec<voice::Sung> = truth.clone();
        let audio = voice::sing_detuned(&detuned, 44100, seconds, cents);
        let t = std::time::Instant::now();
        let curve = track(&mut tracker, &audio, 44100).unwrap();
        let line = choose_melody(VoiceMode::Voice, &curve, &[]);
        let notes = line.sung.expect("a voice, as asked").notes;
        eprintln!("  {:.1} s of audio in {:.2} s", seconds, t.elapsed().as_secs_f64());
        let (f1, hit) = note_f1(&notes, &truth);
        eprintln!(
            "sung {cents:+} cents: tuning found {:+.1} cents, {} notes for {} sung, {hit} matched, note F1 {f1:.3}",
            line.tuning_cents,
            notes.len(),
            truth.len()
        );
        assert!((line.tuning_cents - cents).abs() <= 5.0, "sung {cents:+} cents, tuning found {:+.1}", line.tuning_cents);
        assert!(f1 >= 0.9, "sung {cents:+} cents: note F1 {f1:.3} < 0.9: {:?}", notes.iter().map(|n| (n.start_s, n.pitch)).collect::<Vec<_>>());
    }
}

/// Live mode on a lone voice: the worker's own Live take (`worker::LiveRun`: the note model on
/// its sliding window and the voice tracker streamed beside it) on the synthetic singer in
/// host-sized blocks. The melody of the cover it publishes, unquantized, against the sung notes:
/// note F1 near what the same arranger makes of the whole recording offline
/// (`pitch::melody_notes`, as `pianola cover` does), and few melody notes known too late to be
/// played on time.
#[test]
fn live_mode_streams_the_sung_melody() {
    use pianola::arrange::{arrange, ArrangeInput, ArrangeSettings};
    use pianola::decode::DecodeParams;
    use pianola::notes::{BeatGrid, Cover};
    const RATE: u32 = 44100;
    const BLOCK: usize = 512;
    const TEMPO: f64 = 120.0;
    let truth = voice::melody(57, 8);
    let seconds = truth.last().map_or(1.0, |n| n.start_s + n.dur_s) + 1.0;
    let audio = voice::sing(&truth, RATE, seconds);
    let mut model = pianola::model::load(pianola::model::Backend::Native).expect("the native engine");
    let mut tracker = PitchTracker::load().expect("the pitch model loads");
    let settings = ArrangeSettings { quantize_strength: 0.0, ..ArrangeSettings::default() };
    let melody_of = |cover: &Cover| -> Vec<Note> {
        let s = 60.0 / TEMPO;
        cover.notes.iter().filter(|n| n.melody).map(|n| Note { start_s: n.start_beat * s, end_s: n.end_beat * s, pitch: n.pitch, amplitude: 0.5 }).collect()
    };

    // Offline: the whole recording, as the CLI covers it.
    let clip = pianola::audio_file::AudioClip { interleaved: audio.clone(), channels: 1, sample_rate: RATE };
    let t = pianola::engine::transcribe_clip(model.as_mut(), &clip, &DecodeParams::default()).unwrap();
    let (notes, why) = pianola::pitch::melody_notes(VoiceMode::Voice, &mut tracker, &audio, RATE, &t.notes).unwrap();
    let grid = BeatGrid { bpm: TEMPO, beats_per_bar: 4, first_beat_s: 0.0, first_downbeat_beat: 0.0 };
    let offline = arrange(&ArrangeInput::from_transcription(&notes, Some(&t.frames), &grid), &settings);
    let (f1_offline, _) = note_f1(&melody_of(&offline), &truth);

    // Live: blocks as a host sends them.
    let backend = model.backend();
    let config = pianola::live::config_for(backend, true);
    let latency = pianola::live::latency_for(backend, true);
    let stamp = |k: usize, len: usize| pianola::ring::Stamp {
        seq: k as u64 + 1,
        sample_index: (k * BLOCK) as u64,
        len: len as u32,
        playing: true,
        beat: (k * BLOCK) as f64 / RATE as f64 * TEMPO / 60.0,
        tempo: TEMPO,
        beats_per_bar: 4,
        bar_start_beat: 0.0,
        sample_rate: RATE as f32,
    };
    let mut run = pianola::worker::LiveRun::new(&stamp(0, BLOCK), config, &DecodeParams::default(), Some(VoiceMode::Voice)).unwrap();
    let mut cover = Cover::default();
    for (k, block) in audio.chunks(BLOCK).enumerate() {
        if run.push(&stamp(k, block.len()), block, model.as_mut(), Some(&mut tracker)).unwrap().news() {
            cover = run.cover(&settings, latency);
        }
    }
    let live = melody_of(&cover);
    if std::env::var_os("VOICE_DEBUG").is_some() {
        let show = |v: &[Note]| v.iter().map(|n| format!("{:.2}:{}", n.start_s, n.pitch)).collect::<Vec<_>>().join(" ");
        eprintln!("truth   {}", truth.iter().map(|n| format!("{:.2}:{}", n.start_s, n.pitch)).collect::<Vec<_>>().join(" "));
        eprintln!("sung    {}", show(&notes));
        eprintln!("offline {}", show(&melody_of(&offline)));
        eprintln!("live    {}", show(&live));
        eprintln!("heard   {}", show(&run.decoded_notes()));
        eprintln!("offmod  {}", show(&t.notes));
    }
    let (f1_live, hit) = note_f1(&live, &truth);
    let late = run.late_melody();
    eprintln!(
        "{why}\nmelody note F1 against the sung notes: offline {f1_offline:.3}, Live {f1_live:.3} ({hit} of {} sung, {} played); {late} melody notes known too late and moved to the playhead; {}",
        truth.len(),
        live.len(),
        run.melody_choice().map_or("no choice", |c| c.1.as_str())
    );
    // Measured 0.875 against offline's 0.970 (0.892 with the 249 ms Voice latency before
    // live::VOICE_ALLOWANCE_S; the vocal dev items went 0.817 -> 0.884 with it): the 4 notes
    // missed start 50-60 ms after the sung ones, where Live's own causal note model heard a
    // glided-into note's onset (the tolerance is 50).
    assert!(f1_live >= f1_offline - 0.1, "Live melody F1 {f1_live:.3} more than 0.1 under offline's {f1_offline:.3}");
    assert!(f1_live >= 0.85, "Live melody F1 {f1_live:.3}");
    assert!(late * 10 <= live.len(), "{late} of {} melody notes known too late", live.len());
}
