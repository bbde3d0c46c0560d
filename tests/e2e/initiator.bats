#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# The nvme-tcp backend end to end: a tenant of one leapd (the initiator)
# whose namespace lives in a second leapd (the target, NVMe/TCP listener on
# 127.0.0.1, uring file backend), or in nvmf_badtarget. Creation answers
# with the reason; leap-perf --verify and fio verify=crc32c pass through
# both and the target's file holds the bytes; the target killed mid-verify
# and restarted within ctrl-loss-timeout costs no I/O; kept down past it,
# I/O fails with the path status while another tenant runs on, and the
# backend comes back with the target; misbehaving targets cost a reset and
# nothing else. Every process is started here and stopped by its PID.

load helpers

TOOLS="$E2E_BUILD/tests/tools"
PERF="$E2E_BUILD/bin/leap-perf"
FIO="$E2E_BUILD/fio/fio"
ENGINE="$E2E_BUILD/lib/leapio_fio.so"
RNQN=nqn.2024-01.io.leapio:remote

setup() {
	leapd_dir
	TGT_PID=""
	BT_PID=""
	TGT_DIR="$LEAPD_DIR/tgt"
	mkdir -p "$TGT_DIR"
}

teardown() {
	local p
	for p in "$TGT_PID" "$BT_PID"; do
		[ -n "$p" ] || continue
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -f "$TGT_DIR/leapd.log" ]; then
		echo "---- target log ----"
		tail -n 40 "$TGT_DIR/leapd.log"
	fi
	leapd_teardown
}

tgtctl() {
	"$LEAPCTL" -r "$TGT_DIR/rpc.sock" -t 10 "$@"
}

# free_port: a TCP port nobody listens on now, below the ephemeral range (an
# outgoing connection's local port cannot be bound either).
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}

# tgt_config: the target's startup config (a 64 MiB file; c0 for the
# initiator, c1 sharing the same blocks for checks on the target side).
tgt_config() {
	TGT_PORT=$(free_port)
	cat >"$TGT_DIR/tgt.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "d0", "type": "uring",
	   "path": "$TGT_DIR/disk.img", "size": 67108864}},
	  {"method": "ctrl_create", "params": {"name": "c0", "nqn": "$RNQN"}},
	  {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "d0", "shared": true}},
	  {"method": "subsys_allow_any_host", "params": {"ctrl": "c0", "allow": true}},
	  {"method": "ctrl_create", "params": {"name": "c1"}},
	  {"method": "ns_add", "params": {"ctrl": "c1", "bdev": "d0", "shared": true}},
	  {"method": "listener_add", "params": {"type": "tcp", "addr": "127.0.0.1", "port": $TGT_PORT,
	   "handshake_timeout_ms": 1000}}
	]
	EOF
}

