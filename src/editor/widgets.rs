//! The panel's controls. Every change goes through the host's parameter setter as one gesture
//! (begin, set..., end), so hosts record automation and undo exactly as for their own knobs.
//!
//! Param bar: drag sideways (Shift: fine), click to jump, double-click for the default, mouse wheel
//! for one step.

use super::theme;
use egui::{pos2, vec2, Align2, Color32, FontId, Rect, Response, Sense, Stroke, StrokeKind, Ui};
use nice_plug::params::enums::Enum;
use nice_plug::prelude::{BoolParam, EnumParam, Param, ParamSetter};

pub const BAR_HEIGHT: f32 = 30.0;

/// Sets `param` to `normalized` as one host gesture.
fn gesture<P: Param>(setter: &ParamSetter, param: &P, normalized: f32) {
    setter.begin_set_parameter(param);
    setter.set_parameter_normalized(param, normalized.clamp(0.0, 1.0));
    setter.end_set_parameter(param);
}

/// A horizontal value bar for any parameter. `value_text` overrides the parameter's own text.
pub fn param_bar<P: Param>(ui: &mut Ui, setter: &ParamSetter, param: &P, label: &str, value_text: Option<String>, help: &str) -> Response {
    let width = ui.available_width();
    let (rect, response) = ui.allocate_exact_size(vec2(width, BAR_HEIGHT), Sense::click_and_drag());
    let id = response.id;
    let fine = ui.input(|i| i.modifiers.shift);

    if response.drag_started() {
        setter.begin_set_parameter(param);
        ui.data_mut(|d| d.insert_temp(id, param.unmodulated_normalized_value()));
    }
    if response.dragged() {
        let delta = response.drag_delta().x / rect.width().max(1.0) * if fine { 0.1 } else { 1.0 };
        let value = ui.data(|d| d.get_temp::<f32>(id)).unwrap_or_else(|| param.unmodulated_normalized_value()) + delta;
        let value = value.clamp(0.0, 1.0);
        ui.data_mut(|d| d.insert_temp(id, value));
        setter.set_parameter_normalized(param, value);
    }
    if response.drag_stopped() {
        setter.end_set_parameter(param);
        ui.data_mut(|d| d.remove::<f32>(id));
    }
    if response.double_clicked() {
        gesture(setter, param, param.default_normalized_value());
    } else if response.clicked() {
        if let Some(p) = response.interact_pointer_pos() {
            gesture(setter, param, (p.x - rect.left()) / rect.width().max(1.0));
        }
    }
    if response.hovered() {
        // Raw wheel events (not egui's smoothed delta, which would step several times per notch).
        let scroll: f32 = ui.input(|i| i.raw.events.iter().map(|e| if let egui::Event::MouseWheel { delta, .. } = e { delta.x + delta.y } else { 0.0 }).sum());
        if scroll != 0.0 {
            let now = param.unmodulated_normalized_value();
            let next = if scroll > 0.0 { param.next_normalized_step(now, fine) } else { param.previous_normalized_step(now, fine) };
            gesture(setter, param, next);
        }
    }

    if ui.is_rect_visible(rect) {
        let painter = ui.painter();
        let value = param.modulated_normalized_value().clamp(0.0, 1.0);
        let hot = response.hovered() || response.dragged();
        painter.rect_filled(rect, 5.0, theme::PANEL_RAISED);
        if value > 0.0 {
            let fill = Rect::from_min_max(rect.min, pos2(rect.left() + rect.width() * value, rect.bottom()));
            painter.rect_filled(fill, 5.0, theme::ACCENT_DIM);
            let x = fill.right().clamp(rect.left() + 1.0, rect.right() - 1.0);
            painter.vline(x, rect.y_range().shrink(4.0), Stroke::new(2.0, theme::ACCENT));
        }
        painter.rect_stroke(rect, 5.0, Stroke::new(1.0, if hot { theme::TEXT_FAINT } else { theme::BORDER }), StrokeKind::Inside);
        painter.text(pos2(rect.left() + 10.0, rect.center().y), Align2::LEFT_CENTER, label, FontId::proportional(13.0), theme::TEXT_DIM);
        let text = value_text.unwrap_or_else(|| param.normalized_value_to_string(param.modulated_normalized_value(), true));
        painter.text(pos2(rect.right() - 10.0, rect.center().y), Align2::RIGHT_CENTER, text, FontId::proportional(13.0), theme::TEXT);
    }
    response.on_hover_text(format!("{help}\nDrag (Shift: fine), click to set, double-click to reset, wheel to step."))
}

