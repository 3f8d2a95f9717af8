#!/usr/bin/env bash
# Set up Muse in ./.venv: the CPU build of torch (pinned first, so pip never pulls a multi-GB CUDA build),
# then Muse with its dependencies, and the Debian packages the built-in datasets come from.
# Idempotent and quick when nothing changed (it remembers the pyproject.toml it installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
# MUSE_FOR_TESTS=1 (scripts/test.sh sets it): also the test extras (pytest, Playwright) and the browser below.
extras=""; [ "${MUSE_FOR_TESTS:-0}" = 1 ] && extras="[test]"
stamp=$(sha256sum pyproject.toml | cut -c1-16)
have=$(cat .venv/.muse-installed 2>/dev/null || true)
if [ "$have" != "$stamp$extras" ] && [ "$have" != "$stamp[test]" ]; then  # the test install serves `muse run` too
  python -m pip install -q --upgrade pip
  python -m pip install -q "torch==${MUSE_TORCH_VERSION:-2.13.0}"
  python -m pip install -q -e ".$extras"
  echo "$stamp$extras" > .venv/.muse-installed
fi
if [ "${MUSE_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1 \
   && ! { [ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] && [ -f /usr/share/games/fortunes/tang300 ]; }; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends \
      fonts-noto-color-emoji unicode-data fortunes fortunes-zh >/dev/null; } 2>/dev/null \
    || echo "note: could not install the emoji font / fortunes; they are only needed to rebuild the training data"
fi
# Link Grammar, the grammar check of English poems (genmodels/grammar.py): Debian's parser with its English dictionary
# and Python binding (not on PyPI in a current version), linked into the venv. The binding is built for Debian's
# Python 3.11; the venv's Python must be 3.11 too.
LG=/usr/lib/python3/dist-packages/linkgrammar
if [ ! -d "$LG" ] && [ "${MUSE_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends python3-link-grammar >/dev/null; } \
    2>/dev/null || echo "note: could not install Debian's python3-link-grammar; English poems need it"
fi
# For the tests only: the web tests (tests/web) drive Debian's chromium through Playwright (which downloads no browser of its own), with
# fonts for Latin (DejaVu) and Chinese (WenQuanYi Micro Hei, 5 MB, where Noto CJK is 91 MB) text.
if [ "${MUSE_FOR_TESTS:-0}" = 1 ] && [ "${MUSE_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1 \
   && ! { [ -x /usr/bin/chromium ] && [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] \
          && [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; }; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends \
      chromium fonts-dejavu-core fonts-wqy-microhei >/dev/null; } 2>/dev/null \
    || echo "note: could not install Debian's chromium and fonts; the web tests (tests/web) need them"
fi
site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ -d "$LG" ] && [ "$(readlink "$site/linkgrammar" 2>/dev/null)" != "$LG" ]; then
  ln -sfn "$LG" "$site/linkgrammar"
fi
