#!/usr/bin/env bash
# Start AutoIndex at http://localhost:8501 with the synthetic demo universe (SQLite, in-app worker).
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap-venv.sh
# `serve`: migrations, the demo universe, the in-app worker and /metrics start now, then `streamlit run Home.py`.
exec .venv/bin/python -m core serve --server.port "${PORT:-8501}" "$@"
