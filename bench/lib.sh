# SPDX-License-Identifier: BSD-3-Clause
#
# Sourced by the benchmark scripts: one way to start and stop a leapd of
# their own. Needs BIN (the build's bin/) and DIR (the script's temporary
# directory, which holds the sockets rpc.sock and t.sock and leapd.log).
# Only the PID started here is ever signalled. With TAG set, stopping also
# removes the pinned policy state named *_$TAG.

ctl() { "$BIN/leapctl" -r "$DIR/rpc.sock" -t 30 "$@"; }

# start_leapd CONFIG [LEAPD ARGS...] (e.g. -m 0): start and wait until it answers.
start_leapd() {
	local cfg=$1
	shift
	"$BIN/leapd" --foreground -c "$cfg" -r "$DIR/rpc.sock" -s "$DIR/t.sock" \
		-l "$DIR/leapd.log" "$@" </dev/null >/dev/null 2>&1 &
	LEAPD_PID=$!
	for _ in $(seq 1 100); do
		ctl info >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "leapd did not start" >&2
	return 1
}

# stop_leapd: SIGTERM (leapd drains and flushes) and wait.
stop_leapd() {
	kill -TERM "$LEAPD_PID"
	wait "$LEAPD_PID" || true
	LEAPD_PID=""
	if [ -n "${TAG:-}" ]; then
		rm -rf /sys/fs/bpf/leapio/*_"$TAG"
	fi
}
