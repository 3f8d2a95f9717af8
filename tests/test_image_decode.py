"""Decoding untrusted images: only the allowed formats are tried, and a decode's memory stays bounded."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image, ImageDraw

from genmodels.data import DataError
from genmodels.data.emoji import build_folder_dataset
from genmodels.data.imagefile import (
    DECODE_BUDGET,
    MAX_PIXELS,
    ImageTooLarge,
    NotAnImage,
    decode_image,
    load_image_rgba,
    pixel_limit,
)
from genmodels.images import Morpher
from genmodels.nets.vae import ConvVAE, VAEConfig

REPO = Path(__file__).resolve().parents[1]

EPS = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 16 16
%%EndComments
newpath 0 0 moveto 16 0 lineto 16 16 lineto closepath fill
showpage
%%EOF
"""


def _morpher() -> Morpher:
    return Morpher(ConvVAE(VAEConfig(nf=8, latent=8)), {"name": "vae", "version": 1})


def _encode(im: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def _old_normalise(data: bytes, size: int = 64) -> Image.Image:
    """How images were normalised before decoding was bounded: full decode, square canvas, LANCZOS."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        im = im.convert("RGBA")
    side = max(im.size)
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
    return canvas.resize((size, size), Image.LANCZOS)


def test_postscript_named_png_never_reaches_ghostscript(tmp_path, monkeypatch):
    calls = tmp_path / "gs-calls.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_gs = bin_dir / "gs"
    fake_gs.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexit 0\n')
    fake_gs.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)  # Pillow caches where it found gs
    assert shutil.which("gs") == str(fake_gs)
    pic = tmp_path / "upload" / "pic.png"
    pic.parent.mkdir()
    pic.write_bytes(EPS)

    with pytest.raises(NotAnImage, match="not an image"):
        _morpher().image_from(pic.read_bytes())
    with pytest.raises(NotAnImage, match="pic.png"):
        load_image_rgba(pic)
    with pytest.raises(NotAnImage):
        decode_image(pic)
    with pytest.raises(DataError, match="readable image"):
        build_folder_dataset(pic.parent, tmp_path / "o.npz")  # skipped, so no image is left
    assert not calls.exists(), f"Ghostscript was run: {calls.read_text()}"

    # The harness is live: Pillow left to pick the decoder itself runs the fake gs on this file.
    with pytest.raises(OSError), Image.open(pic) as im:  # the fake gs renders nothing, so Pillow fails after it
        im.load()
    assert calls.exists() and str(pic) in calls.read_text()


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "not a PNG"),
        (b"this is not a png", "not a PNG"),
        (_encode(Image.new("RGB", (8, 8)), "TIFF"), "not a PNG"),
        (_encode(Image.new("RGB", (16, 16)), "ICO"), "not a PNG"),
        (_encode(Image.new("RGB", (32, 32), (9, 9, 9)), "PNG")[:60], "damaged or truncated"),
    ],
    ids=["empty", "text", "tiff", "ico", "truncated-png"],
)
def test_refusals_say_what_is_wrong(data, reason):
    with pytest.raises(NotAnImage, match=reason) as e:
        load_image_rgba(data, name="cat.png")
    assert e.value.name == "cat.png" and "PNG, JPEG, GIF, WebP and BMP" in str(e.value)
    again = pickle.loads(pickle.dumps(e.value))
    assert type(again) is NotAnImage and str(again) == str(e.value)


def test_every_allowed_format_decodes():
    im = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    ImageDraw.Draw(im).ellipse([5, 5, 35, 25], fill=(220, 40, 30, 255))
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP"):
        src = im if fmt in ("PNG", "GIF", "WEBP") else im.convert("RGB")
        out = load_image_rgba(_encode(src, fmt))
        assert out.size == (64, 64) and out.mode == "RGBA", fmt
        r, g, b, _ = out.getpixel((32, 32))
        assert r > 150 and g < 100 and b < 100, fmt
        if fmt in ("PNG", "GIF", "WEBP"):
            assert out.getpixel((0, 0))[3] == 0, fmt  # transparency kept


def test_images_up_to_4x_the_model_size_are_normalised_as_before():
    rng = np.random.default_rng(0)
    shapes = Image.new("RGBA", (48, 40), (0, 0, 0, 0))
    ImageDraw.Draw(shapes).polygon([(2, 38), (46, 38), (24, 2)], fill=(30, 200, 90, 255))
    palette = Image.fromarray(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)).convert("P")
    banner = Image.fromarray(rng.integers(0, 255, (120, 500, 3), dtype=np.uint8))
    for data in (_encode(shapes, "PNG"), _encode(palette, "GIF", transparency=0), _encode(banner, "PNG")):
        assert np.array_equal(np.asarray(load_image_rgba(data)), np.asarray(_old_normalise(data)))


def test_large_jpeg_decodes_reduced_to_a_usable_image():
    im = Image.new("RGB", (2048, 2048), (230, 30, 20))
    ImageDraw.Draw(im).rectangle([1024, 0, 2047, 2047], fill=(20, 40, 230))
    data = _encode(im, "JPEG", quality=90)
    big = decode_image(data, target=256)
    assert big.mode == "RGBA" and big.size == (256, 256)  # decoded at 1/8 scale
    out = load_image_rgba(data)
    a = np.asarray(out).astype(int)
    assert out.size == (64, 64) and a[..., 3].min() == 255
    assert a[32, 8, 0] > 200 and a[32, 8, 2] < 50 and a[32, 56, 2] > 200 and a[32, 56, 0] < 50
    assert np.abs(a - np.asarray(_old_normalise(data)).astype(int)).mean() < 2


def _gif_with_oversized_first_frame(side: int) -> bytes:
    """A 16×16 GIF whose first frame declares side×side pixels (Pillow grows the image to fit the frame)."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 16, 16, 0, 0, 0)
    frame = b"," + struct.pack("<HHHHB", 0, 0, side, side, 0x80) + bytes(6) + bytes([2, 2, 0x4C, 0x01, 0])
    return screen + frame + b";"


def test_oversized_images_are_refused_from_the_header():
    cases = [
        (_encode(Image.new("1", (4096, 4096)), "PNG", optimize=True), 4096, 4096, MAX_PIXELS),
        (_gif_with_oversized_first_frame(4000), 4000, 4000, MAX_PIXELS),
        (_encode(Image.new("RGB", (1500, 1500)), "WEBP"), 1500, 1500, pixel_limit("WEBP")),
        (_encode(Image.new("RGB", (4096, 4096)), "JPEG", progressive=True), 4096, 4096, DECODE_BUDGET // 3),
        (_encode(Image.new("L", (9000, 9000)), "JPEG"), 9000, 9000, 8192 * 8192),
    ]
    assert len(cases[0][0]) < 4096  # a few KiB that would unpack into 16 megapixels
    for data, w, h, limit in cases:
        with pytest.raises(ImageTooLarge) as e:
            _morpher().image_from(data)
        assert (e.value.width, e.value.height, e.value.limit) == (w, h, limit)
        assert f"{w}×{h} pixels" in str(e.value) and "megapixels" in str(e.value)
        assert isinstance(e.value, DataError) and pickle.loads(pickle.dumps(e.value)).limit == limit


_MEASURE = """
import io, json, sys
from PIL import Image
from genmodels.data.imagefile import load_image_rgba

def status_kib(key):  # this process's own figures (ru_maxrss would carry the parent's peak across exec)
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])

Image.init()
for plugin in ("PngImagePlugin", "JpegImagePlugin", "GifImagePlugin", "WebPImagePlugin", "BmpImagePlugin"):
    __import__("PIL." + plugin)
warm_up = io.BytesIO()
Image.new("RGB", (8, 8)).save(warm_up, "PNG")
load_image_rgba(warm_up.getvalue())  # first use of convert, paste and LANCZOS
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak to the current RSS
except OSError:
    pass  # the peak so far is start-up's, which stays below the RSS after importing PIL
baseline = status_kib("VmRSS")
try:
    out = load_image_rgba(sys.argv[1]); result = [out.mode, *out.size]
except Exception as e:
    result = type(e).__name__
print(json.dumps({"grew_mib": (status_kib("VmHWM") - baseline) / 1024, "result": result}))
"""


def _peak_growth(path: Path) -> dict:
    """Decode ``path`` in a fresh interpreter; how far peak RSS rose above the RSS after importing PIL."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from Linux's /proc")
def test_decode_peak_memory_is_bounded(tmp_path):
    bound_mib = DECODE_BUDGET / 2**20 + 16  # the budget, plus strips, the canvas and allocator slack
    at_limit = Image.new("RGBA", (2896, 2896), (0, 0, 0, 0))  # 8.39 megapixels, just under MAX_PIXELS
    ImageDraw.Draw(at_limit).ellipse([100, 100, 2800, 2800], fill=(250, 200, 0, 255))
    files = {
        "png4096.png": (Image.new("1", (4096, 4096)), {"optimize": True}),
        "jpeg4096.jpg": (Image.new("RGB", (4096, 4096), (10, 120, 200)), {"quality": 90}),
        "png2896.png": (at_limit, {"compress_level": 1}),
    }
    for name, (im, params) in files.items():
        im.save(tmp_path / name, **params)
    grew = {name: _peak_growth(tmp_path / name) for name in files}
    assert grew["png4096.png"]["result"] == "ImageTooLarge"
    assert grew["jpeg4096.jpg"]["result"] == ["RGBA", 64, 64]
    assert grew["png2896.png"]["result"] == ["RGBA", 64, 64]
    for name, g in grew.items():
        assert g["grew_mib"] < bound_mib, f"{name}: peak RSS grew {g['grew_mib']:.1f} MiB"
    assert grew["jpeg4096.jpg"]["grew_mib"] < 8  # decoded at 1/8 scale: 512×512
