#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Builds the guest assets the interop tests boot under QEMU/TCG:
#   OUT/vmlinux        the Debian guest kernel, uncompressed (booting the bzImage
#                      under TCG spends ~half the boot decompressing it)
#   OUT/base.cpio      uncompressed newc initramfs: busybox-static with applet
#                      links, kmod, the modules below with a depmod'ed tree, and
#                      nvme-cli / e2fsprogs with the libraries ldd lists
#   OUT/kver           the guest kernel's release
#   OUT/.stamp         what the assets were built from; a second run with the
#                      same inputs does nothing
# scripts/deps.sh --qemu runs this after installing the packages; it is safe to
# run by hand: tests/interop/lib/mkguest.sh [OUT]
#
# The guest kernel is the one the linux-image-amd64 package depends on (the
# host does not boot it); GUEST_KVER overrides. guest.bash appends a second,
# per-run cpio holding /init and /test.sh; every part stays uncompressed because
# the kernel cannot mix compressed and plain archives.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
OUT="${1:-$BUILD/guest}"

log() { printf 'mkguest: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Modules the tests use; dependencies and softdeps (crc32c for ext4/jbd2,
# crct10dif for t10-pi) come from `modprobe --show-depends`.
REQUIRED_MODULES=(
	configfs virtio_pci virtio_blk virtio_net
	nvme-core nvme-fabrics nvme-tcp nvmet nvmet-tcp
	ext4 crc32c_generic crct10dif_generic loop
)
# Nice to have; missing ones are reported, not fatal.
OPTIONAL_MODULES=(null_blk crc32c-intel crct10dif-pclmul virtio_console virtio-rng)

# Dynamic tools copied with their libraries. Names that decide behaviour from
# argv[0] (mkfs.ext4 makes ext4, mke2fs alone makes ext2) keep their links.
TOOLS=(/usr/sbin/nvme /sbin/mke2fs /sbin/e2fsck /sbin/dumpe2fs /sbin/losetup /bin/kmod)
TOOL_LINKS=(
	/sbin/mkfs.ext4:mke2fs /sbin/fsck.ext4:e2fsck
	/sbin/modprobe:/bin/kmod /sbin/insmod:/bin/kmod /sbin/rmmod:/bin/kmod
	/sbin/lsmod:/bin/kmod /sbin/depmod:/bin/kmod /sbin/modinfo:/bin/kmod
)

guest_kver() {
	if [ -n "${GUEST_KVER:-}" ]; then
		echo "$GUEST_KVER"
		return
	fi
	local dep
	dep=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null || true)
	dep=${dep%% *}
	dep=${dep%,}
	if [ -n "$dep" ] && [ -e "/boot/vmlinuz-${dep#linux-image-}" ]; then
		echo "${dep#linux-image-}"
		return
	fi
	# No metapackage: the newest /boot kernel that has its modules.
	local k
	for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -rV); do
		k=${k#/boot/vmlinuz-}
		[ -d "/lib/modules/$k/kernel" ] && { echo "$k"; return; }
	done
	die "no guest kernel: install linux-image-amd64 (scripts/deps.sh --qemu)"
}

