"""Labels drawn on images: legible on tiny images, and real glyphs (not boxes) for CJK and Cyrillic class names."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from paddlex_cls import drawing

MISSING = "\U0010fffd"  # a private-use code point no font maps: renders the .notdef glyph


def _mask(font, text: str) -> bytes:
    canvas = Image.new("L", (2 * font.size, 2 * font.size))
    ImageDraw.Draw(canvas).text((0, 0), text, font=font, fill=255)
    return canvas.tobytes()


@pytest.fixture()
def image() -> Image.Image:
    return Image.new("RGB", (32, 32), (200, 40, 40))


@pytest.mark.parametrize("text", ["cat 0.98765", "垃圾分类", "Привет мир", "垃圾 bag 0.91"])
def test_label_is_drawn_top_left(image, text):
    out = drawing.draw_label(image, text)
    assert out is not image and out.mode == "RGB"
    assert min(out.size) >= drawing.MIN_SIDE  # upscaled so the text is legible
    plain = np.asarray(image.resize(out.size, Image.Resampling.NEAREST))
    changed = np.any(np.asarray(out) != plain, axis=2)
    top_left = changed[: out.height // 4, : out.width // 2]
    assert top_left.mean() > 0.3, "the label box should cover the top-left corner"
    assert not changed[out.height // 2:].any(), "nothing is drawn outside the label box"
    assert image.getpixel((0, 0)) == (200, 40, 40), "the input is left untouched"


def test_chinese_font_has_the_glyphs():
    # Fails (not skips) without a CJK font: the bundled Droid Sans Fallback must always be there.
    font = drawing.load_font(32, "垃圾分类")
    notdef = _mask(font, MISSING)
    masks = {ch: _mask(font, ch) for ch in "垃圾分类"}
    assert len(set(masks.values())) == 4, "different characters must draw different glyphs"
    assert notdef not in masks.values(), "a CJK character drew the .notdef box"
    assert str(drawing.BUNDLED_CJK_FONT) in drawing.font_paths_for("垃圾分类")


def test_chinese_label_is_not_tofu(image):
    box = (0, 0, 60, 20)
    real = np.asarray(drawing.draw_label(image, "垃圾分类").crop(box))
    other = np.asarray(drawing.draw_label(image, "猫狗鸟鱼").crop(box))
    tofu = np.asarray(drawing.draw_label(image, MISSING * 4).crop(box))
    assert (real != other).any() and (real != tofu).any()


@pytest.mark.parametrize("text", ["Привет", "ねこ 고양이", "cat"])
def test_scripts_are_covered(text):
    font = drawing.load_font(24, text)
    notdef = _mask(font, MISSING)
    assert all(_mask(font, ch) != notdef for ch in text if not ch.isspace())


def test_mixed_text_uses_two_fonts():
    paths = drawing.font_paths_for("垃圾 bag")
    assert len(paths) == 2 and paths[1] == str(drawing.BUNDLED_CJK_FONT)


def test_large_image_keeps_size_and_transparency_turns_white():
    rgba = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    out = drawing.draw_label(rgba, "a label")
    assert out.size == (300, 200) and out.mode == "RGB"
    assert out.getpixel((299, 199)) == (255, 255, 255)


def test_long_label_shrinks_to_fit(image):
    out = drawing.draw_label(image, "a very long class name " * 3)
    assert out.size == (128, 128)  # nothing raised; the label is cut at the edge
    assert drawing.draw_label(image, "   ").size == (128, 128)
