//! The plugin's window (egui through nice-plug-egui): the settings, what Pianola heard and will
//! play (status and piano roll), and the actions that take the cover elsewhere.
//!
//! Layout: a header (mode, the one-line status, bypass), the controls on the left, the piano roll
//! in the middle, and a footer with the capture facts and the actions (clear, re-arrange, export).
//! The view logic lives in [`state`] and [`roll`] as pure functions; this file only reads the
//! plugin's shared state once per frame and lays the pieces out.

pub mod roll;
pub mod state;
pub mod theme;
pub mod widgets;

pub use state::EditorPrefs;

use crate::notes::Cover;
use crate::params::{MelodyParam, Mode, PianolaParams, StyleParam};
use crate::ring::CaptureShared;
use crate::status::Status;
use crate::timeline::Timeline;
use egui::{pos2, vec2, Align, Color32, FontId, Layout, Margin, RichText, Sense, Stroke, Ui};
use nice_plug::context::gui::GuiContext;
use nice_plug::editor::dpi::LogicalSize;
use nice_plug::params::persist::PersistentField;
use nice_plug::prelude::ResizeHint;
use nice_plug_egui::{create_egui_editor, EguiEditor, EguiEditorState, EguiNiceSettings, NiceEguiApp, RepaintNotifier};
use roll::{PitchRange, RollView, Scene};
use state::{CaptureSummary, Level, ModelState, SizeKeeper, Snapshot};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How often the panel redraws on its own (playhead, status), per second.
const FRAME_RATE: f64 = 30.0;

/// The editor for a plugin instance. `editor()` is called once when the plugin is created, before
/// the host restores the project, so the saved window size is applied when the window opens.
pub fn create(params: Arc<PianolaParams>, status: Arc<Status>, capture: Arc<CaptureShared>) -> Option<EguiEditor<PianolaEditor>> {
    let (w, h) = params.editor.lock().size();
    let (min_w, min_h) = state::MIN_SIZE;
    let settings = EguiNiceSettings::new().with_tile("Pianola").with_resize_hint(ResizeHint::resizable().with_min_logical_size(LogicalSize::new(min_w, min_h)));
    let app = PianolaEditor::new(params, status, capture);
    create_egui_editor(EguiEditorState::from_size(LogicalSize::new(w, h), 1.0), RepaintNotifier::new(), settings, app)
}

pub struct PianolaEditor {
    params: Arc<PianolaParams>,
    status: Arc<Status>,
    capture: Arc<CaptureShared>,
    gui: Option<GuiContext>,
    view: RollView,
    /// The roll was fitted to the cover (refitted when a cover appears after being empty).
    fitted: bool,
    sizes: SizeKeeper,
    track_name: Option<String>,
    /// Result of the last action (export path, error), shown in the footer.
    message: Option<(Level, String)>,
    /// Until when (egui time) a second click on "Clear" confirms.
    confirm_clear_until: f64,
    /// The roll's note area in the last frame (the toolbar above it zooms around its centre).
    last_roll: egui::Rect,
    /// A folder dialog open on its own thread: its answer (None: cancelled, or no dialog here).
    folder_pick: Option<Arc<parking_lot::Mutex<Option<Option<std::path::PathBuf>>>>>,
}

impl PianolaEditor {
    pub fn new(params: Arc<PianolaParams>, status: Arc<Status>, capture: Arc<CaptureShared>) -> Self {
        Self {
            params,
            status,
            capture,
            gui: None,
            view: RollView::default(),
            fitted: false,
            sizes: SizeKeeper::default(),
            track_name: None,
            message: None,
            folder_pick: None,
            confirm_clear_until: 0.0,
            last_roll: egui::Rect::from_min_size(pos2(0.0, 0.0), vec2(800.0, 400.0)),
        }
    }

