//! Reading songs from disk: WAV, MP3, FLAC and OGG/Vorbis through symphonia (pure Rust), into f32
//! samples with their rate and channel count, and the downmix to mono the model hears. Anything the
//! decoders cannot read becomes a clear [`AudioFileError`], never a panic.

use std::io::{Cursor, Seek, SeekFrom};
use std::path::Path;
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

#[derive(Debug, thiserror::Error)]
pub enum AudioFileError {
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("not a supported audio file (WAV, MP3, FLAC, OGG): {0}")]
    Unsupported(String),
    #[error("the audio data is damaged: {0}")]
    Corrupt(String),
    #[error("the file holds no audio")]
    Empty,
    #[error("the audio is longer than {} minutes; Pianola covers songs: cut it into parts", MAX_SECONDS / 60)]
    TooLong,
}

/// Longest audio a file may hold. A clip is kept whole in memory (plus its mono mix, the model-rate
/// copy and the model's frames: ~2.5 GB for an hour of stereo 44.1 kHz), so a file past this is
/// refused with [`AudioFileError::TooLong`] as soon as the decoder passes it, not after memory runs out.
pub const MAX_SECONDS: u64 = 3600;

/// Decoded audio, interleaved.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioClip {
    pub sample_rate: u32,
    pub channels: usize,
    pub interleaved: Vec<f32>,
}

impl AudioClip {
    pub fn frames(&self) -> usize {
        self.interleaved.len() / self.channels.max(1)
    }

    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / self.sample_rate.max(1) as f64
    }

    /// Mean of the channels; NaN and infinite samples become silence so one bad sample cannot poison
    /// a whole model window.
    pub fn mono(&self) -> Vec<f32> {
        downmix(&self.interleaved, self.channels)
    }
}

/// Largest sample magnitude the model's input path takes (120 dB over full scale); louder samples
/// are clipped to it. Samples near `f32::MAX` overflow the resampler's FFT to infinity, and rubato
/// then panics ("Imaginary part of first value was non-zero").
pub const MAX_SAMPLE: f32 = 1.0e6;

/// Samples quieter than this (-400 dBFS) are silence: denormal floats make arithmetic tens of times
/// slower (clap-validator measured the plugin's process() 4-20x slower on them), on the audio thread
/// here and in the resamplers and the model after it.
pub const SILENCE_FLOOR: f32 = 1.0e-20;

/// One channel's share of the mono mix: non-finite samples and denormals as silence, the rest
/// clipped to [`MAX_SAMPLE`] and scaled before the sum, so no sum of channels can overflow. For 1,
/// 2, 4 and 8 channels this is bit-identical to scaling the sum. The capture uses it too, so a
/// capture and a file read of the same audio give the same samples.
#[inline]
pub fn mono_part(s: f32, scale: f32) -> f32 {
    // The magnitude test is a comparison, which denormals do not slow.
    if s.is_finite() && s.abs() >= SILENCE_FLOOR {
        s.clamp(-MAX_SAMPLE, MAX_SAMPLE) * scale
    } else {
        0.0
    }
}

/// Interleaved -> mono mean, with non-finite samples zeroed (see [`mono_part`]).
pub fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    let mut mono = Vec::with_capacity(interleaved.len() / channels.max(1));
    downmix_into(interleaved, channels, &mut mono);
    mono
}

/// [`downmix`], appending to `out`.
fn downmix_into(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    let channels = channels.max(1);
    let scale = 1.0 / channels as f32;
    // Mono and stereo (nearly every song) get loops the compiler vectorises: the same sums as the
    // general case (`-0.0 + a + b` is `a + b`), bit for bit.
    match channels {
        1 => out.extend(interleaved.iter().map(|&s| mono_part_branchless(s, scale))),
        2 => out.extend(interleaved.chunks_exact(2).map(|f| mono_part_branchless(f[0], scale) + mono_part_branchless(f[1], scale))),
        _ => out.extend(interleaved.chunks_exact(channels).map(|frame| frame.iter().map(|&s| mono_part(s, scale)).sum::<f32>())),
    }
}

/// [`mono_part`] as a select rather than a branch, so that loops over it vectorise.
#[inline(always)]
fn mono_part_branchless(s: f32, scale: f32) -> f32 {
    let keep = s.is_finite() & (s.abs() >= SILENCE_FLOOR);
    let v = s.clamp(-MAX_SAMPLE, MAX_SAMPLE) * scale;
    if keep {
        v
    } else {
        0.0
    }
}

