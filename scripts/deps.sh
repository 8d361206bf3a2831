#!/usr/bin/env bash
# deps.sh installs the Debian packages that edge's builds, tests, lab and
# benchmarks use. It is idempotent: packages already installed are skipped,
# and nothing runs apt-get when everything is present.
#
# Usage: scripts/deps.sh PACKAGE...
set -euo pipefail

missing=()
for pkg in "$@"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#} packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages: ${missing[*]}" >&2
	echo "deps: installing them needs root; run 'make deps' as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}"

# Packages such as nginx, haproxy, knot and prometheus start a service from
# their maintainer scripts. The lab and the benchmarks start their own copies
# inside namespaces, so services on the host are kept from starting during
# the install through policy-rc.d (removed again afterwards if we made it).
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 0755 "$policy"
	made_policy=1
fi
cleanup() { [ -z "$made_policy" ] || rm -f "$policy"; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
if ! apt-get install "${apt_opts[@]}" "${missing[@]}"; then
	echo "deps: install failed, refreshing package lists and trying again" >&2
	apt-get update -q
	apt-get install "${apt_opts[@]}" "${missing[@]}"
fi
echo "deps: done"
