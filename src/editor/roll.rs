//! The piano roll: what part of the cover is visible (scroll, zoom, follow the playhead), where each
//! note, bar line and the playhead land in a rectangle, and the colours of the hands. The geometry
//! is pure so it is tested without a window; [`paint`] only draws what it computes.

use super::theme;
use crate::notes::{CoverNote, Hand, PedalSpan};
use egui::{pos2, Color32, Rect};

/// Zoom limits in pixels per beat.
pub const MIN_PX_PER_BEAT: f32 = 3.0;
pub const MAX_PX_PER_BEAT: f32 = 400.0;
/// Fewest semitones shown, so a one-note melody is not drawn as tall bars.
pub const MIN_PITCH_SPAN: u8 = 25;

/// The visible window of the roll.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RollView {
    /// Beat at the left edge.
    pub first_beat: f64,
    pub px_per_beat: f32,
    /// Keep the playhead in view while the host plays.
    pub follow: bool,
}

impl Default for RollView {
    fn default() -> Self {
        Self { first_beat: 0.0, px_per_beat: 24.0, follow: true }
    }
}

impl RollView {
    /// Beats spanned by `width` pixels.
    pub fn beats_in(&self, width: f32) -> f64 {
        width.max(1.0) as f64 / self.px_per_beat as f64
    }

    /// The visible beat range `[from, to)` for a roll `width` pixels wide.
    pub fn visible(&self, width: f32) -> (f64, f64) {
        (self.first_beat, self.first_beat + self.beats_in(width))
    }

    pub fn beat_to_x(&self, beat: f64, rect: Rect) -> f32 {
        rect.left() + ((beat - self.first_beat) * self.px_per_beat as f64) as f32
    }

    pub fn x_to_beat(&self, x: f32, rect: Rect) -> f64 {
        self.first_beat + (x - rect.left()) as f64 / self.px_per_beat as f64
    }

    /// Zooms by `factor` keeping the beat under `anchor_x` where it is.
    pub fn zoom_at(&mut self, factor: f32, anchor_x: f32, rect: Rect) {
        if !(factor.is_finite() && factor > 0.0) {
            return;
        }
        let anchor = self.x_to_beat(anchor_x, rect);
        self.px_per_beat = (self.px_per_beat * factor).clamp(MIN_PX_PER_BEAT, MAX_PX_PER_BEAT);
        self.first_beat = anchor - (anchor_x - rect.left()) as f64 / self.px_per_beat as f64;
        self.clamp_scroll();
    }

    /// Scrolls by `dx` pixels (positive: later in the song).
    pub fn scroll_px(&mut self, dx: f32) {
        self.first_beat += dx as f64 / self.px_per_beat as f64;
        self.clamp_scroll();
    }

    fn clamp_scroll(&mut self) {
        // A little room before beat 0 so the first note is not glued to the edge; no further.
        let min = -2.0 * (24.0 / self.px_per_beat as f64).min(1.0);
        if !self.first_beat.is_finite() || self.first_beat < min {
            self.first_beat = min.min(0.0);
        }
    }

    /// Shows beats `[from, to)` across `width` pixels.
    pub fn fit(&mut self, from: f64, to: f64, width: f32) {
        let span = (to - from).max(4.0);
        self.px_per_beat = ((width.max(1.0) as f64 / (span * 1.04)) as f32).clamp(MIN_PX_PER_BEAT, MAX_PX_PER_BEAT);
        self.first_beat = from - span * 0.02;
        self.clamp_scroll();
    }

    /// Page-turn following: when the playhead leaves the left 90% of the view, the view jumps so
    /// the playhead sits near the left again (a steady picture, as DAWs scroll).
    pub fn follow_playhead(&mut self, playhead: f64, width: f32) {
        if !self.follow || !playhead.is_finite() {
            return;
        }
        let (from, to) = self.visible(width);
        let span = to - from;
        if playhead < from || playhead > from + span * 0.9 {
            self.first_beat = playhead - span * 0.05;
            self.clamp_scroll();
        }
    }
}

/// The pitch rows shown, `low..=high`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PitchRange {
    pub low: u8,
    pub high: u8,
}