# tgt_start: the target leapd from tgt.json, answering and listening.
tgt_start() {
	local i
	"$LEAPD" --foreground -c "$TGT_DIR/tgt.json" -r "$TGT_DIR/rpc.sock" -s "$TGT_DIR/t.sock" \
		-L info -l "$TGT_DIR/leapd.log" </dev/null >>"$TGT_DIR/leapd.out" 2>&1 &
	TGT_PID=$!
	for i in $(seq 1 100); do
		kill -0 "$TGT_PID" 2>/dev/null || { cat "$TGT_DIR/leapd.out" >&2; return 1; }
		tgtctl info >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# tgt_kill: SIGKILL, as a crash.
tgt_kill() {
	kill -KILL "$TGT_PID"
	wait "$TGT_PID" 2>/dev/null || true
	TGT_PID=""
}

# ini_attach [BDEV OPTIONS...]: r0 on the target, tenant controller t0 with it as nsid 1.
ini_attach() {
	leapctl_t bdev create r0 --type nvme-tcp --traddr 127.0.0.1 --trsvcid "$TGT_PORT" \
		--subnqn "$RNQN" --reconnect-delay 1 "$@"
	leapctl_t ctrl add t0
	leapctl_t ns add t0 r0
}

bdev_field() { # bdev_field NAME JQ-PATH
	leapctl_t --json bdev list "$1" | jq -r ".[0].$2"
}

# wait_state NAME STATE: bounded wait for the backend's state.
wait_state() {
	local i
	for i in $(seq 1 150); do
		[ "$(bdev_field "$1" state)" = "$2" ] && return 0
		sleep 0.1
	done
	echo "bdev $1 is $(bdev_field "$1" state), want $2" >&2
	return 1
}

perf() { # perf CTRL ARGS...: leap-perf on the initiator's tenant socket
	local c=$1
	shift
	timeout -k 5 120 "$PERF" -s "$LEAPD_TENANT" -c "$c" "$@"
}

@test "nvme-tcp create: answers when connected and identified, or says why; config round trip" {
	leapd_start
	tgt_config
	run leapctl_t bdev create r0 --type nvme-tcp --traddr 127.0.0.1 --trsvcid "$TGT_PORT" \
		--subnqn "$RNQN"
	[ "$status" -eq 1 ]
	[[ "$output" == *"connect to 127.0.0.1:$TGT_PORT: Connection refused"* ]]
	tgt_start
	run leapctl_t bdev create r0 --type nvme-tcp --traddr 127.0.0.1 --trsvcid "$TGT_PORT" \
		--subnqn nqn.2024-01.io.leapio:nobody
	[ "$status" -eq 1 ]
	[[ "$output" == *"the target has no subsystem 'nqn.2024-01.io.leapio:nobody'"* ]]
	tgtctl subsys allow-any-host c0 off
	tgtctl subsys host add c0 nqn.2024-01.io.leapio:someone-else
	run leapctl_t bdev create r0 --type nvme-tcp --traddr 127.0.0.1 --trsvcid "$TGT_PORT" \
		--subnqn "$RNQN" --hostnqn nqn.2024-01.io.leapio:me
	[ "$status" -eq 1 ]
	[[ "$output" == *"host NQN 'nqn.2024-01.io.leapio:me' is not allowed by the target"* ]]
	run leapctl_t bdev create r0 --type nvme-tcp --traddr not-an-address --subnqn "$RNQN"
	[ "$status" -eq 1 ]
	[[ "$output" == *"invalid params"* ]]
	tgtctl subsys host add c0 nqn.2024-01.io.leapio:me
	leapctl_t bdev create r0 --type nvme-tcp --traddr 127.0.0.1 --trsvcid "$TGT_PORT" \
		--subnqn "$RNQN" --hostnqn nqn.2024-01.io.leapio:me --queues 2 --queue-depth 64
	run leapctl_t bdev list
	[[ "$output" == *"r0"*"nvme-tcp"*"64.0M"*"live"* ]]
	[ "$(bdev_field r0 remote.lba_size)" -eq 512 ]
	[ "$(bdev_field r0 nsid)" -eq 1 ]
	[ "$(bdev_field r0 counters.connects)" -eq 1 ]
	# The saved config brings the same backend back, the same host identity included.
	leapctl_t ctrl add t0
	leapctl_t ns add t0 r0
	leapctl_t config save "$LEAPD_DIR/ini.json"
	jq -e '.[] | select(.method == "bdev_create") | .params |
		.type == "nvme-tcp" and .hostnqn == "nqn.2024-01.io.leapio:me" and .queues == 2' \
		"$LEAPD_DIR/ini.json"
	hostid=$(bdev_field r0 hostid)
	leapd_stop
	leapd_start "$LEAPD_DIR/ini.json"
	[ "$(bdev_field r0 state)" = live ]
	[ "$(bdev_field r0 hostid)" = "$hostid" ]
	perf t0 -q 8 -w randrw --verify -t 1
	leapd_stop
}

@test "leap-perf --verify and fio verify=crc32c through leapd to a leapd target; the target holds the bytes" {
	[ -x "$FIO" ] && [ -f "$ENGINE" ] || skip "fio 3.33 and the leapio engine are not built"
	tgt_config
	tgt_start
	leapd_start
	ini_attach
	# The I/O queue connected at ns add, before any tenant polls it: the
	# target's 1 s handshake timeout must not catch it.
	sleep 1.5
	run perf t0 -q 32 -w randrw --verify -t 3
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"errors 0   verify mismatches 0"* ]]
	run timeout -k 10 120 "$FIO" --ioengine="external:$ENGINE" --socket="$LEAPD_TENANT" \
		--verify_state_save=0 --output-format=json --thread=1 --name=v --ctrl=t0 \
		--rw=randwrite --bs=16k --size=16M --iodepth=16 --verify=crc32c
	[ "$status" -eq 0 ]
	[ "$(jq -r '.jobs[0].error' <<<"$output")" -eq 0 ]
	[ "$(jq -r '.jobs[0].read.total_ios' <<<"$output")" -eq 1024 ]
	# Blocks written through the initiator read back on the target itself (c1, same file).
	"$TOOLS/blkio" "$LEAPD_TENANT" t0 1 write 40000 256 37
	"$TOOLS/blkio" "$TGT_DIR/t.sock" c1 1 check 40000:256:37
	"$TOOLS/blkio" "$TGT_DIR/t.sock" c1 1 write 50000 64 38
	"$TOOLS/blkio" "$LEAPD_TENANT" t0 1 check 50000:64:38
	[ "$(bdev_field r0 counters.path_failed)" -eq 0 ]
	[ "$(bdev_field r0 counters.losses)" -eq 0 ]
	leapd_stop
}

