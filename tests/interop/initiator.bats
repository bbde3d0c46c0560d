#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# leapd's nvme-tcp backend against the Linux kernel's NVMe/TCP target
# (nvmet-tcp in a QEMU/TCG guest, a loop device over a tmpfs file, port
# forwarded to the host). A tenant of leapd runs leap-perf --verify and fio
# verify=crc32c through leapd to the guest, with and without digests; then
# blocks written through leapd are hashed inside the guest, from the file
# under nvmet's namespace, and must equal the same blocks written by the same
# tool to a local file namespace. Guest I/O measures the emulator: the runs
# are short, and nothing here is a speed figure.

bats_require_minimum_version 1.5.0
load lib/guest
load ../e2e/helpers

TOOLS="$E2E_BUILD/tests/tools"
PERF="$E2E_BUILD/bin/leap-perf"
FIO="$E2E_BUILD/fio/fio"
ENGINE="$E2E_BUILD/lib/leapio_fio.so"
NQN=nqn.2026-12.io.leapio:linux-target

setup() {
	T=""
	qemu_available || skip "$GUEST_UNAVAILABLE"
	T=$BATS_TEST_TMPDIR
	leapd_dir
}

teardown() {
	guest_stop
	if [ -n "${T:-}" ] && [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		for f in "$T"/*.log; do
			[ -e "$f" ] || continue
			echo "=== $f"
			tr -d '\r' <"$f" | tail -n 40
		done
	fi
	leapd_teardown
}

bdev_field() { # bdev_field NAME JQ-PATH
	leapctl_t --json bdev list "$1" | jq -r ".[0].$2"
}

@test "Linux nvmet-tcp behind leapd: leap-perf and fio crc32c verify; bytes identical in the guest" {
	# The marker block (LBA 131000) is written last (leap-perf and fio stay
	# in the first 16 MiB): the guest waits for it to change, then hashes the
	# 4 MiB at 32 MiB of the file under nvmet (the file, not the loop device,
	# whose page cache would not see nvmet's writes).
	guest_script "$T/target.sh" <<'EOF'
img=/tmp/disk.img
truncate -s 64M "$img" || die truncate
modprobe loop || die loop
dev=$(losetup -f --show "$img") || die losetup
nvmet_tcp_target nqn.2026-12.io.leapio:linux-target 0.0.0.0 4420 "$dev" || die "nvmet-tcp setup"
zero=$(dd if="$img" bs=512 skip=131000 count=1 2>/dev/null | sha256sum)
echo READY
while [ "$(dd if="$img" bs=512 skip=131000 count=1 2>/dev/null | sha256sum)" = "$zero" ]; do
	sleep 0.5
done
echo "SHA=$(dd if="$img" bs=1M skip=32 count=4 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo DONE
while :; do sleep 60; done
EOF
	port=$(guest_free_port)
	mapfile -t net < <(guest_hostfwd_args "$port" 4420)
	guest_start_bg --timeout 600 --mem 512M --log "$T/target.log" "$T/target.sh" "${net[@]}"
	# QEMU accepts the forwarded port before anything listens: wait for an ICResp.
	guest_wait_nvmet_tcp 127.0.0.1 "$port" 120

	truncate -s 64M "$T/ref.img"
	leapd_start
	leapctl_t bdev create r0 --type nvme-tcp --traddr 127.0.0.1 --trsvcid "$port" --subnqn "$NQN"
	[ "$(bdev_field r0 remote.model)" = Linux ]
	[ "$(bdev_field r0 size)" -eq $((64 << 20)) ]
	leapctl_t bdev create r1 --type nvme-tcp --traddr 127.0.0.1 --trsvcid "$port" --subnqn "$NQN" \
		--hdr-digest --data-digest --queues 1
	[ "$(bdev_field r1 hdr_digest)" = true ]
	leapctl_t bdev create ref --type uring --path "$T/ref.img"
	leapctl_t ctrl add t0
	leapctl_t ns add t0 r0
	leapctl_t ctrl add t1
	leapctl_t ns add t1 r1
	leapctl_t ctrl add tref
	leapctl_t ns add tref ref

	run timeout -k 5 120 "$PERF" -s "$LEAPD_TENANT" -c t0 -q 16 -w randrw --verify -t 4 --span 16M
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"errors 0   verify mismatches 0"* ]]
	run timeout -k 5 120 "$PERF" -s "$LEAPD_TENANT" -c t1 -q 8 -o 16384 -w randrw --verify -t 3 --span 16M
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"errors 0   verify mismatches 0"* ]]
	if [ -x "$FIO" ] && [ -f "$ENGINE" ]; then
		run timeout -k 10 300 "$FIO" --ioengine="external:$ENGINE" --socket="$LEAPD_TENANT" \
			--verify_state_save=0 --output-format=json --thread=1 --name=v --ctrl=t0 \
			--rw=randwrite --bs=8k --size=8M --iodepth=16 --verify=crc32c
		[ "$status" -eq 0 ]
		[ "$(jq -r '.jobs[0].error' <<<"$output")" -eq 0 ]
		[ "$(jq -r '.jobs[0].read.total_ios' <<<"$output")" -eq 1024 ]
	fi

	# 4 MiB at 32 MiB, 128 KiB per command, a seed per command: to the guest and to ref.
	for i in $(seq 0 31); do
		lba=$((65536 + i * 256))
		"$TOOLS/blkio" "$LEAPD_TENANT" t0 1 write "$lba" 256 $((i + 1))
		"$TOOLS/blkio" "$LEAPD_TENANT" tref 1 write "$lba" 256 $((i + 1))
	done
	"$TOOLS/blkio" "$LEAPD_TENANT" t0 1 check 65536:256:1 73216:256:31
	want=$(dd if="$T/ref.img" bs=1M skip=32 count=4 2>/dev/null | sha256sum | cut -d' ' -f1)
	"$TOOLS/blkio" "$LEAPD_TENANT" t0 1 write 131000 1 7
	guest_wait_log "$T/target.log" '^DONE' 120
	got=$(tr -d '\r' <"$T/target.log" | sed -n 's/^SHA=//p' | tail -n1)
	echo "guest $got, want $want"
	[ "$got" = "$want" ]
	[ "$(bdev_field r0 counters.path_failed)" -eq 0 ]
	[ "$(bdev_field r0 counters.remote_errors)" -eq 0 ]
	[ "$(bdev_field r0 counters.losses)" -eq 0 ]
	leapd_stop
}
