"""The packages' import contracts (pyproject.toml, [tool.importlinter]) hold, and `muse` is composed from parts."""

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    lint = Path(sys.executable).parent / "lint-imports"
    assert lint.exists(), f"{lint} is missing: install the test extra (pip install -e '.[test]')"
    # --no-cache: nothing is written into the work tree
    proc = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_bench_commands_come_from_an_entry_point():
    hooks = [ep.value for ep in entry_points(group="muse.commands")]
    assert "bench.cli:add_commands" in hooks, (
        "the installed metadata lacks the muse.commands entry points: reinstall (pip install -e '.[test]')")


def test_the_library_parser_takes_extensions():
    from genmodels.cli import build_parser

    calls = []

    def extra(sub):
        sp = sub.add_parser("hello")
        sp.add_argument("--name", default="world")
        sp.set_defaults(func=lambda args: calls.append(args.name) or 0)

    args = build_parser(extensions=(extra,)).parse_args(["hello", "--name", "muse"])
    assert args.func(args) == 0 and calls == ["muse"]
    assert build_parser().parse_args(["eval", "text"]).what == "text"
