//! Window length surgery on the Basic Pitch ONNX graph.
//!
//! The TensorFlow converter baked the 2 s window into the graph: every reshape in the CQT front end
//! and the heads carries its time length as a constant (43844, 44100, 21922, ... per octave, 172
//! frames), so ONNX Runtime and tract refuse any other length. Live mode wants a shorter window,
//! because every hop runs the whole window and the window's length sets the compute per hop.
//!
//! [`with_window_frames`] rewrites each constant reshape shape `[-1, .., T, ..]` to `[1, .., -1, ..]`
//! (batch pinned to 1, the time length inferred from the input) and declares the new input and output
//! lengths. Nothing else in the graph depends on the length. At the full window the rewritten graph
//! gives bit-identical outputs (tests/model_parity.rs); the plugin still runs the original file there.
//!
//! The shortest window is [`super::MIN_WINDOW_FRAMES`]: the deepest CQT octave runs at 1/256 of the
//! rate and reflect-pads 128 samples each side, which needs more than 128 samples, i.e. 130 frames.

use super::{window_samples, ModelError, FRAMES_PER_WINDOW, MIN_WINDOW_FRAMES};
use crate::notes::{N_CONTOUR_BINS, N_KEYS};
use prost::Message;
use tract_onnx::pb::{self, tensor_proto::DataType, tensor_shape_proto::dimension, type_proto};

/// Dimensions of a reshape that are not time: batch/channel 1, CQT bins per octave (36), keys,
/// contour bins.
const NON_TIME_DIMS: [i64; 4] = [1, 36, N_KEYS as i64, N_CONTOUR_BINS as i64];

/// The ONNX model `onnx` rewritten to take a window of `frames` frames ([`window_samples`]).
pub fn with_window_frames(onnx: &[u8], frames: usize) -> Result<Vec<u8>, ModelError> {
    if !(MIN_WINDOW_FRAMES..=FRAMES_PER_WINDOW).contains(&frames) {
        return Err(ModelError::Load(format!("a window of {frames} frames is outside {MIN_WINDOW_FRAMES}..={FRAMES_PER_WINDOW}")));
    }
    let bad = |why: String| ModelError::Load(format!("cannot resize the model's window: {why}"));
    let mut model = pb::ModelProto::decode(onnx).map_err(|e| bad(e.to_string()))?;
    let graph = model.graph.as_mut().ok_or_else(|| bad("no graph".into()))?;

    let shape_inputs: std::collections::HashSet<String> =
        graph.node.iter().filter(|n| n.op_type == "Reshape").filter_map(|n| n.input.get(1).cloned()).collect();
    let mut rewritten = 0;
    for init in graph.initializer.iter_mut().filter(|t| shape_inputs.contains(&t.name)) {
        let mut dims = int64_values(init).ok_or_else(|| bad(format!("reshape shape {} is not int64", init.name)))?;
        if dims.first() != Some(&-1) {
            return Err(bad(format!("reshape shape {} does not start with the batch (-1): {dims:?}", init.name)));
        }
        let time: Vec<usize> = (1..dims.len()).filter(|&k| !NON_TIME_DIMS.contains(&dims[k])).collect();
        if time.len() != 1 {
            return Err(bad(format!("reshape shape {} has no single time length: {dims:?}", init.name)));
        }
        dims[0] = 1;
        dims[time[0]] = -1;
        init.raw_data = dims.iter().flat_map(|d| d.to_le_bytes()).collect();
        init.int64_data.clear();
        rewritten += 1;
    }
    if rewritten == 0 {
        return Err(bad("no constant reshape found (not a Basic Pitch graph?)".into()));
    }

    let samples = window_samples(frames) as i64;
    for (values, lengths) in [(&mut graph.input, [1, samples]), (&mut graph.output, [1, frames as i64])] {
        for value in values.iter_mut() {
            if let Some(pb::TypeProto { value: Some(type_proto::Value::TensorType(t)), .. }) = value.r#type.as_mut() {
                if let Some(shape) = t.shape.as_mut() {
                    for (dim, len) in shape.dim.iter_mut().zip(lengths) {
                        dim.value = Some(dimension::Value::DimValue(len));
                    }
                }
            }
        }
    }
    Ok(model.encode_to_vec())
}

/// The values of a small int64 constant, from `raw_data` (little-endian) or `int64_data`.
fn int64_values(t: &pb::TensorProto) -> Option<Vec<i64>> {
    if t.data_type != DataType::Int64 as i32 {
        return None;
    }
    if !t.raw_data.is_empty() {
        if !t.raw_data.len().is_multiple_of(8) {
            return None;
        }
        return Some(t.raw_data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect());
    }
    Some(t.int64_data.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BASIC_PITCH_ONNX;

    #[test]
    fn every_time_length_is_freed_and_the_io_is_declared() {
        let bytes = with_window_frames(BASIC_PITCH_ONNX, MIN_WINDOW_FRAMES).unwrap();
        let model = pb::ModelProto::decode(bytes.as_slice()).unwrap();
        let graph = model.graph.unwrap();
        let shapes: std::collections::HashSet<&str> =
            graph.node.iter().filter(|n| n.op_type == "Reshape").filter_map(|n| n.input.get(1)).map(|s| s.as_str()).collect();
        let mut seen = 0;
        for init in graph.initializer.iter().filter(|t| shapes.contains(t.name.as_str())) {
            let dims = int64_values(init).unwrap();
            assert_eq!(dims[0], 1, "{}", init.name);
            assert_eq!(dims.iter().filter(|&&d| d == -1).count(), 1, "{}: {dims:?}", init.name);
            assert!(!dims.iter().any(|d| [43844, 44100, 172].contains(d)), "{}: {dims:?}", init.name);
            seen += 1;
        }
        assert!(seen > 40, "only {seen} reshapes");
        let dim = |v: &pb::ValueInfoProto, k: usize| match v.r#type.as_ref().unwrap().value.as_ref().unwrap() {
            type_proto::Value::TensorType(t) => t.shape.as_ref().unwrap().dim[k].value.clone(),
        };
        assert_eq!(dim(&graph.input[0], 1), Some(dimension::Value::DimValue(window_samples(MIN_WINDOW_FRAMES) as i64)));
        for o in &graph.output {
            assert_eq!(dim(o, 1), Some(dimension::Value::DimValue(MIN_WINDOW_FRAMES as i64)));
        }
    }

    #[test]
    fn out_of_range_windows_and_other_graphs_are_refused() {
        assert!(with_window_frames(BASIC_PITCH_ONNX, MIN_WINDOW_FRAMES - 1).is_err());
        assert!(with_window_frames(BASIC_PITCH_ONNX, FRAMES_PER_WINDOW + 1).is_err());
        assert!(with_window_frames(b"not a model", 150).is_err());
        assert!(with_window_frames(&pb::ModelProto::default().encode_to_vec(), 150).is_err());
    }
}
