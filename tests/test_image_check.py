"""The header readers of check_dataset agree with Pillow, and defer to image_io on anything else."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from paddlex_cls.dataset_check.image_check import image_problem
from paddlex_cls.preprocess.image_header import jpeg_size, png_size
from paddlex_cls.preprocess.image_io import MAX_PIXELS


def encoded(mode, fmt, size=(37, 21), **save):
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, fmt, **save)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_png_size_matches_pillow(mode):
    assert png_size(encoded(mode, "PNG")) == (37, 21)


@pytest.mark.parametrize("mode,progressive", [("L", False), ("RGB", False), ("RGB", True), ("CMYK", False)])
def test_jpeg_size_matches_pillow(mode, progressive):
    assert jpeg_size(encoded(mode, "JPEG", progressive=progressive)) == (37, 21)


def test_png_with_a_bad_chunk_crc_is_left_to_pillow(tmp_path):
    data = bytearray(encoded("RGB", "PNG"))
    data[29] ^= 0xFF  # the IHDR CRC
    assert png_size(bytes(data)) is None
    (tmp_path / "bad.png").write_bytes(bytes(data))
    assert "is not a readable image" in image_problem(str(tmp_path / "bad.png"))


def test_header_beyond_the_first_read_goes_to_image_io(tmp_path):
    exif = Image.Exif()
    exif[0x010E] = "x" * 60000  # ImageDescription: an APP1 segment of about 60 kB, then ICC data
    path = tmp_path / "big_header.jpg"
    Image.new("RGB", (40, 30)).save(path, exif=exif.tobytes(), icc_profile=b"\0" * 20000)
    assert jpeg_size(path.read_bytes()[:65536]) is None
    assert image_problem(str(path)) is None


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("fmt", ["BMP", "GIF", "TIFF", "WEBP"])
def test_other_formats_are_checked_by_image_io(tmp_path, fmt):
    path = tmp_path / f"x.{fmt.lower()}"
    Image.new("RGB", (9, 7)).save(path, fmt)
    assert image_problem(str(path)) is None
    path.write_bytes(path.read_bytes()[:8])
    assert "is not a readable image" in image_problem(str(path))


def test_pixel_bomb_refused_from_its_header(tmp_path):
    """A 633-byte JPEG may claim 30000 x 30000 pixels: refused from the header, nothing is decoded."""
    data = bytearray(encoded("RGB", "JPEG", size=(8, 8)))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 30000, 30000)
    path = tmp_path / "bomb.jpg"
    path.write_bytes(bytes(data))
    why = image_problem(str(path))
    assert f"above the limit of {MAX_PIXELS:,}" in why


def test_png_chunks_before_idat_are_walked(tmp_path):
    data = encoded("RGB", "PNG", pnginfo=None)
    text = b"tEXtComment\0hello"
    chunk = struct.pack(">I", len(text) - 4) + text + struct.pack(">I", zlib.crc32(text))
    with_text = data[:33] + chunk + data[33:]
    assert png_size(with_text) == (37, 21)
    broken = with_text[:33] + chunk[:-1] + b"\0" + with_text[33 + len(chunk):]
    assert png_size(broken) is None


def test_full_decode_uses_image_io(tmp_path):
    path = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8)).save(path)
    assert image_problem(str(path), full=True) is None
    path.write_bytes(path.read_bytes()[:300])
    assert "is not a readable image" in image_problem(str(path), full=True)
    assert image_problem(str(path)) is None  # a truncated image passes the header check
