#!/usr/bin/env python3
"""Checks a screenshot of the Pianola editor: crops the window out of a root-window screenshot,
saves it, and fails unless it is drawn (many colours, not one flat fill) and its piano roll shows
notes in the melody, right-hand and left-hand colours (src/editor/theme.rs).

    check_editor_screenshot.py ROOT.png WxH+X+Y OUT.png SCALE
"""
import pathlib
import re
import sys

from PIL import Image

THEME = pathlib.Path(__file__).resolve().parent.parent / "src/editor/theme.rs"


def theme_colour(name):
    """The RGB of `pub const NAME: Color32 = Color32::from_rgb(..)` in theme.rs (defined once, there)."""
    m = re.search(rf"pub const {name}: Color32 = Color32::from_rgb\((0x[0-9a-fA-F]+), (0x[0-9a-fA-F]+), (0x[0-9a-fA-F]+)\)", THEME.read_text())
    if not m:
        sys.exit(f"{THEME}: no colour {name}")
    return tuple(int(v, 16) for v in m.groups())


HANDS = {"melody": theme_colour("MELODY"), "right hand": theme_colour("RIGHT_HAND"), "left hand": theme_colour("LEFT_HAND")}
TOLERANCE = 6


def main():
    root, geometry, out, scale = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    m = re.match(r"(\d+)x(\d+)\+(-?\d+)\+(-?\d+)", geometry)
    if not m:
        sys.exit(f"bad geometry {geometry!r}")
    w, h, x, y = map(int, m.groups())
    img = Image.open(root).convert("RGB").crop((x, y, x + w, y + h))
    img.save(out)
    pixels = list(img.get_flattened_data())
    colours = len(set(pixels))
    counts = {name: 0 for name in HANDS}
    for p in pixels:
        for name, c in HANDS.items():
            if all(abs(p[i] - c[i]) <= TOLERANCE for i in range(3)):
                counts[name] += 1
    # The legend shows each colour on ~130 px; a roll with a real song's cover has thousands more.
    # The right hand's harmony under the melody is optional (at density 0.5 a chorale's right hand
    # is often the melody alone), so the melody and the left hand must be there, the rest is shown.
    need = int(1500 * scale * scale)
    required = ("melody", "left hand")
    print(f"{out}: {w}x{h} at {scale}x, {colours} colours, hand pixels {counts} (need {need} of {' and '.join(required)})")
    problems = []
    if colours < 40:
        problems.append(f"looks blank ({colours} colours)")
    for name in required:
        if counts[name] < need:
            problems.append(f"too few {name} pixels ({counts[name]})")
    if problems:
        sys.exit("; ".join(problems))


main()
