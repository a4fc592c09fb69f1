#!/usr/bin/env bash
# Set up Jupyter and register the tslab kernel with this project's own tslab. Idempotent.
#  - Debian/Ubuntu without Jupyter: apt-get install jupyter-notebook jupyter-nbconvert (sudo if not root).
#  - Elsewhere (or when apt is unavailable): python3 -m pip install --user jupyterlab.
#  - Then: tslab install --binary=<repo>/node_modules/.bin/tslab (kernel name "tslab").
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[setup-jupyter] $*"; }

have_nbconvert() { jupyter nbconvert --version >/dev/null 2>&1; }

if have_nbconvert; then
  say "Jupyter found: nbconvert $(jupyter nbconvert --version 2>/dev/null)"
else
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    say "Jupyter not found; installing Debian packages jupyter-notebook jupyter-nbconvert python3-nbclient"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq jupyter-notebook jupyter-nbconvert python3-nbclient python3-ipykernel >/dev/null
  else
    say "Jupyter not found and no apt-get; installing jupyterlab with pip --user"
    python3 -m pip install --user --quiet jupyterlab nbconvert nbclient
    export PATH="$HOME/.local/bin:$PATH"
  fi
  have_nbconvert || { say "ERROR: jupyter nbconvert still not available after install"; exit 1; }
  say "Jupyter installed: nbconvert $(jupyter nbconvert --version)"
fi

TSLAB="$PWD/node_modules/.bin/tslab"
[ -x "$TSLAB" ] || { say "ERROR: $TSLAB missing: run npm ci first"; exit 1; }
# tslab's installer runs install.py with a Python that has jupyter_client: use jupyter's own.
JPY="$(head -1 "$(command -v jupyter)" | sed -e 's/^#!//' | awk '{print $1}')"
[ -x "$JPY" ] || JPY=python3
kernel_json() {
  "$JPY" -c 'from jupyter_client.kernelspec import KernelSpecManager as K; d=K().find_kernel_specs().get("tslab"); print(d + "/kernel.json" if d else "")' 2>/dev/null || true
}
spec="$(kernel_json)"
if [ -n "$spec" ] && grep -qF "\"$TSLAB\"" "$spec"; then
  say "tslab kernel already registered with this project's tslab ($spec)"
else
  say "registering the tslab kernel with $TSLAB (python: $JPY)"
  "$TSLAB" install --user --python="$JPY" --binary="$TSLAB" >/dev/null
  spec="$(kernel_json)"
  grep -qF "\"$TSLAB\"" "$spec" || { say "ERROR: kernel registration failed (no tslab kernel.json naming $TSLAB)"; exit 1; }
  say "tslab kernel registered: $spec"
fi
