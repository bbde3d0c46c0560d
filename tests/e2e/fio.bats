#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# fio through the leapio external ioengine (build/lib/leapio_fio.so) against
# a real leapd: crc32c-verified jobs on mem and uring namespaces whose I/O
# counts must match both fio's JSON and leapd's own statistics, several
# jobs (one queue pair each) on one controller, trim reading back zeroes,
# flushes, and the one-line errors for the ways a job can be set up wrong.

load helpers

FIO="$E2E_BUILD/fio/fio"
ENGINE="$E2E_BUILD/lib/leapio_fio.so"

setup() {
	[ -x "$FIO" ] || skip "fio 3.33 is not built in $E2E_BUILD/fio (make deps)"
	[ -f "$ENGINE" ] || skip "$ENGINE is not built (make)"
	leapd_dir
	FIO_PID=""
}

teardown() {
	# Only the fio this test started, by PID.
	if [ -n "$FIO_PID" ]; then
		kill -KILL "$FIO_PID" 2>/dev/null || true
		wait "$FIO_PID" 2>/dev/null || true
	fi
	leapd_teardown
}

# c0: mem namespace, 2 queue pairs; c1: uring file namespace, 4 queue pairs.
start_leapd() {
	cat >"$LEAPD_DIR/fio.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 33554432}},
	  {"method": "bdev_create",
	   "params": {"name": "u0", "type": "uring", "path": "$LEAPD_DIR/u0.img", "size": 33554432}},
	  {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 2}},
	  {"method": "ctrl_create", "params": {"name": "c1", "max_qpairs": 4}},
	  {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "m0"}},
	  {"method": "ns_add", "params": {"ctrl": "c1", "bdev": "u0"}}
	]
	EOF
	leapd_start "$LEAPD_DIR/fio.json"
}

# fio_t ARGS...: fio with the engine, aimed at this test's leapd (and no
# verify state files left in the working directory).
fio_t() {
	timeout -k 10 120 "$FIO" --ioengine="external:$ENGINE" --socket="$LEAPD_TENANT" \
		--verify_state_save=0 "$@"
}

# fio_json ARGS...: like fio_t, JSON report in $LEAPD_DIR/out.json.
fio_json() {
	rm -f "$LEAPD_DIR/out.json"
	fio_t --output-format=json --output="$LEAPD_DIR/out.json" "$@"
}

# jq over the last JSON report.
jr() {
	jq -r "$1" "$LEAPD_DIR/out.json"
}

# ns_stat CTRL FIELD: a namespace counter from leapd's statistics.
ns_stat() {
	leapctl_t --json stats --ctrl "$1" --ns 1 | jq -r ".controllers[0].namespaces[0].$2"
}

@test "fio verify=crc32c on a mem namespace: counts match fio and leapd" {
	start_leapd
	run fio_json --thread=1 --name=v --ctrl=c0 --rw=randwrite --bs=4k --size=8M \
		--iodepth=16 --iodepth_batch=8 --iodepth_batch_complete_min=4 --verify=crc32c
	[ "$status" -eq 0 ]
	[ "$(jr '.jobs | length')" -eq 1 ]
	[ "$(jr '.jobs[0].error')" -eq 0 ]
	[ "$(jr '.jobs[0].write.total_ios')" -eq 2048 ]
	[ "$(jr '.jobs[0].read.total_ios')" -eq 2048 ]
	[ "$(jr '.jobs[0].write.io_bytes')" -eq $((8 << 20)) ]
	# leapd saw exactly those commands: the engine adds none and loses none.
	[ "$(ns_stat c0 writes)" -eq 2048 ]
	[ "$(ns_stat c0 reads)" -eq 2048 ]
	[ "$(ns_stat c0 error_count)" -eq 0 ]
	leapd_stop
}

@test "fio verify=crc32c with fsync on a uring file namespace; the data is in the file" {
	start_leapd
	run fio_json --thread=1 --name=u --ctrl=c1 --rw=randwrite --bs=8k --size=8M \
		--iodepth=8 --fsync=16 --verify=crc32c
	[ "$status" -eq 0 ]
	[ "$(jr '.jobs[0].error')" -eq 0 ]
	[ "$(jr '.jobs[0].write.total_ios')" -eq 1024 ]
	[ "$(jr '.jobs[0].read.total_ios')" -eq 1024 ]
	# fio decides when to sync (at least every 16 writes); each one is an NVMe Flush.
	syncs=$(jr '.jobs[0].sync.total_ios')
	[ "$syncs" -ge 64 ]
	[ "$(ns_stat c1 writes)" -eq 1024 ]
	[ "$(ns_stat c1 flushes)" -eq "$syncs" ]
	# After a restart, fio's verify-only pass reads back what it wrote.
	leapd_stop
	leapd_start "$LEAPD_DIR/fio.json"
	run fio_json --thread=1 --name=u --ctrl=c1 --rw=randwrite --bs=8k --size=8M \
		--iodepth=8 --verify=crc32c --verify_only=1
	[ "$status" -eq 0 ]
	[ "$(jr '.jobs[0].error')" -eq 0 ]
	[ "$(jr '.jobs[0].read.total_ios')" -eq 1024 ]
	# verify_only counts the writes it skipped; leapd saw none.
	[ "$(ns_stat c1 reads)" -eq 1024 ]
	[ "$(ns_stat c1 writes)" -eq 0 ]
	leapd_stop
}

