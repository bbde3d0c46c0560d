#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The build's layering check: which folder may include which. runtime/'s
# layers include each other as "layer/file.h" (the Makefile passes
# -Iruntime), so a quoted include names its layer and this script can hold
# it against the table below (the same table as README.md's). A module
# folder (runtime/frontend/<m>/, runtime/backend/<m>/) may use its layer's
# shared files but never another module's. Outside runtime/, nothing may
# reach into runtime/ or climb out of its folder with "../".
# Exit 0 when every include is allowed; otherwise one line per offence.
set -uo pipefail
cd "$(dirname "$0")/.."

# layer -> the layers it may include (itself always)
declare -A MAY=(
	[core]="core"
	[backend]="core backend"
	[nvme]="core backend nvme"
	[policy]="core backend nvme policy"
	[frontend]="core backend nvme frontend"
	[control]="core backend nvme policy frontend control"
)
LAYERS="core backend nvme policy frontend control"
bad=0

while IFS= read -r f; do
	rel=${f#runtime/}
	layer=${rel%%/*}
	mod=""
	case "$rel" in
	frontend/*/* | backend/*/*) mod=$(echo "$rel" | cut -d/ -f1-2) ;;
	esac
	while IFS=: read -r line inc; do
		inc=${inc#*\"}
		inc=${inc%%\"*}
		case "$inc" in
		../*) echo "$f:$line: \"$inc\": no relative climbs in runtime/"; bad=1; continue ;;
		esac
		first=${inc%%/*}
		[ "$first" = "$inc" ] && continue # same-folder private header
		[[ " $LAYERS " == *" $first "* ]] || continue
		if [[ " ${MAY[$layer]} " != *" $first "* ]]; then
			echo "$f:$line: $layer/ may not include \"$inc\" (allowed: ${MAY[$layer]})"
			bad=1
			continue
		fi
		case "$inc" in
		frontend/*/* | backend/*/*)
			imod=$(echo "$inc" | cut -d/ -f1-2)
			if [ "$imod" != "$mod" ]; then
				echo "$f:$line: \"$inc\" belongs to module $imod; modules stay apart"
				bad=1
			fi
			;;
		esac
	done < <(grep -n '^#include "' "$f" | sed 's/:#include /:/')
done < <(find runtime -name '*.[ch]' | sort)

# Components outside runtime/ never include runtime internals.
while IFS=: read -r f line inc; do
	echo "$f:$line: $inc: only runtime/, tests/ and bench/ may include runtime headers"
	bad=1
done < <(grep -rn '^#include "\(\.\./\)*runtime/\|^#include "\.\./' client loader bpf common \
	$( [ -d nvmf ] && echo nvmf ) --include='*.[ch]' | sed 's/:#include /:/')

exit $bad
