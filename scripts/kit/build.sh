#!/usr/bin/env bash
# Build the carryable GPU kit (npm run kit): everything needed to run the benchmarks on a bare
# Linux x86-64 GPU machine that has a driver but no Node and no internet, in build/gpu-kit/:
#
#   run.sh               unpacks once, sets up the Vulkan driver/library paths, runs the bench
#   gpulab-kit.tar.xz    bin/node (this machine's node binary), app/main.cjs (the bench entry
#                        bundled by esbuild with the lib and tfjs), app/smoke.cjs (bench/gpu-smoke.ts),
#                        the tfjs wasm binaries, app/node_modules/webgpu (dawn.node for linux-x64
#                        only, with libvulkan.so.1 beside it), lib/compat (libstdc++ from GCC 12,
#                        used only where the host's is older), lib/gl (libGLdispatch.so.0, used only
#                        where the host lacks it: NVIDIA's Vulkan driver links it)
#   MANIFEST.json, KIT_ID, README.txt
#
# Usage: bash scripts/kit/build.sh [--entry FILE] [--verify]
#   --entry FILE  the bench entry to bundle (default $GPULAB_KIT_ENTRY, else bench/run.ts; when that
#                 does not exist yet, bench/gpu-smoke.ts, with a notice)
#   --verify      afterwards, unpack the kit into a temp folder and run its smoke test in an empty
#                 environment (no PATH, no NODE_PATH), with the kit's own node
# Environment: GPULAB_KIT_NODE (node binary to ship; default the one running npm),
#              GPULAB_KIT_OUT (default build/gpu-kit). Debian packages are cached in .kit/.
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { echo "[gpu-kit] $*"; }
die() { echo "[gpu-kit] ERROR: $*" >&2; exit 1; }

ENTRY="${GPULAB_KIT_ENTRY:-}"
VERIFY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --entry) ENTRY="${2:?--entry needs a file}"; shift 2 ;;
    --verify) VERIFY=1; shift ;;
    *) die "unknown argument '$1' (usage: build-gpu-kit.sh [--entry FILE] [--verify])" ;;
  esac
done
if [ -z "$ENTRY" ]; then
  ENTRY=bench/run.ts
  if [ ! -f "$ENTRY" ]; then
    say "NOTICE: $ENTRY does not exist yet; the kit's main entry is bench/gpu-smoke.ts instead"
    ENTRY=bench/gpu-smoke.ts
  fi
fi
[ -f "$ENTRY" ] || die "bench entry '$ENTRY' not found"
SMOKE=bench/gpu-smoke.ts
OUT="${GPULAB_KIT_OUT:-build/gpu-kit}"
LIMIT_MB=60
CACHE=.kit
NODE_BIN="$(readlink -f "${GPULAB_KIT_NODE:-$(command -v node)}")"
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || die "build on Linux x86-64 (the kit ships this machine's node binary)"
"$NODE_BIN" -e 'process.exit(process.platform === "linux" && process.arch === "x64" ? 0 : 1)' || die "$NODE_BIN is not a linux-x64 node"
DAWN_PKG=node_modules/webgpu
DAWN="$DAWN_PKG/dist/linux-x64/dawn.node"
[ -f "$DAWN" ] || die "$DAWN missing: run npm ci"
for tool in xz tar dpkg-deb sha256sum; do command -v "$tool" >/dev/null || die "$tool is needed to build the kit"; done

STAGE="$(mktemp -d "${TMPDIR:-/tmp}/gpulab-kit-stage.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
K="$STAGE/gpulab-kit"
mkdir -p "$K/bin" "$K/app/node_modules/webgpu/dist/linux-x64" "$K/lib/compat" "$K/lib/gl" "$OUT.partial"

