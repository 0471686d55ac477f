//! The bundle a producer installs: copied away from the checkout (as `cargo xtask install` does),
//! it loads, runs the default engine (the native one, inside the plugin binary: nothing to find at
//! a build path) and reports the same Live latency as the bundle in the checkout. It then captures
//! and plays clicks like the original.

use crate::host::{self, Instance};
use clack_host::prelude::PluginEntry;

fn live_latency(plugin: &mut Instance) -> u32 {
    let mut state = host::state_json(&plugin.save_state());
    state["params"]["mode"] = serde_json::json!({ "string": "live" });
    assert!(plugin.load_state(&host::state_bytes(&state)), "state load failed");
    plugin.activate(48000.0, 512);
    let latency = plugin.latency();
    plugin.deactivate();
    latency
}

#[test]
fn a_copied_bundle_runs_away_from_the_checkout_with_the_same_latency() {
    let original = host::bundle_path();
    let dir = std::env::temp_dir().join(format!("pianola-installed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("Pianola.clap");
    std::fs::copy(&original, &copy).unwrap();
    let entry: &'static PluginEntry = Box::leak(Box::new(unsafe { PluginEntry::load(&copy) }.unwrap_or_else(|e| panic!("loading {}: {e:?}", copy.display()))));
    let (mut theirs, mut ours) = (Instance::with_entry(entry), Instance::new());
    let (copied, checkout) = (live_latency(&mut theirs), live_latency(&mut ours));
    // The default engine's Live latency, as this process (the same build) computes it.
    let expected = (pianola::live::latency_for(pianola::model::Backend::Native.name(), false) * 48000.0).round() as u32;
    eprintln!("Live latency at 48 kHz: copied bundle {copied} samples, checkout {checkout}, native engine {expected}");
    assert_eq!(copied, checkout, "the copied bundle reports another latency");
    assert_eq!(copied, expected, "the bundle does not run the native engine's Live settings");
    drop(theirs);
    let _ = std::fs::remove_dir_all(&dir);
}
