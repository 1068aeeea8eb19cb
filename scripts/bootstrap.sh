#!/usr/bin/env bash
# Create .venv and install requirements.txt into it, only when requirements.txt (or the interpreter) changed.
#
#   bash scripts/bootstrap.sh          quiet on success apart from one line; pip's log is shown on failure
#   PYTHON=/path/to/python3.12 bash scripts/bootstrap.sh    choose the interpreter (3.11 to 3.14)
#
# Uses nothing but the interpreter's venv module and pip from PyPI. The project itself is not installed as a
# package: it is used from the checkout. A .pth file in the venv puts the checkout on sys.path, so
# `.venv/bin/python -m pipelines ...`, pytest and Airflow's task processes import `pipelines` from any directory.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=$ROOT/.venv
REQ=$ROOT/requirements.txt
STAMP=$VENV/.requirements.sha256
LOG=$VENV/pip-install.log

say() { echo "bootstrap: $*"; }
die() { echo "bootstrap: $*" >&2; exit 1; }

# A Python the pinned requirements support (numpy/pandas need >= 3.11, Airflow 3.3 and GX < 3.15).
python_ok() { "$1" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 15)))' >/dev/null 2>&1; }
find_python() {
  local c
  if [ -n "${PYTHON:-}" ]; then
    python_ok "$PYTHON" || die "PYTHON=$PYTHON is not Python 3.11 to 3.14 (found: $("$PYTHON" --version 2>&1 || echo none))"
    echo "$PYTHON"; return
  fi
  for c in python3 python3.11 python3.12 python3.13 python3.14; do
    if command -v "$c" >/dev/null 2>&1 && python_ok "$c"; then command -v "$c"; return; fi
  done
  die "needs Python 3.11 to 3.14 (python3 here is $(python3 --version 2>&1 || echo missing)); install one, or set PYTHON=/path/to/python3.11"
}

# Recreate the venv when it is missing or broken (e.g. its interpreter was removed).
if ! { [ -x "$VENV/bin/python" ] && python_ok "$VENV/bin/python"; }; then
  PY=$(find_python)
  rm -rf "$VENV"
  if ! "$PY" -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    die "'$PY -m venv' failed; on Debian/Ubuntu install the venv module: apt-get install python3-venv"
  fi
fi

PYVER=$("$VENV/bin/python" -c 'import platform; print(platform.python_version())')
want="$(sha256sum "$REQ" | cut -d' ' -f1) python-$PYVER"

# The checkout on sys.path of every process of this venv (rewritten each time: the checkout may have moved).
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$ROOT" > "$site/popetl_checkout.pth"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  say ".venv up to date (Python $PYVER)"
  exit 0
fi

say "installing requirements.txt into .venv (Python $PYVER; a minute or two on a fresh machine)"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1
if ! "$VENV/bin/python" -m pip install --quiet --requirement "$REQ" >"$LOG" 2>&1; then
  cat "$LOG" >&2
  die "pip install failed (log above, also in $LOG)"
fi
echo "$want" > "$STAMP"
