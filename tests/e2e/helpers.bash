# SPDX-License-Identifier: BSD-3-Clause
#
# bats helpers for end-to-end tests that run a real leapd and drive it only
# through leapctl (and later leap-perf, fio, bpftool).
#
#   load helpers
#   teardown() { leapd_teardown; }
#   @test "..." { leapd_start "$cfg"; leapctl_t bdev list; leapd_stop; }
#
# leapd_start makes one temporary directory per test (mktemp -d) holding
# the RPC socket, the tenant socket and the log; leapd runs in the
# foreground as a background job whose PID is recorded, and only that PID
# is ever signalled. Every wait is a bounded loop.

E2E_ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
E2E_BUILD="${BUILD:-$E2E_ROOT/build}"
LEAPD="$E2E_BUILD/bin/leapd"
LEAPCTL="$E2E_BUILD/bin/leapctl"

LEAPD_PID=""
LEAPD_DIR=""

# leapd_dir: create (once per test) the temporary directory for sockets and logs.
leapd_dir() {
	if [ -z "$LEAPD_DIR" ]; then
		LEAPD_DIR="$(mktemp -d /tmp/leapd-e2e.XXXXXX)"
		LEAPD_RPC="$LEAPD_DIR/rpc.sock"
		LEAPD_TENANT="$LEAPD_DIR/tenant.sock"
		LEAPD_LOG="$LEAPD_DIR/leapd.log"
	fi
}

# leapctl_t ARGS...: leapctl talking to this test's leapd.
leapctl_t() {
	"$LEAPCTL" -r "$LEAPD_RPC" -t 10 "$@"
}

leapd_show_log() {
	if [ -n "$LEAPD_LOG" ] && [ -f "$LEAPD_LOG" ]; then
		echo "---- leapd log ($LEAPD_LOG) ----"
		tail -n 80 "$LEAPD_LOG"
		echo "---- end of leapd log ----"
	fi
}

# leapd_start [CONFIG] [EXTRA LEAPD ARGS...]: start leapd and wait until it answers.
leapd_start() {
	local cfg="${1:-}" i
	[ $# -gt 0 ] && shift
	leapd_dir
	if [ -n "$LEAPD_PID" ]; then
		echo "leapd_start: leapd $LEAPD_PID is already running" >&2
		return 1
	fi
	"$LEAPD" --foreground -r "$LEAPD_RPC" -s "$LEAPD_TENANT" -L debug -l "$LEAPD_LOG" \
		${cfg:+-c "$cfg"} "$@" </dev/null >>"$LEAPD_LOG.out" 2>&1 &
	LEAPD_PID=$!
	for i in $(seq 1 100); do
		if ! kill -0 "$LEAPD_PID" 2>/dev/null; then
			wait "$LEAPD_PID"
			echo "leapd_start: leapd exited early with status $?" >&2
			LEAPD_PID=""
			leapd_show_log >&2
			return 1
		fi
		if leapctl_t info >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "leapd_start: leapd $LEAPD_PID did not answer on $LEAPD_RPC within 10 s" >&2
	leapd_show_log >&2
	return 1
}

# leapd_term_exit SECONDS: SIGTERM leapd and wait up to SECONDS for it to
# exit, whatever its status (stored in LEAPD_EXIT). Fails, leaving leapd to
# the teardown, if it is still running then.
leapd_term_exit() {
	local i
	kill -TERM "$LEAPD_PID"
	for ((i = 0; i < $1 * 10; i++)); do
		kill -0 "$LEAPD_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$LEAPD_PID" 2>/dev/null; then
		echo "leapd $LEAPD_PID still running $1 s after SIGTERM" >&2
		return 1
	fi
	LEAPD_EXIT=0
	wait "$LEAPD_PID" || LEAPD_EXIT=$?
	LEAPD_PID=""
}

# leapd_stop: SIGTERM the recorded PID, wait (bounded) and require exit status 0.
leapd_stop() {
	local i status
	if [ -z "$LEAPD_PID" ]; then
		echo "leapd_stop: no leapd started by this test" >&2
		return 1
	fi
	kill -TERM "$LEAPD_PID"
	for i in $(seq 1 100); do
		kill -0 "$LEAPD_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$LEAPD_PID" 2>/dev/null; then
		echo "leapd_stop: leapd $LEAPD_PID still running 10 s after SIGTERM" >&2
		leapd_show_log >&2
		return 1
	fi
	wait "$LEAPD_PID"
	status=$?
	LEAPD_PID=""
	if [ "$status" -ne 0 ]; then
		echo "leapd_stop: leapd exited with status $status, want 0" >&2
		leapd_show_log >&2
		return 1
	fi
	return 0
}

# leapd_teardown: call from teardown(). Shows the log when the test failed and
# kills only the leapd this test started.
leapd_teardown() {
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		leapd_show_log
		[ -f "$LEAPD_LOG.out" ] && { echo "---- leapd stdout/stderr ----"; tail -n 40 "$LEAPD_LOG.out"; }
	fi
	if [ -n "$LEAPD_PID" ]; then
		kill -KILL "$LEAPD_PID" 2>/dev/null || true
		wait "$LEAPD_PID" 2>/dev/null || true
		LEAPD_PID=""
	fi
	if [ -n "$LEAPD_DIR" ]; then
		rm -rf "$LEAPD_DIR"
		LEAPD_DIR=""
	fi
}

# json_eq A B: the two JSON texts are equal up to key order.
json_eq() {
	[ "$(jq -S . <<<"$1")" = "$(jq -S . <<<"$2")" ]
}

# Policies pin their maps under /sys/fs/bpf/leapio/NAME, which outlives leapd:
# each test names its policies with pname (unique to this test in this run;
# it is called in $(...), so the name itself is the record) and calls
# policy_pins_cleanup from teardown().
pname() {
	echo "${1}_${BATS_TEST_NUMBER}_$$"
}
policy_pins_cleanup() {
	rm -rf /sys/fs/bpf/leapio/*_"${BATS_TEST_NUMBER}_$$"
}
