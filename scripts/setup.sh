#!/usr/bin/env bash
# Install what the project needs on a Debian machine (as root): system packages, then a
# virtual environment in .venv with the project and its development tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv python3-dev gcc tesseract-ocr tesseract-ocr-chi-sim fonts-wqy-microhei libgl1 libglib2.0-0 chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip "setuptools>=78.1.1"  # the venv's own copy is audited too
  if ! .venv/bin/pip install -q -e ".[dev,fast-ocr]"; then
    echo "setup: tesserocr did not install; the photo check reads through the tesseract binary"
    .venv/bin/pip install -q -e ".[dev]"
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