impl PitchRange {
    /// Rows around the cover's notes with a little air, at least [`MIN_PITCH_SPAN`], inside the
    /// piano (A0..C8); the middle of the piano when there are no notes.
    pub fn fit(notes: &[CoverNote]) -> Self {
        let (mut lo, mut hi) = notes.iter().fold((u8::MAX, 0u8), |(lo, hi), n| (lo.min(n.pitch), hi.max(n.pitch)));
        if lo > hi {
            (lo, hi) = (48, 84);
        }
        let (mut lo, mut hi) = (lo.saturating_sub(2).max(21) as i32, (hi as i32 + 2).min(108));
        while hi - lo + 1 < MIN_PITCH_SPAN as i32 {
            if lo > 21 {
                lo -= 1;
            }
            if hi - lo + 1 < MIN_PITCH_SPAN as i32 && hi < 108 {
                hi += 1;
            }
        }
        Self { low: lo as u8, high: hi as u8 }
    }

    pub fn rows(&self) -> u32 {
        (self.high as u32).saturating_sub(self.low as u32) + 1
    }

    pub fn row_height(&self, rect: Rect) -> f32 {
        rect.height() / self.rows() as f32
    }

    /// The row of `pitch` (top to bottom: high to low); `None` outside the range.
    pub fn row_rect(&self, pitch: u8, rect: Rect) -> Option<Rect> {
        if pitch < self.low || pitch > self.high {
            return None;
        }
        let h = self.row_height(rect);
        let top = rect.top() + (self.high - pitch) as f32 * h;
        Some(Rect::from_min_max(pos2(rect.left(), top), pos2(rect.right(), top + h)))
    }
}

/// A note's rectangle in the roll, clipped to it; `None` when it is not visible.
pub fn note_rect(note: &CoverNote, view: &RollView, pitches: &PitchRange, rect: Rect) -> Option<Rect> {
    let row = pitches.row_rect(note.pitch, rect)?;
    let x0 = view.beat_to_x(note.start_beat, rect);
    // At least 2 px wide so short notes stay visible when zoomed out.
    let x1 = view.beat_to_x(note.end_beat, rect).max(x0 + 2.0);
    if x1 < rect.left() || x0 > rect.right() {
        return None;
    }
    let inset = (row.height() * 0.08).min(1.0);
    Some(Rect::from_min_max(pos2(x0.max(rect.left()), row.top() + inset), pos2(x1.min(rect.right()), row.bottom() - inset)))
}

/// Notes in drawing order: left hand, then right hand accompaniment, then the melody last so it
/// stays on top where voices cross or overlap.
pub fn paint_order(notes: &[CoverNote]) -> Vec<usize> {
    let layer = |n: &CoverNote| match (n.hand, n.melody) {
        (_, true) => 2,
        (Hand::Right, false) => 1,
        (Hand::Left, false) => 0,
    };
    let mut order: Vec<usize> = (0..notes.len()).collect();
    order.sort_by_key(|&i| layer(&notes[i]));
    order
}

/// Fill colour of a note: one colour per hand, the melody brighter than the right hand's chords.
pub fn note_color(note: &CoverNote) -> Color32 {
    match (note.hand, note.melody) {
        (_, true) => theme::MELODY,
        (Hand::Right, false) => theme::RIGHT_HAND,
        (Hand::Left, false) => theme::LEFT_HAND,
    }
}

/// What a vertical grid line marks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LineKind {
    /// A bar line with its number (1 = the bar starting at the first downbeat).
    Bar(i64),
    Beat,
    /// A 1/16 line (only when zoomed in far enough).
    Sixteenth,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridLine {
    pub beat: f64,
    pub x: f32,
    pub kind: LineKind,
    /// Whether a bar number is drawn here (thinned out when bars are narrow).
    pub labelled: bool,
}

