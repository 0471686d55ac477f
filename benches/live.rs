//! Live mode against offline mode over the dev set, on a simulated real-time clock.
//!
//! Each item's audio goes in host-sized blocks (512 samples at 44.1 kHz); block `k` exists at
//! `(k + 1) * 512 / 44100` s. The worker's own Live take (`worker::LiveRun`, what the plugin's
//! worker runs for a Live pass: resampler, sliding-window model, causal decoder, the arranger
//! around the playhead) handles a block when it exists and when it is done with the previous
//! work: its clock advances by the measured compute time, so a slow model shows as latency.
//! A note is *known* when the worker published the hop that decoded it; its MIDI event goes out
//! at `max(estimated onset + reported latency, known)` (a host with delay compensation hears it
//! at the estimated onset, if it was known in time).
//!
//! Reports per setting (hop, right context, lookahead): note-on latency p50/p95 from the true
//! onset (truth.mid, same pitch within 50 ms) to the note being known and to the MIDI event,
//! the share of late notes, the worker's CPU share of one core and its worst lag, then the
//! scorer's onset_f1 (transcriptions) and cover_score (covers) for offline and every setting.
//!
//!     cargo bench --features onnxruntime,assert_process_allocs,standalone --bench live
//!     env: LIVE_BENCH_BACKEND=ort|tract (ort), LIVE_BENCH_STREAMS="8:4,8:8" (hop:right frames),
//!          LIVE_BENCH_LOOKAHEADS="0,2,4,6,8,11", LIVE_BENCH_ITEMS=N (first N items),
//!          LIVE_BENCH_KIND=mix|vocal (those items only), LIVE_BENCH_SECONDS=S (first S seconds of each item), LIVE_BENCH_WINDOWS="130,172" (model
//!          window in frames), LIVE_BENCH_ENGINES="stream,window" (the native engine's streaming
//!          inference, whole windows every hop; other backends always run whole windows),
//!          LIVE_BENCH_REFRESH=N (streaming: input columns refreshed per hop),
//!          LIVE_BENCH_ALLOWANCE_MS=MS (the reported latency's allowance instead of
//!          `live::compute_allowance_s`), LIVE_BENCH_VOICE=auto|voice|mix (mix: no voice tracker, what the
//!          plugin's Live mode does with "Melody from" Auto or Mix; voice: with Voice; auto: the
//!          streamed tracker told a lone voice from the audio), PIANOLA_DEVSET, LIVE_BENCH_OUT,
//!          SCORER (score_dir.py)
//!
//! With the voice tracker (auto, voice), offline mode takes its notes as the CLI's `cover` does
//! (`pitch::melody_notes`) and Live streams the tracker (`pitch::stream`) beside the note model;
//! the melody's late share and the scorer's melody_f1 per kind (mix, vocal) are reported.

use pianola::arrange::{ArrangeInput, ArrangeSettings};
use pianola::decode::DecodeParams;
use pianola::live::LiveConfig;
use pianola::model::{self, Backend, NoteModel};
use pianola::notes::{BeatGrid, Cover, Note};
use pianola::pitch::{PitchTracker, VoiceMode};
use pianola::ring::Stamp;
use pianola::worker::LiveRun;
use std::path::{Path, PathBuf};
use std::time::Instant;

const BLOCK: usize = 512;

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

struct Item {
    id: String,
    audio: Vec<f32>,
    rate: u32,
    grid: BeatGrid,
    truth: Vec<(f64, u8)>,
}

