//! Reading songs from disk: WAV, MP3, FLAC and OGG/Vorbis through symphonia (pure Rust), into f32
//! samples with their rate and channel count, and the downmix to mono the model hears. Anything the
//! decoders cannot read becomes a clear [`AudioFileError`], never a panic.

use std::io::Cursor;
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
    let channels = channels.max(1);
    let scale = 1.0 / channels as f32;
    interleaved.chunks_exact(channels).map(|frame| frame.iter().map(|&s| mono_part(s, scale)).sum::<f32>()).collect()
}

pub fn read(path: &Path) -> Result<AudioClip, AudioFileError> {
    let file = std::fs::File::open(path).map_err(|source| AudioFileError::Open { path: path.display().to_string(), source })?;
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    decode(Box::new(file), &hint)
}

/// Decodes a file held in memory (the fuzz tests go through here).
pub fn read_bytes(bytes: Vec<u8>) -> Result<AudioClip, AudioFileError> {
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

    #[test]
    fn truncated_file_keeps_what_it_has() {
        let samples: Vec<f32> = (0..20000).map(|i| (i as f32 * 0.01).sin()).collect();
        let mut bytes = wav_bytes(22050, 1, &samples);
        bytes.truncate(bytes.len() / 2);
        let clip = read_bytes(bytes).unwrap();
        assert!(clip.frames() > 5000 && clip.frames() < 20000);
    }
}
