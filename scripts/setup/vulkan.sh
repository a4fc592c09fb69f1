#!/usr/bin/env bash
# Software Vulkan that Dawn (npm `webgpu`) accepts, for the WebGPU correctness suite. Idempotent.
#
# Dawn needs Mesa >= 23 lavapipe: Debian 12's own Mesa 22.3 lavapipe is rejected (it lacks
# dynamic-indexing features Dawn requires). What this script does:
#  1. If lavapipe from Mesa >= 23 and the Vulkan loader (libvulkan.so.1) are installed: nothing.
#  2. If the distribution's own mesa-vulkan-drivers is >= 23 (Debian 13, Ubuntu 23.04+...): install it.
#  3. On Debian 12 (bookworm): add `bookworm-backports` to the Suites of the machine's EXISTING
#     Debian source entry (/etc/apt/sources.list.d/debian.sources, or a `deb ... bookworm main` line
#     of /etc/apt/sources.list), so the same mirror is used; no mirror host is written by this repo.
#     Then install mesa-vulkan-drivers from backports (apt also moves the other installed Mesa
#     libraries, e.g. libgl1-mesa-dri, to the same backports version), plus libvulkan1.
# Uses sudo when not root. GPULAB_SKIP_VULKAN=1 skips it all (e.g. on a machine with a real GPU).
set -euo pipefail
say() { echo "[setup-vulkan] $*"; }
MIN_MESA=23

if [ "${GPULAB_SKIP_VULKAN:-}" = 1 ]; then say "GPULAB_SKIP_VULKAN=1: skipping"; exit 0; fi
if [ "$(uname -s)" != Linux ]; then say "not Linux: skipping (lavapipe setup is for Linux CI)"; exit 0; fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  say "no apt-get/dpkg: install Mesa >= $MIN_MESA lavapipe (mesa-vulkan-drivers / vulkan-swrast) and the Vulkan loader yourself"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
APT=(env DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 -y -qq)

installed_version() { dpkg-query -W -f='${db:Status-Status} ${Version}\n' "$1" 2>/dev/null | awk '$1=="installed"{print $2}'; }
major_of() { sed -e 's/^[0-9]*://' -e 's/[^0-9].*$//' <<<"$1"; }
candidate_version() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/{print $2}'; }
# The newest version apt can see for a package, from a given suite (or any suite when empty).
suite_version() {
  apt-cache madison "$1" 2>/dev/null | awk -F'|' -v s="$2" '$3 ~ s {gsub(/ /,"",$2); print $2; exit}'
}
loader_present() { ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1 ' >/dev/null; }  # not grep -q: under pipefail its early exit SIGPIPEs ldconfig
lavapipe_ok() {
  local v; v="$(installed_version mesa-vulkan-drivers)"
  [ -n "$v" ] && [ "$(major_of "$v")" -ge "$MIN_MESA" ] && ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1
}

if lavapipe_ok && loader_present; then
  say "lavapipe ok: mesa-vulkan-drivers $(installed_version mesa-vulkan-drivers), libvulkan1 $(installed_version libvulkan1)"
  exit 0
fi

. /etc/os-release
CODENAME="${VERSION_CODENAME:-}"
say "need Mesa >= $MIN_MESA lavapipe + libvulkan1 (have mesa-vulkan-drivers '$(installed_version mesa-vulkan-drivers)'); distribution: ${ID:-?} ${CODENAME:-?}"
say "apt-get update"
"${APT[@]}" update

cand="$(candidate_version mesa-vulkan-drivers)"
if [ -n "$cand" ] && [ "$cand" != "(none)" ] && [ "$(major_of "$cand")" -ge "$MIN_MESA" ]; then
  say "installing mesa-vulkan-drivers $cand and libvulkan1 from the distribution"
  "${APT[@]}" install --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
elif [ "${ID:-}" = debian ] && [ -n "$CODENAME" ]; then
  BP="$CODENAME-backports"
  if apt-cache policy 2>/dev/null | grep -q " $BP/main"; then
    say "$BP already enabled"
  elif [ -f /etc/apt/sources.list.d/debian.sources ] && grep -Eq "^Suites:.*\\b$CODENAME\\b" /etc/apt/sources.list.d/debian.sources; then
    f=/etc/apt/sources.list.d/debian.sources
    bak=/var/backups/debian.sources.gpulab-bak   # not beside it: apt warns about unknown extensions there
    say "enabling $BP: adding it to the Suites of the '$CODENAME' entry in $f (backup: $bak)"
    $SUDO mkdir -p /var/backups && $SUDO cp -n "$f" "$bak"
    # Only the stanza whose Suites name the plain codename (not -security) gets the extra suite.
    $SUDO sed -i -E "/^Suites:/{/(^|[[:space:]])$CODENAME([[:space:]]|\$)/{/$BP/!s/\$/ $BP/}}" "$f"
  elif [ -f /etc/apt/sources.list ] && grep -Eq "^deb[[:space:]]+[^#]*[[:space:]]$CODENAME[[:space:]]" /etc/apt/sources.list; then
    line="$(grep -Em1 "^deb[[:space:]]+[^#]*[[:space:]]$CODENAME[[:space:]]" /etc/apt/sources.list)"
    f=/etc/apt/sources.list.d/gpulab-backports.list
    say "enabling $BP: $f gets the same mirror as the existing '$CODENAME' line of /etc/apt/sources.list"
    sed -E "s/[[:space:]]$CODENAME[[:space:]]/ $BP /" <<<"$line" | $SUDO tee "$f" >/dev/null
  else
    say "ERROR: found no Debian '$CODENAME' source entry to add $BP to; enable $BP yourself and re-run"
    exit 1
  fi
  say "apt-get update (with $BP)"
  "${APT[@]}" update
  bpv="$(suite_version mesa-vulkan-drivers "$BP")"
  if [ -z "$bpv" ] || [ "$(major_of "$bpv")" -lt "$MIN_MESA" ]; then
    say "ERROR: $BP has no mesa-vulkan-drivers >= $MIN_MESA (found '${bpv:-none}')"
    exit 1
  fi
  say "installing mesa-vulkan-drivers $bpv from $BP, and libvulkan1"
  "${APT[@]}" install --no-install-recommends -t "$BP" mesa-vulkan-drivers >/dev/null
  "${APT[@]}" install --no-install-recommends libvulkan1 >/dev/null
else
  say "ERROR: ${ID:-this distribution} ${CODENAME:-} offers mesa-vulkan-drivers '${cand:-none}' (< $MIN_MESA) and no known backports; install Mesa >= $MIN_MESA lavapipe yourself"
  exit 1
fi

if lavapipe_ok && loader_present; then
  say "lavapipe ok: mesa-vulkan-drivers $(installed_version mesa-vulkan-drivers), libvulkan1 $(installed_version libvulkan1)"
else
  say "ERROR: lavapipe or libvulkan.so.1 still missing after install"
  exit 1
fi