@test "target killed mid-verify and restarted within ctrl-loss-timeout: 0 failed I/O, 0 mismatches" {
	tgt_config
	tgt_start
	leapd_start
	ini_attach --ctrl-loss-timeout 30
	perf t0 -q 32 -w randrw --verify -t 9 >"$LEAPD_DIR/perf.out" 2>&1 &
	perf_pid=$!
	sleep 2
	tgt_kill
	sleep 1
	[ "$(bdev_field r0 state)" = reconnecting ]
	tgt_start
	wait "$perf_pid"
	cat "$LEAPD_DIR/perf.out"
	grep -q "errors 0   verify mismatches 0" "$LEAPD_DIR/perf.out"
	[ "$(bdev_field r0 state)" = live ]
	[ "$(bdev_field r0 counters.losses)" -ge 1 ]
	[ "$(bdev_field r0 counters.retried)" -ge 1 ]
	[ "$(bdev_field r0 counters.path_failed)" -eq 0 ]
	# And once more under fio's crc32c verify, if fio is here.
	if [ -x "$FIO" ] && [ -f "$ENGINE" ]; then
		timeout -k 10 120 "$FIO" --ioengine="external:$ENGINE" --socket="$LEAPD_TENANT" \
			--verify_state_save=0 --output-format=json --output="$LEAPD_DIR/fio.json" \
			--thread=1 --name=v --ctrl=t0 --rw=randwrite --bs=4k --size=32M --iodepth=16 \
			--verify=crc32c --verify_backlog=256 --runtime=6 --time_based=1 &
		fio_pid=$!
		sleep 2
		tgt_kill
		sleep 1
		tgt_start
		wait "$fio_pid"
		[ "$(jq -r '.jobs[0].error' "$LEAPD_DIR/fio.json")" -eq 0 ]
		[ "$(bdev_field r0 counters.losses)" -ge 2 ]
		[ "$(bdev_field r0 counters.path_failed)" -eq 0 ]
	fi
	leapd_stop
}

@test "target down past ctrl-loss-timeout: path status, other tenants unaffected, back when it returns" {
	tgt_config
	tgt_start
	leapd_start
	ini_attach --ctrl-loss-timeout 2
	leapctl_t bdev create m0 --type mem --size 32M
	leapctl_t ctrl add t1
	leapctl_t ns add t1 m0
	perf t0 -q 8 -w randrw --verify -t 1
	tgt_kill
	# The other tenant runs on while t0's I/O is held, then failed.
	perf t1 -q 32 -w randrw --verify -t 4 >"$LEAPD_DIR/t1.out" 2>&1 &
	t1_pid=$!
	run perf t0 -q 8 -w randread -t 4
	[ "$status" -eq 1 ]
	[[ "$output" == *"first status sct 3 sc 0x70"* ]]
	wait "$t1_pid"
	grep -q "errors 0   verify mismatches 0" "$LEAPD_DIR/t1.out"
	[ "$(bdev_field r0 state)" = failed ]
	[ "$(bdev_field r0 counters.path_failed)" -ge 1 ]
	run "$TOOLS/blkio" "$LEAPD_TENANT" t0 1 status 02 0 8
	[[ "$output" == *"status sct=3 sc=0x70"* ]]
	# leapd itself answers as before.
	leapctl_t ctrl list >/dev/null
	tgt_start
	wait_state r0 live
	perf t0 -q 16 -w randrw --verify -t 2
	leapd_stop
}

