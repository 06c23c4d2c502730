#!/bin/sh
# Installs the Debian packages modeld needs to build (and, with --test, to run
# its tests). Installs only what is missing; does nothing when all is there.
# Run as root (or with sudo available). Debian 12 (bookworm).
set -eu

BUILD="build-essential pkg-config liblmdb-dev libcurl4-openssl-dev libarchive-dev
libgit2-dev libjansson-dev libyaml-dev libssl-dev libxxhash-dev libmicrohttpd-dev
libseccomp-dev zstd"
TEST="libcmocka-dev python3 python3-pytest python3-numpy python3-torch nginx-light git git-lfs
fcgiwrap valgrind clang libclang-rt-14-dev lmdb-utils curl nodejs npm python3-jsonschema
python3-xxhash
openssl"

want="$BUILD"
[ "${1:-}" = "--test" ] && want="$BUILD $TEST"

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

# node/npm may come from elsewhere (nvm, nodesource); only ask apt for them
# when no node is on PATH at all.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
	missing=$(echo "$missing" | tr ' ' '\n' | grep -vx -e nodejs -e npm | tr '\n' ' ')
	[ -z "$(echo "$missing" | tr -d ' ')" ] && exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
		echo "deps.sh: missing packages:$missing; run as root to install them" >&2
		exit 1
	fi
fi
echo "deps.sh: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
