#!/usr/bin/env bash
# Build the ipfs-cluster Debian package on a Debian 12 (bookworm) machine.
#
#   sudo debian/build.sh [OUTDIR]      # default OUTDIR: ./dist (git-ignored)
#
# 1. installs the build dependencies (apt-get; skipped with NO_APT=1 or when
#    not root and they are all present),
# 2. copies the source tree to a scratch folder (the build writes debian/
#    staging files and puts the .deb in the parent folder: neither should
#    land in the working tree),
# 3. runs dpkg-buildpackage -us -uc -b there with /usr/bin first on PATH, so
#    that the virtualenv is built by Debian's /usr/bin/python3 even when
#    pyenv, conda or a virtualenv would otherwise come first,
# 4. copies the .deb (and .buildinfo/.changes) to OUTDIR and prints its path.
#
# The pinned dependencies (debian/requirements.txt) are downloaded from the
# package index pip is configured for (PyPI by default).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-$SRC/dist}" && cd "${1:-$SRC/dist}" && pwd)

# a clean environment: Debian's tools and interpreter first, no foreign venv
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
unset VIRTUAL_ENV PYTHONHOME PYTHONPATH PYENV_VERSION CONDA_PREFIX || true
export DEBIAN_FRONTEND=noninteractive

BUILD_DEPS=(build-essential fakeroot dpkg-dev debhelper dh-virtualenv help2man
            python3 python3-dev python3-venv libffi-dev libssl-dev)

missing=()
for pkg in "${BUILD_DEPS[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ] && [ "${NO_APT:-0}" != 1 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "build.sh: missing build dependencies: ${missing[*]}; run as root or install them" >&2
        exit 1
    fi
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${BUILD_DEPS[@]}"
fi

WORK=$(mktemp -d /tmp/ipfs-cluster-deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/src"
# the files git knows about (tracked and new, not ignored); without git, all
# but the usual build and test leftovers
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$SRC" && git ls-files -z --cached --others --exclude-standard) |
        (cd "$SRC" && xargs -0 cp --parents -a -t "$WORK/src" 2>/dev/null || true)
else
    tar -C "$SRC" --exclude=.git --exclude='.ci-venv' --exclude='dist' \
        --exclude='__pycache__' --exclude='*.egg-info' --exclude=build -cf - . |
        tar -C "$WORK/src" -xf -
fi
rm -rf "$WORK/src/dist" "$WORK/src/debian/ipfs-cluster" "$WORK/src/debian/.debhelper"
find "$WORK/src" -name __pycache__ -type d -prune -exec rm -rf {} +
rm -f "$WORK/src/twisted/plugins/dropin.cache"

(cd "$WORK/src" && dpkg-buildpackage -us -uc -b)

cp "$WORK"/*.deb "$OUT"/
cp "$WORK"/*.buildinfo "$WORK"/*.changes "$OUT"/ 2>/dev/null || true
ls -1 "$OUT"/ipfs-cluster_*.deb
