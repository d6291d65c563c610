#!/usr/bin/env bash
# Create (or reuse) a virtual environment and install a locked requirements file into it.
#   deploy/local/make_venv.sh VENV_DIR LOCK_FILE
# Idempotent: a stamp file records the lock file's hash, so a second run with an unchanged lock
# returns at once. torch is always constrained to exactly 2.13.0 (the CPU build): a looser spec
# would pull several GB of CUDA wheels.
set -euo pipefail
venv=$1
lock=$2
python=${PYTHON:-python3.11}
stamp="$venv/.installed"
want=$(sha256sum "$lock" | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "  $venv: up to date with $lock"
  exit 0
fi
command -v "$python" >/dev/null || { echo "error: $python not found; install Python 3.11 (or set PYTHON=...)" >&2; exit 1; }
[ -x "$venv/bin/python" ] || { echo "  creating $venv"; "$python" -m venv "$venv"; }

constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
echo "torch==2.13.0" >"$constraints"
echo "  installing $lock into $venv (several minutes on a fresh machine)"
# pip prints one line per package as progress; the mirror warnings of some pip configs are noise.
set +e
PYTHONUNBUFFERED=1 "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
  -r "$lock" -c "$constraints" 2>&1 | grep --line-buffered -E "^(Collecting|Successfully|ERROR|error)" | sed -u 's/^/    /'
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || { echo "error: pip install into $venv failed (exit $status)" >&2; exit "$status"; }
"$venv/bin/python" -m pip check
echo "$want" >"$stamp"
echo "  $venv: ready"
