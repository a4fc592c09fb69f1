#!/usr/bin/env bash
# Everything `npm test` needs on a fresh machine beyond `npm ci`, installed idempotently.
# Each step says what it is doing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Jupyter + the tslab kernel (notebook tests)
bash scripts/setup-jupyter.sh

# Software Vulkan for the WebGPU correctness suite (issue 8)
bash scripts/setup-vulkan.sh


# Chromium for the published-site browser tests (issue 9)