@test "numjobs=2: two threads, two queue pairs, one attach" {
	start_leapd
	run fio_json --thread=1 --name=n --ctrl=c1 --rw=randwrite --bs=4k --size=4M \
		--offset_increment=4M --numjobs=2 --iodepth=8 --iodepth_batch=4 --verify=crc32c
	[ "$status" -eq 0 ]
	[ "$(jr '.jobs | length')" -eq 2 ]
	[ "$(jr '[.jobs[].error] | add')" -eq 0 ]
	[ "$(jr '[.jobs[].write.total_ios] | add')" -eq 2048 ]
	[ "$(jr '[.jobs[].read.total_ios] | add')" -eq 2048 ]
	[ "$(jr '[.jobs[].write.total_ios] | min')" -eq 1024 ]
	[ "$(ns_stat c1 writes)" -eq 2048 ]
	leapd_stop
}

@test "LD_PRELOAD and ioengine=leapio; rate_iops with busy_poll=0 (sleeping on the eventfd)" {
	start_leapd
	rm -f "$LEAPD_DIR/out.json"
	run timeout -k 10 120 env LD_PRELOAD="$ENGINE" "$FIO" --ioengine=leapio --socket="$LEAPD_TENANT" \
		--verify_state_save=0 \
		--output-format=json --output="$LEAPD_DIR/out.json" --thread=1 --name=p --ctrl=c0 \
		--rw=randwrite --bs=4k --size=2M --iodepth=4 --verify=crc32c
	[ "$status" -eq 0 ]
	# (Without the preload fio knows no engine called leapio and fails.)
	[ "$(jr '.jobs[0].write.total_ios')" -eq 512 ]
	[ "$(jr '.jobs[0].read.total_ios')" -eq 512 ]
	run fio_json --thread=1 --name=r --ctrl=c0 --rw=randread --bs=4k --size=1M --iodepth=8 \
		--busy_poll=0 --rate_iops=4000 --iodepth_batch_complete_min=2
	[ "$status" -eq 0 ]
	[ "$(jr '.jobs[0].error')" -eq 0 ]
	[ "$(jr '.jobs[0].read.total_ios')" -eq 256 ]
	[ "$(ns_stat c0 reads)" -eq $((512 + 256)) ]
	leapd_stop
}

@test "leapd stops under a running job: fio ends, non-zero, saying leapd went away" {
	start_leapd
	fio_t --thread=1 --name=g --ctrl=c1 --rw=randrw --bs=4k --iodepth=8 --time_based \
		--runtime=60 >"$LEAPD_DIR/gone.out" 2>&1 &
	FIO_PID=$!
	for i in $(seq 1 100); do
		[ "$(leapctl_t --json stats --ctrl c1 | jq -r '.controllers[0].attached')" = true ] && break
		sleep 0.05
	done
	sleep 0.3
	leapd_stop
	for i in $(seq 1 150); do
		kill -0 "$FIO_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$FIO_PID" 2>/dev/null; then
		echo "fio still running 15 s after leapd stopped" >&2
		cat "$LEAPD_DIR/gone.out" >&2
		return 1
	fi
	st=0
	wait "$FIO_PID" || st=$?
	FIO_PID=""
	[ "$st" -ne 0 ] && [ "$st" -ne 127 ]
	grep -q "leapio: g: leapd went away or controller 'c1' failed" "$LEAPD_DIR/gone.out"
}

@test "jobs one after another reuse a queue id: the new queues start clean" {
	start_leapd
	# Job a leaves its CQ head at 1 (one I/O on a 2-entry queue); job b's
	# 3-entry CQ on the same qid must not inherit it (it would look full).
	run timeout -k 10 30 "$FIO" --ioengine="external:$ENGINE" --socket="$LEAPD_TENANT" \
		--verify_state_save=0 \
		--output-format=json --output="$LEAPD_DIR/out.json" --thread=1 --ctrl=c0 \
		--rw=read --bs=4k --name=a --iodepth=1 --size=4k --name=b --stonewall --iodepth=2 \
		--size=64k --name=c --stonewall --iodepth=16 --numjobs=2 --size=64k
	[ "$status" -eq 0 ]
	[ "$(jr '[.jobs[].read.total_ios] | join(",")')" = "1,16,16,16" ]
	[ "$(ns_stat c0 reads)" -eq 49 ]
	leapd_stop
}

