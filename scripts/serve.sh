#!/usr/bin/env bash
# Install what is needed, then run the embedded default on 127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python app.py
