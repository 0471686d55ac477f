//! Pure-Rust inference with tract: no native library, so the plugin bundle cannot clash with another
//! plugin's ONNX Runtime in the same DAW process. The input fact is pinned to batch 1 and one window
//! length, the only shapes tract can optimise this graph for: a shorter window (Live mode) gets its
//! own plan, made once.

use super::{check_window, copy_output, window_samples, ModelError, NoteModel, WindowFrames, WindowPlans, CONTOUR_OUTPUT, NOTE_OUTPUT, ONSET_OUTPUT};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::knobs::KnobScope;

/// How tract plans the graph. `Fast` (tract's optimised kernels, what the plugin runs) stays within
/// ~3.4e-6 of ONNX Runtime on every posterior; `Exact` (the decluttered graph without kernel
/// rewrites) within ~1e-6 but costs ~3.4x the time. Measured in tests/model_parity.rs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TractPrecision {
    #[default]
    Fast,
    Exact,
}

/// One planned window length.
struct Plan {
    /// Reused between windows: tract keeps its scratch buffers in the state.
    state: TypedSimpleState,
    /// Output slot of (note, onset, contour) in the plan's outputs, resolved by ONNX name.
    slots: [usize; 3],
}

pub struct TractModel {
    precision: TractPrecision,
    plans: WindowPlans<Plan>,
}

impl TractModel {
    pub fn from_bytes(onnx: &[u8], precision: TractPrecision) -> Result<Self, ModelError> {
        Ok(Self { precision, plans: WindowPlans::new(onnx, |onnx, frames| plan(onnx, frames, precision))? })
    }

    fn plan(&mut self, frames: usize) -> Result<&mut Plan, ModelError> {
        let precision = self.precision;
        self.plans.get(frames, |onnx, frames| plan(onnx, frames, precision))
    }
}

/// Plans the graph for windows of `frames`.
fn plan(onnx: &[u8], frames: usize, precision: TractPrecision) -> Result<Plan, ModelError> {
    let load = |e: TractError| ModelError::Load(format!("{e:#}"));
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(onnx))
        .map_err(load)?
        .with_input_fact(0, f32::fact([1, window_samples(frames), 1]).into())
        .map_err(load)?
        .into_typed()
        .map_err(load)?;
    let model = match precision {
        // tract's direct spatial convolution sums in an order that left posteriors up to 1.8e-4
        // from ONNX Runtime's (the reference); im2col + matrix product, its other lowering,
        // stays within 3.4e-6 and is no slower here (a 32 s song: 2.62-3.34 s against 3.06 s).
        // The knob is scoped to this thread while the plan is made: nothing else in the host
        // process (another plugin on tract) is touched.
        TractPrecision::Fast => {
            let scope = KnobScope::new([("TRACT_DISABLE_DIRECT_SPATIAL", "true")]).map_err(load)?;
            scope.enter(|| model.into_optimized()).map_err(load)?
        }
        TractPrecision::Exact => model.into_decluttered().map_err(load)?,
    };
    let mut slots = [usize::MAX; 3];
    for (slot, outlet) in model.output_outlets().map_err(load)?.iter().enumerate() {
        let label = model.outlet_label(*outlet).unwrap_or(&model.node(outlet.node).name);
        for (i, name) in [NOTE_OUTPUT, ONSET_OUTPUT, CONTOUR_OUTPUT].iter().enumerate() {
            if label == *name {
                slots[i] = slot;
            }
        }
    }
    if slots.contains(&usize::MAX) {
        return Err(ModelError::Load("model lacks the Basic Pitch note/onset/contour outputs".into()));
    }
    let state = model.into_runnable().map_err(load)?.spawn().map_err(load)?;
    Ok(Plan { state, slots })
}

impl NoteModel for TractModel {
    fn backend(&self) -> &'static str {
        "tract"
    }

    fn run_window(&mut self, window: &[f32], out: &mut WindowFrames) -> Result<(), ModelError> {
        let frames = check_window(window)?;
        let plan = self.plan(frames)?;
        out.set_frames(frames);
        let err = |e: TractError| ModelError::Inference(format!("{e:#}"));
        let input = Tensor::from_shape(&[1, window.len(), 1], window).map_err(err)?;
        let outputs = plan.state.run(tvec!(input.into())).map_err(err)?;
        for (dst, slot, name) in
            [(&mut out.note, plan.slots[0], NOTE_OUTPUT), (&mut out.onset, plan.slots[1], ONSET_OUTPUT), (&mut out.contour, plan.slots[2], CONTOUR_OUTPUT)]
        {
            let view = outputs[slot].try_as_plain_ram().map_err(err)?;
            copy_output(dst, view.as_slice::<f32>().map_err(err)?, name)?;
        }
        Ok(())
    }

    fn prepare_window(&mut self, frames: usize) -> Result<(), ModelError> {
        self.plan(frames).map(|_| ())
    }
}
