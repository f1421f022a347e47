#!/usr/bin/env bash
# Run the alamos demo on the embedded default (a SQLite file, ./alamos.db).
# Creates .venv and installs alamos into it on first use.  Extra arguments go
# to `alamos demo` (e.g. --seconds 10, --workers 3, --db postgresql://...).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/alamos ] || ! .venv/bin/python -c 'import uvicorn, httpx, starlette' 2>/dev/null; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[postgres,demo]'
fi
exec .venv/bin/alamos demo "$@"
