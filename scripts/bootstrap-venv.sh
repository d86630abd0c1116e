#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the pinned requirements; fast no-op when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
stamp=.venv/.requirements-stamp
want=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)-"$*"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet -r requirements.txt "$@"
  echo "$want" > "$stamp"
fi
