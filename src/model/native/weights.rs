//! Reads what the native engine needs from the Basic Pitch ONNX graph: the CQT filter banks, the
//! lowpass downsampler, the per-bin scale, the log and batch-norm constants, the harmonic shifts and
//! the six network convolutions with their pads and strides. Everything is found by the graph's
//! structure (weight shapes, the op that consumes a result) or by the Keras layer names the
//! converter kept, and checked, so another graph is refused at load instead of computed wrongly.

use super::super::ModelError;
use prost::Message;
use std::collections::HashMap;
use tract_onnx::pb::{self, tensor_proto::DataType};

/// A float constant of the graph.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

/// One 2-D convolution of the network as the graph states it (weights `[out][in][kh][kw]`).
#[derive(Clone, Debug)]
pub struct ConvSpec {
    pub weight: Tensor,
    pub bias: Vec<f32>,
    /// (top, left) zero padding; the graph's pads are symmetric here (checked).
    pub pad: (usize, usize),
    /// Stride along frequency (time stride is 1, checked).
    pub stride_w: usize,
}

/// Everything the native engine computes with.
#[derive(Clone, Debug)]
pub struct Weights {
    /// CQT filters, real and imaginary part, `[36][256]` each.
    pub cqt_real: Tensor,
    pub cqt_imag: Tensor,
    /// The anti-aliasing lowpass applied before each stride-2 downsampling, 256 taps.
    pub lowpass: Vec<f32>,
    /// Per-bin scale of the kept CQT bins (the last `scale.len()` of 9 octaves x 36).
    pub bin_scale: Vec<f32>,
    /// NormalizedLog: `10 * log10(power + eps)` as the graph computes it (`ln * log10_e * ten`).
    pub log_eps: f32,
    pub log10_e: f32,
    pub log_ten: f32,
    /// The batch normalisation after the log, folded to one scale and offset.
    pub bn_scale: f32,
    pub bn_offset: f32,
    /// Harmonic stacking: channel c reads bin `f + shifts[c]` (0 outside the CQT).
    pub harmonic_shifts: Vec<isize>,
    /// conv2d_4 (8 -> 32, 5x5, stride 3, ReLU): the onset branch's view of the stack.
    pub onset_stack: ConvSpec,
    /// conv2d_1 (8 -> 8, 3x39, ReLU).
    pub contour_hidden: ConvSpec,
    /// contours-reduced (8 -> 1, 5x5, sigmoid): the contour output.
    pub contour_out: ConvSpec,
    /// conv2d_2 (1 -> 32, 7x7, stride 3, ReLU) on the contour.
    pub note_hidden: ConvSpec,
    /// conv2d_3 (32 -> 1, 7x3, sigmoid): the note output.
    pub note_out: ConvSpec,
    /// conv2d_5 (33 -> 1, 3x3, sigmoid) on [note, onset_stack]: the onset output.
    pub onset_out: ConvSpec,
}

fn bad(why: impl std::fmt::Display) -> ModelError {
    ModelError::Load(format!("native engine: {why}"))
}

fn floats(t: &pb::TensorProto) -> Result<Tensor, ModelError> {
    if t.data_type != DataType::Float as i32 {
        return Err(bad(format!("constant {} is not float32", t.name)));
    }
    let data: Vec<f32> = if !t.raw_data.is_empty() {
        if !t.raw_data.len().is_multiple_of(4) {
            return Err(bad(format!("constant {} has a truncated payload", t.name)));
        }
        t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    } else {
        t.float_data.clone()
    };
    let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
    if dims.iter().product::<usize>() != data.len() {
        return Err(bad(format!("constant {} has {} values for dims {dims:?}", t.name, data.len())));
    }
    Ok(Tensor { dims, data })
}

fn ints(t: &pb::TensorProto) -> Option<Vec<i64>> {
    if t.data_type != DataType::Int64 as i32 {
        return None;
    }
    if !t.raw_data.is_empty() {
        return Some(t.raw_data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect());
    }
    Some(t.int64_data.clone())
}

struct Graph<'a> {
    nodes: &'a [pb::NodeProto],
    init: HashMap<&'a str, &'a pb::TensorProto>,
}

