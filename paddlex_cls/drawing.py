"""Drawing class names on images, in any script.

Fonts are tried in a fixed order: DejaVu Sans (matplotlib's copy; Latin, Greek, Cyrillic, Arabic, Hebrew), then
the bundled Droid Sans Fallback (Chinese, Japanese, Korean), then whatever system font fontconfig finds for a
character neither has. A text that one font covers is drawn with that font in one call, so shaping and
right-to-left order work; mixed text (``"垃圾 0.98"``) is drawn as runs, each in the first font that has its glyphs.

Example:
    >>> from PIL import Image
    >>> labelled = draw_label(Image.open("cat.jpg"), "猫 0.97")
"""
from __future__ import annotations

import functools
import importlib.util
import math
import shutil
import subprocess
import unicodedata
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .log import logger

FONT_DIR = Path(__file__).with_name("fonts")
BUNDLED_CJK_FONT = FONT_DIR / "DroidSansFallback.ttf"
# Images whose short side is below this are upscaled before drawing: text on a 32x32 image cannot be read.
MIN_SIDE = 128
FONT_SIZE = 14  # smallest size at which CJK strokes stay distinct; larger images get 5% of their short side
MIN_FONT_SIZE = 10  # a label too long for the image shrinks down to this, then is cut at the right edge
DEFAULT_BOX_COLOR = (0, 92, 175)

FontFile = tuple[str, int]  # (path, face index inside a .ttc)
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    # Labels are drawn once per image: the same warning for every image would drown the log.
    if key not in _warned:
        _warned.add(key)
        logger.warning(message)


