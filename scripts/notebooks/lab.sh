#!/usr/bin/env bash
# npm run lab: JupyterLab (the project-local one in .venv/) on notebooks/, TypeScript kernel.
# Extra arguments go to `jupyter lab` (e.g. npm run lab -- --port 9999 --no-browser).
# GPULAB_LAB_DIR serves another folder than notebooks/ (the browser tests serve copies under build/).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup/jupyter.sh
# Kernel specs and config from .venv first (tslab of this checkout, tslab as the default kernel).
export JUPYTER_PREFER_ENV_PATH=1
dir="${GPULAB_LAB_DIR:-$PWD/notebooks}"
[ -d "$dir" ] || { echo "[lab] ERROR: $dir is not a folder" >&2; exit 1; }
args=(--ServerApp.root_dir="$dir")
# CI and containers run as root; jupyter refuses to start there without --allow-root.
if [ "$(id -u)" = 0 ]; then args+=(--allow-root); fi
# Without a display there is no browser to open: just print the URL.
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ "$(uname)" = Linux ]; then args+=(--no-browser); fi
echo "[lab] starting JupyterLab on $dir (TypeScript kernel); open the http://…/lab?token=… URL it prints below. Ctrl+C stops it."
exec .venv/bin/jupyter lab "${args[@]}" "$@"