impl<'a> Graph<'a> {
    fn float(&self, name: &str) -> Option<Result<Tensor, ModelError>> {
        self.init.get(name).map(|t| floats(t))
    }
    fn producer(&self, value: &str) -> Option<&'a pb::NodeProto> {
        self.nodes.iter().find(|n| n.output.iter().any(|o| o == value))
    }
    /// Whether a node of `op` reads `value`.
    fn consumed_by(&self, value: &str, op: &str) -> bool {
        self.nodes.iter().any(|n| n.op_type == op && n.input.iter().any(|i| i == value))
    }
    /// The one node of `op` whose name contains `part`.
    fn named(&self, op: &str, part: &str) -> Result<&'a pb::NodeProto, ModelError> {
        let found: Vec<_> = self.nodes.iter().filter(|n| n.op_type == op && n.name.contains(part)).collect();
        match found.as_slice() {
            [one] => Ok(one),
            _ => Err(bad(format!("expected one {op} node named like {part}, found {}", found.len()))),
        }
    }
    /// The scalar constant among a node's inputs.
    fn scalar_input(&self, node: &pb::NodeProto) -> Result<f32, ModelError> {
        for i in &node.input {
            if let Some(t) = self.float(i) {
                let t = t?;
                if t.data.len() == 1 {
                    return Ok(t.data[0]);
                }
            }
        }
        Err(bad(format!("node {} has no scalar constant", node.name)))
    }
    fn ints_input(&self, node: &pb::NodeProto, k: usize) -> Result<Vec<i64>, ModelError> {
        node.input
            .get(k)
            .and_then(|n| self.init.get(n.as_str()))
            .and_then(|t| ints(t))
            .ok_or_else(|| bad(format!("node {} input {k} is not an int64 constant", node.name)))
    }
}

fn attr_ints(node: &pb::NodeProto, name: &str) -> Vec<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.ints.clone()).unwrap_or_default()
}

