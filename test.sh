#!/usr/bin/env bash
# Run the whole test suite (unit, integration on SQLite + PostgreSQL + Redis, app, e2e in Chromium).
# Needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (see README "Tests").
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap-venv.sh -r requirements-dev.txt -r requirements-bench.txt
exec .venv/bin/python -m pytest "$@"
