//! Colours and egui style of the panel: a dark instrument-plugin look with one warm accent.
//! The hand colours are solid (no transparency) so a screenshot test can count them.

use egui::{Color32, CornerRadius, FontFamily, FontId, Stroke, TextStyle};

pub const BG: Color32 = Color32::from_rgb(0x16, 0x18, 0x1d);
pub const PANEL: Color32 = Color32::from_rgb(0x1e, 0x21, 0x28);
pub const PANEL_RAISED: Color32 = Color32::from_rgb(0x27, 0x2b, 0x34);
pub const BORDER: Color32 = Color32::from_rgb(0x33, 0x38, 0x43);
pub const TEXT: Color32 = Color32::from_rgb(0xe6, 0xe8, 0xec);
pub const TEXT_DIM: Color32 = Color32::from_rgb(0x94, 0x9a, 0xa6);
pub const TEXT_FAINT: Color32 = Color32::from_rgb(0x6b, 0x71, 0x7d);
pub const ACCENT: Color32 = Color32::from_rgb(0xf0, 0xa0, 0x3c);
pub const ACCENT_DIM: Color32 = Color32::from_rgb(0x6e, 0x4c, 0x24);

/// Right hand (accompaniment voices), left hand, the melody (right hand's top voice) and the
/// sustain pedal: Okabe & Ito's colour-blind-safe palette (yellow, reddish purple, sky blue,
/// bluish green), told apart with protanopia, deuteranopia and tritanopia, and by lightness too
/// (melody lightest). Read by scripts/check_editor_screenshot.py.
pub const RIGHT_HAND: Color32 = Color32::from_rgb(0xcc, 0x79, 0xa7);
pub const MELODY: Color32 = Color32::from_rgb(0xf0, 0xe4, 0x42);
pub const LEFT_HAND: Color32 = Color32::from_rgb(0x56, 0xb4, 0xe9);
pub const PEDAL: Color32 = Color32::from_rgb(0x00, 0x9e, 0x73);
pub const NOTE_EDGE: Color32 = Color32::from_rgb(0x10, 0x11, 0x14);

pub const ROLL_BG: Color32 = Color32::from_rgb(0x1a, 0x1d, 0x23);
pub const ROLL_BLACK_ROW: Color32 = Color32::from_rgb(0x16, 0x18, 0x1d);
pub const GRID_BAR: Color32 = Color32::from_rgb(0x3d, 0x43, 0x4f);
pub const GRID_BEAT: Color32 = Color32::from_rgb(0x26, 0x2a, 0x32);
pub const GRID_SIXTEENTH: Color32 = Color32::from_rgb(0x20, 0x23, 0x2a);
pub const GRID_OCTAVE: Color32 = Color32::from_rgb(0x2c, 0x31, 0x3a);
pub const RULER_BG: Color32 = Color32::from_rgb(0x20, 0x23, 0x2a);
pub const CAPTURED: Color32 = Color32::from_rgb(0x8a, 0x5c, 0x28);
pub const PLAYHEAD: Color32 = Color32::from_rgb(0xff, 0x5e, 0x5b);
pub const KEY_WHITE: Color32 = Color32::from_rgb(0xd8, 0xdb, 0xe0);
pub const KEY_BLACK: Color32 = Color32::from_rgb(0x22, 0x25, 0x2b);
pub const KEY_LINE: Color32 = Color32::from_rgb(0xa8, 0xad, 0xb5);
pub const KEY_LABEL: Color32 = Color32::from_rgb(0x50, 0x55, 0x60);

pub const GOOD: Color32 = Color32::from_rgb(0x5c, 0xc9, 0x7b);
pub const BUSY: Color32 = Color32::from_rgb(0xf0, 0xa0, 0x3c);
pub const IDLE: Color32 = Color32::from_rgb(0x7c, 0x83, 0x90);
pub const WARN: Color32 = Color32::from_rgb(0xf2, 0xc9, 0x4c);
pub const ERROR: Color32 = Color32::from_rgb(0xf0, 0x5a, 0x5a);

pub fn level_color(level: super::state::Level) -> Color32 {
    use super::state::Level;
    match level {
        Level::Good => GOOD,
        Level::Busy => BUSY,
        Level::Idle => IDLE,
        Level::Warn => WARN,
        Level::Error => ERROR,
    }
}

/// Applies the look to every egui theme (so a light system theme does not flip it).
pub fn apply(ctx: &egui::Context) {
    ctx.all_styles_mut(|style| {
        style.text_styles = [
            (TextStyle::Heading, FontId::new(18.0, FontFamily::Proportional)),
            (TextStyle::Body, FontId::new(13.0, FontFamily::Proportional)),
            (TextStyle::Button, FontId::new(13.0, FontFamily::Proportional)),
            (TextStyle::Small, FontId::new(11.0, FontFamily::Proportional)),
            (TextStyle::Monospace, FontId::new(12.0, FontFamily::Monospace)),
        ]
        .into();
        style.spacing.item_spacing = egui::vec2(8.0, 6.0);
        style.spacing.button_padding = egui::vec2(10.0, 5.0);
        style.spacing.interact_size.y = 26.0;
        let v = &mut style.visuals;
        *v = egui::Visuals::dark();
        v.panel_fill = BG;
        v.window_fill = PANEL;
        v.extreme_bg_color = Color32::from_rgb(0x12, 0x14, 0x18);
        v.faint_bg_color = PANEL;
        v.override_text_color = Some(TEXT);
        v.selection.bg_fill = ACCENT_DIM;
        v.selection.stroke = Stroke::new(1.0, ACCENT);
        v.window_stroke = Stroke::new(1.0, BORDER);
        let radius = CornerRadius::same(5);
        for w in [&mut v.widgets.noninteractive, &mut v.widgets.inactive, &mut v.widgets.hovered, &mut v.widgets.active, &mut v.widgets.open] {
            w.corner_radius = radius;
        }
        v.widgets.noninteractive.bg_stroke = Stroke::new(1.0, BORDER);
        v.widgets.inactive.bg_fill = PANEL_RAISED;
        v.widgets.inactive.weak_bg_fill = PANEL_RAISED;
        v.widgets.inactive.bg_stroke = Stroke::new(1.0, BORDER);
        v.widgets.hovered.bg_fill = Color32::from_rgb(0x31, 0x36, 0x41);
        v.widgets.hovered.weak_bg_fill = Color32::from_rgb(0x31, 0x36, 0x41);
        v.widgets.hovered.bg_stroke = Stroke::new(1.0, Color32::from_rgb(0x4a, 0x51, 0x5e));
        v.widgets.active.bg_fill = ACCENT_DIM;
        v.widgets.active.weak_bg_fill = ACCENT_DIM;
        v.widgets.active.bg_stroke = Stroke::new(1.0, ACCENT);
    });
}