# 1. The JS: the bench entry and the smoke test, each bundled with the lib and tfjs. dawn.node's
#    package stays a real package (it locates its .node file itself); nodejs-polars and sharp are
#    large native packages the benchmarks do not need: a stub says so if something uses them.
say "bundling $ENTRY (main) and $SMOKE (smoke) with esbuild"
STUB=./scripts/kit/unavailable-module.cjs
bundle() {
  node_modules/.bin/esbuild "$1" --bundle --platform=node --target=node20 --format=cjs \
    --outfile="$2" --log-level=warning --legal-comments=none \
    --external:webgpu --external:tslab --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
    --alias:nodejs-polars="$STUB" --alias:sharp="$STUB"
}
bundle "$ENTRY" "$K/app/main.cjs"
bundle "$SMOKE" "$K/app/smoke.cjs"
cp node_modules/@tensorflow/tfjs-backend-wasm/dist/*.wasm "$K/app/"

# 2. Dawn: the webgpu package, linux-x64 only.
cp "$DAWN_PKG/package.json" "$DAWN_PKG/index.js" "$DAWN_PKG/LICENSE.md" "$K/app/node_modules/webgpu/"
cp "$DAWN" "$K/app/node_modules/webgpu/dist/linux-x64/"

# 3. Debian's libvulkan1 (the Vulkan loader) and libglvnd0 (libGLdispatch), downloaded once into .kit/.
mkdir -p "$CACHE/debs"
for pkg in libvulkan1 libglvnd0; do
  if ! ls "$CACHE/debs/${pkg}_"*_amd64.deb >/dev/null 2>&1; then
    say "downloading Debian package $pkg (apt-get download, into $CACHE/debs)"
    # As root, apt's download sandbox user cannot write into the repo: download as root.
    sandbox=(); [ "$(id -u)" = 0 ] && sandbox=(-o APT::Sandbox::User=root)
    (cd "$CACHE/debs" && apt-get download "${sandbox[@]}" "$pkg:amd64" >/dev/null) \
      || die "apt-get download $pkg failed (needs apt and a reachable Debian/Ubuntu mirror)"
  fi
done
X="$STAGE/debs"
mkdir -p "$X"
for deb in "$CACHE"/debs/libvulkan1_*_amd64.deb "$CACHE"/debs/libglvnd0_*_amd64.deb; do dpkg-deb -x "$deb" "$X"; done
cp -L "$X/usr/lib/x86_64-linux-gnu/libvulkan.so.1" "$K/app/node_modules/webgpu/dist/linux-x64/libvulkan.so.1"
cp -L "$X/usr/lib/x86_64-linux-gnu/libGLdispatch.so.0" "$K/lib/gl/"
VULKAN_VERSION="$(basename "$(ls "$CACHE"/debs/libvulkan1_*_amd64.deb)" | cut -d_ -f2)"

# 4. libstdc++/libgcc_s of this machine (GCC 12: dawn.node needs GLIBCXX_3.4.30), for older hosts.
for lib in libstdc++.so.6 libgcc_s.so.1; do
  src="$(ldconfig -p | awk -v n="$lib" '$1==n && /x86-64/ {print $NF; exit}')"
  [ -n "$src" ] || die "$lib not found on this machine"
  cp -L "$src" "$K/lib/compat/$lib"
done

# 5. node.
cp "$NODE_BIN" "$K/bin/node"
chmod 755 "$K/bin/node"

# 6. Pack, and describe.
say "compressing (xz -9; the node binary dominates, this takes a minute or two)"
tar -C "$STAGE" --owner=0 --group=0 --numeric-owner -cf - gpulab-kit | xz -9 -T2 >"$OUT.partial/gpulab-kit.tar.xz"
SHA="$(sha256sum "$OUT.partial/gpulab-kit.tar.xz" | cut -d' ' -f1)"
echo "${SHA:0:12}" >"$OUT.partial/KIT_ID"
cp scripts/kit/run.sh "$OUT.partial/run.sh"
chmod 755 "$OUT.partial/run.sh"
"$NODE_BIN" - "$OUT.partial" "$K" "$ENTRY" "$SHA" "$VULKAN_VERSION" <<'JS'
const fs = require('fs'), path = require('path');
const [out, k, entry, sha, vulkan] = process.argv.slice(2);
const size = (f) => fs.statSync(path.join(k, f)).size;
const pkg = (p) => JSON.parse(fs.readFileSync(path.join('node_modules', p, 'package.json'), 'utf8')).version;
const { execFileSync } = require('child_process');
const manifest = {
  entry, smoke: 'bench/gpu-smoke.ts', builtAt: new Date().toISOString(), payloadSha256: sha,
  payloadBytes: fs.statSync(path.join(out, 'gpulab-kit.tar.xz')).size,
  node: execFileSync(path.join(k, 'bin/node'), ['--version'], { encoding: 'utf8' }).trim(),
  versions: { tfjs: pkg('@tensorflow/tfjs'), 'tfjs-backend-webgpu': pkg('@tensorflow/tfjs-backend-webgpu'), webgpu: pkg('webgpu'), libvulkan1: vulkan },
  unpackedBytes: { 'bin/node': size('bin/node'), 'dawn.node': size('app/node_modules/webgpu/dist/linux-x64/dawn.node'),
    'main.cjs': size('app/main.cjs'), 'smoke.cjs': size('app/smoke.cjs') },
  requires: 'Linux x86-64, glibc >= 2.34, a GPU driver with a Vulkan ICD, xz+tar or python3 to unpack',
};
fs.writeFileSync(path.join(out, 'MANIFEST.json'), JSON.stringify(manifest, null, 2) + '\n');
JS
cat >"$OUT.partial/README.txt" <<EOF
gpulab GPU kit: run the gpulab benchmarks on a Linux x86-64 GPU machine with no Node and no internet.
Copy this whole folder there, then:

  ./run.sh                       run the bench ($ENTRY)
  ./run.sh --smoke               describe the GPU, time a matMul, train a few MLP steps (JSON)
  ./run.sh --smoke --epochs 5    the article's seed experiment: 784-500-10 MLP, batch 100, 5 epochs

It unpacks once into \${TMPDIR:-/tmp}/gpulab-kit-<id> (or \$GPULAB_KIT_DIR). Needs glibc >= 2.34,
the GPU driver's Vulkan driver (ICD json; NVIDIA's under /usr/local/nvidia is found automatically),
and xz+tar or python3. Contents and versions: MANIFEST.json.
EOF
rm -rf "$OUT"
mv "$OUT.partial" "$OUT"

BYTES="$(du -sb "$OUT" | cut -f1)"
MB="$(awk -v b="$BYTES" 'BEGIN{printf "%.1f", b/1048576}')"
say "built $OUT: $MB MiB (payload sha256 ${SHA:0:12}, entry $ENTRY)"
[ "$BYTES" -le $((LIMIT_MB * 1048576)) ] || die "the kit is $MB MiB, over the $LIMIT_MB MiB limit"

# 7. Optional: prove it runs without this machine's Node or node_modules.
if [ "$VERIFY" = 1 ]; then
  V="$(mktemp -d "${TMPDIR:-/tmp}/gpulab-kit-verify.XXXXXX")"
  cp -r "$OUT" "$V/kit"
  say "verifying: env -i (no PATH, no HOME) $V/kit/run.sh --smoke, unpacking into $V/unpacked"
  (cd "$V" && env -i GPULAB_KIT_DIR="$V/unpacked" /bin/sh "$V/kit/run.sh" --smoke >"$V/smoke.json") \
    || { cat "$V/smoke.json" >&2 || true; die "the kit's smoke test failed (output kept in $V)"; }
  "$NODE_BIN" -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const ok = r.execPath.startsWith(process.argv[2]) && r.device.backend === "webgpu";
    console.log(`[gpu-kit] verify: node ${r.node} at ${r.execPath}; ${r.label}; ` +
      r.results.map((x) => `${x.experiment} ${x.variant}: median ${x.median.toFixed(3)} s`).join("; "));
    process.exit(ok ? 0 : 1);' "$V/smoke.json" "$V/unpacked/" || die "verify: the smoke did not run on webgpu with the kit's node ($V/smoke.json)"
  rm -rf "$V"
  say "verify: ok"
fi