@test "trim deallocates: the trimmed range reads back zeroes, the rest keeps its data" {
	start_leapd
	run fio_json --thread=1 --name=w --ctrl=c0 --rw=write --bs=64k --size=1M \
		--verify=pattern --verify_pattern=0xab
	[ "$status" -eq 0 ]
	[ "$(jr '.jobs[0].write.total_ios')" -eq 16 ]
	# The check for zeroes can fail: before the trim it does.
	run fio_t --thread=1 --name=z --ctrl=c0 --rw=write --bs=64k --size=512k \
		--verify=pattern --verify_pattern=0x00 --verify_only=1
	[ "$status" -ne 0 ]
	run fio_json --thread=1 --name=t --ctrl=c0 --rw=trim --bs=64k --size=512k
	[ "$status" -eq 0 ]
	[ "$(jr '.jobs[0].trim.total_ios')" -eq 8 ]
	run fio_json --thread=1 --name=z --ctrl=c0 --rw=write --bs=64k --size=512k \
		--verify=pattern --verify_pattern=0x00 --verify_only=1
	[ "$status" -eq 0 ]
	[ "$(jr '.jobs[0].read.total_ios')" -eq 8 ]
	run fio_json --thread=1 --name=k --ctrl=c0 --rw=write --bs=64k --offset=512k \
		--size=512k --verify=pattern --verify_pattern=0xab --verify_only=1
	[ "$status" -eq 0 ]
	[ "$(jr '.jobs[0].read.total_ios')" -eq 8 ]
	leapd_stop
}

@test "no leapd: fio fails and says it cannot reach leapd" {
	run fio_t --thread=1 --name=x --ctrl=c0 --rw=read --size=1M
	[ "$status" -ne 0 ]
	[[ "$output" == *"leapio: x: attaching to controller 'c0' via $LEAPD_TENANT failed: cannot reach leapd"* ]]
}

@test "unknown controller: fio fails and names it" {
	start_leapd
	run fio_t --thread=1 --name=x --ctrl=nope --rw=read --size=1M
	[ "$status" -ne 0 ]
	[[ "$output" == *"controller 'nope' not found"* ]]
	leapd_stop
}

@test "more jobs than the controller's queue pairs: fio fails and says so" {
	start_leapd
	run fio_t --thread=1 --name=x --ctrl=c0 --rw=read --size=1M --numjobs=3
	[ "$status" -ne 0 ]
	[[ "$output" == *"leapio: x: 3 concurrent jobs on controller 'c0' need 3 queue pairs; it grants 2"* ]]
	[ "$(grep -c 'need 3 queue pairs' <<<"$output")" -eq 1 ]
	# Two job sections that fit one by one but not together.
	run fio_t --thread=1 --ctrl=c0 --rw=read --size=1M --name=a --numjobs=2 --name=b
	[ "$status" -ne 0 ]
	[[ "$output" == *"3 concurrent jobs on controller 'c0' need 3 queue pairs; it grants 2"* ]]
	# ... and one after the other (stonewall) they do.
	run fio_json --thread=1 --ctrl=c0 --rw=read --size=1M --name=a --numjobs=2 \
		--name=b --stonewall
	[ "$status" -eq 0 ]
	[ "$(jr '[.jobs[].read.total_ios] | add')" -eq 768 ]
	# Nothing leaked: the controller still takes two jobs.
	run fio_json --thread=1 --name=y --ctrl=c0 --rw=read --size=1M --numjobs=2
	[ "$status" -eq 0 ]
	[ "$(jr '[.jobs[].read.total_ios] | add')" -eq 512 ]
	leapd_stop
}

@test "thread=0, no ctrl=, too deep a queue, no such namespace, partial LBAs: refused with a reason" {
	start_leapd
	run fio_t --name=x --ctrl=c0 --rw=read --size=1M
	[ "$status" -ne 0 ]
	[[ "$output" == *"leapio: x: needs thread=1"* ]]
	run fio_t --thread=1 --name=x --ctrl=c0 --rw=read --size=1M --iodepth=4096
	[ "$status" -ne 0 ]
	[[ "$output" == *"iodepth=4096 needs a queue of 4097 entries; controller 'c0' allows"* ]]
	run fio_t --thread=1 --name=x --rw=read --size=1M
	[ "$status" -ne 0 ]
	[[ "$output" == *"leapio: x: ctrl= (the leapd controller name) is required"* ]]
	run fio_t --thread=1 --name=x --ctrl=c0 --nsid=2 --rw=read --size=1M
	[ "$status" -ne 0 ]
	[[ "$output" == *"leapio: x: controller 'c0' has no namespace 2"* ]]
	run fio_t --thread=1 --name=x --ctrl=c0 --rw=read --bs=1000 --size=1M
	[ "$status" -ne 0 ]
	[[ "$output" == *"block sizes must be multiples of namespace 1's LBA size (512 bytes)"* ]]
	# The refused jobs left the controller free for the next tenant.
	run fio_json --thread=1 --name=x --ctrl=c0 --rw=read --size=1M
	[ "$status" -eq 0 ]
	[ "$(jr '.jobs[0].read.total_ios')" -eq 256 ]
	leapd_stop
}
