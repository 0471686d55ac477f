//! The audio thread: what runs inside the host's `process()` call. [`core::AudioCore`] is the
//! whole block (the plugin, the in-process tests and the benchmarks all call it); [`capture`]
//! downmixes into the ring for the worker with transport stamps; [`emit`] turns the cover into
//! sample-accurate note events. Nothing here allocates, locks, logs or waits (offline rendering
//! excepted, see `capture`).

pub mod capture;
pub mod core;
pub mod emit;
