#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# CC.SHN end to end (issue 11, class 8): a tenant with writes in flight
# shuts its controller down; CSTS.SHST may read "complete" only after every
# one of them completed (and the backends were flushed), so the moment the
# tenant sees it, all completions are already posted.

load helpers

setup() {
	leapd_dir
	SHUT="$E2E_BUILD/tests/tools/nvme_shutdown"
}

teardown() {
	leapd_teardown
	rm -f "/var/tmp/leapio-shn-$$.img"
}

@test "shutdown reports complete only after in-flight writes drained (uring file)" {
	leapd_start
	leapctl_t bdev create f0 --type uring --path "/var/tmp/leapio-shn-$$.img" --size 64M
	leapctl_t ctrl add c0
	leapctl_t ns add c0 f0
	for i in 1 2 3; do
		run "$SHUT" "$LEAPD_TENANT" c0 200
		echo "$output"
		[ "$status" -eq 0 ]
		[ "$output" = "submitted=200 completed_at_shst=200 errors=0" ]
	done
	# The data is on the file: write 200 was block range [1592, 1600) filled with 0xc7.
	run od -An -tx1 -j $((199 * 4096)) -N 4 "/var/tmp/leapio-shn-$$.img"
	[ "$(echo $output)" = "c7 c7 c7 c7" ]
}

@test "shutdown on a mem backend: every completion posted before SHST complete" {
	leapd_start
	leapctl_t bdev create m0 --type mem --size 16M
	leapctl_t ctrl add c0
	leapctl_t ns add c0 m0
	run "$SHUT" "$LEAPD_TENANT" c0 32
	[ "$status" -eq 0 ]
	[ "$output" = "submitted=32 completed_at_shst=32 errors=0" ]
}

@test "SIGTERM with a hung device: the final flush gives up after its bound, leapd exits and says so" {
	leapd_start
	leapctl_t bdev create m0 --type mem --size 16M
	leapctl_t bdev create f0 --type fault --param base=m0
	leapctl_t ctrl add c0
	leapctl_t ns add c0 f0
	"$E2E_BUILD/tests/tools/blkio" "$LEAPD_TENANT" c0 1 write 0 8 0xab
	# Flushes never complete from now on; nothing else is held.
	leapctl_t bdev fault f0 --ops f --action hang
	leapd_term_exit 30
	# Not a clean exit: the flush did not happen, and leapd says which.
	[ "$LEAPD_EXIT" -ne 0 ]
	grep -q "flush of bdev 'f0' did not complete in 5000 ms" "$LEAPD_LOG"
}
