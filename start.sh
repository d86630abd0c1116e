#!/usr/bin/env bash
# Start AutoIndex at http://localhost:8501 with the synthetic demo universe (SQLite, in-app worker).
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap-venv.sh
exec .venv/bin/streamlit run Home.py --server.port "${PORT:-8501}" "$@"