/// A row of mutually exclusive choices for an enum parameter.
pub fn segmented<T: Enum + PartialEq + Copy + 'static>(
    ui: &mut Ui,
    setter: &ParamSetter,
    param: &EnumParam<T>,
    options: &[(T, &str, &str)],
    height: f32,
) -> Response {
    let width = ui.available_width();
    let (rect, response) = ui.allocate_exact_size(vec2(width, height), Sense::hover());
    let painter = ui.painter().clone();
    painter.rect_filled(rect, 6.0, theme::PANEL_RAISED);
    painter.rect_stroke(rect, 6.0, Stroke::new(1.0, theme::BORDER), StrokeKind::Inside);
    let n = options.len().max(1) as f32;
    let seg_w = rect.width() / n;
    let current = param.value();
    for (k, (value, label, help)) in options.iter().enumerate() {
        let seg = Rect::from_min_size(pos2(rect.left() + k as f32 * seg_w, rect.top()), vec2(seg_w, rect.height())).shrink(3.0);
        let id = response.id.with(k);
        let r = ui.interact(seg, id, Sense::click()).on_hover_text(*help);
        let selected = *value == current;
        if r.clicked() && !selected {
            setter.begin_set_parameter(param);
            setter.set_parameter(param, *value);
            setter.end_set_parameter(param);
        }
        let (fill, text) = if selected {
            (theme::ACCENT, Color32::from_rgb(0x1a, 0x14, 0x0c))
        } else if r.hovered() {
            (Color32::from_rgb(0x31, 0x36, 0x41), theme::TEXT)
        } else {
            (Color32::TRANSPARENT, theme::TEXT_DIM)
        };
        painter.rect_filled(seg, 4.0, fill);
        painter.text(seg.center(), Align2::CENTER_CENTER, *label, FontId::proportional(13.0), text);
    }
    response
}

/// A lit button for a boolean parameter.
pub fn toggle(ui: &mut Ui, setter: &ParamSetter, param: &BoolParam, label: &str, on_color: Color32, help: &str) -> Response {
    let galley = ui.painter().layout_no_wrap(label.to_string(), FontId::proportional(13.0), theme::TEXT);
    let size = vec2(galley.size().x + 34.0, 28.0);
    let (rect, response) = ui.allocate_exact_size(size, Sense::click());
    let on = param.value();
    if response.clicked() {
        setter.begin_set_parameter(param);
        setter.set_parameter(param, !on);
        setter.end_set_parameter(param);
    }
    let painter = ui.painter();
    let fill = if on {
        on_color.gamma_multiply(0.25)
    } else if response.hovered() {
        Color32::from_rgb(0x31, 0x36, 0x41)
    } else {
        theme::PANEL_RAISED
    };
    painter.rect_filled(rect, 14.0, fill);
    painter.rect_stroke(rect, 14.0, Stroke::new(1.0, if on { on_color } else { theme::BORDER }), StrokeKind::Inside);
    painter.circle_filled(pos2(rect.left() + 14.0, rect.center().y), 4.0, if on { on_color } else { theme::TEXT_FAINT });
    painter.text(
        pos2(rect.left() + 24.0, rect.center().y),
        Align2::LEFT_CENTER,
        label,
        FontId::proportional(13.0),
        if on { theme::TEXT } else { theme::TEXT_DIM },
    );
    response.on_hover_text(help)
}

/// A small caps section title.
pub fn section(ui: &mut Ui, title: &str) {
    ui.add_space(6.0);
    ui.label(egui::RichText::new(title).size(11.0).color(theme::TEXT_FAINT).strong());
}

/// A plain action button in the panel's style.
pub fn action(ui: &mut Ui, label: &str, primary: bool, enabled: bool, help: &str) -> Response {
    let text = egui::RichText::new(label).size(13.0).color(if primary && enabled { Color32::from_rgb(0x1a, 0x14, 0x0c) } else { theme::TEXT });
    let mut button = egui::Button::new(text).min_size(vec2(0.0, 28.0)).corner_radius(5.0);
    if primary && enabled {
        button = button.fill(theme::ACCENT);
    }
    ui.add_enabled(enabled, button).on_hover_text(help).on_disabled_hover_text(help)
}

/// A coloured dot and a line of text.
pub fn status_dot(ui: &mut Ui, color: Color32, text: &str, detail: &str, size: f32) -> Response {
    let galley = ui.painter().layout_no_wrap(text.to_string(), FontId::proportional(size), theme::TEXT);
    let (rect, response) = ui.allocate_exact_size(vec2(galley.size().x + 16.0, galley.size().y.max(18.0)), Sense::hover());
    ui.painter().circle_filled(pos2(rect.left() + 4.0, rect.center().y), 4.0, color);
    ui.painter().galley(pos2(rect.left() + 14.0, rect.center().y - galley.size().y / 2.0), galley, theme::TEXT);
    response.on_hover_text(detail)
}