/// Grid lines across `rect` for `beats_per_bar` with bars starting at `first_downbeat_beat`.
/// Beat lines appear when a beat is at least 8 px wide, sixteenths at 12 px each; bar numbers every
/// 1, 2, 4, 8... bars so labels never collide.
pub fn grid_lines(view: &RollView, rect: Rect, beats_per_bar: u32, first_downbeat_beat: f64) -> Vec<GridLine> {
    let bpb = beats_per_bar.max(1) as f64;
    let px_beat = view.px_per_beat as f64;
    let (from, to) = view.visible(rect.width());
    let phase = first_downbeat_beat.rem_euclid(bpb);
    let bar_px = px_beat * bpb;
    let mut label_every = 1i64;
    while (label_every as f64) * bar_px < 36.0 && label_every < 1 << 20 {
        label_every *= 2;
    }
    // Bars narrower than 6 px: draw only the labelled ones.
    let draw_every = if bar_px < 6.0 { label_every } else { 1 };
    let step = if px_beat / 4.0 >= 12.0 {
        0.25
    } else if px_beat >= 8.0 {
        1.0
    } else {
        bpb
    };
    let mut out = Vec::new();
    let first_bar = ((from - phase) / bpb).floor() as i64;
    let last_bar = ((to - phase) / bpb).ceil() as i64;
    for bar in first_bar..=last_bar {
        let bar_beat = phase + bar as f64 * bpb;
        let number = bar + 1;
        let mut k = 0.0;
        while k < bpb - 1e-9 {
            let beat = bar_beat + k;
            if beat >= from && beat <= to {
                let kind = if k == 0.0 {
                    LineKind::Bar(number)
                } else if (k - k.round()).abs() < 1e-9 {
                    LineKind::Beat
                } else {
                    LineKind::Sixteenth
                };
                let keep = match kind {
                    LineKind::Bar(n) => (n - 1).rem_euclid(draw_every) == 0,
                    _ => true,
                };
                if keep {
                    let labelled = matches!(kind, LineKind::Bar(n) if (n - 1).rem_euclid(label_every) == 0);
                    out.push(GridLine { beat, x: view.beat_to_x(beat, rect), kind, labelled });
                }
            }
            if step >= bpb {
                break;
            }
            k += step;
        }
    }
    out
}

/// The playhead's x in `rect`, if the host gives a position and it is in view.
pub fn playhead_x(view: &RollView, playhead: Option<f64>, rect: Rect) -> Option<f32> {
    let beat = playhead.filter(|b| b.is_finite())?;
    let x = view.beat_to_x(beat, rect);
    (x >= rect.left() && x <= rect.right()).then_some(x)
}

/// First and last beat of the cover.
pub fn cover_span(notes: &[CoverNote]) -> Option<(f64, f64)> {
    let from = notes.iter().map(|n| n.start_beat).fold(f64::INFINITY, f64::min);
    let to = notes.iter().map(|n| n.end_beat).fold(f64::NEG_INFINITY, f64::max);
    (from.is_finite() && to.is_finite()).then_some((from, to))
}

fn is_black(pitch: u8) -> bool {
    matches!(pitch % 12, 1 | 3 | 6 | 8 | 10)
}

/// Everything [`paint`] draws from, besides the notes.
pub struct Scene<'a> {
    pub notes: &'a [CoverNote],
    /// Sustain-pedal presses, drawn in a lane under the notes.
    pub pedal: &'a [PedalSpan],
    pub pitches: PitchRange,
    pub beats_per_bar: u32,
    pub first_downbeat_beat: f64,
    pub playhead: Option<f64>,
    pub playing: bool,
    /// Beat ranges already captured (shaded in the ruler).
    pub captured: &'a [[f64; 2]],
}

/// Heights of the ruler above the roll and width of the keyboard at its left.
pub const RULER_HEIGHT: f32 = 24.0;
pub const KEYS_WIDTH: f32 = 44.0;
/// Height of the sustain-pedal lane under the notes.
pub const PEDAL_LANE_HEIGHT: f32 = 12.0;

/// The parts of the roll's area: ruler, keyboard, notes (the pedal lane is under the last two).
pub fn layout(area: Rect) -> (Rect, Rect, Rect) {
    let bottom = area.bottom() - PEDAL_LANE_HEIGHT;
    let ruler = Rect::from_min_max(pos2(area.left() + KEYS_WIDTH, area.top()), pos2(area.right(), area.top() + RULER_HEIGHT));
    let keys = Rect::from_min_max(pos2(area.left(), area.top() + RULER_HEIGHT), pos2(area.left() + KEYS_WIDTH, bottom));
    let notes = Rect::from_min_max(pos2(area.left() + KEYS_WIDTH, area.top() + RULER_HEIGHT), pos2(area.right(), bottom));
    (ruler, keys, notes)
}

/// The sustain-pedal lane: under the notes, as wide as they are.
pub fn pedal_lane(area: Rect) -> Rect {
    Rect::from_min_max(pos2(area.left() + KEYS_WIDTH, area.bottom() - PEDAL_LANE_HEIGHT), area.max)
}