    fn snapshot(&self, capture: CaptureSummary, cover_notes: usize) -> Snapshot {
        let error = self.status.error();
        let ready = self.status.model_ready.load(Ordering::Acquire);
        let model = match (&error, ready) {
            (_, true) => ModelState::Ready,
            (Some(e), false) => ModelState::Failed(e.clone()),
            (None, false) => ModelState::Loading,
        };
        let host = &self.status.host;
        Snapshot {
            mode: self.params.mode.value(),
            bypass: self.params.bypass.value(),
            error: if ready { error } else { None },
            model,
            recording: self.status.recording.load(Ordering::Acquire),
            resting_on_silence: self.status.resting_on_silence.load(Ordering::Relaxed),
            capture,
            cover_notes,
            backlog_samples: self.capture.backlog_samples(),
            sample_rate: host.sample_rate(),
            latency_samples: host.latency_samples.load(Ordering::Relaxed),
            host_playing: host.playing.load(Ordering::Relaxed),
            host_has_beat: host.beat().is_some(),
            processing: host.sample_rate() > 0.0,
            backend: self.status.backend().map(|b| (b.reason, b.fallback)),
            melody: self.status.melody.lock().ok().and_then(|m| m.clone()),
            song_grid: self.status.song_grid.lock().ok().and_then(|m| m.clone()),
            quiet_song: self.status.quiet_song.lock().ok().and_then(|m| m.clone()),
            tuning_cents: self.status.tuning_cents.lock().ok().and_then(|m| *m),
        }
    }

    fn export_dir(&self) -> std::path::PathBuf {
        let typed = self.params.editor.lock().export_dir.trim().to_string();
        if typed.is_empty() {
            state::system_export_dir()
        } else if let Some(rest) = typed.strip_prefix("~/") {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(rest)).unwrap_or_else(|| typed.clone().into())
        } else {
            typed.into()
        }
    }
}

impl NiceEguiApp for PianolaEditor {
    fn build(&mut self, egui_ctx: egui::Context, gui: GuiContext, _frame: &mut nice_plug_egui::Frame) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        theme::apply(&egui_ctx);
        self.gui = Some(gui);
        self.sizes.opened(self.params.editor.lock().size());
        Ok(())
    }

    fn track_info_changed(&mut self, info: nice_plug::prelude::TrackInfo) {
        self.track_name = Some(info.name().to_string()).filter(|n| !n.trim().is_empty());
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut nice_plug_egui::Frame) {
        let Some(gui) = self.gui.clone() else { return };
        let setter = gui.param_setter();
        let ctx = ui.ctx().clone();
        ctx.request_repaint_after(Duration::from_secs_f64(1.0 / FRAME_RATE));

        // Window size: restore the project's once, then remember the user's.
        let size = ctx.content_rect().size();
        let saved = self.params.editor.lock().size();
        let (request, save) = self.sizes.frame((size.x, size.y), saved);
        if let Some((w, h)) = request {
            ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(vec2(w, h)));
        }
        if let Some((w, h)) = save {
            let mut prefs = self.params.editor.lock();
            prefs.width = w;
            prefs.height = h;
        }

        // One read of the shared state per frame.
        let cover: Arc<Timeline> = self.status.cover.lock().map(|c| c.clone()).unwrap_or_default();
        let (capture, captured_ranges) = PersistentField::map(self.params.capture.as_ref(), |s| (CaptureSummary::of(s), s.covered.clone()));
        let snap = self.snapshot(capture, cover.notes.len());
        let host = &self.status.host;
        let host_bpb = host.beats_per_bar.load(Ordering::Relaxed);
        let beats_per_bar = if host_bpb > 0 { host_bpb } else { capture.beats_per_bar.max(1) };

        egui::Panel::top("header")
            .exact_size(56.0)
            .frame(egui::Frame::new().fill(theme::PANEL).inner_margin(Margin::symmetric(16, 10)).stroke(Stroke::new(1.0, theme::BORDER)))
            .show(ui, |ui| self.header(ui, &setter, &snap));

        egui::Panel::bottom("footer")
            .exact_size(92.0)
            .frame(egui::Frame::new().fill(theme::PANEL).inner_margin(Margin::symmetric(16, 10)).stroke(Stroke::new(1.0, theme::BORDER)))
            .show(ui, |ui| self.footer(ui, &snap, &cover, capture, beats_per_bar));

        egui::Panel::left("controls")
            .exact_size(280.0)
            .frame(egui::Frame::new().fill(theme::PANEL).inner_margin(Margin::symmetric(16, 8)).stroke(Stroke::new(1.0, theme::BORDER)))
            .show(ui, |ui| self.controls(ui, &setter));

        egui::CentralPanel::default()
            .frame(egui::Frame::new().fill(theme::BG).inner_margin(Margin::same(12)))
            .show(ui, |ui| self.roll(ui, &snap, &cover, &captured_ranges, beats_per_bar, capture.first_downbeat_beat));

        // The resize corner (hosts without their own window frame need it).
        let corner = ctx.content_rect().max;
        let r = egui::Rect::from_min_max(corner - vec2(16.0, 16.0), corner);
        let resp = ui.interact(r, egui::Id::unique("pianola-resize"), Sense::drag());
        if let Some(delta) = resp.total_drag_delta().filter(|_| resp.dragged()) {
            let start = ui.data_mut(|d| *d.get_temp_mut_or_insert_with(egui::Id::unique("pianola-resize-start"), || size));
            let want = (start + delta).max(vec2(state::MIN_SIZE.0, state::MIN_SIZE.1));
            ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(want));
        } else if resp.drag_stopped() {
            ui.data_mut(|d| d.remove::<egui::Vec2>(egui::Id::unique("pianola-resize-start")));
        }
        let painter = ctx.layer_painter(egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("pianola-corner")));
        for k in 0..3 {
            let o = 4.0 + k as f32 * 4.0;
            painter.line_segment([pos2(corner.x - o, corner.y - 3.0), pos2(corner.x - 3.0, corner.y - o)], Stroke::new(1.0, theme::TEXT_FAINT));
        }
    }
}

