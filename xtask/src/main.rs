//! Project tasks: `cargo xtask fetch-model` (the Basic Pitch and SwiftF0 models and the ONNX Runtime library, from
//! PyPI by name and pinned version, checked against pinned sha256 sums), `cargo xtask bundle
//! pianola --release` (nice-plug's bundler: .clap and .vst3) and `cargo xtask install` (the built
//! bundles into the user's plugin folders, `~/.clap` and `~/.vst3`, or `--to DIR`).

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// basic-pitch 0.4.0 (Apache-2.0): the ICASSP-2022 model as ONNX.
const BASIC_PITCH_WHEEL: &str = "basic-pitch==0.4.0";
const MODEL_IN_WHEEL: &str = "basic_pitch/saved_models/icassp_2022/nmp.onnx";
const MODEL_SHA256: &str = "2c3c1d144bfa61ad236e92e169c13535c880469a12a047d4e73451f2c059a0ec";
const MODEL_LICENSE_IN_WHEEL: &str = "basic_pitch-0.4.0.dist-info/LICENSE";

/// swift-f0 0.3.0 (MIT): SwiftF0, a pitch tracker made for voices.
const SWIFT_F0_WHEEL: &str = "swift-f0==0.3.0";
const SWIFT_F0_IN_WHEEL: &str = "swift_f0/model.onnx";
const SWIFT_F0_SHA256: &str = "6385e8c2ebc3872e82c9ff5946228de44cd3be77a750ea53698b7dbfe94b0a22";
const SWIFT_F0_LICENSE_IN_WHEEL: &str = "swift_f0-0.3.0.dist-info/licenses/LICENSE";

/// onnxruntime 1.32.0 (MIT) for the optional `onnxruntime` feature, loaded at run time by path.
const ORT_WHEEL: &str = "onnxruntime==1.32.0";
const ORT_LIB_IN_WHEEL: &str = "onnxruntime/capi/libonnxruntime.so.1.32.0";
const ORT_SHA256: &str = "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fetch-model") => fetch_model(args.iter().any(|a| a == "--with-onnxruntime")),
        Some("install") => install(args.iter().position(|a| a == "--to").and_then(|i| args.get(i + 1)).map(PathBuf::from)),
        _ => nice_plug_xtask::main(),
    }
}

/// Copies target/bundled/Pianola.clap to `~/.clap/` and Pianola.vst3 to `~/.vst3/` (the folders
/// CLAP and VST3 hosts scan on Linux), or both into `to`. A bundle already there is replaced.
fn install(to: Option<PathBuf>) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("the workspace")?.to_path_buf();
    let bundled = root.join("target/bundled");
    let home = || std::env::var_os("HOME").map(PathBuf::from).context("HOME is not set: say where with --to DIR");
    let (clap_dir, vst3_dir) = match to {
        Some(d) => (d.clone(), d),
        None => (home()?.join(".clap"), home()?.join(".vst3")),
    };
    for (name, dir) in [("Pianola.clap", clap_dir), ("Pianola.vst3", vst3_dir)] {
        let from = bundled.join(name);
        if !from.exists() {
            bail!("{} is missing: build it first with `cargo xtask bundle pianola --release --features onnxruntime`", from.display());
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let dest = dir.join(name);
        if dest.is_dir() {
            std::fs::remove_dir_all(&dest).with_context(|| format!("replacing {}", dest.display()))?;
        } else if dest.exists() {
            std::fs::remove_file(&dest).with_context(|| format!("replacing {}", dest.display()))?;
        }
        copy_tree(&from, &dest)?;
        println!("installed {}", dest.display());
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else {
        std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `pip download` one wheel into the cache (no dependencies, binary only) and return its path.
fn download_wheel(spec: &str, cache: &Path, extra: &[&str]) -> Result<PathBuf> {
    let name = spec.split("==").next().unwrap().replace('-', "_");
    let find = || -> Option<PathBuf> {
        std::fs::read_dir(cache).ok()?.flatten().map(|e| e.path()).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{name}-{}", spec.split("==").nth(1).unwrap())) && n.ends_with(".whl"))
        })
    };
    if let Some(p) = find() {
        return Ok(p);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-q", "-d"])
        .arg(cache)
        .args(extra)
        .arg(spec)
        .status()
        .with_context(|| format!("running {python} -m pip (is Python with pip installed?)"))?;
    if !status.success() {
        bail!("pip download {spec} failed");
    }
    find().with_context(|| format!("pip download {spec} left no wheel in {}", cache.display()))
}

fn extract(wheel: &Path, member: &str) -> Result<Vec<u8>> {
    let file = std::fs::File::open(wheel)?;
    let mut zip = zip::ZipArchive::new(file).with_context(|| format!("{} is not a wheel", wheel.display()))?;
    let mut entry = zip.by_name(member).with_context(|| format!("{member} not in {}", wheel.display()))?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn write_checked(dst: &Path, bytes: &[u8], expected: &str, what: &str) -> Result<()> {
    let got = sha256(bytes);
    if got != expected {
        bail!("{what}: sha256 {got} does not match the pinned {expected}; refusing to use it");
    }
    std::fs::write(dst, bytes)?;
    println!("{what}: {} ({} bytes, sha256 ok)", dst.display(), bytes.len());
    Ok(())
}

fn fetch_model(with_ort: bool) -> Result<()> {
    nice_plug_xtask::chdir_workspace_root()?;
    let models = PathBuf::from("models");
    let cache = models.join("cache");
    std::fs::create_dir_all(&cache)?;

    let model_path = models.join("nmp.onnx");
    let have = std::fs::read(&model_path).map(|b| sha256(&b) == MODEL_SHA256).unwrap_or(false);
    if have {
        println!("model: {} already present (sha256 ok)", model_path.display());
    } else {
        let wheel = download_wheel(BASIC_PITCH_WHEEL, &cache, &[])?;
        write_checked(&model_path, &extract(&wheel, MODEL_IN_WHEEL)?, MODEL_SHA256, "model")?;
        std::fs::write(models.join("LICENSE.basic-pitch"), extract(&wheel, MODEL_LICENSE_IN_WHEEL)?)?;
    }

    let f0_path = models.join("swift_f0.onnx");
    let have = std::fs::read(&f0_path).map(|b| sha256(&b) == SWIFT_F0_SHA256).unwrap_or(false);
    if have && models.join("LICENSE.swift-f0").exists() {
        println!("pitch model: {} already present (sha256 ok)", f0_path.display());
    } else {
        let wheel = download_wheel(SWIFT_F0_WHEEL, &cache, &[])?;
        write_checked(&f0_path, &extract(&wheel, SWIFT_F0_IN_WHEEL)?, SWIFT_F0_SHA256, "pitch model")?;
        std::fs::write(models.join("LICENSE.swift-f0"), extract(&wheel, SWIFT_F0_LICENSE_IN_WHEEL)?)?;
    }

    if with_ort {
        let lib_path = models.join("libonnxruntime.so");
        let have = std::fs::read(&lib_path).map(|b| sha256(&b) == ORT_SHA256).unwrap_or(false);
        if have {
            println!("onnxruntime: {} already present (sha256 ok)", lib_path.display());
        } else {
            // The wheel is CPython-specific but the library inside is not: pin one wheel for every host.
            let extra = ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"];
            let wheel = download_wheel(ORT_WHEEL, &cache, &extra)?;
            write_checked(&lib_path, &extract(&wheel, ORT_LIB_IN_WHEEL)?, ORT_SHA256, "onnxruntime")?;
        }
    }
    Ok(())
}
