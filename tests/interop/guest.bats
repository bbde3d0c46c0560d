#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# Self-tests of the interop guest infrastructure (lib/guest.bash): each test
# boots a real Linux guest under QEMU/TCG and asserts on data that only a
# working peer produces — exit statuses, values and hashes read back from the
# console, a real NVMe/TCP ICResp, an ext4 superblock written through
# vhost-user-blk. The later leapd interop tests build on these paths.

bats_require_minimum_version 1.5.0
load lib/guest

setup() {
	T=""
	qemu_available || skip "$GUEST_UNAVAILABLE"
	T=$BATS_TEST_TMPDIR
	QSD_PID=""
}

teardown() {
	guest_stop
	if [ -n "$QSD_PID" ] && kill -0 "$QSD_PID" 2>/dev/null; then
		kill "$QSD_PID"
		wait "$QSD_PID" 2>/dev/null || true
	fi
	# On failure, show what the guests printed.
	if [ -n "${T:-}" ] && [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		for f in "$T"/*.log; do
			[ -e "$f" ] || continue
			echo "=== $f"
			tr -d '\r' <"$f" | tail -n 60
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

@test "guest: the script's exit status, printed values and overlay files cross over" {
	# The script also prints a line shaped like the exit marker: only the
	# marker with this run's nonce may count.
	mkdir -p "$T/overlay/opt"
	token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
	echo "$token" >"$T/overlay/opt/token"
	guest_script "$T/status.sh" <<'EOF'
echo "LEAPIO-GUEST-EXIT 0 rc=0"
echo "TOKEN=$(cat /opt/token)"
echo "ANSWER=$((6 * 7))"
echo "KERNEL=$(uname -r)"
echo "CPUS=$(grep -c ^processor /proc/cpuinfo)"
exit 3
EOF
	rc=0
	GUEST_OVERLAY=$T/overlay guest_run --log "$T/status.log" "$T/status.sh" || rc=$?
	[ "$rc" -eq 3 ]
	[ "$(guest_value TOKEN "$T/status.log")" = "$token" ]
	[ "$(guest_value ANSWER "$T/status.log")" = 42 ]
	[ "$(guest_value KERNEL "$T/status.log")" = "$(cat "$GUEST_DIR/kver")" ]
	[ "$(guest_value CPUS "$T/status.log")" = 1 ]
}

@test "guest: a hung guest is ended at the timeout with status 124" {
	printf 'echo SLEEPING\nsleep 600\n' >"$T/hang.sh"
	rc=0
	SECONDS=0
	guest_run --timeout 10 --log "$T/hang.log" "$T/hang.sh" 2>"$T/hang.err" || rc=$?
	[ "$rc" -eq 124 ]
	[ "$SECONDS" -lt 30 ]
	# It did boot and run the script: the timeout, not a boot failure.
	grep -q '^SLEEPING' <(guest_output "$T/hang.log")
	grep -q 'timed out' "$T/hang.err"
}

@test "guest: a guest that ends without its exit marker is reported (125)" {
	printf 'echo BYE\npoweroff -f\nsleep 60\n' >"$T/nomarker.sh"
	rc=0
	guest_run --timeout 60 --log "$T/nomarker.log" "$T/nomarker.sh" 2>"$T/nomarker.err" || rc=$?
	[ "$rc" -eq 125 ]
	grep -q 'without printing its exit marker' "$T/nomarker.err"
}

@test "guest: Linux nvme-tcp host against Linux nvmet-tcp target, ext4 round trip" {
	nqn=nqn.2026-12.io.leapio:selftest
	guest_script "$T/nvme.sh" <<EOF
NQN=$nqn
EOF
	cat >>"$T/nvme.sh" <<'EOF'
dev=$(ram_disk 64) || die "no loop device"
nvmet_tcp_target "$NQN" 127.0.0.1 4420 "$dev" || die "nvmet-tcp target setup"
modprobe nvme-tcp || die "modprobe nvme-tcp"
nvme discover -t tcp -a 127.0.0.1 -s 4420 >/tmp/disc || die "nvme discover"
echo "SUBNQNS=$(sed -n 's/^subnqn: *//p' /tmp/disc | tr '\n' ' ')"
ns=$(nvme_tcp_connect 127.0.0.1 4420 "$NQN") || die "nvme connect"
c=$(basename "$ns" n1)
echo "MODEL=$(tr -d ' ' </sys/class/nvme/$c/model)"
echo "TRANSPORT=$(cat /sys/class/nvme/$c/transport)"
echo "SIZE_SECTORS=$(cat /sys/block/${ns#/dev/}/size)"
mkfs.ext4 -q -F "$ns" || die mkfs
mkdir -p /mnt/t
mount -t ext4 "$ns" /mnt/t || die mount
pattern 4 >/mnt/t/pattern
umount /mnt/t || die umount
e2fsck -f -n "$ns" >/tmp/fsck 2>&1
echo "FSCK_RC=$?"
# Read back from the device, not the page cache of the first mount.
mount -t ext4 -o ro "$ns" /mnt/t || die remount
echo "PATTERN_SHA=$(sha256sum </mnt/t/pattern | cut -d' ' -f1)"
umount /mnt/t
# What the host side saw over NVMe/TCP is what the target's disk holds.
echo "DEV_SHA=$(sha256sum <"$ns" | cut -d' ' -f1)"
echo "BACKING_SHA=$(sha256sum <"$dev" | cut -d' ' -f1)"
nvme disconnect -n "$NQN" || die "nvme disconnect"
EOF
	rc=0
	guest_run --log "$T/nvme.log" "$T/nvme.sh" || rc=$?
	[ "$rc" -eq 0 ]
	[[ " $(guest_value SUBNQNS "$T/nvme.log") " == *" $nqn "* ]]
	[ "$(guest_value MODEL "$T/nvme.log")" = Linux ]
	[ "$(guest_value TRANSPORT "$T/nvme.log")" = tcp ]
	[ "$(guest_value SIZE_SECTORS "$T/nvme.log")" = 131072 ]
	[ "$(guest_value FSCK_RC "$T/nvme.log")" = 0 ]
	[ "$(guest_value PATTERN_SHA "$T/nvme.log")" = "$(expected_pattern_sha 4)" ]
	dev_sha=$(guest_value DEV_SHA "$T/nvme.log")
	[ "${#dev_sha}" -eq 64 ]
	[ "$dev_sha" = "$(guest_value BACKING_SHA "$T/nvme.log")" ]
}

@test "guest: hostfwd accepts TCP with no listener, and guest_wait_nvmet_tcp is not fooled" {
	port=$(guest_free_port)
	printf 'echo READY\nsleep 600\n' >"$T/idle.sh"
	mapfile -t net < <(guest_hostfwd_args "$port" 4420)
	guest_start_bg --log "$T/idle.log" "$T/idle.sh" "${net[@]}"
	guest_wait_log "$T/idle.log" '^READY' 60
	# QEMU's slirp accepts on the host side before it tries the guest...
	(exec 3<>"/dev/tcp/127.0.0.1/$port")
	# ...but nothing answers an ICReq. (bats ignores a bare `! cmd`.)
	run ! guest_wait_nvmet_tcp 127.0.0.1 "$port" 4
}

@test "guest: nvmet-tcp as a background peer answers a real ICResp; stopped by PID" {
	port=$(guest_free_port)
	guest_script "$T/target.sh" <<'EOF'
dev=$(ram_disk 16) || die "no loop device"
nvmet_tcp_target nqn.2026-12.io.leapio:peer 0.0.0.0 4420 "$dev" || die "nvmet-tcp target setup"
echo READY
while :; do sleep 60; done
EOF
	mapfile -t net < <(guest_hostfwd_args "$port" 4420)
	guest_start_bg --timeout 300 --log "$T/target.log" "$T/target.sh" "${net[@]}"
	pid=$GUEST_BG_PID
	guest_wait_nvmet_tcp 127.0.0.1 "$port" 90
	grep -q '^READY' <(guest_output "$T/target.log")
	# ICResp body (TP 8000): pfv 0, cpda 0, no digests, maxh2cdata >= 4096.
	[ "${GUEST_ICRESP:16:4}" = 0000 ]
	[ "${GUEST_ICRESP:20:2}" = 00 ]
	[ "${GUEST_ICRESP:22:2}" = 00 ]
	le=${GUEST_ICRESP:24:8}
	maxh2c=$((16#${le:6:2}${le:4:2}${le:2:2}${le:0:2}))
	[ "$maxh2c" -ge 4096 ]
	tree=$(guest_descendants "$pid")
	[ -n "$tree" ]
	guest_stop "$pid"
	for p in "$pid" $tree; do
		if kill -0 "$p" 2>/dev/null; then
			echo "process $p of the stopped guest is still alive"
			false
		fi
	done
	run ! guest_wait_nvmet_tcp 127.0.0.1 "$port" 2
}

@test "guest: virtio-blk over vhost-user from qemu-storage-daemon, ext4 checked on the host" {
	command -v qemu-storage-daemon >/dev/null || skip "no qemu-storage-daemon"
	img=$T/disk.img
	sock=$T/vub.sock
	truncate -s 64M "$img"
	qemu-storage-daemon \
		--blockdev "driver=file,node-name=f0,filename=$img" \
		--export "type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=$sock,writable=on" \
		>"$T/qsd.log" 2>&1 &
	QSD_PID=$!
	for _ in $(seq 100); do
		[ -S "$sock" ] && break
		sleep 0.1
	done
	[ -S "$sock" ]
	guest_script "$T/vub.sh" <<'EOF'
wait_for /dev/vda 10 || die "no /dev/vda"
echo "VDA_SECTORS=$(cat /sys/block/vda/size)"
mkfs.ext4 -q -F -L leapio-vub /dev/vda || die mkfs
mkdir -p /mnt/t
mount -t ext4 /dev/vda /mnt/t || die mount
pattern 8 >/mnt/t/pattern
echo "PATTERN_SHA=$(sha256sum </mnt/t/pattern | cut -d' ' -f1)"
umount /mnt/t || die umount
EOF
	mapfile -t vub < <(guest_vhost_user_blk_args "$sock")
	rc=0
	guest_run --log "$T/vub.log" "$T/vub.sh" "${vub[@]}" || rc=$?
	[ "$rc" -eq 0 ]
	[ "$(guest_value VDA_SECTORS "$T/vub.log")" = 131072 ]
	kill "$QSD_PID"
	wait "$QSD_PID" || true
	QSD_PID=""
	# The guest's writes are in the image: ext4 magic 0xEF53 at byte 1080,
	# the label, a clean fsck, and the file's bytes read by the host's debugfs.
	[ "$(od -An -tx1 -j1080 -N2 "$img" | tr -d ' \n')" = 53ef ]
	[ "$(dumpe2fs -h "$img" 2>/dev/null | sed -n 's/^Filesystem volume name: *//p')" = leapio-vub ]
	e2fsck -f -n "$img"
	want=$(expected_pattern_sha 8)
	[ "$(guest_value PATTERN_SHA "$T/vub.log")" = "$want" ]
	[ "$(debugfs -R 'cat /pattern' "$img" 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$want" ]
}