fn load_items(dir: &Path, limit: usize, seconds: f64) -> Vec<Item> {
    let index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).expect("dev set index.json")).unwrap();
    let mut out = vec![];
    let kind = std::env::var("LIVE_BENCH_KIND").unwrap_or_default();
    for meta in index.as_array().unwrap().iter().filter(|m| kind.is_empty() || m["id"].as_str().is_some_and(|id| id.ends_with(&format!("-{kind}")))).take(limit)
    {
        let id = meta["id"].as_str().unwrap().to_string();
        let bpm = meta["bpm"].as_f64().unwrap();
        let grid = BeatGrid {
            bpm,
            beats_per_bar: meta["beats_per_bar"].as_u64().unwrap_or(4) as u32,
            first_beat_s: 0.0,
            first_downbeat_beat: meta["first_downbeat_s"].as_f64().unwrap_or(0.0) * bpm / 60.0,
        };
        let clip = pianola::audio_file::read(&dir.join(&id).join("audio.wav")).expect("audio.wav");
        let mut audio = clip.mono();
        audio.truncate((seconds * clip.sample_rate as f64) as usize);
        let truth = truth_onsets(&dir.join(&id).join("truth.mid"));
        out.push(Item { id, audio, rate: clip.sample_rate, grid, truth });
    }
    out
}

