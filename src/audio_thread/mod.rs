//! The audio thread: what runs inside the host's `process()` call. [`core::AudioCore`] is the
//! whole block (the plugin, the in-process tests and the benchmarks all call it): it downmixes
//! into the ring for the worker with transport stamps (`crate::ring`), picks up the newest cover
//! (`crate::timeline`) and [`emit`] turns it into sample-accurate note events. Nothing here
//! allocates, locks, logs or waits (offline rendering excepted, see `ring::CaptureWriter`).

pub mod core;
pub mod emit;