impl PianolaEditor {
    fn header(&mut self, ui: &mut Ui, setter: &nice_plug::prelude::ParamSetter, snap: &Snapshot) {
        ui.horizontal_centered(|ui| {
            logo(ui);
            ui.add_space(4.0);
            ui.label(RichText::new("Pianola").size(20.0).strong().color(theme::TEXT));
            ui.label(RichText::new("piano cover").size(12.0).color(theme::TEXT_FAINT));
            ui.add_space(18.0);
            ui.scope(|ui| {
                ui.set_width(190.0);
                widgets::segmented(
                    ui,
                    setter,
                    &self.params.mode,
                    &[
                        (Mode::Capture, "Capture", "Listens on the first pass, plays the cover on every later pass, sample-exact. The capture is saved with the project."),
                        (Mode::Live, "Live", "Plays notes while it listens, about a fifth of a second behind the audio, a third with Melody from: Voice (reported to the host as latency, so it lines up). Nothing is saved."),
                    ],
                    32.0,
                );
            });
            ui.add_space(14.0);
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                widgets::toggle(ui, setter, &self.params.bypass, "Bypass", theme::WARN, "Stops sending notes; audio passes through.");
                ui.add_space(12.0);
                let h = state::headline(snap);
                ui.with_layout(Layout::left_to_right(Align::Center), |ui| {
                    ui.set_clip_rect(ui.max_rect());
                    widgets::status_dot(ui, theme::level_color(h.level), &h.text, &h.detail, 14.0);
                });
            });
        });
    }

    fn controls(&mut self, ui: &mut Ui, setter: &nice_plug::prelude::ParamSetter) {
        let p = &self.params;
        ui.spacing_mut().item_spacing.y = 6.0;
        widgets::section(ui, "ARRANGEMENT");
        widgets::param_bar(
            ui,
            setter,
            &p.density,
            "Density",
            None,
            "How full the cover is: 0% the melody alone, 50% melody with bass and chords, 100% a full two-hand texture.",
        );
        widgets::segmented(
            ui,
            setter,
            &p.style,
            &[
                (StyleParam::Block, "Block", "Left hand plays chords together on the beat."),
                (StyleParam::Broken, "Broken", "Left hand alternates bass and chord (oom-pah)."),
                (StyleParam::Arpeggio, "Arpeggio", "Left hand rolls the chord up and down."),
            ],
            28.0,
        );
        widgets::param_bar(ui, setter, &p.quantize, "Quantize", None, "How strongly onsets snap to the 1/16 grid: 0% as heard, 100% exactly on the grid.");
        let span = p.hand_span.value();
        widgets::param_bar(
            ui,
            setter,
            &p.hand_span,
            "Hand span",
            Some(state::span_text(span)),
            "The widest interval one hand holds at once. Smaller is easier to play.",
        );
        widgets::section(ui, "KEY RANGE");
        let (lo, hi) = (p.lowest_note.value(), p.highest_note.value());
        widgets::param_bar(ui, setter, &p.lowest_note, "Lowest note", Some(state::note_name(lo)), "No note of the cover goes below this key.");
        widgets::param_bar(ui, setter, &p.highest_note, "Highest note", Some(state::note_name(hi)), "No note of the cover goes above this key.");
        if lo > hi {
            ui.label(RichText::new("Lowest is above highest: the range is swapped.").size(11.0).color(theme::WARN));
        }
        widgets::section(ui, "LISTENING");
        widgets::param_bar(
            ui,
            setter,
            &p.sensitivity,
            "Sensitivity",
            None,
            "How readily a sound counts as a new note. Higher finds quieter notes (and more false ones). Re-reads what was recorded in this session; a reopened project keeps its notes.",
        );
        ui.label(RichText::new("More or fewer notes heard: higher hears quieter notes.").size(11.0).color(theme::TEXT_DIM));
        widgets::section(ui, "MELODY FROM");
        widgets::segmented(
            ui,
            setter,
            &p.melody,
            &[
                (MelodyParam::Auto, "Auto", "Melody from a pitch tracker made for voices when the track is a lone voice, else from every note heard."),
                (MelodyParam::Voice, "Voice", "The track is a singer: the melody comes from the pitch tracker made for voices (in Live, a third of a second behind the audio: a sung note is known once its pitch settles)."),
                (MelodyParam::Mix, "Mix", "The melody comes from every note heard (a band, a piano, a full mix)."),
            ],
            28.0,
        );
        widgets::section(ui, "OUTPUT");
        widgets::param_bar(ui, setter, &p.velocity, "Velocity", None, "Scales how hard every note is played.");
        widgets::toggle(
            ui,
            setter,
            &p.pedal,
            "Sustain pedal",
            theme::PEDAL,
            "Sends the sustain pedal (CC64) with the chords: up at each chord change, down again just after; lifted for rests.",
        );
        let ch = p.channel.value();
        widgets::param_bar(ui, setter, &p.channel, "MIDI channel", Some(format!("Ch {ch}")), "The MIDI channel the notes are sent on.");
    }

    fn roll(&mut self, ui: &mut Ui, snap: &Snapshot, cover: &Timeline, captured: &[[f64; 2]], beats_per_bar: u32, first_downbeat_beat: f64) {
        // Toolbar: legend left, view controls right.
        ui.horizontal(|ui| {
            ui.set_height(26.0);
            legend(ui, theme::MELODY, "Melody");
            legend(ui, theme::RIGHT_HAND, "Right hand");
            legend(ui, theme::LEFT_HAND, "Left hand");
            legend(ui, theme::PEDAL, "Pedal");
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                let last = self.last_roll;
                if widgets::action(ui, "Fit", false, !cover.notes.is_empty(), "Show the whole cover (or double-click the roll).").clicked() {
                    if let Some((a, b)) = roll::cover_span(&cover.notes) {
                        self.view.fit(a, b, last.width());
                        self.view.follow = false;
                    }
                }
                if widgets::action(ui, "+", false, true, "Zoom in (Ctrl + wheel over the roll)").clicked() {
                    self.view.zoom_at(1.5, last.center().x, last);
                }
                if widgets::action(ui, "−", false, true, "Zoom out (Ctrl + wheel over the roll)").clicked() {
                    self.view.zoom_at(1.0 / 1.5, last.center().x, last);
                }
                let follow = self.view.follow;
                let label = if follow { "Following playhead" } else { "Follow playhead" };
                if widgets::action(ui, label, follow, true, "Keep the playhead in view while the song plays. Dragging the roll stops following.").clicked() {
                    self.view.follow = !follow;
                }
            });
        });
        ui.add_space(6.0);
        let (area, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
        let (_, _, notes_rect) = roll::layout(area);
        let width = notes_rect.width();
        self.last_roll = notes_rect;

        // Fit a cover the first time it appears.
        if cover.notes.is_empty() {
            self.fitted = false;
        } else if !self.fitted {
            if let Some((a, b)) = roll::cover_span(&cover.notes) {
                self.view.fit(a.min(0.0), b, width);
            }
            self.fitted = true;
        }
        // Interaction: drag to scroll, wheel to scroll, Ctrl+wheel to zoom, double-click to fit.
        if response.dragged() {
            self.view.scroll_px(-response.drag_delta().x);
            self.view.follow = false;
        }
        if response.double_clicked() {
            if let Some((a, b)) = roll::cover_span(&cover.notes) {
                self.view.fit(a, b, width);
                self.view.follow = false;
            }
        }
        if response.hovered() {
            let (scroll, zoom, pointer) = ui.input(|i| (i.smooth_scroll_delta, i.zoom_delta(), i.pointer.hover_pos()));
            if zoom != 1.0 {
                self.view.zoom_at(zoom, pointer.map_or(notes_rect.center().x, |p| p.x), notes_rect);
            } else if scroll.x != 0.0 || scroll.y != 0.0 {
                self.view.scroll_px(-(scroll.x + scroll.y));
                self.view.follow = false;
            }
        }
        let playhead = self.status.host.beat();
        if snap.host_playing {
            if let Some(b) = playhead {
                self.view.follow_playhead(b, width);
            }
        }

        let scene = Scene {
            notes: &cover.notes,
            pedal: &cover.pedal,
            pitches: PitchRange::fit(&cover.notes),
            beats_per_bar,
            first_downbeat_beat,
            playhead,
            playing: snap.host_playing,
            captured,
        };
        roll::paint(ui.painter(), area, &self.view, &scene);

        if cover.notes.is_empty() {
            let (title, line) = match (snap.mode, &snap.model) {
                (_, ModelState::Failed(_)) => ("Pianola cannot listen", "See the message at the top. Audio passes through unchanged."),
                (Mode::Live, _) => ("Live", "Press play: notes appear here as Pianola hears them."),
                (Mode::Capture, _) if snap.recording => ("Listening…", "The cover appears here as the song plays."),
                (Mode::Capture, _) => (
                    "No cover yet",
                    "Press play in your DAW and let the song play through once.\nPianola listens on the first pass and plays the cover on every pass after.",
                ),
            };
            let c = notes_rect.center();
            let painter = ui.painter();
            painter.text(c - vec2(0.0, 16.0), egui::Align2::CENTER_CENTER, title, FontId::proportional(18.0), theme::TEXT_DIM);
            painter.text(c + vec2(0.0, 14.0), egui::Align2::CENTER_TOP, line, FontId::proportional(13.0), theme::TEXT_FAINT);
        }
    }

    fn footer(&mut self, ui: &mut Ui, snap: &Snapshot, cover: &Timeline, capture: CaptureSummary, beats_per_bar: u32) {
        let now = ui.input(|i| i.time);
        ui.horizontal(|ui| {
            ui.set_height(30.0);
            for f in state::facts(snap) {
                widgets::status_dot(ui, theme::level_color(f.level), &f.text, &f.detail, 13.0);
                ui.add_space(10.0);
            }
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                let has_cover = !cover.notes.is_empty();
                if widgets::action(
                    ui,
                    "Export .mid",
                    true,
                    has_cover,
                    "Write the cover as a MIDI file (right and left hand on their own tracks, the capture's tempo, beat 1 at the file's start).",
                )
                .clicked()
                {
                    let grid = state::export_grid(&capture, self.status.host.tempo(), beats_per_bar);
                    let stem = state::export_stem(self.track_name.as_deref());
                    self.message =
                        Some(match state::export_cover(&self.export_dir(), &stem, &Cover { notes: cover.notes.clone(), pedal: cover.pedal.clone() }, &grid) {
                            Ok(path) => (Level::Good, format!("Saved {}", path.display())),
                            Err(e) => (Level::Error, e),
                        });
                }
                if widgets::action(
                    ui,
                    "Re-arrange",
                    false,
                    !capture.is_empty(),
                    "Arrange the captured notes again with the current settings (changes to the settings do this by themselves).",
                )
                .clicked()
                {
                    self.status.rearrange.store(true, Ordering::Release);
                    self.message = Some((Level::Good, "Re-arranged the capture with the current settings.".into()));
                }
                let confirming = now < self.confirm_clear_until;
                let label = if confirming { "Click again to clear" } else { "Clear capture" };
                if widgets::action(
                    ui,
                    label,
                    false,
                    !capture.is_empty() || snap.recording,
                    "Forget everything captured: the next pass listens again. Cannot be undone.",
                )
                .clicked()
                {
                    if confirming {
                        self.params.capture.clear();
                        self.confirm_clear_until = 0.0;
                        self.message = Some((Level::Idle, "Capture cleared: press play to listen again.".into()));
                    } else {
                        self.confirm_clear_until = now + 3.0;
                    }
                }
            });
        });
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            ui.label(RichText::new("Export folder").size(12.0).color(theme::TEXT_DIM));
            let default = state::system_export_dir();
            let mut text = self.params.editor.lock().export_dir.clone();
            let edit = egui::TextEdit::singleline(&mut text)
                .hint_text(RichText::new(default.display().to_string()).color(theme::TEXT_FAINT))
                .desired_width(ui.available_width().min(420.0))
                .font(FontId::proportional(12.0));
            if ui.add(edit).on_hover_text("Where Export .mid writes. Leave empty for the default shown in grey.").changed() {
                self.params.editor.lock().export_dir = text;
            }
            self.folder_picker(ui);
            if let Some((level, m)) = &self.message {
                ui.add_space(8.0);
                let color = match level {
                    Level::Error | Level::Warn => theme::level_color(*level),
                    _ => theme::TEXT_DIM,
                };
                ui.label(RichText::new(m).size(12.0).color(color));
            }
        });
    }
}

