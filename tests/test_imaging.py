"""The input policy: what load_image converts, what it refuses, and how."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from sursmr_core.errors import ImageLoadError, InputError, UnsupportedImageError
from sursmr_core.imaging import ImageConversionWarning, check_rgb, load_image


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def write_png16_rgb(path: Path, pixels: np.ndarray) -> None:
    """A real 48-bit RGB PNG (Pillow cannot write one)."""
    height, width = pixels.shape[:2]
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def test_rgb_png_loads_unchanged(tmp_path: Path, small_photo: np.ndarray) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(small_photo).save(path)
    loaded = load_image(path)
    assert loaded.dtype == np.uint8 and loaded.flags.c_contiguous
    np.testing.assert_array_equal(loaded, small_photo)


def test_exif_orientation_is_applied(tmp_path: Path, small_photo: np.ndarray) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90° clockwise
    Image.fromarray(small_photo).save(path, quality=95, exif=exif)
    loaded = load_image(path)
    assert loaded.shape == (small_photo.shape[1], small_photo.shape[0], 3)


@pytest.mark.parametrize(
    ("mode", "expect"),
    [("L", "greyscale"), ("P", "palette"), ("CMYK", "CMYK"), ("1", "1-bit")],
)
def test_other_modes_convert_with_a_warning(tmp_path: Path, small_photo: np.ndarray, mode: str, expect: str) -> None:
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    Image.fromarray(small_photo).convert(mode).save(path)
    with pytest.warns(ImageConversionWarning, match=expect):
        loaded = load_image(path)
    assert loaded.shape == small_photo.shape


def test_transparency_is_flattened_onto_white(tmp_path: Path) -> None:
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent on the left half
    rgba[:, 10:, 3] = 255
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    with pytest.warns(ImageConversionWarning, match="transparency"):
        loaded = load_image(path)
    np.testing.assert_array_equal(loaded[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(loaded[0, 15], [255, 0, 0])


def test_sixteen_bit_inputs_reduce_to_eight_bits(tmp_path: Path) -> None:
    grey16 = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 64).astype(np.uint16)
    grey_path = tmp_path / "g16.png"
    Image.fromarray(grey16).save(grey_path)
    with pytest.warns(ImageConversionWarning, match="16-bit"):
        loaded = load_image(grey_path)
    assert loaded.shape == (32, 32, 3)
    assert loaded[-1, -1, 0] == round(int(grey16[-1, -1]) / 257)

    rgb16 = np.full((20, 24, 3), 0x8000, np.uint16)
    rgb_path = tmp_path / "rgb16.png"
    write_png16_rgb(rgb_path, rgb16)
    with pytest.warns(ImageConversionWarning, match="16-bit"):
        loaded = load_image(rgb_path)
    assert loaded.shape == (20, 24, 3)
    assert abs(int(loaded[0, 0, 0]) - 128) <= 1


def test_strict_mode_refuses_conversions(tmp_path: Path, small_photo: np.ndarray) -> None:
    path = tmp_path / "grey.png"
    Image.fromarray(small_photo).convert("L").save(path)
    with pytest.raises(UnsupportedImageError, match="strict"):
        load_image(path, strict=True)


def test_missing_corrupt_truncated_and_non_images(tmp_path: Path, small_photo: np.ndarray) -> None:
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="directory"):
        load_image(tmp_path)
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    with pytest.raises(ImageLoadError, match="not an image"):
        load_image(text)
    good = tmp_path / "good.jpg"
    Image.fromarray(small_photo).save(good, quality=90)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:400])
    with pytest.raises(ImageLoadError):
        load_image(truncated)
    png = tmp_path / "good.png"
    Image.fromarray(small_photo).save(png)
    corrupt = tmp_path / "corrupt.png"
    raw = bytearray(png.read_bytes())
    raw[60:90] = b"\x00" * 30
    corrupt.write_bytes(bytes(raw))
    with pytest.raises(ImageLoadError):
        load_image(corrupt)


def test_decompression_bombs_and_huge_images_are_refused_before_decoding(tmp_path: Path) -> None:
    def fake_png(width: int, height: int) -> Path:
        # the header claims a huge picture; the data is tiny
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        path = tmp_path / f"{width}x{height}.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"")))
        return path

    with pytest.raises(UnsupportedImageError, match=r"3600\.0 MP, over the limit of 64\.0 MP \(set SURSMR_MAX_PIXELS"):
        load_image(fake_png(60000, 60000))
    with pytest.raises(UnsupportedImageError, match=r"9000x8000 is 72\.0 MP, over the limit of 64\.0 MP"):
        load_image(fake_png(9000, 8000))
    small = tmp_path / "s.png"
    Image.new("RGB", (100, 100)).save(small)
    with pytest.raises(UnsupportedImageError, match="10,000 pixels, over the limit of 5,000 pixels"):
        load_image(small, max_pixels=5000)


def test_tiny_images_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "one.png"
    Image.new("RGB", (1, 1)).save(path)
    with pytest.raises(UnsupportedImageError, match="too small"):
        load_image(path)


def test_check_rgb_rejects_wrong_arrays() -> None:
    with pytest.raises(UnsupportedImageError):
        check_rgb(np.zeros((8, 8), np.uint8))
    with pytest.raises(UnsupportedImageError):
        check_rgb(np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(UnsupportedImageError):
        check_rgb(np.zeros((8, 8, 3), np.uint16))
    with pytest.raises(UnsupportedImageError):
        check_rgb(np.zeros((0, 8, 3), np.uint8))


def test_colour_keys_and_wide_integers_are_named_and_converted(tmp_path: Path, small_photo: np.ndarray) -> None:
    keyed = tmp_path / "key.png"
    Image.fromarray(small_photo).save(keyed, transparency=tuple(int(v) for v in small_photo[0, 0]))
    with pytest.warns(ImageConversionWarning, match=r"colour key \(tRNS\)"):
        loaded = load_image(keyed)
    assert (loaded[0, 0] == 255).all()  # the keyed colour is transparent: flattened onto white
    with pytest.raises(UnsupportedImageError, match="tRNS"):
        load_image(keyed, strict=True)
    wide = tmp_path / "i32.tif"
    Image.fromarray(np.full((20, 30), 100_000, np.int32)).save(wide)
    with pytest.warns(ImageConversionWarning, match="32-bit integer greyscale"):
        assert load_image(wide).shape == (20, 30, 3)


def test_the_pixel_limit_is_ours_and_checked_when_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.png"
    Image.new("RGB", (100, 100)).save(path)
    for raw in ("0", "-1", "many", "nan", "2.5"):
        monkeypatch.setenv("SURSMR_MAX_PIXELS", raw)
        with pytest.raises(InputError, match="SURSMR_MAX_PIXELS"):
            load_image(path)
    monkeypatch.setenv("SURSMR_MAX_PIXELS", "9_999")
    with pytest.raises(UnsupportedImageError, match="10,000 pixels, over the limit of 9,999 pixels"):
        load_image(path)
    monkeypatch.setenv("SURSMR_MAX_PIXELS", "1e4")
    assert load_image(path).shape == (100, 100, 3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after the test
    monkeypatch.setenv("SURSMR_MAX_PIXELS", "100000000")  # above Pillow's own 89.5 MP: ours decides
    assert load_image(path).shape == (100, 100, 3)
    assert Image.MAX_IMAGE_PIXELS == 100_000_000  # Pillow's follows, so decoding candidates never trips it


def test_special_files_are_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # nobody writes to it: reading would block forever
    with pytest.raises(ImageLoadError, match="FIFO"):
        load_image(fifo)
    if Path("/dev/zero").exists():
        with pytest.raises(ImageLoadError, match="character device"):
            load_image("/dev/zero")
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    with pytest.raises(ImageLoadError, match="link loop"):
        load_image(loop)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_gives_the_pixels_a_viewer_shows(
    tmp_path: Path, small_photo: np.ndarray, orientation: int
) -> None:
    path = tmp_path / f"o{orientation}.png"  # lossless, so the expected pixels are exact
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(small_photo).save(path, exif=exif)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    loaded = load_image(path)
    np.testing.assert_array_equal(loaded, expected)
    assert loaded.shape[:2] == ((96, 64) if orientation >= 5 else (64, 96))
    assert (orientation == 1) == np.array_equal(loaded, small_photo)
