#!/usr/bin/env bash
# The whole test command: install, start the services, lint, type-check, audit the installed
# dependencies (scripts/audit_deps.py), then the suite on PostgreSQL and again on the embedded
# SQLite default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/services.sh

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python scripts/audit_deps.py  # pip-audit: 0 known vulnerabilities

echo "== tests on PostgreSQL"
TEST_ENGINE=postgres .venv/bin/pytest -q -p no:cacheprovider "$@"
echo "== tests on the embedded SQLite default"
TEST_ENGINE=sqlite .venv/bin/pytest -q -p no:cacheprovider "$@"