impl PianolaEditor {
    /// "Choose…": the desktop's folder dialog (the XDG portal, or zenity), on its own thread so the
    /// panel and the host never wait on it. Where neither exists the folder is typed.
    fn folder_picker(&mut self, ui: &mut Ui) {
        if let Some(answer) = self.folder_pick.as_ref().and_then(|p| p.lock().take()) {
            self.folder_pick = None;
            match answer {
                Some(dir) => {
                    self.params.editor.lock().export_dir = dir.display().to_string();
                    self.message = Some((Level::Good, format!("Exports go to {}", dir.display())));
                }
                None => {
                    self.message = Some((Level::Idle, "No folder chosen (without a desktop folder dialog, type the folder).".into()));
                }
            }
        }
        let picking = self.folder_pick.is_some();
        let label = if picking { "Choosing…" } else { "Choose…" };
        if widgets::action(ui, label, false, !picking, "Pick the export folder in your desktop's folder dialog.").clicked() {
            let answer = Arc::new(parking_lot::Mutex::new(None));
            let start = self.export_dir();
            let reply = answer.clone();
            let spawned = std::thread::Builder::new().name("pianola-folder-dialog".into()).spawn(move || {
                let dir = rfd::FileDialog::new().set_title("Pianola: export folder").set_directory(&start).pick_folder();
                *reply.lock() = Some(dir);
            });
            match spawned {
                Ok(_) => self.folder_pick = Some(answer),
                Err(e) => self.message = Some((Level::Warn, format!("Cannot open a folder dialog ({e}): type the folder."))),
            }
        }
        if picking {
            // Poll for the answer while the dialog is open.
            ui.ctx().request_repaint_after(Duration::from_millis(200));
        }
    }
}

