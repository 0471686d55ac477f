//! Pianola: plays a piano cover of the track it sits on.
//!
//! Audio is captured (plugin) or read from a file (CLI), transcribed by Spotify's Basic Pitch model
//! into notes, arranged into a playable two-hand piano part keyed in beats, and played out as MIDI
//! locked to the host transport. See DEVELOPERS.md for how the stages fit together.

pub mod arrange;
pub mod audio_file;
pub mod audio_thread;
pub mod compact;
pub mod decode;
pub mod editor;
pub mod engine;
pub mod live;
pub mod midi_file;
pub mod model;
pub mod notes;
pub mod params;
pub mod pitch;
pub mod plugin;
pub mod resample;
pub mod ring;
pub mod status;
pub mod tempo;
pub mod timeline;
pub mod tuning;
pub mod worker;
