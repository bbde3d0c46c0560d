#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# The host side of NVMe/TCP end to end: leap-perf -r and the fio engine
# (filename= a transport ID) against leapd's NVMe/TCP target on 127.0.0.1.
# Verified I/O whose counts must match leapd's own statistics exactly, with
# and without digests, several controllers from one leap-perf thread, --irq;
# fio verify=crc32c; a host NQN the allow-list refuses; bad transport ID
# strings and unreachable targets give one clear line; a target that dies
# mid-run ends both tools with the reason instead of a hang. Listeners use
# random ports.

load helpers

FIO="$E2E_BUILD/fio/fio"
ENGINE="$E2E_BUILD/lib/leapio_fio.so"
PERF="$E2E_BUILD/bin/leap-perf"
NQN0=nqn.2024-01.io.leapio:c0
NQN1=nqn.2024-01.io.leapio:c1
HOST1=nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555
HOST2=nqn.2014-08.org.nvmexpress:uuid:66666666-7777-8888-9999-000000000000

setup() {
	leapd_dir
	BG_PIDS=()
}

teardown() {
	# Only the processes this test started, by PID.
	local p
	for p in "${BG_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	leapd_teardown
}

# start_target: leapd with c0 (32 MiB mem, HOST1 only) and c1 (16 MiB mem, 4 KiB LBAs, any
# host), a tcp listener on a random free port (TCP_PORT). Skips if this leapd has no tcp
# front-end.
start_target() {
	local out i
	cat >"$LEAPD_DIR/tcp.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 33554432}},
	  {"method": "bdev_create", "params": {"name": "m1", "type": "mem", "size": 16777216}},
	  {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 4}},
	  {"method": "ctrl_create", "params": {"name": "c1", "max_qpairs": 4}},
	  {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "m0"}},
	  {"method": "ns_add", "params": {"ctrl": "c1", "bdev": "m1", "lba_size": 4096}},
	  {"method": "subsys_host_add", "params": {"ctrl": "c0", "host": "$HOST1"}},
	  {"method": "subsys_allow_any_host", "params": {"ctrl": "c1", "allow": true}}
	]
	EOF
	leapd_start "$LEAPD_DIR/tcp.json"
	for i in $(seq 1 20); do
		TCP_PORT=$((20000 + RANDOM % 40000))
		if out=$(leapctl_t --json rpc listener_add \
			"{\"type\": \"tcp\", \"addr\": \"127.0.0.1\", \"port\": $TCP_PORT}" 2>&1); then
			return 0
		fi
		if [[ "$out" == *"unknown"*"type"* || "$out" == *"tcp"*"not"*"registered"* ]]; then
			skip "this leapd has no NVMe/TCP front-end: $out"
		fi
		[[ "$out" == *"Address already in use"* ]] || { echo "$out" >&2; return 1; }
	done
	return 1
}

# trid SUBNQN [MORE]: leap-perf's transport ID for this test's target.
trid() {
	echo "trtype:tcp adrfam:ipv4 traddr:127.0.0.1 trsvcid:$TCP_PORT subnqn:$1${2:+ $2}"
}

# fio_trid SUBNQN [MORE]: the same for fio's filename= ('=' pairs, ':' in values escaped).
fio_trid() {
	echo "trtype=tcp adrfam=ipv4 traddr=127.0.0.1 trsvcid=$TCP_PORT subnqn=${1//:/\\:}${2:+ $2}"
}

perf() {
	timeout -k 5 60 "$PERF" "$@"
}

fio_t() {
	timeout -k 10 120 "$FIO" --ioengine="external:$ENGINE" --thread=1 --verify_state_save=0 "$@"
}

# ns_stat CTRL FIELD: a namespace counter from leapd's statistics.
ns_stat() {
	leapctl_t --json stats --ctrl "$1" --ns 1 | jq -r ".controllers[0].namespaces[0].$2"
}

