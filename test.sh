#!/usr/bin/env bash
# Run the whole test suite (unit, integration on SQLite + PostgreSQL + Redis, concurrency, app, e2e in Chromium).
# It sets itself up: missing packages are installed when run as root, and PostgreSQL / Redis that do not answer on
# 127.0.0.1:5432 / :6379 are started as throwaway instances for the run (scripts/test-services.sh).
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap-venv.sh -r requirements-dev.txt -r requirements-bench.txt
source scripts/test-services.sh
.venv/bin/python -m pytest "$@"