/// (onset seconds, pitch) of every note in a MIDI file, through its tempo map.
fn truth_onsets(path: &Path) -> Vec<(f64, u8)> {
    use midly::{MetaMessage, MidiMessage, Smf, Timing, TrackEventKind};
    let bytes = std::fs::read(path).expect("truth.mid");
    let smf = Smf::parse(&bytes).expect("truth.mid parses");
    let ppq = match smf.header.timing {
        Timing::Metrical(t) => t.as_int() as f64,
        _ => panic!("timecode MIDI"),
    };
    // Tempo map (tick -> microseconds per beat) from every track.
    let mut tempos: Vec<(u64, f64)> = vec![];
    for track in &smf.tracks {
        let mut tick = 0u64;
        for e in track {
            tick += e.delta.as_int() as u64;
            if let TrackEventKind::Meta(MetaMessage::Tempo(t)) = e.kind {
                tempos.push((tick, t.as_int() as f64));
            }
        }
    }
    tempos.sort_by_key(|a| a.0);
    let seconds = |tick: u64| -> f64 {
        let (mut s, mut last, mut us) = (0.0, 0u64, 500_000.0);
        for &(t, u) in &tempos {
            if t >= tick {
                break;
            }
            s += (t - last) as f64 * us / ppq / 1e6;
            last = t;
            us = u;
        }
        s + (tick - last) as f64 * us / ppq / 1e6
    };
    let mut out = vec![];
    for track in &smf.tracks {
        let mut tick = 0u64;
        for e in track {
            tick += e.delta.as_int() as u64;
            if let TrackEventKind::Midi { channel, message: MidiMessage::NoteOn { key, vel } } = e.kind {
                if vel.as_int() > 0 && channel.as_int() != 9 {
                    out.push((seconds(tick), key.as_int()));
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// What one setting adds up to over the items.
#[derive(Clone, Default)]
struct Tally {
    /// True onset -> note known, and -> MIDI event, seconds.
    known: Vec<f64>,
    event: Vec<f64>,
    /// Notes known after their event time, of those matched to a true onset.
    late: usize,
    matched: usize,
    compute: f64,
    /// The worker thread's CPU time (the scheduler's, not the wall clock's: other processes on
    /// the machine do not count).
    cpu: f64,
    max_lag: f64,
    late_melody: usize,
    melody: usize,
}

struct LaneResult {
    lookahead: usize,
    notes: Vec<Note>,
    known_s: Vec<f64>,
    cover: Cover,
    compute: f64,
    cpu: f64,
    max_lag: f64,
    late_melody: usize,
}

/// One item through the worker's own Live take (`worker::LiveRun`: resampler, sliding-window
/// model, causal decoder, arranger around the playhead), one run per lookahead, each on its own
/// simulated clock: block `k` exists at `(k + 1) * BLOCK / rate` s; the worker takes it when it
/// exists and when it is done with the previous work, and its clock advances by the measured
/// compute time (resampling, the model, decoding, arranging), so a slow model shows as latency.
/// A decoded note is *known* when the hop that decoded it has been published.
fn run_item(
    model: &mut dyn NoteModel,
    mut tracker: Option<(&mut PitchTracker, VoiceMode)>,
    item: &Item,
    config: LiveConfig,
    lookaheads: &[usize],
    latency: &dyn Fn(usize) -> f64,
    settings: &ArrangeSettings,
) -> (Vec<LaneResult>, Vec<f64>, bool) {
    let params = DecodeParams::default();
    let mut model_times = vec![];
    let mut results = vec![];
    let mut streamed = false;
    let tempo = item.grid.bpm;
    let bpb = item.grid.beats_per_bar;
    for &lookahead in lookaheads {
        let config = LiveConfig { lookahead_frames: lookahead, ..config };
        let latency_s = latency(lookahead);
        let stamp = |k: usize, len: usize| Stamp {
            seq: k as u64 + 1,
            sample_index: (k * BLOCK) as u64,
            len: len as u32,
            playing: true,
            // The host's grid: beat 0 at the file's start; the capture is stamped where the
            // input really is (see audio_thread::core).
            beat: (k * BLOCK) as f64 / item.rate as f64 * tempo / 60.0,
            tempo,
            beats_per_bar: bpb,
            bar_start_beat: item.grid.first_downbeat_beat,
            sample_rate: item.rate as f32,
        };
        let voice = tracker.as_ref().map(|(_, mode)| *mode);
        let mut run = LiveRun::new(&stamp(0, BLOCK), config, &params, voice).expect("a live run");
        let (mut clock, mut compute, mut max_lag) = (0.0f64, 0.0f64, 0.0f64);
        let cpu0 = thread_cpu_s();
        let mut known_s: Vec<f64> = vec![];
        let mut cover = Cover::default();
        for (k, block) in item.audio.chunks(BLOCK).enumerate() {
            let exists = ((k * BLOCK + block.len()) as f64) / item.rate as f64;
            clock = clock.max(exists);
            let t0 = Instant::now();
            let p = run.push(&stamp(k, block.len()), block, model, tracker.as_mut().map(|(t, _)| &mut **t)).expect("live push");
            let pushed = t0.elapsed().as_secs_f64();
            if p.news() {
                model_times.push(pushed);
                let t1 = Instant::now();
                cover = run.cover(settings, latency_s);
                let decoded = run.decoded_notes().len();
                let arrange = t1.elapsed().as_secs_f64();
                clock += pushed + arrange;
                compute += pushed + arrange;
                known_s.resize(decoded.max(known_s.len()), clock);
            } else {
                clock += pushed;
                compute += pushed;
            }
            max_lag = max_lag.max(clock - exists);
        }
        streamed = run.is_streaming();
        let notes = run.decoded_notes();
        let end_s = item.audio.len() as f64 / item.rate as f64;
        // Notes decoded only at the end of the take (never published in time) count as known late.
        known_s.resize(notes.len(), end_s + 1.0);
        let cpu = thread_cpu_s() - cpu0;
        results.push(LaneResult { lookahead, notes, known_s, cover, compute, cpu, max_lag, late_melody: run.late_melody() });
    }
    (results, model_times, streamed)
}

/// Seconds this thread has run on a CPU (Linux's scheduler statistics; NaN elsewhere).
fn thread_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|ns| ns.parse::<f64>().ok()))
        .map_or(f64::NAN, |ns| ns / 1e9)
}

fn write(path: &Path, bytes: std::io::Result<Vec<u8>>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes.unwrap()).unwrap();
}

/// The scorer's means on a folder.
#[derive(Clone, Copy)]
struct Scores {
    onset_f1: f64,
    cover_score: f64,
    /// melody_f1 of the mix items and of the vocal ones.
    melody_mix: f64,
    melody_vocal: f64,
}

/// Runs the scorer on a folder (NaN for what it could not score).
fn score(scorer: &str, devset: &Path, dir: &Path) -> Scores {
    let json = dir.with_extension("json");
    let out = std::process::Command::new("python3").arg(scorer).arg(devset).arg(dir).arg("--json").arg(&json).output();
    let nan = Scores { onset_f1: f64::NAN, cover_score: f64::NAN, melody_mix: f64::NAN, melody_vocal: f64::NAN };
    match out {
        Ok(o) if o.status.success() => {
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
            // Means over the items the bench wrote (LIVE_BENCH_ITEMS may leave some out; the
            // scorer's own means count a missing item as an empty cover).
            let missing: Vec<&str> = v["missing"].as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect()).unwrap_or_default();
            let items: Vec<(&String, &serde_json::Value)> =
                v["items"].as_object().expect("items").iter().filter(|(id, _)| !missing.contains(&id.as_str())).collect();
            let m = |kind: &str, col: &str| {
                let vals: Vec<f64> =
                    items.iter().filter(|(id, _)| kind == "all" || id.ends_with("-vocal") == (kind == "vocal")).filter_map(|(_, r)| r[col].as_f64()).collect();
                vals.iter().sum::<f64>() / vals.len() as f64
            };
            Scores {
                onset_f1: m("all", "onset_f1"),
                cover_score: m("all", "cover_score"),
                melody_mix: m("mix", "melody_f1"),
                melody_vocal: m("vocal", "melody_f1"),
            }
        }
        Ok(o) => {
            eprintln!("scorer failed on {}: {}", dir.display(), String::from_utf8_lossy(&o.stderr));
            nan
        }
        Err(e) => {
            eprintln!("cannot run the scorer: {e}");
            nan
        }
    }
}