@test "leap-perf -r: verified randrw over NVMe/TCP; leapd counts exactly the I/O leap-perf reports" {
	start_target
	run perf -r "$(trid "$NQN0" "hostnqn:$HOST1")" -P 2 -q 16 -w randrw -t 2 --verify --json
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .transport <<<"$output")" = tcp ]
	[ "$(jq -r .errors <<<"$output")" -eq 0 ]
	[ "$(jq -r .verify_mismatches <<<"$output")" -eq 0 ]
	[ "$(jq -r .qpairs <<<"$output")" -eq 2 ]
	reads=$(jq -r .reads <<<"$output")
	writes=$(jq -r .writes <<<"$output")
	[ "$reads" -gt 0 ]
	[ "$writes" -gt 0 ]
	# Batched: far fewer syscalls than I/Os.
	[ "$(jq -r '(.tcp.recv_calls + .tcp.send_calls) < .ios' <<<"$output")" = true ]
	# The fill pass wrote the 32 MiB namespace once (8192 x 4 KiB) before the timed run.
	[ "$(ns_stat c0 reads)" -eq "$reads" ]
	[ "$(ns_stat c0 writes)" -eq $((writes + 8192)) ]
	[ "$(ns_stat c0 error_count)" -eq 0 ]
	grep -q "c0: host $HOST1 connected from 127.0.0.1:.*KATO 10000 ms" "$LEAPD_LOG"
}

@test "leap-perf -r: digests, two controllers (512 B and 4 KiB LBAs) from one thread, --irq, 16 KiB" {
	start_target
	run perf -r "$(trid "$NQN0" "hostnqn:$HOST1 hdgst:1 ddgst:1")" -r "$(trid "$NQN1")" \
		-q 8 -o 16k -w randrw -t 2 --verify --irq --json
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .controllers <<<"$output")" -eq 2 ]
	[ "$(jq -r .errors <<<"$output")" -eq 0 ]
	[ "$(jq -r .verify_mismatches <<<"$output")" -eq 0 ]
	[ "$(jq -r .ios <<<"$output")" -gt 0 ]
	[ "$(jq -r .sleeps <<<"$output")" -gt 0 ]
	[ "$(jq -r .tcp.hdgst <<<"$output")" = true ]
	grep -q "c0: host $HOST1 connected from 127.0.0.1:.*header digest, data digest" "$LEAPD_LOG"
	# Both controllers did I/O: fill pass (32 MiB and 16 MiB in 16 KiB) plus the run.
	total=$(($(ns_stat c0 reads) + $(ns_stat c0 writes) + $(ns_stat c1 reads) + $(ns_stat c1 writes)))
	[ "$total" -eq $(($(jq -r .ios <<<"$output") + 2048 + 1024)) ]
	[ "$(ns_stat c1 reads)" -gt 0 ]
}

