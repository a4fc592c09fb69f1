#!/bin/sh
# gpulab GPU kit: unpack once, then run the bundled benchmark on this machine's GPU through
# WebGPU (Dawn on Vulkan). For a bare Linux x86-64 machine with a GPU driver: no Node, no npm,
# no internet needed. Built by scripts/kit/build.ts (npm run kit). POSIX shell on purpose: it
# runs on the GPU machine before the kit's own node is unpacked, so nothing else can run it.
#
#   ./run.sh [arguments]           run the bench entry the kit was built with (see MANIFEST.json)
#   ./run.sh --smoke [arguments]   run the GPU smoke test (bench/gpu-smoke.ts; e.g. --epochs 5)
#   ./run.sh --node [arguments]    run the kit's node binary itself
#   ./run.sh --unpack              only unpack, print the folder
#
# Needs: glibc >= 2.34, the GPU driver's Vulkan driver (ICD), and xz or python3 to unpack.
# Environment: GPULAB_KIT_DIR  where to unpack (default: ${TMPDIR:-/tmp}/gpulab-kit-<id>)
#              VK_DRIVER_FILES a Vulkan ICD json, when the driver's is in an unusual place
set -eu
: "${PATH:=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin}"
export PATH
say() { echo "[gpulab-kit] $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

HERE=$(cd "$(dirname "$0")" && pwd)
PAYLOAD="$HERE/gpulab-kit.tar.xz"
[ -f "$PAYLOAD" ] || die "$PAYLOAD is missing (copy the whole gpu-kit folder)"
ID=$(cat "$HERE/KIT_ID" 2>/dev/null || echo unknown)
DEST="${GPULAB_KIT_DIR:-${TMPDIR:-/tmp}/gpulab-kit-$ID}"

[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || die "this kit is for Linux x86-64; this is $(uname -s)-$(uname -m)"
if command -v getconf >/dev/null 2>&1; then
  glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  if [ -n "$glibc" ]; then
    major=${glibc%%.*}; minor=${glibc#*.}; minor=${minor%%.*}
    if [ "$major" -lt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -lt 34 ]; }; then
      die "dawn.node needs glibc >= 2.34; this machine has glibc $glibc"
    fi
  fi
fi

# 1. Unpack (once per kit id; a half-unpacked folder is never used).
if [ ! -f "$DEST/.unpacked" ]; then
  say "unpacking $(du -h "$PAYLOAD" | cut -f1) into $DEST"
  tmp="$DEST.partial.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if command -v xz >/dev/null 2>&1 && command -v tar >/dev/null 2>&1; then
    xz -dc "$PAYLOAD" | tar -x -C "$tmp" -f -
  elif command -v python3 >/dev/null 2>&1; then
    python3 - "$PAYLOAD" "$tmp" <<'PY'
import lzma, sys, tarfile
with lzma.open(sys.argv[1]) as f, tarfile.open(fileobj=f) as t:
    kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    t.extractall(sys.argv[2], **kw)
PY
  else
    rm -rf "$tmp"
    die "cannot unpack: need xz + tar, or python3"
  fi
  [ -x "$tmp/gpulab-kit/bin/node" ] || { rm -rf "$tmp"; die "unpacking failed (no bin/node in $tmp)"; }
  : >"$tmp/gpulab-kit/.unpacked"
  rm -rf "$DEST"
  mv "$tmp/gpulab-kit" "$DEST"
  rm -rf "$tmp"
fi
if [ "${1:-}" = "--unpack" ]; then echo "$DEST"; exit 0; fi

# 2. Libraries. Vulkan loader: beside dawn.node (Dawn looks there). libstdc++ from GCC 12 only if
#    this machine's is older; libGLdispatch (the NVIDIA Vulkan driver links it) only if missing.
find_lib() {
  n=$1
  if command -v ldconfig >/dev/null 2>&1; then
    p=$(ldconfig -p 2>/dev/null | awk -v n="$n" '$1==n && /x86-64/ {print $NF; exit}')
    [ -n "$p" ] && { echo "$p"; return; }
  fi
  for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /lib64 /usr/lib; do
    [ -e "$d/$n" ] && { echo "$d/$n"; return; }
  done
}
extra=""
stdcxx=$(find_lib libstdc++.so.6)
if [ -z "$stdcxx" ] || ! grep -qa GLIBCXX_3.4.30 "$stdcxx"; then
  say "using the kit's libstdc++ (this machine's ${stdcxx:-none} lacks GLIBCXX_3.4.30)"
  extra="$DEST/lib/compat"
fi
NV_LIB=/usr/local/nvidia/lib64
if [ -z "$(find_lib libGLdispatch.so.0)" ] && [ ! -e "$NV_LIB/libGLdispatch.so.0" ]; then extra="${extra:+$extra:}$DEST/lib/gl"; fi
[ -d "$NV_LIB" ] && extra="${extra:+$extra:}$NV_LIB"
if [ -n "$extra" ]; then
  LD_LIBRARY_PATH="$extra${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LD_LIBRARY_PATH
fi

# 3. The Vulkan driver. Containers often mount NVIDIA's ICD outside the loader's search path
#    (/usr/local/nvidia/...): use it when the standard folders have no NVIDIA one.
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  found="" nvidia=""
  for d in /etc/vulkan/icd.d /usr/share/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
    for f in "$d"/*.json; do
      [ -f "$f" ] || continue
      found=yes
      case "$f" in *nvidia*) nvidia=yes ;; esac
    done
  done
  if [ -z "$nvidia" ]; then
    for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/icd.d/nvidia_icd.json; do
      if [ -f "$f" ]; then
        say "Vulkan driver: $f"
        VK_DRIVER_FILES=$f VK_ICD_FILENAMES=$f
        export VK_DRIVER_FILES VK_ICD_FILENAMES
        found=yes
        break
      fi
    done
  fi
  [ -n "$found" ] || say "warning: no Vulkan driver (ICD json) found; WebGPU will have no adapter"
fi
# Shader caches need a writable home; keep them with the kit when there is none.
[ -n "${HOME:-}" ] || { XDG_CACHE_HOME="$DEST/.cache"; export XDG_CACHE_HOME; }

NODE="$DEST/bin/node"
case "${1:-}" in
  --node) shift; exec "$NODE" "$@" ;;
  --smoke) shift; exec "$NODE" "$DEST/app/smoke.cjs" "$@" ;;
  *) exec "$NODE" "$DEST/app/main.cjs" "$@" ;;
esac