# extract_vmlinux IN OUT: the bzImage's payload is one compressed stream after
# the setup code; find each candidate magic and keep the first that inflates to
# an ELF file (what the kernel's scripts/extract-vmlinux does).
extract_vmlinux() {
	local in=$1 out=$2 spec magic cmd off
	for spec in '\xfd7zXZ\x00:xz -dc' '\x28\xb5\x2f\xfd:zstd -dcq' \
		'\x1f\x8b\x08:gzip -dc' '\x02\x21\x4c\x18:lz4 -dc'; do
		magic=${spec%%:*}
		cmd=${spec#*:}
		command -v "${cmd%% *}" >/dev/null || continue
		for off in $(LC_ALL=C grep -obUaP "$magic" "$in" | cut -d: -f1); do
			# Trailing bytes after the stream make the decompressor
			# complain; the ELF check below is the real test.
			tail -c +$((off + 1)) "$in" | $cmd >"$out.tmp" 2>/dev/null || true
			if [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
				mv "$out.tmp" "$out"
				return 0
			fi
		done
	done
	rm -f "$out.tmp"
	die "no compressed ELF payload found in $in"
}

# copy_with_libs STAGE FILE...: the files and every library ldd lists, at the
# same paths (the loader path in the ELF header included).
copy_with_libs() {
	local stage=$1 f lib
	shift
	for f in "$@"; do
		[ -e "$f" ] || die "missing tool $f"
		mkdir -p "$stage$(dirname "$f")"
		# Never through a link already in the stage: cp would follow it
		# and overwrite the host file it points to.
		rm -f "$stage$f"
		cp -L "$f" "$stage$f"
		for lib in $(ldd "$f" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*' | sort -u); do
			[ -e "$stage$lib" ] && continue
			mkdir -p "$stage$(dirname "$lib")"
			rm -f "$stage$lib"
			cp -L "$lib" "$stage$lib"
		done
	done
}

# copy_modules STAGE KVER: each module's --show-depends closure (which also
# lists softdeps), then depmod over the copy so modules.dep, .alias and
# .softdep (depmod rebuilds it from the modules' own softdep tags) describe
# exactly what is there.
copy_modules() {
	local stage=$1 kver=$2 m path rel src missing=()
	src=/lib/modules/$kver
	mkdir -p "$stage/lib/modules/$kver"
	for m in "${REQUIRED_MODULES[@]}" "${OPTIONAL_MODULES[@]}"; do
		local deps
		if ! deps=$(modprobe -S "$kver" --show-depends "$m" 2>/dev/null); then
			if [[ " ${REQUIRED_MODULES[*]} " == *" $m "* ]]; then
				die "guest kernel $kver has no module $m"
			fi
			missing+=("$m")
			continue
		fi
		while read -r kind path _; do
			[ "$kind" = insmod ] || continue
			rel=${path#"$src"/}
			[ -e "$stage/lib/modules/$kver/$rel" ] && continue
			mkdir -p "$stage/lib/modules/$kver/$(dirname "$rel")"
			cp "$path" "$stage/lib/modules/$kver/$rel"
		done <<<"$deps"
	done
	[ "${#missing[@]}" -eq 0 ] || log "optional modules not in $kver: ${missing[*]}"
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		[ -e "$src/$f" ] && cp "$src/$f" "$stage/lib/modules/$kver/"
	done
	depmod -b "$stage" "$kver"
}

# The init in the base archive only runs when no per-run archive replaced it
# (booting base.cpio by hand): it gives a shell-less report and powers off.
write_base_init() {
	cat >"$1/init" <<'EOF'
#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "leapio guest: base initramfs without a test (guest.bash appends /init and /test.sh)"
poweroff -f
EOF
	chmod 755 "$1/init"
}

build_initramfs() {
	local stage=$1 kver=$2 out=$3 a
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,mnt,root,etc/nvme,var/tmp}
	# Real tools first, busybox applets only where no real tool is.
	copy_with_libs "$stage" "${TOOLS[@]}"
	for a in "${TOOL_LINKS[@]}"; do
		rm -f "$stage${a%%:*}"
		ln -s "${a#*:}" "$stage${a%%:*}"
	done
	cp /bin/busybox "$stage/bin/busybox"
	# Debian's busybox-static ash prefers its own applets to anything in PATH
	# (FEATURE_SH_STANDALONE): `modprobe` would be busybox's, which ignores
	# softdeps. Shell functions win over applets, so every real tool that
	# shadows an applet gets one; /init sources this before /test.sh.
	echo "# real tools over busybox applets (generated by mkguest.sh)" \
		>"$stage/etc/guest-tools.sh"
	for a in $(/bin/busybox --list-full); do
		[ "$a" = bin/busybox ] && continue
		if [ -e "$stage/$a" ] || [ -L "$stage/$a" ]; then
			echo "${a##*/}() { /$a \"\$@\"; }" >>"$stage/etc/guest-tools.sh"
		else
			ln -s /bin/busybox "$stage/$a"
		fi
	done
	[ -e /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$stage/etc/"
	# nvme-cli derives a host NQN from DMI when these are missing, and QEMU
	# has no stable DMI UUID unless told; fixed values keep runs repeatable.
	echo "nqn.2014-08.org.nvmexpress:uuid:6c656170-696f-4775-8573-742d686f7374" \
		>"$stage/etc/nvme/hostnqn"
	echo "6c656170-696f-4775-8573-742d686f7374" >"$stage/etc/nvme/hostid"
	echo "root:x:0:0:root:/root:/bin/sh" >"$stage/etc/passwd"
	echo "root:x:0:" >"$stage/etc/group"
	copy_modules "$stage" "$kver"
	# The kernel opens /dev/console for init before anything is mounted.
	mknod -m 600 "$stage/dev/console" c 5 1
	mknod -m 666 "$stage/dev/null" c 1 3
	write_base_init "$stage"
	(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc --owner 0:0 --quiet) >"$out.tmp"
	mv "$out.tmp" "$out"
}

stage=""
trap '[ -z "$stage" ] || rm -rf "$stage"' EXIT

main() {
	local kver vmlinuz stamp_want
	for t in cpio depmod modprobe ldd xz; do
		command -v "$t" >/dev/null || die "missing $t (scripts/deps.sh --qemu installs it)"
	done
	if [ ! -x /bin/busybox ] || ! file_is_static /bin/busybox; then
		die "/bin/busybox is not busybox-static (scripts/deps.sh --qemu installs it)"
	fi
	kver=$(guest_kver)
	vmlinuz=/boot/vmlinuz-$kver
	[ -r "$vmlinuz" ] || die "missing $vmlinuz"
	stamp_want="kver=$kver vmlinuz=$(stat -c %s.%Y "$vmlinuz")"
	stamp_want+=" script=$(sha256sum "$0" | cut -c1-16)"
	stamp_want+=" busybox=$(stat -c %s.%Y /bin/busybox) nvme=$(stat -c %s.%Y /usr/sbin/nvme)"
	if [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$stamp_want" ] &&
		[ -s "$OUT/vmlinux" ] && [ -s "$OUT/base.cpio" ]; then
		return 0
	fi
	mkdir -p "$OUT"
	rm -f "$OUT/.stamp"
	log "extracting vmlinux from $vmlinuz"
	extract_vmlinux "$vmlinuz" "$OUT/vmlinux"
	stage=$(mktemp -d)
	log "building base initramfs for $kver"
	build_initramfs "$stage" "$kver" "$OUT/base.cpio"
	echo "$kver" >"$OUT/kver"
	echo "$stamp_want" >"$OUT/.stamp"
	log "ok: $OUT/vmlinux ($(du -m "$OUT/vmlinux" | cut -f1) MiB)," \
		"$OUT/base.cpio ($(du -m "$OUT/base.cpio" | cut -f1) MiB)"
}

# busybox-static, not the dynamic busybox package: the initramfs has no libc
# for it. ldd says "not a dynamic executable" for a static binary.
file_is_static() { ! ldd "$1" >/dev/null 2>&1; }

main "$@"