pub fn read(path: &Path) -> Result<AudioClip, AudioFileError> {
    let open_error = |source| AudioFileError::Open { path: path.display().to_string(), source };
    let mut file = std::fs::File::open(path).map_err(open_error)?;
    if let Some(clip) = wav::read_file(&mut file).map_err(open_error)? {
        return clip;
    }
    file.seek(SeekFrom::Start(0)).map_err(open_error)?;
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    decode(Box::new(file), &hint)
}

/// A file's mono mix ([`AudioClip::mono`], the same samples) and its sample rate. A plain WAV is
/// mixed block by block as it is read, never held whole as interleaved samples (for a 35 s stereo
/// song that is 45 MB less to allocate, fill and mix afterwards).
pub fn read_mono(path: &Path) -> Result<(Vec<f32>, u32), AudioFileError> {
    let open_error = |source| AudioFileError::Open { path: path.display().to_string(), source };
    let mut file = std::fs::File::open(path).map_err(open_error)?;
    if let Some(mono) = wav::read_file_mono(&mut file).map_err(open_error)? {
        return mono;
    }
    drop(file);
    let clip = read(path)?;
    Ok((clip.mono(), clip.sample_rate))
}

/// Decodes a file held in memory (the fuzz tests go through here).
pub fn read_bytes(bytes: Vec<u8>) -> Result<AudioClip, AudioFileError> {
    if let Some(clip) = wav::read_slice(&bytes) {
        return clip;
    }
    decode(Box::new(Cursor::new(bytes)), &Hint::new())
}

fn decode(source: Box<dyn MediaSource>, hint: &Hint) -> Result<AudioClip, AudioFileError> {
    let mss = MediaSourceStream::new(source, Default::default());
    let mut format = symphonia::default::get_probe()
        .probe(hint, mss, FormatOptions::default(), MetadataOptions::default())
        .map_err(|e| AudioFileError::Unsupported(e.to_string()))?;
    let track = format.default_track(TrackType::Audio).ok_or_else(|| AudioFileError::Unsupported("no audio track".into()))?;
    let track_id = track.id;
    let params =
        track.codec_params.as_ref().and_then(|p| p.audio()).ok_or_else(|| AudioFileError::Unsupported("track has no audio codec parameters".into()))?.clone();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| AudioFileError::Unsupported(e.to_string()))?;

    let mut clip = AudioClip { sample_rate: 0, channels: 0, interleaved: Vec::new() };
    let mut block = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            // A truncated file: keep what was decoded.
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) if clip.interleaved.is_empty() => return Err(AudioFileError::Corrupt(e.to_string())),
            Err(_) => break,
        };
        if packet.track_id != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buf) => {
                let spec = buf.spec();
                let (rate, channels) = (spec.rate(), spec.channels().count());
                if rate == 0 || channels == 0 {
                    return Err(AudioFileError::Corrupt(format!("{channels} channels at {rate} Hz")));
                }
                if clip.channels == 0 {
                    clip.sample_rate = rate;
                    clip.channels = channels;
                } else if clip.channels != channels || clip.sample_rate != rate {
                    return Err(AudioFileError::Corrupt(format!(
                        "stream changes from {} ch {} Hz to {channels} ch {rate} Hz",
                        clip.channels, clip.sample_rate
                    )));
                }
                block.resize(buf.samples_interleaved(), 0.0f32);
                buf.copy_to_slice_interleaved(&mut block);
                clip.interleaved.extend_from_slice(&block);
                if clip.frames() as u64 > MAX_SECONDS * clip.sample_rate as u64 {
                    return Err(AudioFileError::TooLong);
                }
            }
            // A damaged packet: skip it, as players do.
            Err(SymError::DecodeError(_)) => continue,
            Err(e) => return Err(AudioFileError::Corrupt(e.to_string())),
        }
    }
    if clip.channels == 0 || clip.sample_rate == 0 || clip.interleaved.is_empty() {
        return Err(AudioFileError::Empty);
    }
    Ok(clip)
}

/// A fast path for the commonest files, plain PCM WAV (16- or 24-bit integers, 32-bit floats, up to
/// 8 channels): the samples converted straight from the file's bytes, exactly as symphonia converts
/// them (`i16 / 32768`, `i24 / 8388608`), at a tenth of its time (symphonia decodes a 35 s stereo
/// file in ~20 ms, a third of the model's time on it with `--jobs 1`). Anything else, or anything
/// unusual in the header, is left to symphonia (`None`).
mod wav {
    use super::{AudioClip, AudioFileError, MAX_SECONDS};
    use std::io::{Read, Seek, SeekFrom};

