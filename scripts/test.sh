#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
MUSE_FOR_TESTS=1 bash scripts/setup.sh
. .venv/bin/activate
python -m pytest -q "$@"
