#!/usr/bin/env bash
# gpu/fetch-deps.sh -- download, where apt works, the Debian packages that
# gpu/check.sh unpacks on a GPU machine that has neither them nor a network
# (liburcu and libmicrohttpd, the two libraries the build cannot do
# without), into gpu/deps/ (ignored by git: bring it along with the tree).
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/deps"
mkdir -p "$dir"
cd "$dir"
rm -f ./*.deb
apt-get download liburcu-dev liburcu8 libmicrohttpd-dev libmicrohttpd12
ls -l
