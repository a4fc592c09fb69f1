#!/usr/bin/env bash
# A project-local Jupyter in .venv/ (git-ignored), with the tslab kernel of this checkout. No sudo,
# no system Jupyter. Idempotent: a second run checks and says "nothing to do".
#  1. python3 -m venv .venv            (GPULAB_PYTHON=/path/to/python3 picks another interpreter)
#  2. pip install -r requirements-jupyter.txt   (exact versions: JupyterLab 4, nbclient, nbconvert)
#  3. tslab kernel spec inside the venv (.venv/share/jupyter/kernels/tslab), pointing at
#     node_modules/.bin/tslab of this checkout: not in ~/.local, so other projects are untouched
#  4. .venv/etc/jupyter/jupyter_server_config.json: new notebooks default to the tslab kernel
# Everything that runs Jupyter here (npm run lab, the runner, the tests, npm run publish) uses
# .venv/bin/jupyter and .venv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
say() { echo "[setup-jupyter] $*"; }
die() { echo "[setup-jupyter] ERROR: $*" >&2; exit 1; }

PY="${GPULAB_PYTHON:-python3}"
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
REQ="$ROOT/requirements-jupyter.txt"
STAMP="$VENV/.gpulab-requirements"
TSLAB="$ROOT/node_modules/.bin/tslab"
KERNEL_DIR="$VENV/share/jupyter/kernels/tslab"
SERVER_CONFIG="$VENV/etc/jupyter/jupyter_server_config.json"
export JUPYTER_PREFER_ENV_PATH=1 PIP_DISABLE_PIP_VERSION_CHECK=1

[ -x "$TSLAB" ] || die "$TSLAB is missing: run npm ci first"
[ -f "$REQ" ] || die "$REQ is missing"
changed=0

# 1. The virtual environment (recreated if its interpreter no longer runs, e.g. Python moved).
if [ -x "$VPY" ] && ! "$VPY" -c 'import sys' >/dev/null 2>&1; then
  say "$VENV is broken (its python does not run): recreating it"
  rm -rf "$VENV"
fi
if [ ! -x "$VPY" ]; then
  command -v "$PY" >/dev/null 2>&1 || die "no $PY found: install Python 3.9 or newer (or set GPULAB_PYTHON=/path/to/python3)"
  if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    ver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo 3)"
    die "'$PY -m venv' is not available (Python's venv/ensurepip module is missing).
  On Debian/Ubuntu install it:  sudo apt-get install python3-venv   (or python${ver}-venv)
  then run this again (npm run setup:jupyter)."
  fi
  say "creating the virtual environment $VENV with $("$PY" --version 2>&1) ($(command -v "$PY"))"
  "$PY" -m venv "$VENV" || die "'$PY -m venv $VENV' failed (on Debian/Ubuntu: sudo apt-get install python3-venv)"
  changed=1
fi

# 2. The pinned packages; the stamp records what was installed (requirements + interpreter).
want="$(cat "$REQ"; "$VPY" -c 'import sys; print(sys.version)')"
have_pkgs() { "$VPY" -c 'import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in ("jupyterlab", "nbclient", "nbconvert", "ipykernel")) else 1)' >/dev/null 2>&1; }
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && have_pkgs; then
  :
else
  say "installing $(grep -cE '^[A-Za-z]' "$REQ") pinned packages from $(basename "$REQ") into $VENV (about 20 s)"
  "$VPY" -m pip install --quiet --timeout 5 --retries 0 -r "$REQ" \
    || die "pip could not install $(basename "$REQ") into $VENV (no network? see the messages above)"
  "$VPY" -c 'import jupyterlab, nbclient, nbconvert, ipykernel' || die "the packages installed but do not import"
  printf '%s' "$want" >"$STAMP.tmp" && mv "$STAMP.tmp" "$STAMP"
  changed=1
fi

# 3. The tslab kernel spec inside the venv, naming this checkout's tslab.
kernel_ok() { [ -f "$KERNEL_DIR/kernel.json" ] && "$VPY" - "$KERNEL_DIR/kernel.json" "$TSLAB" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
sys.exit(0 if spec.get("argv", [None])[0] == sys.argv[2] and spec.get("language") == "typescript" else 1)
PY
}
if ! kernel_ok; then
  say "registering the TypeScript kernel (tslab) in $VENV with $TSLAB"
  "$TSLAB" install --python="$VPY" --binary="$TSLAB" --sys-prefix >/dev/null \
    || die "tslab install --sys-prefix failed"
  kernel_ok || die "kernel registration failed: $KERNEL_DIR/kernel.json does not name $TSLAB"
  changed=1
fi

# 4. New notebooks (and notebooks without kernel metadata) get the TypeScript kernel.
config='{
  "MappingKernelManager": { "default_kernel_name": "tslab" }
}'
if [ ! -f "$SERVER_CONFIG" ] || [ "$(cat "$SERVER_CONFIG")" != "$config" ]; then
  mkdir -p "$(dirname "$SERVER_CONFIG")"
  printf '%s\n' "$config" >"$SERVER_CONFIG.tmp" && mv "$SERVER_CONFIG.tmp" "$SERVER_CONFIG"
  say "default kernel for new notebooks: tslab ($SERVER_CONFIG)"
  changed=1
fi

versions="$("$VPY" -c 'from importlib.metadata import version as v; print("JupyterLab %s, nbclient %s, nbconvert %s" % (v("jupyterlab"), v("nbclient"), v("nbconvert")))')"
if [ "$changed" = 0 ]; then
  say "nothing to do: $VENV is up to date ($versions, kernel tslab → $TSLAB)"
else
  say "ready: $VENV ($versions, kernel tslab → $TSLAB)"
fi
