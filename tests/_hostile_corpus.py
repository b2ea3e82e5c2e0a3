"""The hostile-input corpus of ``tests/test_hostile.py``: a generated table of cases (inputs, options, exit codes).

Mostly a declarative list of :class:`Case` records built around generated
files; the tests that run them are in ``test_hostile.py``.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from conftest import photo_crop
from PIL import Image

from sursmr import fidelity
from sursmr.manifest import MANIFEST_NAME
from sursmr.predictor import Predictor
from sursmr.scoring import Prediction
from sursmr_core.imaging import RGBImage

FAILED = frozenset({2, 3, 4, 5, 6})
VALID = frozenset({0})
EITHER = VALID | FAILED  # e.g. a JPEG with a flipped bit may still decode
READ = frozenset({0, 5})  # a valid input whose conversion (a dithered palette...) may leave the target out of reach


class PsnrPredictor:
    """Stands in for the model: SUR and SMR rise with PSNR, so every search ends quickly and passes."""

    name = "fake-psnr"

    def predict(self, reference: RGBImage, candidates: Sequence[RGBImage]) -> list[Prediction]:
        out = []
        for candidate in candidates:
            score = float(np.clip((fidelity.psnr(reference, candidate) - 20.0) / 10.0, 0.0, 0.99))
            out.append(Prediction(score, score))
        return out


@dataclass
class Case:
    """One hostile run: CLI arguments after the command, the exit codes allowed, what may be written."""

    id: str
    args: list[str]
    codes: frozenset[int]
    command: str = "compress"
    env: dict[str, str] = field(default_factory=dict)
    real_model: bool = False
    check: Callable[[Path], None] | None = None  # extra checks on the output folder of a successful run


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_claiming(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))


def _jpeg_claiming(jpeg: bytes, width: int, height: int) -> bytes:
    data = bytearray(jpeg)
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _cut_offsets(length: int, count: int) -> list[int]:
    """Many cut points: every one of the first and last 13 bytes, the rest spread evenly."""
    edges = set(range(1, 14)) | {length - k for k in range(1, 14)}
    spread = {round(x) for x in np.linspace(14, length - 14, max(2, count - len(edges)))}
    return sorted(o for o in edges | spread if 0 < o < length)


def _write(folder: Path, name: str, data: bytes) -> str:
    path = folder / name
    path.write_bytes(data)
    return str(path)


def _expect_size(width: int, height: int) -> Callable[[Path], None]:
    def check(out: Path) -> None:
        (written,) = [p for p in out.iterdir() if p.name != MANIFEST_NAME]
        with Image.open(written) as im:
            assert im.size == (width, height), (written, im.size)

    return check


def build_corpus(root: Path) -> list[Case]:
    inputs = root / "inputs"
    inputs.mkdir()
    photo = Image.fromarray(photo_crop(64, 96))
    png, jpeg = _encode(photo, "PNG"), _encode(photo, "JPEG", quality=90)
    cases: list[Case] = []
    rng = np.random.default_rng(2024)

    # valid inputs in every format: the baseline that must keep working
    for fmt, ext in [
        ("PNG", "png"),
        ("JPEG", "jpg"),
        ("BMP", "bmp"),
        ("TIFF", "tif"),
        ("WEBP", "webp"),
        ("GIF", "gif"),
    ]:
        path = _write(inputs, f"valid.{ext}", _encode(photo, fmt))
        cases.append(Case(f"valid-{ext}", [path], VALID))

    # truncated at many offsets: PNG and JPEG are checked structurally, the others by Pillow
    for ext, data, count in [("png", png, 45), ("jpg", jpeg, 45)]:
        for offset in _cut_offsets(len(data), count):
            path = _write(inputs, f"cut{offset}.{ext}", data[:offset])
            cases.append(Case(f"truncated-{ext}-{offset}", [path], FAILED))
    for fmt, ext in [("BMP", "bmp"), ("TIFF", "tif"), ("WEBP", "webp"), ("GIF", "gif")]:
        data = _encode(photo, fmt)
        for offset in np.linspace(1, len(data) - 2, 8).astype(int):
            path = _write(inputs, f"cut{offset}.{ext}", data[:offset])
            # a GIF missing only its trailer still holds the whole picture
            complete = ext == "gif" and offset >= len(data) - 2
            cases.append(Case(f"truncated-{ext}-{offset}", [path], EITHER if complete else FAILED))

    # random bytes, alone and behind a real signature
    for k in range(25):
        path = _write(
            inputs, f"random{k}.{['png', 'jpg', 'tif', 'webp', 'gif'][k % 5]}", rng.bytes(int(rng.integers(0, 4000)))
        )
        cases.append(Case(f"random-{k}", [path], FAILED))
    for k, magic in enumerate([png[:8], jpeg[:4], b"GIF89a", b"II*\x00", b"RIFF\x00\x10\x00\x00WEBPVP8 ", b"BM"] * 3):
        path = _write(inputs, f"magic{k}.img", magic + rng.bytes(int(rng.integers(1, 3000))))
        cases.append(Case(f"garbage-after-signature-{k}", [path], FAILED))

    # flipped bytes: every PNG chunk has a CRC; a JPEG may or may not decode, but never crashes
    for k in range(15):
        data = bytearray(png)
        spot = int(rng.integers(8, len(data)))
        data[spot] ^= 1 << int(rng.integers(0, 8))
        cases.append(Case(f"flipped-png-{k}", [_write(inputs, f"flip{k}.png", bytes(data))], FAILED))
        data = bytearray(jpeg)
        spot = int(rng.integers(2, len(data)))
        data[spot] ^= 1 << int(rng.integers(0, 8))
        cases.append(Case(f"flipped-jpeg-{k}", [_write(inputs, f"flip{k}.jpg", bytes(data))], EITHER))

    # PNG damage that Pillow alone accepts
    end = png.rfind(b"IEND") - 4
    cases.append(Case("png-without-iend", [_write(inputs, "noiend.png", png[:end])], FAILED))
    idat = png.find(b"IDAT")
    crc_at = idat + 4 + struct.unpack(">I", png[idat - 4 : idat])[0]
    bad_crc = png[:crc_at] + bytes([png[crc_at] ^ 0xFF]) + png[crc_at + 1 :]
    cases.append(Case("png-bad-idat-crc", [_write(inputs, "badcrc.png", bad_crc)], FAILED))
    palette = _encode(photo.convert("P"), "PNG")
    plte = palette.find(b"PLTE")
    no_plte = palette[: plte - 4] + palette[plte + 8 + struct.unpack(">I", palette[plte - 4 : plte])[0] :]
    cases.append(Case("png-palette-without-plte", [_write(inputs, "noplte.png", no_plte)], FAILED))

    # bombs and huge claims: refused from the header, before decoding
    for width, height in [(60000, 60000), (9000, 8000), (65535, 65535), (8001, 8000)]:
        path = _write(inputs, f"bomb{width}x{height}.png", _png_claiming(width, height))
        cases.append(Case(f"bomb-png-{width}x{height}", [path], FAILED))
    for width, height in [(4000, 4000), (8000, 8000), (65535, 65535)]:
        path = _write(inputs, f"sof{width}x{height}.jpg", _jpeg_claiming(jpeg, width, height))
        cases.append(Case(f"jpeg-sof-claims-{width}x{height}", [path], FAILED))
    gif = bytearray(_encode(photo, "GIF"))
    gif[6:10] = struct.pack("<HH", 65535, 65535)
    cases.append(Case("gif-huge-screen", [_write(inputs, "huge.gif", bytes(gif))], EITHER))
    valid_png = str(inputs / "valid.png")
    for raw in ["1000", "6143", "100"]:
        cases.append(Case(f"over-env-limit-{raw}", [valid_png], FAILED, env={"SURSMR_MAX_PIXELS": raw}))
    for raw in ["0", "-5", "abc", "1.5", "nan", "inf", "1e400"]:
        cases.append(Case(f"bad-env-limit-{raw}", [valid_png], FAILED, env={"SURSMR_MAX_PIXELS": raw}))
    cases.append(Case("env-limit-exactly", [valid_png], VALID, env={"SURSMR_MAX_PIXELS": "6144"}))
    cases.append(Case("env-limit-above-pillow", [valid_png], VALID, env={"SURSMR_MAX_PIXELS": "200000000"}))

    # odd modes: converted with a warning, refused with --strict (floating point always refused)
    rgb = np.asarray(photo)
    grey16 = (rgb[:, :, 0].astype(np.uint16) * 257).astype(np.uint16)
    modes: dict[str, bytes] = {
        "L.png": _encode(photo.convert("L"), "PNG"),
        "LA.png": _encode(photo.convert("LA"), "PNG"),
        "P.png": _encode(photo.convert("P"), "PNG"),
        "RGBA.png": _encode(photo.convert("RGBA"), "PNG"),
        "1.png": _encode(photo.convert("1"), "PNG"),
        "CMYK.jpg": _encode(photo.convert("CMYK"), "JPEG"),
        "CMYK.tif": _encode(photo.convert("CMYK"), "TIFF"),
        "I16.png": _encode(Image.fromarray(grey16), "PNG"),
        "I32.tif": _encode(Image.fromarray(grey16.astype(np.int32) * 1000), "TIFF"),
        "trns.png": _encode(photo, "PNG", transparency=tuple(int(v) for v in rgb[0, 0])),
        "L-trns.png": _encode(photo.convert("L"), "PNG", transparency=int(np.asarray(photo.convert("L"))[0, 0])),
        "YCbCr.jpg": _encode(photo.convert("L"), "JPEG"),
    }
    for name, data in modes.items():
        path = _write(inputs, f"mode-{name}", data)
        cases.append(Case(f"mode-{name}", [path], READ))
        cases.append(Case(f"mode-{name}-strict", [path, "--strict"], FAILED))
    float_tif = _write(inputs, "F.tif", _encode(Image.fromarray(rgb[:, :, 0].astype(np.float32)), "TIFF"))
    cases.append(Case("mode-F.tif", [float_tif], FAILED))
    animated = io.BytesIO()
    photo.save(animated, "GIF", save_all=True, append_images=[photo.rotate(90, expand=False)])
    cases.append(Case("animated-gif", [_write(inputs, "anim.gif", animated.getvalue())], VALID))

    # tiny and odd sizes
    for width, height, codes in [
        (1, 1, FAILED),
        (15, 15, FAILED),
        (16, 15, FAILED),
        (15, 400, FAILED),
        (16, 16, VALID),
        (33, 17, VALID),
        (17, 301, VALID),
        (300, 16, VALID),
    ]:
        tile = Image.fromarray(np.resize(rgb, (height, width, 3)).astype(np.uint8))
        path = _write(inputs, f"size{width}x{height}.png", _encode(tile, "PNG"))
        cases.append(
            Case(f"size-{width}x{height}", [path], codes, check=_expect_size(width, height) if codes == VALID else None)
        )

    # all 8 EXIF orientations: 5-8 swap width and height
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = _write(inputs, f"exif{orientation}.jpg", _encode(photo, "JPEG", quality=95, exif=exif))
        width, height = (64, 96) if orientation >= 5 else (96, 64)
        cases.append(Case(f"exif-orientation-{orientation}", [path], VALID, check=_expect_size(width, height)))

    # special files, links and names
    fifo = inputs / "fifo.png"
    os.mkfifo(fifo)
    loop = inputs / "loop.png"
    loop.symlink_to(loop)
    dangling = inputs / "dangling.png"
    dangling.symlink_to(inputs / "nowhere.png")
    link = inputs / "link.png"
    link.symlink_to(inputs / "valid.png")
    long_name = _write(inputs, "x" * 250 + ".png", png)
    empty_folder = inputs / "no-images"
    empty_folder.mkdir()
    for name, path, codes in [
        ("fifo", str(fifo), FAILED),
        ("dev-zero", "/dev/zero", FAILED),
        ("dev-urandom", "/dev/urandom", FAILED),
        ("dev-null", "/dev/null", FAILED),
        ("folder-without-images", str(empty_folder), FAILED),  # folders are inputs (batches); this one is empty
        ("symlink-loop", str(loop), FAILED),
        ("dangling-symlink", str(dangling), FAILED),
        ("missing", str(inputs / "missing.png"), FAILED),
        ("symlink-to-valid", str(link), VALID),
        ("empty-file", _write(inputs, "empty.png", b""), FAILED),
        ("long-name-with-out", long_name, VALID),
    ]:
        cases.append(Case(f"special-{name}", [path], codes))
    # beside the input, <stem>.sursmr.jpg would be 261 bytes: refused before the search
    cases.append(Case("long-name-beside-input", [long_name, "--no-out"], FAILED))

    # output folders that cannot work: refused before the search, nothing created
    a_file = _write(inputs, "plain.txt", b"x")
    for name, out in [
        ("proc", "/proc/sursmr-out"),
        ("sys", "/sys/sursmr-out"),
        ("dev-null", "/dev/null"),
        ("below-a-file", f"{a_file}/sub"),
        ("a-file", a_file),
        ("loop", str(loop)),
        ("too-long-folder", str(root / ("d" * 300))),
    ]:
        cases.append(Case(f"bad-out-{name}", [valid_png, "--out-here", out], FAILED))
        cases.append(
            Case(
                f"sweep-bad-out-{name}",
                [valid_png, "--codec", "jpeg", "--levels", "50,60", "--out", out],
                FAILED,
                command="sweep",
            )
        )

    # bad options
    bad_options = [
        ["--target-sur", "1.5"],
        ["--target-sur", "-0.1"],
        ["--target-sur", "nan"],
        ["--target-sur", "inf"],
        ["--target-sur", "abc"],
        ["--target-smr", "2"],
        ["--target-smr", "nan"],
        ["--target-sur", "none", "--target-smr", "none"],
        ["--margin", "-0.1"],
        ["--margin", "nan"],
        ["--margin", "1"],
        ["--timeout", "0"],
        ["--timeout", "-1"],
        ["--timeout", "nan"],
        ["--timeout", "inf"],
        ["--timeout", "abc"],
        ["--device", "meta"],
        ["--device", "mps"],
        ["--device", "xpu"],
        ["--device", "cuda:99"],
        ["--device", "potato"],
        ["--device", ""],
        ["--strategy", "golden"],
        ["--max-probes", "0"],
        ["--max-probes", "-3"],
        ["--jobs", "0"],
        ["--jobs", "x"],
        ["--codec", "nope"],
        ["--codec", ""],
        ["--frobnicate"],
    ]
    for k, extra in enumerate(bad_options):
        cases.append(Case(f"bad-option-{k}-{'_'.join(extra)[:30]}", [valid_png, *extra], FAILED))

    # predict: the same hostility on its two inputs and its options
    jpg = str(inputs / "valid.jpg")
    for name, args in [
        ("ok", [valid_png, jpg]),
        ("fifo", [str(fifo), jpg]),
        ("dev-zero", [valid_png, "/dev/zero"]),
        ("loop", [str(loop), jpg]),
        ("truncated", [valid_png, str(inputs / "cut100.png")]),
        ("size-mismatch", [valid_png, str(inputs / "size33x17.png")]),
        ("device-meta", [valid_png, jpg, "--device", "meta"]),
        ("device-mps", [valid_png, jpg, "--device", "mps"]),
    ]:
        cases.append(
            Case(f"predict-{name}", args, VALID if name == "ok" else FAILED, command="predict", real_model=True)
        )
    return cases


def build_model_cases(root: Path) -> list[Case]:
    """Weights files that are missing, damaged or lie about themselves (real tiny network, exit 6)."""
    import torch
    from safetensors.torch import load_file, save_file

    from sursmr.models import create_model

    folder = root / "models"
    folder.mkdir()
    torch.manual_seed(0)
    good = folder / "tiny.safetensors"
    Predictor.from_model(create_model("sursmr_tiny")).save(good)
    card = json.loads(good.with_suffix(".json").read_text())
    state = load_file(str(good))

    def variant(name: str, weights: bytes | None = None, card_text: str | None = None) -> str:
        path = folder / f"{name}.safetensors"
        path.write_bytes(good.read_bytes() if weights is None else weights)
        if card_text is not None:
            path.with_suffix(".json").write_text(card_text)
        return str(path)

    def with_config(**changes: object) -> str:
        return json.dumps({**card, "config": {**card["config"], **changes}})

    nan_path = folder / "nan.safetensors"
    save_file(
        {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}, str(nan_path)
    )
    nan_path.with_suffix(".json").write_text(json.dumps(card))
    shapes_path = folder / "shapes.safetensors"
    first = next(k for k, v in state.items() if v.ndim >= 2)
    save_file({**state, first: torch.zeros(3, 3)}, str(shapes_path))
    shapes_path.with_suffix(".json").write_text(json.dumps(card))
    good_card = json.dumps(card)
    models = {
        "missing": str(folder / "absent.safetensors"),
        "no-card": variant("nocard"),
        "garbage-weights": variant("garbage", weights=b"\x00" * 100, card_text=good_card),
        "truncated-weights": variant("cut", weights=good.read_bytes()[:500], card_text=good_card),
        "empty-weights": variant("empty", weights=b"", card_text=good_card),
        "unknown-backbone": variant("backbone", card_text=with_config(backbone="resnet9000")),
        "bad-config-value": variant("badvalue", card_text=with_config(input_size=-3)),
        "unknown-config-key": variant("unknownkey", card_text=with_config(wings=2)),
        "card-not-json": variant("notjson", card_text="{not json"),
        "card-not-a-card": variant("notcard", card_text="[1, 2, 3]"),
        "card-binary": variant("binary", card_text="\x00\x01"),
        "nan-weights": str(nan_path),
        "wrong-shapes": str(shapes_path),
        "a-directory": str(folder),
    }
    valid_png = str(root / "inputs" / "valid.png")
    valid_jpg = str(root / "inputs" / "valid.jpg")
    cases = [
        Case(f"model-{name}", [valid_png, "--model", path], frozenset({6}), real_model=True)
        for name, path in models.items()
    ]
    for name in ("nan-weights", "unknown-backbone", "missing"):
        cases.append(
            Case(
                f"predict-model-{name}",
                [valid_png, valid_jpg, "--model", models[name]],
                frozenset({6}),
                command="predict",
                real_model=True,
            )
        )
    cases.append(Case("model-good-tiny", [valid_png, "--model", str(good)], frozenset({0, 5}), real_model=True))
    return cases