fn main() {
    // `cargo bench` passes --bench; nothing else is read from the command line.
    let devset = std::env::var_os("PIANOLA_DEVSET").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/devset"));
    let out_dir = std::env::var_os("LIVE_BENCH_OUT").map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("pianola-live-bench"));
    let scorer = std::env::var("SCORER").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/eval/score_dir.py").into());
    let backend: Backend = std::env::var("LIVE_BENCH_BACKEND").unwrap_or_else(|_| "ort".into()).parse().expect("backend");
    let limit: usize = std::env::var("LIVE_BENCH_ITEMS").ok().and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
    let seconds: f64 = std::env::var("LIVE_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(f64::INFINITY);
    let streams: Vec<(usize, usize)> = env_list("LIVE_BENCH_STREAMS", "8:4")
        .iter()
        .map(|s| {
            let (h, r) = s.split_once(':').expect("hop:right");
            (h.parse().unwrap(), r.parse().unwrap())
        })
        .collect();
    let lookaheads: Vec<usize> = env_list("LIVE_BENCH_LOOKAHEADS", "0,2,4,6,8,11").iter().map(|s| s.parse().unwrap()).collect();
    let windows: Vec<usize> = env_list("LIVE_BENCH_WINDOWS", &pianola::model::MIN_WINDOW_FRAMES.to_string()).iter().map(|s| s.parse().unwrap()).collect();
    let engines: Vec<bool> = env_list("LIVE_BENCH_ENGINES", "stream").iter().map(|s| s == "stream").collect();
    let refresh: usize =
        std::env::var("LIVE_BENCH_REFRESH").ok().and_then(|s| s.parse().ok()).unwrap_or(pianola::live::config_for("native", false).refresh_frames);
    let settings = ArrangeSettings::default();
    let voice: VoiceMode = std::env::var("LIVE_BENCH_VOICE").unwrap_or_else(|_| "mix".into()).parse().expect("voice mode");
    let mut tracker = (voice != VoiceMode::Mix).then(|| PitchTracker::load().expect("the voice tracker"));

    let mut model = model::load(backend).expect("model");
    let items = load_items(&devset, limit, seconds);
    let audio_s: f64 = items.iter().map(|i| i.audio.len() as f64 / i.rate as f64).sum();
    eprintln!("{} items, {:.0} s of audio, backend {}, melody from {voice:?}", items.len(), audio_s, model.backend());

    // Offline mode: the reference windowing and decoder, the arranger on the whole song.
    let t0 = Instant::now();
    for item in &items {
        let clip = pianola::audio_file::AudioClip { interleaved: item.audio.clone(), channels: 1, sample_rate: item.rate };
        let t = pianola::engine::transcribe_clip(model.as_mut(), &clip, &DecodeParams::default()).unwrap();
        let notes = match tracker.as_mut() {
            Some(tracker) => {
                let (notes, why) = pianola::pitch::melody_notes(voice, tracker, &item.audio, item.rate, &t.notes).expect("the voice tracker");
                eprintln!("{}: {why}", item.id);
                notes
            }
            None => t.notes.clone(),
        };
        let input = ArrangeInput::from_transcription(&notes, Some(&t.frames), &item.grid);
        let cover = pianola::arrange::arrange(&input, &settings);
        write(&out_dir.join("offline-notes").join(format!("{}.mid", item.id)), pianola::midi_file::notes_to_smf(&t.notes));
        write(&out_dir.join("offline-cover").join(format!("{}.mid", item.id)), pianola::midi_file::cover_to_smf(&cover, &item.grid));
    }
    let offline_s = t0.elapsed().as_secs_f64();
    let off_f1 = score(&scorer, &devset, &out_dir.join("offline-notes")).onset_f1;
    let off = score(&scorer, &devset, &out_dir.join("offline-cover"));

    let mut rows = vec![format!(
        "| offline | - | 172 | - | - | - | - | - | - | - | {:.1}% | - | {off_f1:.3} | {:.3} | {:.3} / {:.3} |",
        100.0 * offline_s / audio_s,
        off.cover_score,
        off.melody_mix,
        off.melody_vocal
    )];
    for &(hop, right) in &streams {
        for (&window_frames, &streaming) in windows.iter().flat_map(|w| engines.iter().map(move |e| (w, e))) {
            let config = LiveConfig {
                hop_frames: hop,
                right_context_frames: right,
                lookahead_frames: 0,
                melodia: false,
                window_frames,
                streaming,
                refresh_frames: refresh,
                ..LiveConfig::default()
            }
            .sanitized();
            let mut streamed = false;
            model.prepare_window(config.window_frames).expect("the model runs this window");
            // Known latency and event latency per lookahead.
            let mut per_lane: Vec<Tally> = vec![Tally::default(); lookaheads.len()];
            let mut model_times = vec![];
            let mut results_all = vec![];
            // The latency the plugin reports: its allowance for one window of this backend (the
            // model's measured time per window is printed below, to check the allowance holds).
            let compute_guess = std::env::var("LIVE_BENCH_ALLOWANCE_MS")
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .map_or_else(|| pianola::live::compute_allowance_s(model.backend(), voice == VoiceMode::Voice), |ms| ms / 1000.0);
            let io_s = pianola::live::IO_ALLOWANCE_S;
            let latency = |l: usize| LiveConfig { lookahead_frames: l, ..config }.latency_seconds(compute_guess, io_s);
            for item in &items {
                let (results, times, s) = run_item(model.as_mut(), tracker.as_mut().map(|t| (t, voice)), item, config, &lookaheads, &latency, &settings);
                streamed = s;
                model_times.extend(times);
                results_all.push(results);
            }
            let mut mt = model_times.clone();
            let c_p95 = percentile(&mut mt, 0.95);
            let c_p50 = percentile(&mut mt, 0.5);
            for (item, results) in items.iter().zip(&results_all) {
                for (li, r) in results.iter().enumerate() {
                    let reported = latency(r.lookahead);
                    let lane = &mut per_lane[li];
                    // Match true onsets to live notes (same pitch, onset within 50 ms).
                    let mut used = vec![false; r.notes.len()];
                    for &(onset, pitch) in &item.truth {
                        let hit = r
                            .notes
                            .iter()
                            .enumerate()
                            .filter(|(i, n)| !used[*i] && n.pitch == pitch && (n.start_s - onset).abs() <= 0.05)
                            .min_by(|a, b| (a.1.start_s - onset).abs().total_cmp(&(b.1.start_s - onset).abs()));
                        if let Some((i, n)) = hit {
                            used[i] = true;
                            let known = r.known_s[i];
                            lane.known.push(known - onset);
                            let event = (n.start_s + reported).max(known);
                            lane.event.push(event - onset);
                            if known > n.start_s + reported {
                                lane.late += 1;
                            }
                            lane.matched += 1;
                        }
                    }
                    lane.compute += r.compute;
                    lane.cpu += r.cpu;
                    lane.max_lag = lane.max_lag.max(r.max_lag);
                    lane.late_melody += r.late_melody;
                    lane.melody += r.cover.notes.iter().filter(|n| n.melody).count();
                    let tag = format!("w{window_frames}-h{hop}-r{right}-l{}-{}", r.lookahead, if streamed { "stream" } else { "window" });
                    write(&out_dir.join(format!("{tag}-notes")).join(format!("{}.mid", item.id)), pianola::midi_file::notes_to_smf(&r.notes));
                    write(&out_dir.join(format!("{tag}-cover")).join(format!("{}.mid", item.id)), pianola::midi_file::cover_to_smf(&r.cover, &item.grid));
                }
            }
            for (li, &lookahead) in lookaheads.iter().enumerate() {
                let engine = if streamed { "stream" } else { "window" };
                let tag = format!("w{window_frames}-h{hop}-r{right}-l{lookahead}-{engine}");
                let f1 = score(&scorer, &devset, &out_dir.join(format!("{tag}-notes"))).onset_f1;
                let cs = score(&scorer, &devset, &out_dir.join(format!("{tag}-cover")));
                let lane = &mut per_lane[li];
                let reported = latency(lookahead);
                let (k50, k95) = (percentile(&mut lane.known, 0.5), percentile(&mut lane.known, 0.95));
                let (e50, e95) = (percentile(&mut lane.event, 0.5), percentile(&mut lane.event, 0.95));
                rows.push(format!(
                    "| live | {engine} | {window_frames} | {hop} | {right} | {lookahead} | {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.1}% | {:.1}% (wall {:.1}%, max lag {:.0} ms) | {} of {} | {f1:.3} | {:.3} | {:.3} / {:.3} |",
                    reported * 1000.0,
                    k50 * 1000.0,
                    k95 * 1000.0,
                    e50 * 1000.0,
                    e95 * 1000.0,
                    100.0 * lane.late as f64 / lane.matched.max(1) as f64,
                    100.0 * lane.cpu / audio_s,
                    100.0 * lane.compute / audio_s,
                    lane.max_lag * 1000.0,
                    lane.late_melody,
                    lane.melody,
                    cs.cover_score,
                    cs.melody_mix,
                    cs.melody_vocal,
                ));
            }
            eprintln!(
                "{} window {window_frames} hop {hop} right {right}: model {:.1} ms p50, {:.1} ms p95 per hop; {:.1}% of a core for the model alone",
                if streamed { "streaming" } else { "windowed" },
                c_p50 * 1e3,
                c_p95 * 1e3,
                100.0 * model_times.iter().sum::<f64>() / audio_s
            );
        }
    }
    println!(
        "\nLive vs offline, {} items, {:.0} s, backend {} (latencies: true onset -> note known / -> MIDI event, p50 / p95, ms)\n",
        items.len(),
        audio_s,
        model.backend()
    );
    println!("| mode | engine | window | hop | right ctx | lookahead | reported latency ms | known p50 / p95 | event p50 / p95 | late | CPU of one core | melody notes moved late | onset_f1 | cover_score | melody_f1 mix / vocal |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!("{r}");
    }
    println!("\nMIDI written under {}", out_dir.display());
}
