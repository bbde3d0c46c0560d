#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# `make run`: the main job on an embedded default. Starts leapd with a sparse
# file-backed namespace in a temporary directory, pushes verified I/O through
# it and shows the statistics, then stops leapd cleanly. Pieces that have not
# been built yet are announced, not faked.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
BIN="$BUILD/bin"

say() { printf '\n== %s\n' "$*"; }

if [ ! -x "$BIN/leapd" ]; then
	say "leapd is not built yet in this revision."
	cat <<'TXT'
When it is, `make run` will:
  1. create a 1 GiB sparse file in a temporary directory,
  2. start leapd with an embedded config: a `uring` backend on that file, two tenant
     controllers each with one namespace carved out of it,
  3. drive verified I/O through a tenant with leap-perf (and later fio),
  4. print `leapctl stats`, then stop leapd with SIGTERM (it drains and exits 0).
TXT
	exit 0
fi
