#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Idempotent dependency setup for leapio. The Makefile calls this when
# build/.deps-stamp is missing; it is safe to run by hand at any time.
#   scripts/deps.sh          base packages + fio 3.33 built from source + bpffs
#   scripts/deps.sh --qemu   also QEMU and a Debian guest kernel (interop tests)
#
# Every step checks before it acts, so a second run does nothing but checks.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
FIO_VERSION=3.33
WANT_QEMU=0
[ "${1:-}" = "--qemu" ] && WANT_QEMU=1

log() { printf 'deps: %s\n' "$*" >&2; }

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

PKGS=(
	build-essential pkg-config make gcc clang llvm lld
	libbpf-dev libelf-dev zlib1g-dev bpftool
	liburing-dev libibverbs-dev
	libjansson-dev libcmocka-dev
	bats jq fio gnuplot-nox
	clang-format dpkg-dev
	iproute2 procps psmisc util-linux
	nftables
)
# Interop tier: QEMU (qemu-storage-daemon is in qemu-system-common, pulled in
# by qemu-system-x86), the Debian guest kernel (never booted by the host), and
# what tests/interop/lib/mkguest.sh puts into the guest's initramfs.
QEMU_PKGS=(
	qemu-system-x86 qemu-utils linux-image-amd64
	busybox-static cpio kmod nvme-cli e2fsprogs util-linux xz-utils coreutils
)

missing_pkgs() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
			printf '%s\n' "$p"
	done
}

APT_UPDATED=0
apt_update_once() {
	[ "$APT_UPDATED" = 1 ] && return 0
	log "apt-get update"
	$SUDO apt-get update -qq || log "apt-get update reported errors; continuing"
	APT_UPDATED=1
}

install_pkgs() {
	local miss
	miss=$(missing_pkgs "$@")
	[ -z "$miss" ] && return 0
	apt_update_once
	log "installing: $(echo $miss | tr '\n' ' ')"
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $miss
}

# deb-src entries mirroring the existing deb entries, in a file of our own, so
# that `apt-get source fio` works. Derived from the machine's own sources file
# so we never hard-code an archive host.
enable_deb_src() {
	local dst=/etc/apt/sources.list.d/leapio-src.sources src
	[ -f "$dst" ] && return 0
	for src in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
		[ -s "$src" ] || continue
		if [[ "$src" == *.sources ]]; then
			# deb822: keep Debian stanzas, switch their type to deb-src.
			awk 'BEGIN{RS="";ORS="\n\n"} /Types:[^\n]*deb/ {
				gsub(/Types:[^\n]*/, "Types: deb-src"); print }' "$src" |
				$SUDO tee "$dst.tmp" >/dev/null
		else
			grep -E '^deb ' "$src" | sed 's/^deb /deb-src /' |
				$SUDO tee "${dst%.sources}.list" >/dev/null
			log "deb-src lines written to ${dst%.sources}.list"
			APT_UPDATED=0
			return 0
		fi
		$SUDO mv "$dst.tmp" "$dst"
		log "deb-src entries written to $dst"
		APT_UPDATED=0
		return 0
	done
	log "no Debian sources file found; cannot enable deb-src"
	return 1
}

# fio 3.33 from Debian's source package, configured and built in build/fio.
# The fio engine compiles against this tree's config-host.h, and fio refuses
# an engine built for another version ("bad ioops version").
build_fio() {
	local dir="$BUILD/fio"
	if [ -x "$dir/fio" ] && "$dir/fio" --version | grep -q "fio-$FIO_VERSION"; then
		return 0
	fi
	enable_deb_src
	apt_update_once
	local tmp
	tmp=$(mktemp -d)
	log "fetching fio source package"
	(cd "$tmp" && apt-get source -qq --download-only "fio=$FIO_VERSION*" >/dev/null 2>&1 ||
		(cd "$tmp" && apt-get source -qq --download-only fio >/dev/null))
	(cd "$tmp" && dpkg-source -x --no-check ./fio_*.dsc src >/dev/null)
	if ! grep -q "$FIO_VERSION" "$tmp/src/FIO-VERSION-GEN"; then
		log "fio source package is not $FIO_VERSION"
		return 1
	fi
	rm -rf "$dir"
	mkdir -p "$(dirname "$dir")"
	mv "$tmp/src" "$dir"
	rm -rf "$tmp"
	log "building fio $FIO_VERSION in $dir"
	(cd "$dir" && ./configure --disable-native >/dev/null && make -j"$(nproc)" -s >/dev/null)
	"$dir/fio" --version
}

# Guest assets for tests/interop: uncompressed vmlinux and base initramfs in
# $BUILD/guest. mkguest.sh keeps its own stamp and does nothing when current.
prepare_guest() {
	"$ROOT/tests/interop/lib/mkguest.sh" "$BUILD/guest"
}

mount_bpffs() {
	if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
		$SUDO mkdir -p /sys/fs/bpf
		$SUDO mount -t bpf bpf /sys/fs/bpf
		log "mounted bpffs at /sys/fs/bpf"
	fi
}

install_pkgs "${PKGS[@]}"
if [ "$WANT_QEMU" = 1 ]; then
	install_pkgs "${QEMU_PKGS[@]}"
	prepare_guest
fi
build_fio
mount_bpffs
mkdir -p "$BUILD"
touch "$BUILD/.deps-stamp"
[ "$WANT_QEMU" = 1 ] && touch "$BUILD/.deps-qemu-stamp"
log "ok"
