//! The hardening matrix (issue #8): Pianola keeps working and loses nothing under what hosts, users
//! and files throw at it. One test binary, one module per row of the matrix:
//! - `audio`: sample rates 8..192 kHz, block sizes 1..8192 varying block to block, 1/2/6 channels,
//!   silence, full-scale noise, clipping, NaN/Inf, denormals (stand-in model and the real one)
//! - `transport`: no transport, stopped, seeks, loops, tempo jumps/ramps, meter changes, beat
//!   positions that jump or repeat, offline bounce
//! - `state`: round trips, truncated/corrupt/future-version state, fuzzed captures
//! - `files`: fuzzed audio decoding and MIDI writing (proptest), the CLI on bad files
//! - `length`: memory per captured hour and beat alignment after a long capture
//! - `lag`: the worker falling behind in real time
//! - `latency`: Live notes on the beat under the host's delay compensation, the pass-through delay,
//!   restart requests for a latency change, `deactivate()` returning at once mid-segment
//! - `lifecycle`: the bundle in a CLAP host: activate/deactivate/reset cycles, instances side by side
//! - `editor`: the bundle's editor opened and closed through the CLAP `gui` extension while processing
//!   (under its own Xvfb when DISPLAY is unset)
//! - `playback`: the bundle in a CLAP host on a dev-set song: capture, then playback with loops, seeks,
//!   tempo changes at 44.1..96 kHz and blocks of 1..4096 against the in-process cover, offline bounce,
//!   state restore, Live mode behind its reported latency
//! - `voice_capture`: a synthetic singer captured with "Melody from" on Auto and on Mix
//! - `capture_tuning`: a dev-set song captured 40 cents flat and 25 sharp is heard in tune
//!
//! In-process rows drive [`rig::Rig`] (the plugin's own `AudioCore`: the block `process()` runs, the
//! worker, the latency) with the [`rig::Clicks`] stand-in model; bundle rows use [`host`] (clack-host).
//!     cargo test --release --features onnxruntime,assert_process_allocs,standalone --test hardening

mod host;
mod rig;

mod audio;
mod capture_tuning;
mod editor;
mod files;
mod install;
mod lag;
mod latency;
mod length;
mod lifecycle;
mod playback;
mod song_grid;
mod state;
mod transport;
mod voice_capture;

#[path = "../common/voice.rs"]
mod voice;

#[path = "../common/mod.rs"]
mod common;