    /// Where the samples are and how to read them.
    struct Layout {
        sample_rate: u32,
        channels: usize,
        format: Format,
        /// Byte offset of the data chunk's samples, and the bytes of whole frames it holds (the
        /// chunk's size, or what the file has of it when it is cut short).
        data_offset: u64,
        data_len: u64,
    }

    #[derive(Clone, Copy)]
    enum Format {
        I16,
        I24,
        F32,
    }

    impl Format {
        fn bytes(self) -> usize {
            match self {
                Format::I16 => 2,
                Format::I24 => 3,
                Format::F32 => 4,
            }
        }
    }

    /// Header bytes looked at: the fmt and data chunks must start within them.
    const HEADER: usize = 4096;

    fn u16_at(b: &[u8], i: usize) -> Option<u16> {
        Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
    }

    fn u32_at(b: &[u8], i: usize) -> Option<u32> {
        Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
    }

    /// Parses the header (the file's first bytes, `total` bytes in all); `None` if the file is not
    /// a plain WAV this path reads.
    fn layout(head: &[u8], total: u64) -> Option<Layout> {
        if head.get(0..4)? != b"RIFF" || head.get(8..12)? != b"WAVE" {
            return None;
        }
        // Every chunk must lie inside the RIFF chunk's stated length (symphonia refuses one that
        // does not; a stream written with an unknown length says u32::MAX: left to symphonia).
        let riff_len = u32_at(head, 4)?;
        if !(4..u32::MAX).contains(&riff_len) {
            return None;
        }
        let riff_end = 8 + riff_len as usize;
        let mut at = 12usize;
        let mut fmt: Option<(u32, usize, Format)> = None;
        loop {
            let id = head.get(at..at + 4)?;
            let size = u32_at(head, at + 4)? as usize;
            let body = at + 8;
            if body.checked_add(size)? > riff_end {
                return None;
            }
            match id {
                b"fmt " => {
                    if fmt.is_some() || size < 16 {
                        return None;
                    }
                    let (tag, channels, rate) = (u16_at(head, body)?, u16_at(head, body + 2)? as usize, u32_at(head, body + 4)?);
                    let (block_align, bits) = (u16_at(head, body + 12)? as usize, u16_at(head, body + 14)?);
                    let format = match (tag, bits) {
                        (1, 16) => Format::I16,
                        (1, 24) => Format::I24,
                        (3, 32) => Format::F32,
                        _ => return None,
                    };
                    if !(1..=8).contains(&channels) || rate == 0 || block_align != channels * format.bytes() {
                        return None;
                    }
                    fmt = Some((rate, channels, format));
                }
                b"data" => {
                    let (sample_rate, channels, format) = fmt?;
                    let data_offset = body as u64;
                    let frame = (channels * format.bytes()) as u64;
                    let available = total.checked_sub(data_offset)?.min(size as u64);
                    return Some(Layout { sample_rate, channels, format, data_offset, data_len: available / frame * frame });
                }
                // Other chunks (LIST, fact, ...) are skipped, as symphonia skips them; an odd-sized
                // chunk has a pad byte whose handling differs between writers: left to symphonia.
                _ if size % 2 == 1 => return None,
                _ => {}
            }
            at = body.checked_add(size)?;
            if at >= HEADER {
                return None;
            }
        }
    }