@test "fio verify=crc32c through the engine over NVMe/TCP, with digests; counts match leapd" {
	[ -x "$FIO" ] || skip "fio 3.33 is not built in $E2E_BUILD/fio (make deps)"
	start_target
	rm -f "$LEAPD_DIR/out.json"
	run fio_t --output-format=json --output="$LEAPD_DIR/out.json" --name=v \
		--filename="$(fio_trid "$NQN0" "hostnqn=${HOST1//:/\\:} hdgst=1 ddgst=1")" \
		--rw=randwrite --bs=4k --size=8M --iodepth=16 --iodepth_batch=8 --verify=crc32c
	cat "$LEAPD_DIR/out.json" || true
	[ "$status" -eq 0 ]
	[ "$(jq -r '.jobs[0].error' "$LEAPD_DIR/out.json")" -eq 0 ]
	[ "$(jq -r '.jobs[0].write.total_ios' "$LEAPD_DIR/out.json")" -eq 2048 ]
	[ "$(jq -r '.jobs[0].read.total_ios' "$LEAPD_DIR/out.json")" -eq 2048 ]
	# setup() connected once without I/O; the job's own association did all of it.
	[ "$(ns_stat c0 writes)" -eq 2048 ]
	[ "$(ns_stat c0 reads)" -eq 2048 ]
	[ "$(grep -c "c0: host $HOST1 connected" "$LEAPD_LOG")" -eq 2 ]
}

@test "fio over NVMe/TCP: two jobs on two controllers at once, ns= in the filename, busy_poll=0, trim and fsync" {
	[ -x "$FIO" ] || skip "fio 3.33 is not built in $E2E_BUILD/fio (make deps)"
	start_target
	rm -f "$LEAPD_DIR/out.json"
	run fio_t --output-format=json --output="$LEAPD_DIR/out.json" \
		--name=a --filename="$(fio_trid "$NQN0" "hostnqn=${HOST1//:/\\:} ns=1")" \
		--rw=randrw --bs=8k --size=8M --iodepth=8 --verify=crc32c --fsync=16 \
		--name=b --filename="$(fio_trid "$NQN1")" --busy_poll=0 \
		--rw=randwrite --bs=16k --size=4M --iodepth=4 --verify=crc32c
	cat "$LEAPD_DIR/out.json" || true
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.jobs[].error] | add' "$LEAPD_DIR/out.json")" -eq 0 ]
	[ "$(jq -r '.jobs[1].write.total_ios' "$LEAPD_DIR/out.json")" -eq 256 ]
	[ "$(ns_stat c1 writes)" -eq 256 ]
	[ "$(ns_stat c0 error_count)" -eq 0 ]

	# Trim deallocates: a 1 MiB written range, its first half trimmed, reads back
	# zeroes there and the pattern after (leapd's mem backend zeroes on deallocate).
	run fio_t --name=w --filename="$(fio_trid "$NQN1")" --rw=write --bs=64k --size=1M \
		--verify=pattern --verify_pattern=0x5a
	[ "$status" -eq 0 ]
	# The check for zeroes can fail: before the trim it does.
	run fio_t --name=z --filename="$(fio_trid "$NQN1")" --rw=write --bs=64k --size=512k \
		--verify=pattern --verify_pattern=0x00 --verify_only=1
	[ "$status" -ne 0 ]
	run fio_t --name=t --filename="$(fio_trid "$NQN1")" --rw=trim --bs=64k --size=512k
	[ "$status" -eq 0 ]
	run fio_t --name=z --filename="$(fio_trid "$NQN1")" --rw=write --bs=64k --size=512k \
		--verify=pattern --verify_pattern=0x00 --verify_only=1
	[ "$status" -eq 0 ]
	run fio_t --name=k --filename="$(fio_trid "$NQN1")" --rw=write --bs=64k --offset=512k \
		--size=512k --verify=pattern --verify_pattern=0x5a --verify_only=1
	[ "$status" -eq 0 ]
}

@test "over IPv6 (::1): leap-perf traddr:::1, fio traddr=\\:\\:1" {
	start_target
	for i in $(seq 1 20); do
		port6=$((20000 + RANDOM % 40000))
		leapctl_t rpc listener_add "{\"type\": \"tcp\", \"addr\": \"::1\", \"port\": $port6}" && break
	done
	run perf -r "trtype:tcp adrfam:ipv6 traddr:::1 trsvcid:$port6 subnqn:$NQN1" -q 8 -w randrw \
		-t 1 --verify --json
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .errors <<<"$output")" -eq 0 ]
	[ "$(jq -r .verify_mismatches <<<"$output")" -eq 0 ]
	grep -q "c1: host .* connected from \[::1\]:" "$LEAPD_LOG"
	[ -x "$FIO" ] || skip "fio 3.33 is not built in $E2E_BUILD/fio (make deps)"
	run fio_t --name=v --rw=randwrite --bs=4k --size=2M --verify=crc32c \
		--filename="trtype=tcp adrfam=ipv6 traddr=\:\:1 trsvcid=$port6 subnqn=${NQN1//:/\\:}"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "bad transport IDs, unreachable targets and refused hosts: one clear line each" {
	start_target
	# Parse errors are usage errors (exit 2) naming the key, before anything connects.
	run perf -r "trtype:rdma traddr:127.0.0.1 subnqn:$NQN1" -t 1
	[ "$status" -eq 2 ]
	[[ "$output" == *"trtype 'rdma': only tcp is supported"* ]]
	run perf -r "traddr:localhost trsvcid:$TCP_PORT subnqn:$NQN1" -t 1
	[ "$status" -eq 2 ]
	[[ "$output" == *"traddr 'localhost' is not a numeric IPv4 address"* ]]
	run perf -r "traddr:127.0.0.1 trsvcid:99999 subnqn:$NQN1" -t 1
	[ "$status" -eq 2 ]
	[[ "$output" == *"trsvcid '99999': want a TCP port 1-65535"* ]]
	run perf -r "traddr:127.0.0.1 trsvcid:$TCP_PORT subnqn:$NQN1 hdgst:yesplease" -t 1
	[ "$status" -eq 2 ]
	[[ "$output" == *"hdgst 'yesplease': want 0 or 1"* ]]
	run perf -r "traddr:127.0.0.1 trsvcid:$TCP_PORT subnqn:$NQN1 nsid:1" -t 1
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown key 'nsid' (known: trtype adrfam traddr trsvcid subnqn hostnqn hostid hdgst ddgst)"* ]]
	run perf -r "trtype:tcp subnqn:$NQN1" -t 1
	[ "$status" -eq 2 ]
	[[ "$output" == *"traddr is required"* ]]
	run perf -r "traddr:127.0.0.1 trsvcid:$TCP_PORT" -t 1
	[ "$status" -eq 2 ]
	[[ "$output" == *"subnqn is required"* ]]
	run perf -r "traddr:127.0.0.1 subnqn" -t 1
	[ "$status" -eq 2 ]
	[[ "$output" == *"'subnqn' is not key:value"* ]]
	run perf -s "$LEAPD_TENANT" -r "$(trid "$NQN1")" -t 1
	[ "$status" -eq 2 ]
	[[ "$output" == *"-s/-c (shared memory) and -r (NVMe/TCP) do not mix"* ]]

	# Reaching the target fails with the reason, exit 1, one line.
	run perf -r "traddr:127.0.0.1 trsvcid:1 subnqn:$NQN1" -t 1
	[ "$status" -eq 1 ]
	[ "$output" = "leap-perf: 127.0.0.1:1 $NQN1: admin queue: connect to 127.0.0.1:1: Connection refused" ]
	run perf -r "$(trid nqn.2024-01.io.leapio:nope)" -t 1
	[ "$status" -eq 1 ]
	[[ "$output" == *"Fabrics Connect (qid 0) failed: status 0x182"* ]]
	# c0 allows HOST1 only.
	run perf -r "$(trid "$NQN0" "hostnqn:$HOST2")" -t 1
	[ "$status" -eq 1 ]
	[[ "$output" == *"status 0x184 (invalid host)"* ]]
	run perf -r "$(trid "$NQN1")" -n 2 -t 1
	[ "$status" -eq 1 ]
	[[ "$output" == *"namespace 2: not found"* ]]
	run perf -r "$(trid "$NQN1")" -o 512 -t 1
	[ "$status" -eq 1 ]
	[[ "$output" == *"I/O size is not a multiple of the LBA size"* ]]
	run perf -r "$(trid "$NQN1")" -P 8 -t 1
	[ "$status" -eq 1 ]
	[[ "$output" == *"8 queue pairs requested, the controller allows 4"* ]]

	[ -x "$FIO" ] || skip "fio 3.33 is not built in $E2E_BUILD/fio (make deps)"
	# fio: ':' between key and value splits the filename into several files.
	run fio_t --name=j --filename="trtype:tcp traddr:127.0.0.1 trsvcid:$TCP_PORT" --rw=read --size=1M
	[ "$status" -ne 0 ]
	[[ "$output" == *"leapio: j: filename 'trtype:tcp traddr:127.0.0.1 trsvcid:$TCP_PORT' names several files"*"written '\\:'"* ]]
	run fio_t --name=j --filename="$(fio_trid "$NQN1" "bogus=1")" --rw=read --size=1M
	[ "$status" -ne 0 ]
	[[ "$output" == *"leapio: j: transport ID '"*"': unknown key 'bogus'"* ]]
	run fio_t --name=j --filename="trtype=tcp traddr=127.0.0.1 trsvcid=1 subnqn=x" --rw=read --size=1M
	[ "$status" -ne 0 ]
	[[ "$output" == *"leapio: j: connecting to 127.0.0.1:1 x failed: admin queue: connect to 127.0.0.1:1: Connection refused"* ]]
	run fio_t --name=j --filename="$(fio_trid "$NQN0" "hostnqn=${HOST2//:/\\:}")" --rw=read --size=1M
	[ "$status" -ne 0 ]
	[[ "$output" == *"leapio: j: connecting to 127.0.0.1:$TCP_PORT $NQN0 failed:"*"(invalid host)"* ]]
	run fio_t --name=j --filename="$(fio_trid "$NQN1")" --ctrl=c1 --rw=read --size=1M
	[ "$status" -ne 0 ]
	[[ "$output" == *"give either ctrl="*"not both"* ]]
	run fio_t --name=j --filename="$(fio_trid "$NQN1" "ns=3")" --rw=read --size=1M
	[ "$status" -ne 0 ]
	[[ "$output" == *"leapio: j: 127.0.0.1:$TCP_PORT $NQN1 has no namespace 3"* ]]
	run fio_t --name=j --filename="$(fio_trid "$NQN1")" --rw=read --bs=512 --size=1M
	[ "$status" -ne 0 ]
	[[ "$output" == *"block sizes must be multiples of namespace 1's LBA size (4096 bytes)"* ]]
	run fio_t --name=j --filename="$(fio_trid "$NQN1")" --rw=read --size=1M --iodepth=1000
	[ "$status" -ne 0 ]
	[[ "$output" == *"iodepth=1000 is deeper than 127.0.0.1:$TCP_PORT $NQN1 allows (255"* ]]
	run fio_t --name=j --thread=0 --filename="$(fio_trid "$NQN1")" --rw=read --size=1M
	[ "$status" -ne 0 ]
	[[ "$output" == *"needs thread=1"* ]]
	# leapd's target admits one host per controller: a second job at the same time is told.
	run fio_t --name=j --filename="$(fio_trid "$NQN1")" --rw=read --time_based --runtime=4 \
		--numjobs=2
	[ "$status" -ne 0 ]
	[[ "$output" == *"failed: admin queue: Fabrics Connect (qid 0) failed: status 0x181 (controller busy) (another host holds it: jobs that run together need a controller each)"* ]]
}

@test "the target dies mid-run: leap-perf and fio end with the reason, not a hang" {
	start_target
	perf -r "$(trid "$NQN0" "hostnqn:$HOST1")" -q 16 -w randrw -t 30 >"$LEAPD_DIR/perf.out" 2>&1 &
	BG_PIDS+=($!)
	perf_pid=$!
	if [ -x "$FIO" ]; then
		fio_t --name=f --filename="$(fio_trid "$NQN1")" --rw=randread --bs=4k --iodepth=16 \
			--time_based --runtime=30 >"$LEAPD_DIR/fio.out" 2>&1 &
		BG_PIDS+=($!)
		fio_pid=$!
	fi
	# Both associations up and running before the target goes.
	for i in $(seq 1 100); do
		[ "$(grep -c "connected from" "$LEAPD_LOG")" -ge 2 ] && [ "$(ns_stat c1 reads)" -gt 0 ] && break
		sleep 0.1
	done
	sleep 0.5
	kill -KILL "$LEAPD_PID"
	wait "$LEAPD_PID" || true
	LEAPD_PID=""
	rc=0
	wait "$perf_pid" || rc=$?
	cat "$LEAPD_DIR/perf.out"
	[ "$rc" -eq 1 ]
	grep -Eq "leap-perf: .*$NQN0: (I/O queue 1 failed: (receive from|send to) 127.0.0.1:$TCP_PORT: (Connection reset by peer|Broken pipe)|I/O queue 1 failed: connection closed by the target|controller failed)" "$LEAPD_DIR/perf.out"
	grep -q "I/O errors (first status sct 3 sc 0x71)" "$LEAPD_DIR/perf.out"
	if [ -n "${fio_pid:-}" ]; then
		rc=0
		wait "$fio_pid" || rc=$?
		cat "$LEAPD_DIR/fio.out"
		[ "$rc" -ne 0 ]
		grep -q "leapio: f: NVMe/TCP queue to 127.0.0.1:$TCP_PORT $NQN1 failed:" "$LEAPD_DIR/fio.out"
	fi
}
