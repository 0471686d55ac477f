//! Editor row, on the real bundle in a CLAP host: the plugin's editor opened and closed many times
//! through the CLAP `gui` extension (embedded in a real X11 parent window, drawing with OpenGL) on the
//! main thread while the audio thread keeps processing. Afterwards every note-on has its note-off,
//! every note is on a beat of the cover and none is missing, the editor never closed itself, and the
//! project's state is unchanged and still round-trips.
//!
//! Display: `DISPLAY` if set; otherwise the test starts its own Xvfb (scripts/setup.sh --tests
//! installs it) and draws with Mesa's software OpenGL (`LIBGL_ALWAYS_SOFTWARE=1`).

use crate::host::{self, Instance, TestHost};
use crate::lifecycle::{clicks_project, notes_in, TEMPO};
use crate::rig::{check_balanced, check_on_beat};
use clack_host::extensions::prelude::*;
use clap_sys::ext::gui::{clap_host_gui, clap_window, clap_window_handle, CLAP_EXT_GUI, CLAP_WINDOW_API_X11};
use std::ffi::{c_ulong, CString};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use x11_dl::xlib;

const SAMPLE_RATE: f64 = 48000.0;
const BLOCK: usize = 512;
/// The audio thread plays at least this many beats, and goes on until the editor is done.
const MIN_BEATS: f64 = 64.0;
/// Editor open/close cycles, and how long each stays open after it first drew.
const CYCLES: usize = 10;
const OPEN_FOR: Duration = Duration::from_millis(150);
/// How long a freshly shown editor may take to draw its first frame (software GL, a busy machine).
const FIRST_FRAME_DEADLINE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// The host side of the `gui` extension (registered by `host::TestHost`)

/// What the plugin asked of the host's `gui` extension (all instances; only this row opens editors).
static CLOSED: AtomicUsize = AtomicUsize::new(0);
static RESIZE_REQUESTS: AtomicUsize = AtomicUsize::new(0);
static OTHER_REQUESTS: AtomicUsize = AtomicUsize::new(0);

#[derive(Copy, Clone)]
pub struct HostGui(#[allow(dead_code)] RawExtension<HostExtensionSide, clap_host_gui>);

// SAFETY: CLAP_EXT_GUI is the id of clap_host_gui.
unsafe impl Extension for HostGui {
    const IDENTIFIERS: &'static [&'static std::ffi::CStr] = &[CLAP_EXT_GUI];
    type ExtensionSide = HostExtensionSide;

    unsafe fn from_raw(raw: RawExtension<Self::ExtensionSide>) -> Self {
        Self(unsafe { raw.cast() })
    }
}

// SAFETY: the implementation is a clap_host_gui, the struct of the extension's host side.
unsafe impl ExtensionImplementation<TestHost> for HostGui {
    const IMPLEMENTATION: RawExtensionImplementation = RawExtensionImplementation::new(&clap_host_gui {
        resize_hints_changed: Some(resize_hints_changed),
        request_resize: Some(request_resize),
        request_show: Some(request_show_or_hide),
        request_hide: Some(request_show_or_hide),
        closed: Some(closed),
    });
}

unsafe extern "C" fn resize_hints_changed(_host: *const clap_host) {}

/// Accepted (the editor resizes itself; the parent window stays as it is).
unsafe extern "C" fn request_resize(_host: *const clap_host, _width: u32, _height: u32) -> bool {
    RESIZE_REQUESTS.fetch_add(1, Ordering::Relaxed);
    true
}

unsafe extern "C" fn request_show_or_hide(_host: *const clap_host) -> bool {
    OTHER_REQUESTS.fetch_add(1, Ordering::Relaxed);
    false
}

