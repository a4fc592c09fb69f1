#!/usr/bin/env bash
# Everything `npm test` needs on a fresh machine beyond `npm ci`, installed idempotently.
# Each step says what it is doing.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The project-local Jupyter in .venv/ + the tslab kernel (notebook, JupyterLab and export tests)
bash scripts/setup/jupyter.sh

# The native TensorFlow backend (tfjs-node built against pip's TensorFlow 2.21; issue 15).
# A failure is reported and the suite carries on: test/unit/backends/native.test.ts then fails under CI.
node scripts/setup/tensorflow.cjs --optional

# Software Vulkan for the WebGPU correctness suite (issue 8)
bash scripts/setup/vulkan.sh


# Chromium for the published-site browser tests (issue 9): Debian's own build, driven by
# playwright-core through executablePath (npm's browser downloads cannot reach their host here).
if [ -x /usr/bin/chromium ]; then
  echo "[setup-test-env] chromium found: $(/usr/bin/chromium --version 2>/dev/null || echo '/usr/bin/chromium')"
elif command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  echo "[setup-test-env] chromium not found; installing the Debian package chromium"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  [ -x /usr/bin/chromium ] || { echo "[setup-test-env] ERROR: apt-get installed chromium but /usr/bin/chromium is missing"; exit 1; }
  echo "[setup-test-env] chromium installed: $(/usr/bin/chromium --version)"
else
  echo "[setup-test-env] ERROR: /usr/bin/chromium is missing and there is no apt-get to install it (the site browser tests need it)"
  exit 1
fi

