#!/usr/bin/env bash
# Run the whole check: lint, format, types and tests.
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k sql -x  # extra arguments go to pytest
# Creates .venv if missing and installs alamos with its dev extras into it.
# The PostgreSQL tests start a throwaway server from the initdb/pg_ctl of the
# machine (or use ALAMOS_TEST_PG_URL); as root, PostgreSQL is installed with
# apt-get when missing, and so is chromium for the dashboard's browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q -e '.[dev]'

have_initdb() {
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
if [[ -z "${ALAMOS_TEST_PG_URL:-}" ]] && ! have_initdb; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "scripts/test.sh: installing PostgreSQL (apt-get install postgresql)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "scripts/test.sh: PostgreSQL not found: install it (apt-get install postgresql)" \
            "or set ALAMOS_TEST_PG_URL; the PostgreSQL tests will be skipped (fail if CI=true)" >&2
    fi
fi

# The dashboard's browser tests (issue 13) drive Debian's chromium with Playwright
# (the dev extra); Playwright's own browser download is not used.
if ! command -v chromium >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "scripts/test.sh: installing chromium (apt-get install chromium)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "scripts/test.sh: chromium not found: install it (apt-get install chromium);" \
            "the dashboard's browser tests will be skipped (fail if CI=true)" >&2
    fi
fi

.venv/bin/ruff check alamos tests bench
.venv/bin/ruff format --check alamos tests bench
.venv/bin/mypy
# The one-way layering (issue 9): the import-linter contracts of pyproject.toml.
.venv/bin/lint-imports
# The benchmark harness itself (issue 5): --quick runs every case briefly and
# never checks thresholds; its output goes to bench/results/partial.* only.
# It runs before pytest so that pytest's summary is the last line.
if [[ $# -eq 0 ]]; then
    .venv/bin/python -m bench --quick --no-table
fi
.venv/bin/pytest -q "$@"