/// The mark in the header: three keys of a keyboard.
fn logo(ui: &mut Ui) {
    let (rect, _) = ui.allocate_exact_size(vec2(26.0, 26.0), Sense::hover());
    let p = ui.painter();
    p.rect_filled(rect, 5.0, theme::ACCENT);
    let w = rect.width() / 3.0;
    for k in 1..3 {
        let x = rect.left() + w * k as f32;
        p.vline(x, rect.y_range().shrink(4.0), Stroke::new(1.5, Color32::from_rgb(0x1a, 0x14, 0x0c)));
    }
    for k in 0..2 {
        let x = rect.left() + w * (k as f32 + 1.0);
        let key = egui::Rect::from_center_size(pos2(x, rect.top() + 9.0), vec2(5.0, 10.0));
        p.rect_filled(key, 1.0, Color32::from_rgb(0x1a, 0x14, 0x0c));
    }
}

fn legend(ui: &mut Ui, color: Color32, label: &str) {
    let (rect, _) = ui.allocate_exact_size(vec2(14.0, 10.0), Sense::hover());
    ui.painter().rect_filled(rect, 2.0, color);
    ui.label(RichText::new(label).size(12.0).color(theme::TEXT_DIM));
    ui.add_space(8.0);
}

#[cfg(test)]
mod tests {
    use crate::model::{ModelError, NoteModel, WindowFrames};
    use crate::notes::Hand;
    use crate::params::{CapturedSong, PianolaParams, SavedNote};
    use crate::ring::{self, CaptureShared};
    use crate::status::Status;
    use crate::timeline::{self, Timeline};
    use crate::worker::{ModelSource, WorkerHandle, WorkerSetup};
    use nice_plug::prelude::Param;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A model that counts its windows: re-arranging must never run it.
    struct Counting(Arc<AtomicUsize>);
    impl NoteModel for Counting {
        fn backend(&self) -> &'static str {
            "counting"
        }
        fn run_window(&mut self, _window: &[f32], _out: &mut WindowFrames) -> Result<(), ModelError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }

    /// Eight bars of a melody over a bass and chord tones, in beats.
    fn song() -> CapturedSong {
        let mut notes = vec![];
        for bar in 0..8 {
            let b = bar as f64 * 4.0;
            let root = [48u8, 53, 55, 48][bar % 4];
            notes.push(SavedNote(b, b + 4.0, root, 0.6, 0.5));
            notes.push(SavedNote(b, b + 4.0, root + 16, 0.4, 0.3));
            notes.push(SavedNote(b, b + 4.0, root + 19, 0.4, 0.3));
            for k in 0..4 {
                notes.push(SavedNote(b + k as f64, b + k as f64 + 0.9, 72 + [0u8, 2, 4, 7][(k + bar) % 4], 0.8, 0.9));
            }
        }
        notes.sort_by(|a, b| a.0.total_cmp(&b.0));
        CapturedSong { notes, beats_per_bar: 4, seconds_per_beat: 0.5, covered: vec![[0.0, 32.0]], ..CapturedSong::default() }
    }

    fn wait_for(status: &Status, what: &str, f: impl Fn(&Timeline) -> bool) -> Arc<Timeline> {
        let start = Instant::now();
        loop {
            let t = status.cover.lock().unwrap().clone();
            if f(&t) {
                return t;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The editor's controls and its Re-arrange button act on the captured notes: the worker
    /// re-arranges them without the model (there is no audio to re-transcribe).
    #[test]
    fn arrangement_changes_and_rearrange_do_not_run_the_model() {
        let params = Arc::new(PianolaParams::default());
        params.capture.store(song());
        let status = Arc::new(Status::default());
        let shared = Arc::new(CaptureShared::default());
        let (_writer, reader) = ring::channel(shared.clone());
        let (publisher, _timeline) = timeline::channel(Arc::new(Timeline::default()));
        let windows = Arc::new(AtomicUsize::new(0));
        let worker = WorkerHandle::spawn(WorkerSetup {
            params: params.clone(),
            status: status.clone(),
            capture: shared,
            reader,
            publisher,
            model: ModelSource::Ready(Box::new(Counting(windows.clone()))),
        })
        .unwrap();

        let first = wait_for(&status, "the restored cover", |t| !t.notes.is_empty());
        assert!(status.model_ready.load(Ordering::Acquire), "the editor can tell the model is loaded");
        assert!(first.notes.iter().any(|n| n.hand == Hand::Left) && first.notes.iter().any(|n| n.melody));

        // Re-arrange: a new publication of the same cover.
        status.rearrange.store(true, Ordering::Release);
        let again = wait_for(&status, "the re-arranged cover", |t| t.generation > first.generation);
        assert_eq!(again.notes, first.notes, "same notes, same settings: same cover");
        assert!(!status.rearrange.load(Ordering::Acquire), "the request was taken");

        // Density to 0 (what the editor's bar does through the host): the melody alone.
        // Safety: the parameter outlives the call; this is how a host sets a value.
        unsafe { params.density.as_ptr()._internal_set_normalized_value(0.0) };
        let sparse = wait_for(&status, "the sparser cover", |t| t.generation > again.generation);
        assert!(sparse.notes.len() < first.notes.len(), "{} vs {}", sparse.notes.len(), first.notes.len());
        assert!(sparse.notes.iter().all(|n| n.hand == Hand::Right), "density 0 keeps the melody only");
        assert_eq!(windows.load(Ordering::Relaxed), 0, "re-arranging never runs the model");
        assert_eq!(params.capture.get(), song(), "the capture itself is untouched");
        worker.stop();
        // The editor's snapshot of this state.
        assert_eq!(super::state::CaptureSummary::of(&params.capture.get()).length_text(), "8 bars · 0:16");
    }
}