/// Draws the roll into `area` (ruler, keyboard, grid, notes, playhead).
pub fn paint(painter: &egui::Painter, area: Rect, view: &RollView, scene: &Scene) {
    use egui::{Align2, FontId, Stroke, StrokeKind};
    let (ruler, keys, roll) = layout(area);
    let pitches = scene.pitches;

    painter.rect_filled(area, 6.0, theme::ROLL_BG);
    // Pitch rows: black-key rows a shade darker, a line under every B (octave boundary).
    let clip = painter.with_clip_rect(roll);
    for p in pitches.low..=pitches.high {
        let Some(row) = pitches.row_rect(p, roll) else { continue };
        if is_black(p) {
            clip.rect_filled(row, 0.0, theme::ROLL_BLACK_ROW);
        }
        if p % 12 == 0 {
            clip.hline(roll.x_range(), row.bottom(), Stroke::new(1.0, theme::GRID_OCTAVE));
        }
    }
    // Grid.
    let lines = grid_lines(view, roll, scene.beats_per_bar, scene.first_downbeat_beat);
    for l in &lines {
        let color = match l.kind {
            LineKind::Bar(_) => theme::GRID_BAR,
            LineKind::Beat => theme::GRID_BEAT,
            LineKind::Sixteenth => theme::GRID_SIXTEENTH,
        };
        clip.vline(l.x, roll.y_range(), Stroke::new(1.0, color));
    }
    // Notes, melody last; a dark edge keeps touching notes apart.
    let edge = Stroke::new(1.0, theme::NOTE_EDGE);
    for i in paint_order(scene.notes) {
        let n = &scene.notes[i];
        if let Some(r) = note_rect(n, view, &pitches, roll) {
            let radius = (r.height() * 0.25).min(3.0);
            clip.rect(r, radius, note_color(n), edge, StrokeKind::Inside);
        }
    }
    // Pedal lane: a bar where the pedal is down, a gap where it changes.
    let lane = pedal_lane(area);
    let lp = painter.with_clip_rect(lane);
    lp.rect_filled(lane, 0.0, theme::RULER_BG);
    for p in scene.pedal {
        let (x0, x1) = (view.beat_to_x(p.down_beat, lane), view.beat_to_x(p.up_beat, lane));
        if x1 > lane.left() && x0 < lane.right() {
            let bar = Rect::from_min_max(pos2(x0.max(lane.left() - 1.0), lane.top() + 3.0), pos2(x1.min(lane.right() + 1.0), lane.bottom() - 3.0));
            lp.rect_filled(bar, 1.0, theme::PEDAL);
        }
    }
    painter.text(
        pos2(area.left() + KEYS_WIDTH - 4.0, lane.center().y),
        Align2::RIGHT_CENTER,
        "Ped.",
        FontId::proportional(9.0),
        if scene.pedal.is_empty() { theme::TEXT_FAINT } else { theme::PEDAL },
    );
    // Keyboard.
    let kp = painter.with_clip_rect(keys);
    kp.rect_filled(keys, 0.0, theme::KEY_WHITE);
    let font = FontId::proportional(10.0);
    for p in pitches.low..=pitches.high {
        let Some(row) = pitches.row_rect(p, keys) else { continue };
        if is_black(p) {
            let r = Rect::from_min_max(row.min, pos2(keys.left() + keys.width() * 0.62, row.max.y));
            kp.rect_filled(r, 1.0, theme::KEY_BLACK);
        } else if matches!(p % 12, 4 | 11) {
            // Boundary between two white keys (E-F, B-C).
            kp.hline(keys.x_range(), row.top(), Stroke::new(1.0, theme::KEY_LINE));
        }
        if p % 12 == 0 && row.height() * 12.0 >= 40.0 {
            kp.text(pos2(keys.right() - 4.0, row.center().y), Align2::RIGHT_CENTER, super::state::note_name(p as i32), font.clone(), theme::KEY_LABEL);
        }
    }
    // Ruler: captured ranges, bar numbers.
    let rp = painter.with_clip_rect(ruler);
    rp.rect_filled(ruler, 0.0, theme::RULER_BG);
    for r in scene.captured {
        let (x0, x1) = (view.beat_to_x(r[0], ruler), view.beat_to_x(r[1], ruler));
        if x1 > ruler.left() && x0 < ruler.right() {
            let band = Rect::from_min_max(pos2(x0.max(ruler.left()), ruler.bottom() - 4.0), pos2(x1.min(ruler.right()), ruler.bottom()));
            rp.rect_filled(band, 0.0, theme::CAPTURED);
        }
    }
    let label_font = FontId::proportional(11.0);
    for l in &lines {
        if let LineKind::Bar(n) = l.kind {
            rp.vline(l.x, ruler.bottom() - 8.0..=ruler.bottom(), Stroke::new(1.0, theme::TEXT_DIM));
            if l.labelled {
                rp.text(pos2(l.x + 4.0, ruler.center().y - 2.0), Align2::LEFT_CENTER, n.to_string(), label_font.clone(), theme::TEXT_DIM);
            }
        }
    }
    // Playhead.
    if let Some(x) = playhead_x(view, scene.playhead, roll) {
        let color = if scene.playing { theme::PLAYHEAD } else { theme::PLAYHEAD.gamma_multiply(0.5) };
        painter.vline(x, ruler.top()..=roll.bottom(), Stroke::new(1.5, color));
        let tip = vec![pos2(x - 5.0, ruler.top()), pos2(x + 5.0, ruler.top()), pos2(x, ruler.top() + 7.0)];
        painter.add(egui::Shape::convex_polygon(tip, color, Stroke::NONE));
    }
    painter.rect_stroke(area, 6.0, Stroke::new(1.0, theme::BORDER), StrokeKind::Inside);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(start: f64, end: f64, pitch: u8, hand: Hand, melody: bool) -> CoverNote {
        CoverNote { start_beat: start, end_beat: end, pitch, velocity: 80, hand, melody }
    }

    fn rect() -> Rect {
        Rect::from_min_max(pos2(100.0, 50.0), pos2(900.0, 450.0))
    }

    #[test]
    fn notes_land_in_their_row_and_beat() {
        let view = RollView { first_beat: 4.0, px_per_beat: 20.0, follow: false };
        let pitches = PitchRange { low: 60, high: 79 }; // 20 rows of 20 px
        let r = note_rect(&n(5.0, 6.5, 79, Hand::Right, true), &view, &pitches, rect()).unwrap();
        assert_eq!((r.left(), r.right()), (120.0, 150.0));
        assert!(r.top() >= 50.0 && r.bottom() <= 70.0, "top row: {r:?}");
        let low = note_rect(&n(5.0, 6.0, 60, Hand::Left, false), &view, &pitches, rect()).unwrap();
        assert!(low.top() >= 430.0 && low.bottom() <= 450.0, "bottom row: {low:?}");
        // Outside the pitch range or before the view: not drawn.
        assert!(note_rect(&n(5.0, 6.0, 59, Hand::Left, false), &view, &pitches, rect()).is_none());
        assert!(note_rect(&n(0.0, 3.0, 60, Hand::Left, false), &view, &pitches, rect()).is_none());
        // A note crossing the left edge is clipped to it.
        let cut = note_rect(&n(3.0, 5.0, 70, Hand::Right, false), &view, &pitches, rect()).unwrap();
        assert_eq!((cut.left(), cut.right()), (100.0, 120.0));
        // A tiny note keeps a visible width.
        let tiny = note_rect(&n(10.0, 10.001, 70, Hand::Right, false), &view, &pitches, rect()).unwrap();
        assert!(tiny.width() >= 2.0);
    }

    #[test]
    fn melody_is_drawn_last_and_hands_have_distinct_colours() {
        let notes = [n(0.0, 1.0, 72, Hand::Right, true), n(0.0, 1.0, 48, Hand::Left, false), n(0.0, 1.0, 67, Hand::Right, false)];
        assert_eq!(paint_order(&notes), vec![1, 2, 0]);
        let colors = notes.map(|n| note_color(&n));
        assert_ne!(colors[0], colors[1]);
        assert_ne!(colors[1], colors[2]);
        assert_ne!(colors[0], colors[2]);
    }

    #[test]
    fn pitch_range_fits_the_cover_with_a_minimum_span() {
        let notes = [n(0.0, 1.0, 40, Hand::Left, false), n(0.0, 1.0, 90, Hand::Right, true)];
        assert_eq!(PitchRange::fit(&notes), PitchRange { low: 38, high: 92 });
        let one = PitchRange::fit(&[n(0.0, 1.0, 60, Hand::Right, true)]);
        assert!(one.low <= 60 && one.high >= 60 && one.rows() >= MIN_PITCH_SPAN as u32, "{one:?}");
        let edge = PitchRange::fit(&[n(0.0, 1.0, 21, Hand::Left, false)]);
        assert_eq!(edge.low, 21);
        assert!(edge.rows() >= MIN_PITCH_SPAN as u32);
        assert_eq!(PitchRange::fit(&[]), PitchRange { low: 46, high: 86 });
    }

    #[test]
    fn bar_lines_follow_the_meter_and_the_downbeat() {
        let view = RollView { first_beat: 0.0, px_per_beat: 10.0, follow: false };
        // 800 px = 80 beats of 3/4 starting at beat 1 (a one-beat pickup).
        let lines = grid_lines(&view, rect(), 3, 1.0);
        let bars: Vec<(f64, i64)> = lines.iter().filter_map(|l| if let LineKind::Bar(n) = l.kind { Some((l.beat, n)) } else { None }).collect();
        assert_eq!(&bars[..3], &[(1.0, 1), (4.0, 2), (7.0, 3)]);
        assert!(lines.iter().any(|l| l.kind == LineKind::Beat && l.beat == 2.0));
        assert!(!lines.iter().any(|l| l.kind == LineKind::Sixteenth), "no sixteenths at 10 px per beat");
        // The pickup beat before bar 1 belongs to bar 0.
        assert!(lines.iter().any(|l| l.beat == 0.0 && l.kind == LineKind::Beat));
        assert_eq!(lines.iter().find(|l| l.beat == 4.0).unwrap().x, 140.0);
        // Zoomed in: sixteenths; zoomed out: only some bars carry numbers.
        let close = RollView { px_per_beat: 64.0, ..view };
        assert!(grid_lines(&close, rect(), 4, 0.0).iter().any(|l| l.kind == LineKind::Sixteenth && l.beat == 0.25));
        let far = RollView { px_per_beat: 3.0, ..view };
        let far_lines = grid_lines(&far, rect(), 4, 0.0);
        let labelled: Vec<i64> = far_lines.iter().filter(|l| l.labelled).filter_map(|l| if let LineKind::Bar(n) = l.kind { Some(n) } else { None }).collect();
        assert_eq!(&labelled[..3], &[1, 5, 9], "12 px bars: every 4th numbered");
        for w in far_lines.windows(2) {
            assert!(w[1].x >= w[0].x, "sorted left to right");
        }
    }

    #[test]
    fn zoom_keeps_the_beat_under_the_pointer() {
        let mut view = RollView { first_beat: 8.0, px_per_beat: 20.0, follow: false };
        let anchor = 500.0;
        let before = view.x_to_beat(anchor, rect());
        view.zoom_at(2.0, anchor, rect());
        assert_eq!(view.px_per_beat, 40.0);
        assert!((view.x_to_beat(anchor, rect()) - before).abs() < 1e-9);
        view.zoom_at(1e6, anchor, rect());
        assert_eq!(view.px_per_beat, MAX_PX_PER_BEAT);
        view.zoom_at(f32::NAN, anchor, rect());
        assert_eq!(view.px_per_beat, MAX_PX_PER_BEAT);
        // Scrolling stops a little before beat 0.
        view.scroll_px(-1e9);
        assert!(view.first_beat <= 0.0 && view.first_beat > -2.0, "{}", view.first_beat);
    }

    #[test]
    fn the_view_follows_the_playhead_page_by_page() {
        let mut view = RollView { first_beat: 0.0, px_per_beat: 10.0, follow: true };
        let width = 800.0; // 80 beats
        view.follow_playhead(40.0, width);
        assert_eq!(view.first_beat, 0.0, "in view: no jump");
        view.follow_playhead(75.0, width);
        assert_eq!(view.first_beat, 71.0, "past 90%: turn the page");
        view.follow_playhead(10.0, width);
        assert_eq!(view.first_beat, 6.0, "loop back: jump back");
        let mut fixed = RollView { follow: false, ..view };
        fixed.follow_playhead(500.0, width);
        assert_eq!(fixed.first_beat, 6.0);
        assert_eq!(playhead_x(&view, Some(10.0), rect()), Some(140.0));
        assert_eq!(playhead_x(&view, Some(1000.0), rect()), None);
        assert_eq!(playhead_x(&view, None, rect()), None);
    }

    #[test]
    fn fit_shows_the_whole_cover() {
        let notes = [n(8.0, 9.0, 60, Hand::Right, true), n(100.0, 104.0, 48, Hand::Left, false)];
        let (from, to) = cover_span(&notes).unwrap();
        let mut view = RollView::default();
        view.fit(from, to, 800.0);
        let (a, b) = view.visible(800.0);
        assert!(a <= 8.0 && b >= 104.0, "{a}..{b}");
        assert!(b - a < 96.0 * 1.2, "not much more than the cover");
        assert!(cover_span(&[]).is_none());
    }
}