impl Weights {
    pub fn from_onnx(onnx: &[u8]) -> Result<Self, ModelError> {
        let model = pb::ModelProto::decode(onnx).map_err(|e| bad(format!("not an ONNX model: {e}")))?;
        let graph = model.graph.as_ref().ok_or_else(|| bad("no graph"))?;
        let g = Graph { nodes: &graph.node, init: graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect() };

        // Convolutions by the shape of their weights.
        let convs: Vec<(&pb::NodeProto, Tensor)> = g
            .nodes
            .iter()
            .filter(|n| n.op_type == "Conv")
            .map(|n| {
                let w = n.input.get(1).and_then(|i| g.float(i)).ok_or_else(|| bad(format!("conv {} has no constant weights", n.name)))??;
                Ok((n, w))
            })
            .collect::<Result<_, ModelError>>()?;
        let by_dims = |dims: &[usize]| convs.iter().filter(|(_, w)| w.dims == dims).collect::<Vec<_>>().into_iter();

        // The CQT: two banks of 36 x 256-tap filters; the imaginary one's result is negated.
        let mut real = None;
        let mut imag = None;
        for (node, w) in by_dims(&[36, 1, 1, 256]) {
            let negated = g.consumed_by(&node.output[0], "Neg");
            let slot = if negated { &mut imag } else { &mut real };
            match slot {
                None => *slot = Some((node.input[1].clone(), w.clone())),
                Some((name, _)) if *name == node.input[1] => {}
                Some(_) => return Err(bad("the CQT uses more than one real or imaginary filter bank")),
            }
            if let Some(b) = node.input.get(2).and_then(|i| g.float(i)) {
                if b?.data.iter().any(|&v| v != 0.0) {
                    return Err(bad("the CQT filters have a bias"));
                }
            }
        }
        let reshape = |t: Tensor| Tensor { dims: vec![36, 256], data: t.data };
        let cqt_real = reshape(real.ok_or_else(|| bad("no real CQT filter bank"))?.1);
        let cqt_imag = reshape(imag.ok_or_else(|| bad("no imaginary CQT filter bank"))?.1);
        let lowpass = by_dims(&[1, 1, 1, 256]).next().ok_or_else(|| bad("no CQT lowpass filter"))?.1.data.clone();

        let bin_scale = g.named("Mul", "cq_t2010v2_1/mul_1")?;
        let bin_scale = bin_scale.input.iter().find_map(|i| g.float(i)).ok_or_else(|| bad("the CQT scale is not a constant"))??.data;

        let log_eps = g.scalar_input(g.named("Add", "normalized_log_1/add")?)?;
        let log10_e = g.scalar_input(g.named("Mul", "normalized_log_1/truediv")?)?;
        let log_ten = g.scalar_input(g.named("Mul", "normalized_log_1/mul")?)?;
        let bn_scale = g.scalar_input(g.named("Mul", "batch_normalization")?)?;
        let bn_offset = g.scalar_input(g.named("Add", "batch_normalization")?)?;

        // Harmonic stacking: the concat of the shifted copies, in channel order.
        let concat = g.named("Concat", "harmonic-stacking-diff/concat")?;
        let mut harmonic_shifts = vec![];
        for input in &concat.input {
            let shift = match g.producer(input) {
                Some(pad) if pad.op_type == "Pad" => {
                    let slice = g.producer(&pad.input[0]).filter(|s| s.op_type == "Slice").ok_or_else(|| bad("harmonic shift without a slice"))?;
                    let (starts, ends) = (g.ints_input(slice, 1)?, g.ints_input(slice, 2)?);
                    let axes = g.ints_input(slice, 3)?;
                    let k = axes.iter().position(|&a| a == 2).ok_or_else(|| bad("harmonic slice not along frequency"))?;
                    if starts[k] > 0 {
                        starts[k] as isize
                    } else if ends[k] < 0 {
                        ends[k] as isize
                    } else {
                        return Err(bad("harmonic slice shifts nothing"));
                    }
                }
                _ => 0,
            };
            harmonic_shifts.push(shift);
        }

        let spec = |dims: &[usize], stride: usize, name: &str| -> Result<ConvSpec, ModelError> {
            let mut found = by_dims(dims);
            let (node, weight) = found.next().ok_or_else(|| bad(format!("no {name} convolution (weights {dims:?})")))?;
            if found.next().is_some() {
                return Err(bad(format!("two convolutions with weights {dims:?}")));
            }
            let bias = node.input.get(2).and_then(|i| g.float(i)).ok_or_else(|| bad(format!("{name} has no bias")))??.data;
            let pads = attr_ints(node, "pads");
            let strides = attr_ints(node, "strides");
            let group = node.attribute.iter().find(|a| a.name == "group").map_or(1, |a| a.i);
            let dil = attr_ints(node, "dilations");
            if pads.len() != 4 || pads[0] != pads[2] || pads[1] != pads[3] || strides != [1, stride as i64] || group != 1 || dil.iter().any(|&d| d != 1) {
                return Err(bad(format!("{name}: unexpected geometry pads {pads:?} strides {strides:?}")));
            }
            if bias.len() != dims[0] {
                return Err(bad(format!("{name}: {} biases for {} outputs", bias.len(), dims[0])));
            }
            Ok(ConvSpec { weight: weight.clone(), bias, pad: (pads[0] as usize, pads[1] as usize), stride_w: stride })
        };

        let w = Weights {
            cqt_real,
            cqt_imag,
            lowpass,
            bin_scale,
            log_eps,
            log10_e,
            log_ten,
            bn_scale,
            bn_offset,
            onset_stack: spec(&[32, 8, 5, 5], 3, "conv2d_4")?,
            contour_hidden: spec(&[8, 8, 3, 39], 1, "conv2d_1")?,
            contour_out: spec(&[1, 8, 5, 5], 1, "contours-reduced")?,
            note_hidden: spec(&[32, 1, 7, 7], 3, "conv2d_2")?,
            note_out: spec(&[1, 32, 7, 3], 1, "conv2d_3")?,
            onset_out: spec(&[1, 33, 3, 3], 1, "conv2d_5")?,
            harmonic_shifts,
        };
        if w.harmonic_shifts.len() != 8 || w.bin_scale.is_empty() || w.bin_scale.len() > 9 * 36 {
            return Err(bad(format!("unexpected harmonic stack {:?} / {} CQT bins", w.harmonic_shifts, w.bin_scale.len())));
        }
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BASIC_PITCH_ONNX;

    #[test]
    fn basic_pitch_constants_are_found() {
        let w = Weights::from_onnx(BASIC_PITCH_ONNX).unwrap();
        assert_eq!(w.harmonic_shifts, vec![-36, 0, 36, 57, 72, 84, 93, 101]);
        assert_eq!(w.bin_scale.len(), 309);
        assert_eq!(w.lowpass.len(), 256);
        assert!((w.log10_e - std::f32::consts::LOG10_E).abs() < 1e-7 && w.log_ten == 10.0, "{} {}", w.log10_e, w.log_ten);
        assert_eq!(w.contour_hidden.pad, (1, 19));
        assert_eq!(w.onset_stack.pad, (2, 1));
        assert_eq!(w.note_hidden.pad, (3, 2));
        assert!(w.cqt_real.data != w.cqt_imag.data);
    }

    #[test]
    fn other_graphs_are_refused() {
        assert!(Weights::from_onnx(b"not a model").is_err());
        assert!(Weights::from_onnx(&pb::ModelProto::default().encode_to_vec()).is_err());
    }
}