def _dejavu_sans() -> FontFile | None:
    """DejaVu Sans from matplotlib's data folder (found without importing matplotlib, which is slow) or the system."""
    candidates = []
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf")
    candidates.append(Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"))
    for path in candidates:
        if path.is_file():
            return str(path), 0
    return None


@functools.lru_cache(maxsize=1)
def _base_chain() -> tuple[FontFile, ...]:
    """The fonts tried first, in order."""
    chain = [f for f in (_dejavu_sans(),) if f is not None]
    if not chain:
        _warn_once("dejavu", "DejaVu Sans not found (install matplotlib); using PIL's default font for Latin text.")
    if BUNDLED_CJK_FONT.is_file():
        chain.append((str(BUNDLED_CJK_FONT), 0))
    else:
        _warn_once("cjk", f"Bundled font {BUNDLED_CJK_FONT} is missing; Chinese, Japanese and Korean text may show "
                          "as boxes. Reinstall paddlex_cls.")
    return tuple(chain)


@functools.lru_cache(maxsize=None)
def _charmap(font: FontFile) -> frozenset[int]:
    """Code points that have a glyph in ``font``."""
    from fontTools.ttLib import TTFont  # a dependency of matplotlib; imported late to keep `import` cheap

    with TTFont(font[0], fontNumber=font[1], lazy=True) as tt:
        return frozenset(tt.getBestCmap() or ())


def _is_blank(ch: str) -> bool:
    # Spaces and format/control characters need no glyph of their own: any font "covers" them.
    return ch.isspace() or unicodedata.category(ch)[0] in "CZ"


def _covers(font: FontFile, text: str) -> bool:
    cmap = _charmap(font)
    return all(_is_blank(ch) or ord(ch) in cmap for ch in text)


@functools.lru_cache(maxsize=1024)
def _system_font_for(ch: str) -> FontFile | None:
    """A system font with a glyph for ``ch``, asked of fontconfig; None if there is none or no fontconfig."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        out = subprocess.run([fc_list, "-f", "%{file}\t%{index}\t%{style}\n", f":charset={ord(ch):x}"],
                             capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].isdigit():
            # Prefer an upright regular face; sort by path so the choice does not depend on fontconfig's order.
            plain = any(s in parts[2] for s in ("Regular", "Book", "Normal"))
            found.append((not plain, parts[0], int(parts[1])))
    found.sort()
    return (found[0][1], found[0][2]) if found else None


def _font_for_char(ch: str) -> FontFile | None:
    for font in _base_chain():
        if _covers(font, ch):
            return font
    return _system_font_for(ch)


def _runs(text: str) -> list[tuple[str, FontFile | None]]:
    """Split ``text`` into runs, each with the font that draws it (None: no font has these glyphs)."""
    for font in _base_chain():
        if _covers(font, text):
            return [(text, font)]
    runs: list[tuple[str, FontFile | None]] = []
    for ch in text:
        if runs and (_is_blank(ch) or (runs[-1][1] is not None and _covers(runs[-1][1], ch))):
            runs[-1] = (runs[-1][0] + ch, runs[-1][1])
            continue
        font = _font_for_char(ch)
        if font is None:
            _warn_once("glyph", f"No font has a glyph for {ch!r} (in {text!r}); it is drawn as a box. Install a font "
                                "for this script (e.g. a Noto package) to fix it.")
        if runs and runs[-1][1] == font:
            runs[-1] = (runs[-1][0] + ch, font)
        else:
            runs.append((ch, font))
    return runs


@functools.lru_cache(maxsize=64)
def _truetype(font: FontFile | None, size: int) -> Font:
    chain = _base_chain()
    font = font or (chain[0] if chain else None)
    if font is None:
        try:
            return ImageFont.load_default(size)
        except TypeError:  # Pillow < 10.1 has only a fixed-size bitmap default
            return ImageFont.load_default()
    return ImageFont.truetype(font[0], size, index=font[1])


def font_paths_for(text: str) -> list[str]:
    """Font files needed to draw ``text``, the primary (Latin) font first.

    Used to register fonts with matplotlib, whose per-glyph fallback then picks the right one for each character.
    """
    paths = [font[0] for font in _base_chain()[:1]]
    for _, font in _runs(text):
        if font is not None and font[0] not in paths:
            paths.append(font[0])
    return paths


def load_font(size: int, text: str = "") -> Font:
    """The font to draw ``text`` at ``size`` pixels: the first that has all its glyphs, else the primary font.

    Fonts are cached, so calling this per image is cheap.
    """
    runs = _runs(text) if text else []
    return _truetype(runs[0][1] if len(runs) == 1 else None, size)


def _to_rgb(image: Image.Image) -> Image.Image:
    # Transparent pixels become white rather than the black that a plain convert("RGB") gives.
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _metrics(font: Font) -> tuple[int, int]:
    """(ascent, descent) in pixels; PIL's bitmap fallback font has no metrics, so use its box height."""
    if isinstance(font, ImageFont.FreeTypeFont):
        return font.getmetrics()
    return int(font.getbbox("Ag")[3]), 0


def draw_label(image: Image.Image, text: str, *, box_color: tuple[int, int, int] = DEFAULT_BOX_COLOR,
               bottom: bool = False) -> Image.Image:
    """A copy of ``image`` (RGB) with ``text`` drawn top-left (or bottom-left) on a filled box.

    Images whose short side is below ``MIN_SIDE`` (128 px) are first upscaled by an integer factor with nearest
    neighbour, so the label stays legible and the pixels stay as they were; the returned image is then larger
    than the input. The font size follows the image size and shrinks to fit a long label (to ``MIN_FONT_SIZE``,
    then the label is cut at the right edge); the text is black or white, whichever reads better on ``box_color``.
    """
    canvas = _to_rgb(image)
    short = min(canvas.size)
    if 0 < short < MIN_SIDE:
        factor = math.ceil(MIN_SIDE / short)
        canvas = canvas.resize((canvas.width * factor, canvas.height * factor), Image.Resampling.NEAREST)
    text = " ".join(text.split())  # tabs and newlines would break the one-line box
    if not text:
        return canvas
    size = max(FONT_SIZE, round(min(canvas.size) * 0.05))
    runs = [(t, _truetype(f, size)) for t, f in _runs(text)]
    width = sum(font.getlength(t) for t, font in runs)
    pad = max(2, size // 5)
    room = canvas.width - 2 * pad
    if width > room and size > MIN_FONT_SIZE:
        size = max(MIN_FONT_SIZE, int(size * room / width))
        runs = [(t, _truetype(f, size)) for t, f in _runs(text)]
        width = sum(font.getlength(t) for t, font in runs)
    ascent = max(_metrics(font)[0] for _, font in runs)
    descent = max(_metrics(font)[1] for _, font in runs)
    draw = ImageDraw.Draw(canvas)
    top = canvas.height - (ascent + descent + 2 * pad) if bottom else 0
    draw.rectangle((0, top, math.ceil(width) + 2 * pad, top + ascent + descent + 2 * pad), fill=box_color)
    luminance = 0.299 * box_color[0] + 0.587 * box_color[1] + 0.114 * box_color[2]
    ink = (0, 0, 0) if luminance > 150 else (255, 255, 255)
    x = float(pad)
    for part, font in runs:
        if isinstance(font, ImageFont.FreeTypeFont):
            # A common baseline keeps runs in different fonts on one line.
            draw.text((x, top + pad + ascent), part, font=font, fill=ink, anchor="ls")
        else:
            draw.text((x, top + pad), part, font=font, fill=ink)
        x += font.getlength(part)
    return canvas
