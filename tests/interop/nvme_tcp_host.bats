#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# leapd's NVMe/TCP target against a stock Linux host (issue 12): a QEMU/TCG
# guest with the Debian kernel's nvme-tcp driver and nvme-cli reaches leapd
# on the host's loopback (10.0.2.2 from the guest). It discovers, connects
# with header and data digests, formats and fills an ext4 file system,
# disconnects, reconnects without digests and checks it; an unlisted host
# NQN is refused; a namespace added live appears; the isolation policy
# limits the guest and the stats policy counts its I/O. Every figure the
# host checks comes from the guest's console or leapd's own counters, and
# the file system's bytes are read back from the backing file on the host.

bats_require_minimum_version 1.5.0
load lib/guest
load ../e2e/helpers

HOSTNQN=nqn.2014-08.org.nvmexpress:uuid:6c1f1a2e-3b5d-4d7e-9f10-1a2b3c4d5e6f
BADNQN=nqn.2014-08.org.nvmexpress:uuid:00000000-dead-beef-0000-000000000000

setup() {
	T=""
	qemu_available || skip "$GUEST_UNAVAILABLE"
	T=$BATS_TEST_TMPDIR
	leapd_dir
	TAG="nt$$"
}

teardown() {
	guest_stop
	leapd_teardown
	rm -rf /sys/fs/bpf/leapio/*_"$TAG" "/var/tmp/leapio-nvmetcp-$$.img"
	if [ -n "${T:-}" ] && [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		for f in "$T"/*.log; do
			[ -e "$f" ] || continue
			echo "=== $f"
			tail -n 60 "$f"
		done
	fi
}

# expected_pattern_sha MIB: what guest/lib.sh's `pattern MIB` hashes to.
expected_pattern_sha() {
	local i
	seq 1 16384 | head -c 65528 >"$T/chunk"
	for ((i = 0; i < $1 * 16; i++)); do
		printf '%08d' "$i"
		cat "$T/chunk"
	done | sha256sum | cut -d' ' -f1
}

@test "Linux nvme-tcp host: discover, digests, ext4 round trip, refused host, live namespace, policies" {
	img="/var/tmp/leapio-nvmetcp-$$.img"
	port=$(guest_free_port)
	leapd_start
	leapctl_t bdev create f0 --type uring --path "$img" --size 128M
	leapctl_t bdev create m1 --type mem --size 32M
	leapctl_t ctrl add c0 --nqn nqn.2026-12.io.leapio:interop-c0 --serial LEAPINTEROP0
	leapctl_t ns add c0 f0
	leapctl_t subsys host add c0 "$HOSTNQN"
	leapctl_t listener add tcp --addr 127.0.0.1 --port "$port"
	cid=$(leapctl_t --json ctrl list c0 | jq -r '.[0].cntlid // .cntlid')
	leapctl_t policy load "$E2E_BUILD/policies/stats.bpf.o" --name "stats_$TAG"
	leapctl_t policy load "$E2E_BUILD/policies/isolation.bpf.o" --name "iso_$TAG"
	leapctl_t policy attach "stats_$TAG" --ctrl c0
	leapctl_t policy attach "iso_$TAG" --ctrl c0

	guest_script "$T/host.sh" <<EOF
PORT=$port
NQN=nqn.2026-12.io.leapio:interop-c0
HOSTNQN=$HOSTNQN
BADNQN=$BADNQN
EOF
	cat >>"$T/host.sh" <<'EOF'
modprobe nvme-tcp || die "modprobe nvme-tcp"
# Discovery: this host sees c0.
nvme discover -t tcp -a 10.0.2.2 -s "$PORT" --hostnqn="$HOSTNQN" >/tmp/disc || die "nvme discover"
echo "SUBNQNS=$(sed -n 's/^subnqn: *//p' /tmp/disc | tr '\n' ' ')"
# An unlisted host is refused.
nvme connect -t tcp -a 10.0.2.2 -s "$PORT" -n "$NQN" --hostnqn="$BADNQN" >/tmp/bad 2>&1
echo "BAD_RC=$?"
# With both digests.
nvme connect -t tcp -a 10.0.2.2 -s "$PORT" -n "$NQN" --hostnqn="$HOSTNQN" \
	--hdr-digest --data-digest >/dev/null || die "nvme connect (digests)"
c=""
for x in /sys/class/nvme/nvme*; do
	[ "$(cat "$x/subsysnqn" 2>/dev/null)" = "$NQN" ] && c=$(basename "$x")
done
[ -n "$c" ] || die "no controller for $NQN"
ns=/dev/${c}n1
wait_for "$ns" 20 || die "no $ns"
echo "MODEL=$(tr -d ' ' </sys/class/nvme/$c/model)"
echo "SERIAL=$(tr -d ' ' </sys/class/nvme/$c/serial)"
echo "TRANSPORT=$(cat /sys/class/nvme/$c/transport)"
echo "SIZE_SECTORS=$(cat /sys/block/${c}n1/size)"
nvme list >/tmp/list 2>&1
echo "LISTED=$(grep -c "$ns" /tmp/list)"
mkfs.ext4 -q -F "$ns" || die mkfs
mkdir -p /mnt/t
mount -t ext4 "$ns" /mnt/t || die mount
pattern 4 >/mnt/t/pattern
echo "WRITE_SHA=$(sha256sum </mnt/t/pattern | cut -d' ' -f1)"
sync
umount /mnt/t || die umount
nvme disconnect -n "$NQN" >/dev/null || die "nvme disconnect"
# Reconnect without digests: the file system is intact and says so.
nvme connect -t tcp -a 10.0.2.2 -s "$PORT" -n "$NQN" --hostnqn="$HOSTNQN" >/dev/null ||
	die "nvme reconnect"
for x in /sys/class/nvme/nvme*; do
	[ "$(cat "$x/subsysnqn" 2>/dev/null)" = "$NQN" ] && c=$(basename "$x")
done
ns=/dev/${c}n1
wait_for "$ns" 20 || die "no $ns after reconnect"
e2fsck -f -n "$ns" >/tmp/fsck 2>&1
echo "FSCK_RC=$?"
mount -t ext4 -o ro "$ns" /mnt/t || die "remount"
echo "READ_SHA=$(sha256sum </mnt/t/pattern | cut -d' ' -f1)"
umount /mnt/t
# Rate-limited reads. The host sets iops_limit, then adds namespace 2: the
# AEN-driven rescan that makes n2 appear is the signal that the limit is in
# place (a fixed sleep here raced with the host's RPC on a fast guest).
echo "LIMIT_PHASE"
wait_for "/dev/${c}n2" 60 && echo "NS2=yes" || echo "NS2=no"
t0=$(cut -d' ' -f1 /proc/uptime)
dd if="$ns" of=/dev/null bs=4096 count=600 iflag=direct 2>/tmp/dd || die "dd: $(cat /tmp/dd)"
t1=$(cut -d' ' -f1 /proc/uptime)
echo "DD_SECONDS=$(echo "$t0 $t1" | awk '{ print $2 - $1 }')"
nvme disconnect -n "$NQN" >/dev/null || die "final disconnect"
EOF
	guest_start_bg --timeout 400 --log "$T/host.log" "$T/host.sh" \
		-netdev user,id=n0 -device virtio-net-pci,netdev=n0
	guest_wait_log "$T/host.log" '^LIMIT_PHASE' 300
	leapctl_t policy set "iso_$TAG" "iops_limit[$cid]=200"
	leapctl_t ns add c0 m1 --nsid 2
	wait "$GUEST_BG_PID" || true
	run guest_bg_status
	[ "$output" = 0 ]
	log=$T/host.log
	[[ " $(guest_value SUBNQNS "$log") " == *" nqn.2026-12.io.leapio:interop-c0 "* ]]
	[ "$(guest_value BAD_RC "$log")" != 0 ]
	grep -q "$BADNQN" "$LEAPD_LOG"
	[ "$(guest_value MODEL "$log")" = leapiovirtualNVMe ]
	[ "$(guest_value SERIAL "$log")" = LEAPINTEROP0 ]
	[ "$(guest_value TRANSPORT "$log")" = tcp ]
	[ "$(guest_value SIZE_SECTORS "$log")" = 262144 ]
	[ "$(guest_value LISTED "$log")" -ge 1 ]
	want=$(expected_pattern_sha 4)
	[ "$(guest_value WRITE_SHA "$log")" = "$want" ]
	[ "$(guest_value READ_SHA "$log")" = "$want" ]
	[ "$(guest_value FSCK_RC "$log")" = 0 ]
	[ "$(guest_value NS2 "$log")" = yes ]
	# The host's own view of the bytes: an ext4 superblock, and the file through debugfs.
	[ "$(od -An -tx1 -j 1080 -N 2 "$img" | tr -d ' ')" = 53ef ]
	[ "$(debugfs -R 'cat /pattern' "$img" 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$want" ]
	# Isolation: 600 reads at 200 IOPS (burst 50 ms) cannot take much under 3 s.
	awk -v s="$(guest_value DD_SECONDS "$log")" 'BEGIN { exit !(s >= 2.5) }'
	run leapctl_t --json policy stats "stats_$TAG"
	[ "$status" -eq 0 ]
	echo "$output" >"$T/stats.json"
	# The stats policy counted this controller's reads (600 direct ones at least) and writes.
	[ "$(jq "[.[] | select(.tenant == $cid) | .reads] | add // 0" "$T/stats.json")" -gt 600 ]
	[ "$(jq "[.[] | select(.tenant == $cid) | .writes] | add // 0" "$T/stats.json")" -gt 0 ]
}
