"""Decoding untrusted image files (Discord attachments, users' folders) with bounded cost.

Every path in Muse that turns image bytes into pixels goes through `decode_image` (or `load_image_rgba`,
which also fits the result to the models' 64×64 square). It guards against two things:

**Which decoders run.** Only `ALLOWED_FORMATS` (PNG, JPEG, GIF, WebP, BMP) are tried, whatever the file is
called. Pillow otherwise picks a decoder from the file's first bytes among the dozens it ships, and some of
them hand the file to other programs: an EPS/PostScript file named ``pic.png`` is rendered by running
Ghostscript on it. The five formats cover what people post and what image folders hold; TIFF, EPS, PSD, ICO
and the rest are refused with `NotAnImage`.

**How much memory a decode takes.** A few KiB of PNG can declare 4096×4096 pixels, and Pillow allocates the
full image before decoding it. The size is read from the header and checked before anything is decoded, so
that the decode's peak memory stays near `DECODE_BUDGET` (32 MiB):

- JPEG is decoded at reduced scale (``Image.draft``: 1/2, 1/4 or 1/8) when the caller needs fewer pixels,
  which keeps a 4096×4096 photo to about 2 MiB. Progressive JPEGs make libjpeg hold every coefficient of the
  full-size image (about 3 bytes a pixel at 4:2:0 chroma subsampling, 6 at 4:4:4), so they are also
  checked against the budget at full size; and any JPEG over `MAX_JPEG_PIXELS` is refused, since decoding
  it takes seconds even at 1/8 scale.
- PNG, GIF, BMP and WebP cannot decode reduced. They are held to ``DECODE_BUDGET`` divided by what their
  decode costs per pixel (measured on Pillow 13): 4 bytes for PNG, GIF and BMP (Pillow stores RGB and RGBA
  pixels in 4 bytes), so 8 megapixels (a 3840×2160 screenshot fits); and about 18 for WebP (libwebp's
  animation decoder keeps two full canvases next to Pillow's copy), so 1.86 megapixels.
- The decoded image is shrunk by an integer factor, a strip at a time, before it is converted to RGBA, so
  no second full-size copy is made.

The size checked is the one Pillow reports after opening, which for a GIF already includes a first frame
that reaches past the declared screen. Only the first frame of an animation is decoded. Pillow's own
decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) stays in force beneath these limits.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO, Union

from PIL import Image, UnidentifiedImageError

from . import DataError

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")
"""Pillow format names `decode_image` accepts; every other decoder is never tried."""

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"})
"""File name endings that are looked at when a folder of images is read."""

DECODE_BUDGET = 32 * 2**20
"""Bytes one decode may need, about: the peak memory of `decode_image` stays near this."""

# Peak bytes per pixel of a full decode, as measured on Pillow 13 (the budget divided by this gives the limit).
_BYTES_PER_PIXEL = {"PNG": 4, "GIF": 4, "BMP": 4, "JPEG": 4, "MPO": 4, "WEBP": 18}

MAX_PIXELS = DECODE_BUDGET // 4
"""Largest image (width × height) decoded at full size: 8 megapixels (for WebP, see `pixel_limit`)."""

MAX_JPEG_PIXELS = 8192 * 8192
"""Largest JPEG accepted at all, even when it can be decoded at 1/8 scale (64 megapixels)."""

ImageSource = Union[bytes, bytearray, memoryview, str, os.PathLike, BinaryIO]

_STRIP_PIXELS = 2**18  # pixels converted to RGBA at a time while shrinking
_JPEG_FORMATS = ("JPEG", "MPO")  # Pillow reports multi-picture JPEGs (phone photos) as MPO


class NotAnImage(DataError):
    """The data is not an image Muse reads: an unknown or refused format, or a truncated or corrupt file.

    ``name`` is what the message calls the file; ``reason`` says briefly what was wrong.
    """

    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason
        super().__init__(
            f"{name} is not an image Muse can read ({reason}). Muse reads PNG, JPEG, GIF, WebP and BMP images."
        )

    def __reduce__(self):
        return type(self), (self.name, self.reason)


class ImageTooLarge(DataError):
    """The image has more pixels than Muse decodes (``limit``, in pixels).

    ``width`` and ``height`` are the image's size, or None when Pillow's own decompression-bomb limit refused
    the file before its size could be read.
    """

    def __init__(self, name: str, width: int | None, height: int | None, limit: int):
        self.name, self.width, self.height, self.limit = name, width, height, limit
        size = f"{width}×{height} pixels" if width is not None and height is not None else "too large to open"
        super().__init__(
            f"{name} is {size}; Muse reads images of up to {limit / 1e6:.1f} megapixels. "
            "Scale it down and try again."
        )

    def __reduce__(self):
        return type(self), (self.name, self.width, self.height, self.limit)


def pixel_limit(fmt: str) -> int:
    """The most pixels an image of Pillow format ``fmt`` may have to be decoded at full size."""
    return DECODE_BUDGET // _BYTES_PER_PIXEL.get(fmt, 4)


def decode_image(source: ImageSource, *, target: int | None = None, name: str | None = None) -> Image.Image:
    """Decode untrusted image data into a loaded RGBA image, refusing what is unsafe or too costly.

    ``source`` is the raw bytes, a path, or a binary file object. ``target`` is the longest side the caller
    needs: a larger image comes back shrunk (by an integer factor, aspect kept) to a longest side between
    ``target`` and about twice that; None keeps the full size. ``name`` is what error messages call the
    file (by default the file's name, or "The image").

    Raises `NotAnImage` (not one of `ALLOWED_FORMATS`, truncated, corrupt) or `ImageTooLarge`.
    """
    name = name or _name_of(source)
    fp = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        with Image.open(fp, formats=ALLOWED_FORMATS) as im:
            width, height = im.size
            if im.format in _JPEG_FORMATS:
                _check_jpeg(im, name)
                if target:
                    _draft(im, target)
            if im.width * im.height > pixel_limit(im.format):
                raise ImageTooLarge(name, width, height, pixel_limit(im.format))
            im.load()
            factor = max(1, max(im.size) // target) if target else 1
            return _shrink_to_rgba(im, factor)
    except Image.DecompressionBombError:
        raise ImageTooLarge(name, None, None, MAX_PIXELS) from None
    except UnidentifiedImageError:
        raise NotAnImage(name, "not a PNG, JPEG, GIF, WebP or BMP file") from None
    except OSError as e:
        if e.errno is not None:  # the file itself could not be read (missing, a folder, no permission)
            raise NotAnImage(name, f"cannot be read: {e.strerror}") from None
        raise NotAnImage(name, f"damaged or truncated: {e}") from None  # Pillow's decoders raise bare OSError
    except (ValueError, SyntaxError, EOFError) as e:
        raise NotAnImage(name, f"damaged or truncated: {e}") from None


def load_image_rgba(source: ImageSource, size: int = 64, *, name: str | None = None) -> Image.Image:
    """Decode an image (see `decode_image`), centre it on a transparent square and resize it to size×size RGBA.

    Raises `NotAnImage` or `ImageTooLarge` (both `DataError`) with a message for the user.
    """
    return fit_square(decode_image(source, target=4 * size, name=name), size)


def fit_square(im: Image.Image, size: int = 64) -> Image.Image:
    """An RGBA image centred on a transparent square canvas of its longer side, resized to size×size."""
    im = im.convert("RGBA")
    side = max(im.size)
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
    return canvas.resize((size, size), Image.LANCZOS)


# ---- helpers ------------------------------------------------------------------------------------------------


def _name_of(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name or str(source)
    file_name = getattr(source, "name", None)
    return Path(file_name).name if isinstance(file_name, str) and file_name else "The image"


def _check_jpeg(im: Image.Image, name: str) -> None:
    """Refuse, from the header alone, a JPEG that would cost too much to decode at any scale."""
    w, h = im.size
    if w * h > MAX_JPEG_PIXELS:
        raise ImageTooLarge(name, w, h, MAX_JPEG_PIXELS)
    if im.info.get("progressive"):
        # libjpeg keeps the whole image's DCT coefficients (2 bytes each) for a progressive scan.
        layers = getattr(im, "layer", None) or [("", 1, 1, 0)] * len(im.getbands())
        h_max = max(layer[1] for layer in layers)
        v_max = max(layer[2] for layer in layers)
        per_pixel = 2 * sum(layer[1] * layer[2] for layer in layers) / (h_max * v_max)
        limit = int(DECODE_BUDGET / per_pixel)
        if w * h > limit:
            raise ImageTooLarge(name, w, h, limit)


def _draft(im: Image.Image, target: int) -> None:
    """Ask the JPEG decoder for the smallest scale that keeps the longer side at least ``target``."""
    w, h = im.size
    side = max(w, h)
    if side <= target:
        return
    im.draft(None, (max(1, -(-w * target // side)), max(1, -(-h * target // side))))


def _shrink_to_rgba(im: Image.Image, factor: int) -> Image.Image:
    """``im`` in RGBA, box-reduced by ``factor``; converted a strip at a time, so no full-size copy is made."""
    if factor == 1:
        return im.convert("RGBA")
    w, h = im.size
    out = Image.new("RGBA", (-(-w // factor), -(-h // factor)), (0, 0, 0, 0))
    rows = factor * max(1, _STRIP_PIXELS // (w * factor))
    for y in range(0, h, rows):
        strip = im.crop((0, y, w, min(h, y + rows))).convert("RGBA").reduce(factor)
        out.paste(strip, (0, y // factor))
    return out