# bad_target FAULT [BDEV OPTIONS...]: nvmf_badtarget doing FAULT once, mid-run.
bad_target() {
	local fault=$1 i
	shift
	# Another test on this machine may take the port first: then try another.
	for _ in $(seq 1 10); do
		BT_PORT=$(free_port)
		"$TOOLS/nvmf_badtarget" --port "$BT_PORT" --size 64 --fault "$fault" --after 300 \
			--count 1 >"$LEAPD_DIR/bt.out" 2>&1 &
		BT_PID=$!
		for i in $(seq 1 50); do
			grep -q listening "$LEAPD_DIR/bt.out" && break
			kill -0 "$BT_PID" 2>/dev/null || break
			sleep 0.1
		done
		grep -q listening "$LEAPD_DIR/bt.out" && break
		wait "$BT_PID" || true
		BT_PID=""
	done
	[ -n "$BT_PID" ]
	leapctl_t bdev create "b_$fault" --type nvme-tcp --traddr 127.0.0.1 --trsvcid "$BT_PORT" \
		--subnqn nqn.2024-01.io.leap:badtarget --reconnect-delay 1 \
		--param stall_timeout_ms=1000 "$@"
	leapctl_t ctrl add "c_$fault"
	leapctl_t ns add "c_$fault" "b_$fault"
}

bad_target_done() {
	local fault=$1
	leapctl_t ctrl delete "c_$fault"
	leapctl_t bdev delete "b_$fault"
	kill -TERM "$BT_PID"
	for _ in $(seq 1 50); do
		kill -0 "$BT_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$BT_PID" 2>/dev/null || true
	wait "$BT_PID" || true
	BT_PID=""
}

@test "misbehaving targets: each fault resets and reconnects the queue, the I/O is retried, 0 errors" {
	leapd_start
	for f in garbage wrong-cid c2h-overflow r2t-unknown ddgst hdgst drop silent term; do
		extra=()
		size=4096
		case $f in
		ddgst) extra=(--data-digest) ;;
		hdgst) extra=(--hdr-digest) ;;
		r2t-unknown) size=65536 ;; # past the in-capsule limit: written by R2T
		esac
		bad_target "$f" "${extra[@]}"
		run perf "c_$f" -q 16 -o "$size" -w randrw --verify -t 3
		echo "$f: $output"
		[ "$status" -eq 0 ]
		[[ "$output" == *"errors 0   verify mismatches 0"* ]]
		leapctl_t --json bdev list "b_$f" | jq -c '.[0] | {state, reason, counters}'
		[ "$(bdev_field "b_$f" counters.losses)" -ge 1 ]
		[ "$(bdev_field "b_$f" counters.path_failed)" -eq 0 ]
		wait_state "b_$f" live
		bad_target_done "$f"
	done
	leapd_stop
}

@test "SIGTERM with the target gone: held I/O fails with the path status at once, leapd exits" {
	tgt_config
	tgt_start
	leapd_start
	# Far past any wait a test makes: only leapd's shutdown can end the hold.
	ini_attach --ctrl-loss-timeout 3600
	perf t0 -q 8 -w randwrite -t 1
	tgt_kill
	wait_state r0 reconnecting
	# A tenant read held by the backend while the path is down.
	"$TOOLS/blkio" "$LEAPD_TENANT" t0 1 status 02 0 8 >"$LEAPD_DIR/held.out" 2>&1 &
	held=$!
	sleep 1
	kill -0 "$held"
	leapd_term_exit 30
	grep -q "r0: leapd is stopping and 127.0.0.1:$TGT_PORT is unreachable" "$LEAPD_LOG"
	# The held read was answered with the path status, not left to the socket's end.
	wait "$held" || true
	cat "$LEAPD_DIR/held.out"
	grep -q "status sct=3 sc=0x70" "$LEAPD_DIR/held.out"
}
