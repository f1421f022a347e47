#!/usr/bin/env bash
# Run the alamos demo on the embedded default (a SQLite file, ./alamos.db).
# Creates .venv and installs alamos into it on first use.  Extra arguments go
# to `alamos demo` (e.g. --seconds 10, --workers 3, --db postgresql://...).
# Ends by printing the command that opens the dashboards over the same data.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/alamos ] || ! .venv/bin/python -c 'import uvicorn, httpx, starlette, jinja2' 2>/dev/null; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[postgres,demo,dashboard]'
fi
.venv/bin/alamos demo "$@"
# The database the demo wrote to: its --db, else $ALAMOS_DB, else ./alamos.db.
db="${ALAMOS_DB:-sqlite:///alamos.db}"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --db) db="${args[i + 1]:-$db}" ;;
    --db=*) db="${args[i]#--db=}" ;;
  esac
done
if ! .venv/bin/python -c 'import starlette, uvicorn, jinja2' 2>/dev/null; then
  echo "(the dashboard needs its extra first: .venv/bin/pip install -e '.[dashboard]')"
fi
echo "Open the dashboards over this data (http://127.0.0.1:8710):"
echo "  .venv/bin/alamos dashboard --db '$db'"