    /// Appends the samples in `data` (whole samples of `format`) to `out`.
    fn convert(format: Format, data: &[u8], out: &mut Vec<f32>) {
        match format {
            Format::I16 => out.extend(data.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32_768.0)),
            Format::I24 => out.extend(data.chunks_exact(3).map(|b| (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 8_388_608.0)),
            Format::F32 => out.extend(data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        }
    }

    /// The clip from the data chunk's bytes, or the errors symphonia's decode gives for it.
    fn clip(l: &Layout, data: &[u8]) -> Result<AudioClip, AudioFileError> {
        let mut interleaved = Vec::with_capacity(data.len() / l.format.bytes());
        convert(l.format, data, &mut interleaved);
        if interleaved.is_empty() {
            return Err(AudioFileError::Empty);
        }
        Ok(AudioClip { sample_rate: l.sample_rate, channels: l.channels, interleaved })
    }

    fn too_long(l: &Layout) -> bool {
        l.data_len / (l.channels * l.format.bytes()) as u64 > MAX_SECONDS * l.sample_rate as u64
    }

    /// A file: `Ok(None)` when it is not for this path (the caller rewinds it for symphonia).
    pub(super) fn read_file(file: &mut std::fs::File) -> std::io::Result<Option<Result<AudioClip, AudioFileError>>> {
        let total = file.metadata()?.len();
        let mut head = Vec::with_capacity(HEADER);
        file.by_ref().take(HEADER as u64).read_to_end(&mut head)?;
        let Some(l) = layout(&head, total) else { return Ok(None) };
        if too_long(&l) {
            return Ok(Some(Err(AudioFileError::TooLong)));
        }
        let mut data = vec![0u8; l.data_len as usize];
        file.seek(SeekFrom::Start(l.data_offset))?;
        file.read_exact(&mut data)?;
        Ok(Some(clip(&l, &data)))
    }

    /// A mono mix and its sample rate.
    type Mono = (Vec<f32>, u32);

    /// A file's mono mix and rate, read and mixed in blocks: `Ok(None)` when it is not for this path.
    pub(super) fn read_file_mono(file: &mut std::fs::File) -> std::io::Result<Option<Result<Mono, AudioFileError>>> {
        let total = file.metadata()?.len();
        let mut head = Vec::with_capacity(HEADER);
        file.by_ref().take(HEADER as u64).read_to_end(&mut head)?;
        let Some(l) = layout(&head, total) else { return Ok(None) };
        if too_long(&l) {
            return Ok(Some(Err(AudioFileError::TooLong)));
        }
        let frame = l.channels * l.format.bytes();
        let frames = l.data_len as usize / frame;
        if frames == 0 {
            return Ok(Some(Err(AudioFileError::Empty)));
        }
        file.seek(SeekFrom::Start(l.data_offset))?;
        const BLOCK_FRAMES: usize = 16_384;
        let mut bytes = vec![0u8; BLOCK_FRAMES * frame];
        let mut interleaved = Vec::with_capacity(BLOCK_FRAMES * l.channels);
        let mut mono = Vec::with_capacity(frames);
        let mut left = frames;
        while left > 0 {
            let n = left.min(BLOCK_FRAMES);
            file.read_exact(&mut bytes[..n * frame])?;
            interleaved.clear();
            convert(l.format, &bytes[..n * frame], &mut interleaved);
            super::downmix_into(&interleaved, l.channels, &mut mono);
            left -= n;
        }
        Ok(Some(Ok((mono, l.sample_rate))))
    }

    /// Bytes in memory: `None` when they are not for this path.
    pub(super) fn read_slice(bytes: &[u8]) -> Option<Result<AudioClip, AudioFileError>> {
        let l = layout(&bytes[..bytes.len().min(HEADER)], bytes.len() as u64)?;
        if too_long(&l) {
            return Some(Err(AudioFileError::TooLong));
        }
        let start = l.data_offset as usize;
        Some(clip(&l, &bytes[start..start + l.data_len as usize]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_bytes(rate: u32, channels: u16, samples: &[f32]) -> Vec<u8> {
        let mut cursor = Cursor::new(Vec::new());
        let spec = hound::WavSpec { channels, sample_rate: rate, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
        let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        cursor.into_inner()
    }

    #[test]
    fn reads_float_wav_of_any_width() {
        for channels in [1u16, 2, 6, 8] {
            let frames = 1000;
            let samples: Vec<f32> = (0..frames * channels as usize).map(|i| (i % channels as usize) as f32 * 0.1).collect();
            let clip = read_bytes(wav_bytes(48000, channels, &samples)).unwrap();
            assert_eq!((clip.sample_rate, clip.channels, clip.frames()), (48000, channels as usize, frames));
            let mono = clip.mono();
            let expected = (0..channels).map(|c| c as f32 * 0.1).sum::<f32>() / channels as f32;
            assert!((mono[500] - expected).abs() < 1e-6);
        }
    }

    #[test]
    fn non_finite_samples_become_silence() {
        let mono = downmix(&[f32::NAN, 1.0, f32::INFINITY, f32::NEG_INFINITY], 2);
        assert_eq!(mono, vec![0.5, 0.0]);
    }

    #[test]
    fn garbage_and_empty_input_are_errors() {
        assert!(matches!(read_bytes(vec![]), Err(AudioFileError::Unsupported(_))));
        assert!(read_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk".to_vec()).is_err());
        assert!(matches!(read_bytes(wav_bytes(44100, 2, &[])), Err(AudioFileError::Empty)));
        assert!(matches!(read(Path::new("/nonexistent/song.wav")), Err(AudioFileError::Open { .. })));
    }

    /// The fast WAV path gives what symphonia gives, bit for bit: whole files of each format it
    /// takes, files cut anywhere, and headers with bytes overwritten.
    #[test]
    fn the_fast_wav_path_equals_symphonia() {
        let write = |spec: hound::WavSpec, n: usize| {
            let mut cursor = Cursor::new(Vec::new());
            let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
            for i in 0..n * spec.channels as usize {
                let x = ((i as f32) * 0.0137).sin() * 0.9;
                match (spec.sample_format, spec.bits_per_sample) {
                    (hound::SampleFormat::Float, _) => w.write_sample(if i == 7 { f32::NAN } else { x }).unwrap(),
                    (_, 16) => w.write_sample((x * 32767.0) as i16 - (i % 3 == 0) as i16).unwrap(),
                    _ => w.write_sample((x * 8_388_607.0) as i32 - (i % 5 == 0) as i32).unwrap(),
                }
            }
            w.finalize().unwrap();
            cursor.into_inner()
        };
        let symphonia = |b: &[u8]| decode(Box::new(Cursor::new(b.to_vec())), &Hint::new());
        let same = |a: &Result<AudioClip, AudioFileError>, b: &Result<AudioClip, AudioFileError>| match (a, b) {
            (Ok(a), Ok(b)) => {
                a.sample_rate == b.sample_rate
                    && a.channels == b.channels
                    && a.interleaved.len() == b.interleaved.len()
                    && a.interleaved.iter().zip(&b.interleaved).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (Err(a), Err(b)) => std::mem::discriminant(a) == std::mem::discriminant(b),
            _ => false,
        };
        let mut taken = 0;
        let mut seed = 12345u64;
        for (channels, bits, float) in [(1u16, 16u16, false), (2, 16, false), (2, 24, false), (1, 32, true), (2, 32, true)] {
            let spec = hound::WavSpec {
                channels,
                sample_rate: 44100,
                bits_per_sample: bits,
                sample_format: if float { hound::SampleFormat::Float } else { hound::SampleFormat::Int },
            };
            let whole = write(spec, 40_000);
            let mut cases = vec![whole.clone(), write(spec, 0)];
            for cut in [0, 10, 43, 44, 45, 47, 100, whole.len() - 1] {
                cases.push(whole[..cut].to_vec());
            }
            for _ in 0..300 {
                let mut b = whole.clone();
                for _ in 0..3 {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let at = (seed >> 33) as usize % 80;
                    b[at] = (seed >> 20) as u8;
                }
                cases.push(b);
            }
            if bits == 16 {
                assert!(wav::read_slice(&whole).is_some(), "{channels} ch {bits} bit: not read by the fast path");
            }
            for b in &cases {
                if let Some(fast) = wav::read_slice(b) {
                    taken += 1;
                    assert!(same(&fast, &symphonia(b)), "{channels} ch {bits} bit: {:?} vs {:?}", fast.as_ref().err(), symphonia(b).err());
                }
            }
            let path = std::env::temp_dir().join(format!("pianola-fast-wav-{}-{channels}-{bits}.wav", std::process::id()));
            std::fs::write(&path, &whole).unwrap();
            let from_file = read(&path);
            let (mono, rate) = read_mono(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            assert!(same(&from_file, &symphonia(&whole)));
            let clip = from_file.unwrap();
            assert_eq!(rate, clip.sample_rate);
            assert!(
                mono.len() == clip.frames() && mono.iter().zip(clip.mono()).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{channels} ch {bits} bit: read_mono"
            );
        }
        assert!(taken > 100, "the fast path read only {taken} of the cases");
    }

    #[test]
    fn truncated_file_keeps_what_it_has() {
        let samples: Vec<f32> = (0..20000).map(|i| (i as f32 * 0.01).sin()).collect();
        let mut bytes = wav_bytes(22050, 1, &samples);
        bytes.truncate(bytes.len() / 2);
        let clip = read_bytes(bytes).unwrap();
        assert!(clip.frames() > 5000 && clip.frames() < 20000);
    }
}