/// The editor went away on its own (a crash of its window thread, a lost display connection).
unsafe extern "C" fn closed(_host: *const clap_host, _was_destroyed: bool) {
    CLOSED.fetch_add(1, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------------------
// The display

/// The X server the editor draws on: `DISPLAY`, or an Xvfb of our own (killed on drop).
struct Screen {
    name: String,
    xvfb: Option<(Child, std::process::ChildStdout)>,
    set_display: bool,
    set_software_gl: bool,
}

impl Screen {
    fn open() -> Screen {
        if let Some(name) = std::env::var_os("DISPLAY").filter(|d| !d.is_empty()) {
            return Screen { name: name.to_string_lossy().into_owned(), xvfb: None, set_display: false, set_software_gl: false };
        }
        // A free display number chosen by Xvfb itself (written to stdout once it accepts clients);
        // -terminate: it also goes away if this process dies while connected.
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-terminate"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("DISPLAY is unset and Xvfb did not start ({e}); scripts/setup.sh --tests installs it"));
        let mut out = child.stdout.take().unwrap();
        let mut line = String::new();
        let read = std::io::BufReader::new(&mut out).read_line(&mut line);
        let number: u32 = match read.ok().and_then(|_| line.trim().parse().ok()) {
            Some(n) => n,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("Xvfb did not report a display number ({line:?})");
            }
        };
        let name = format!(":{number}");
        // The editor's window thread connects to $DISPLAY. Only this row reads these two variables.
        std::env::set_var("DISPLAY", &name);
        let set_software_gl = std::env::var_os("LIBGL_ALWAYS_SOFTWARE").is_none();
        if set_software_gl {
            std::env::set_var("LIBGL_ALWAYS_SOFTWARE", "1");
        }
        Screen { name, xvfb: Some((child, out)), set_display: true, set_software_gl }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if let Some((mut child, _)) = self.xvfb.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.set_display {
            std::env::remove_var("DISPLAY");
        }
        if self.set_software_gl {
            std::env::remove_var("LIBGL_ALWAYS_SOFTWARE");
        }
    }
}

/// The host's own Xlib connection: parent windows for the editor, and a look at what they show.
struct X {
    xlib: xlib::Xlib,
    display: *mut xlib::Display,
}

impl X {
    fn open(name: &str) -> X {
        let xlib = xlib::Xlib::open().expect("loading libX11");
        let cname = CString::new(name).unwrap();
        let display = unsafe { (xlib.XOpenDisplay)(cname.as_ptr()) };
        assert!(!display.is_null(), "cannot open X display {name}");
        X { xlib, display }
    }

    /// A mapped top-level window of `w` x `h`, black, as a host's plugin window.
    fn parent(&self, w: u32, h: u32) -> c_ulong {
        unsafe {
            let root = (self.xlib.XDefaultRootWindow)(self.display);
            let win = (self.xlib.XCreateSimpleWindow)(self.display, root, 0, 0, w, h, 0, 0, 0);
            (self.xlib.XMapWindow)(self.display, win);
            (self.xlib.XSync)(self.display, xlib::False);
            win
        }
    }

    fn children(&self, win: c_ulong) -> usize {
        let (mut root, mut parent, mut children, mut n) = (0, 0, std::ptr::null_mut(), 0);
        unsafe {
            (self.xlib.XQueryTree)(self.display, win, &mut root, &mut parent, &mut children, &mut n);
            if !children.is_null() {
                (self.xlib.XFree)(children as *mut _);
            }
        }
        n as usize
    }

    /// The colours of `win` (sampled every 8th pixel in each direction): (pixels that are not the
    /// parent's black, distinct colours).
    fn look(&self, win: c_ulong, w: u32, h: u32) -> (usize, usize) {
        let mut colours = std::collections::HashSet::new();
        let mut lit = 0;
        unsafe {
            let image = (self.xlib.XGetImage)(self.display, win, 0, 0, w, h, !0, xlib::ZPixmap);
            if image.is_null() {
                return (0, 0);
            }
            for y in (0..h as i32).step_by(8) {
                for x in (0..w as i32).step_by(8) {
                    let c = (self.xlib.XGetPixel)(image, x, y) & 0xff_ffff;
                    lit += (c != 0) as usize;
                    colours.insert(c);
                }
            }
            (self.xlib.XDestroyImage)(image);
        }
        (lit, colours.len())
    }

    fn destroy(&self, win: c_ulong) {
        unsafe {
            (self.xlib.XDestroyWindow)(self.display, win);
            (self.xlib.XSync)(self.display, xlib::False);
        }
    }
}

impl Drop for X {
    fn drop(&mut self) {
        unsafe { (self.xlib.XCloseDisplay)(self.display) };
    }
}

// ---------------------------------------------------------------------------------------------

/// Sets the flag when dropped, so the audio thread stops even when the main thread panics.
struct Raise<'a>(&'a AtomicBool);
impl Drop for Raise<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[test]
fn the_editor_opens_and_closes_while_processing() {
    // Before any editor opens: its window thread reads DISPLAY and Mesa LIBGL_ALWAYS_SOFTWARE.
    let screen = Screen::open();
    let x = X::open(&screen.name);

    let (project, cover) = clicks_project();
    let mut plugin = Instance::new();
    assert!(plugin.load_state(&project));
    let before = host::state_json(&plugin.save_state());
    plugin.activate(SAMPLE_RATE, BLOCK as u32);
    let player = plugin.player();
    let (gui, raw) = plugin.gui();
    let gui = unsafe { &*gui };
    let x11 = CLAP_WINDOW_API_X11.as_ptr();
    let requests = || [&CLOSED, &RESIZE_REQUESTS, &OTHER_REQUESTS].map(|c| c.load(Ordering::Relaxed));
    let requests0 = requests();

    let done = AtomicBool::new(false);
    let blocks = AtomicU64::new(0);
    let started = Instant::now();
    let mut log = vec![];
    let (player, expected, beats) = std::thread::scope(|s| {
        // The audio thread: the cover's 32 beats in 4-beat stretches (each ending with a stopped
        // block, as the lifecycle rows play), round and round, blocks of 512 at about 10x real time.
        let audio = s.spawn(|| {
            let mut p = player;
            let spb = SAMPLE_RATE * 60.0 / TEMPO;
            let (mut expected, mut beats, mut k) = (0, 0.0, 0);
            while beats < MIN_BEATS || !done.load(Ordering::Acquire) {
                assert!(started.elapsed() < Duration::from_secs(300), "the editor cycles never finished");
                let from = (k % 8) as f64 * 4.0;
                let to = from + 4.0;
                let total = ((to - from) * spb).round() as usize;
                let mut at = 0;
                while at < total {
                    let n = BLOCK.min(total - at);
                    p.block(from + at as f64 / spb, TEMPO, true, n, 0.0);
                    at += n;
                    blocks.fetch_add(1, Ordering::Release);
                    std::thread::sleep(Duration::from_millis(1));
                }
                p.block(to, TEMPO, false, BLOCK, 0.0);
                expected += notes_in(&cover, from, to, SAMPLE_RATE);
                beats += to - from;
                k += 1;
            }
            (p, expected, beats)
        });

        // The main thread: the editor opened, drawn for a while, closed, again and again.
        let _stop = Raise(&done);
        while blocks.load(Ordering::Acquire) == 0 {
            assert!(!audio.is_finished(), "the audio thread stopped before its first block");
            std::thread::sleep(Duration::from_millis(1));
        }
        for cycle in 0..CYCLES {
            let t0 = Instant::now();
            unsafe {
                assert!((gui.is_api_supported.unwrap())(raw, x11, false), "cycle {cycle}: x11 embedding not supported");
                assert!((gui.create.unwrap())(raw, x11, false), "cycle {cycle}: create failed");
            }
            // On X11 the host may suggest a scale; nice-plug takes it as a fallback for Xft.dpi.
            let scaled = unsafe { (gui.set_scale.unwrap())(raw, 1.0) };
            let (mut w, mut h) = (0u32, 0u32);
            assert!(unsafe { (gui.get_size.unwrap())(raw, &mut w, &mut h) } && w > 0 && h > 0, "cycle {cycle}: get_size gave {w}x{h}");
            let parent = x.parent(w, h);
            let window = clap_window { api: x11, specific: clap_window_handle { x11: parent } };
            assert!(unsafe { (gui.set_parent.unwrap())(raw, &window) }, "cycle {cycle}: set_parent failed");
            assert!(unsafe { (gui.show.unwrap())(raw) }, "cycle {cycle}: show failed");
            let opened = t0.elapsed();

            // Let it draw (the host pumps its main-thread callbacks meanwhile): a frame is there once
            // the parent shows a few colours (the editor's panels, text, roll), not just its black.
            let shown = Instant::now();
            let blocks_shown = blocks.load(Ordering::Acquire);
            let mut first_frame = None;
            let mut last_look = Instant::now() - Duration::from_secs(1);
            let mut seen = (0, 0);
            while first_frame.is_none_or(|f| shown.elapsed() < f + OPEN_FOR) {
                plugin.main_thread_tasks();
                if first_frame.is_none() && last_look.elapsed() >= Duration::from_millis(20) {
                    last_look = Instant::now();
                    seen = x.look(parent, w, h);
                    if seen.1 >= 3 {
                        first_frame = Some(shown.elapsed());
                    }
                    assert!(
                        first_frame.is_some() || shown.elapsed() < FIRST_FRAME_DEADLINE,
                        "cycle {cycle}: the editor drew nothing in {FIRST_FRAME_DEADLINE:?}"
                    );
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let processed_while_open = blocks.load(Ordering::Acquire) - blocks_shown;
            assert!(processed_while_open > 0, "cycle {cycle}: no block was processed while the editor was open");
            assert_eq!(x.children(parent), 1, "cycle {cycle}: the editor's window is not in the parent");

            let t1 = Instant::now();
            assert!(unsafe { (gui.hide.unwrap())(raw) }, "cycle {cycle}: hide failed");
            plugin.main_thread_tasks();
            unsafe { (gui.destroy.unwrap())(raw) };
            plugin.main_thread_tasks();
            let closing = t1.elapsed();
            // baseview's close can lose a race with its window thread and return before that thread
            // ended (it logs "Error while closing window"): the window then goes a moment later. This
            // host waits for that before it destroys the parent (destroying the parent at once gave
            // only BadWindow warnings from the window thread in 100 cycles).
            let left_after_destroy = x.children(parent);
            let gone = Instant::now();
            while x.children(parent) != 0 {
                assert!(gone.elapsed() < Duration::from_secs(5), "cycle {cycle}: the editor's window outlived destroy()");
                std::thread::sleep(Duration::from_millis(1));
            }
            let lag = gone.elapsed();
            x.destroy(parent);
            log.push(format!(
                "cycle {cycle}: {w}x{h}, set_scale(1.0) {scaled}, opened in {opened:.0?}, first frame after {:.0?} \
                 ({} of {} sampled pixels lit, {} colours), {processed_while_open} blocks processed while open, closed in {closing:.0?}{}",
                first_frame.unwrap(),
                seen.0,
                w.div_ceil(8) * h.div_ceil(8),
                seen.1,
                if left_after_destroy > 0 { format!(" (its window went {lag:.0?} after destroy())") } else { String::new() },
            ));
        }
        drop(_stop);
        audio.join().expect("the audio thread")
    });
    let elapsed = started.elapsed();
    for line in &log {
        eprintln!("{line}");
    }

    let events = plugin.put_back(player);
    check_balanced(&events, "editor cycles");
    let n = check_on_beat(&events, &cover, "editor cycles");
    eprintln!("{beats} beats played, {n} notes of {expected} on their beats, {elapsed:.1?} in all");
    assert_eq!(n, expected, "notes played while the editor opened and closed");
    let [closed, resizes, others] = std::array::from_fn(|i| requests()[i] - requests0[i]);
    assert_eq!(closed, 0, "the editor closed itself");
    assert_eq!(resizes, 0, "the editor asked for another size");
    assert_eq!(others, 0, "the editor asked to be shown or hidden");

    // The project is as it was (window size included), and its state still round-trips.
    plugin.deactivate();
    let saved = plugin.save_state();
    assert_eq!(host::state_json(&saved), before, "the editor changed the project");
    let mut other = Instance::new();
    assert!(other.load_state(&saved));
    assert_eq!(host::state_json(&other.save_state()), host::state_json(&saved), "the state does not round-trip");
    drop(other);
    drop(plugin);
    drop(x);
    drop(screen);
}
