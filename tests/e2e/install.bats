#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# make install (issue 11): what it installs, that a tenant program builds
# against the installed client library through pkg-config and attaches to
# a running leapd, and that the systemd unit passes systemd-analyze verify
# and its start wrapper starts leapd.

load helpers

setup() {
	leapd_dir
	INST="$LEAPD_DIR/inst"
}

teardown() {
	leapd_teardown
}

install_to() { # PREFIX [DESTDIR]
	make -s -C "$E2E_ROOT" BUILD="$E2E_BUILD" install PREFIX="$1" ${2:+DESTDIR="$2"}
}

@test "install: programs, policies, headers, client library and pkg-config; a tenant builds and attaches" {
	install_to /usr/local "$INST"
	p="$INST/usr/local"
	for f in bin/leapd bin/leapctl bin/leap-perf bin/leap-bpfrun libexec/leapio/leapd-start; do
		[ -x "$p/$f" ]
	done
	for f in lib/leapio/policies/isolation.bpf.o lib/leapio/policies/snapshot.bpf.o \
		include/leapio/client.h include/leapio/shm_abi.h lib/libleapio-client.a \
		lib/pkgconfig/leapio-client.pc lib/systemd/system/leapd.service \
		lib/sysusers.d/leapio.conf share/doc/leapio/README.md; do
		[ -f "$p/$f" ]
	done
	# The unit and the pkg-config file name the real prefix, not DESTDIR.
	grep -q '^ExecStart=/usr/local/libexec/leapio/leapd-start ' "$p/lib/systemd/system/leapd.service"
	grep -q '^prefix=/usr/local$' "$p/lib/pkgconfig/leapio-client.pc"
	# A tenant program against the installed header and library only.
	install_to "$INST/prefix"
	cat >"$LEAPD_DIR/tenant.c" <<-'C'
	#include <stdio.h>
	#include <leapio/client.h>
	int main(int argc, char **argv)
	{
		struct leap_client_opts o = { .socket = argv[1], .ctrl = "t0", .mem_size = 1 << 20 };
		struct leap_client *c;
		uint64_t nlb;
		uint32_t lba;

		if (argc != 2 || leap_client_attach(&o, &c) || leap_client_ns_info(c, 1, &nlb, &lba))
			return 1;
		printf("%llu blocks of %u\n", (unsigned long long)nlb, lba);
		leap_client_detach(c);
		return 0;
	}
	C
	export PKG_CONFIG_PATH="$INST/prefix/lib/pkgconfig"
	gcc -o "$LEAPD_DIR/tenant" "$LEAPD_DIR/tenant.c" $(pkg-config --cflags --libs leapio-client)
	cat >"$LEAPD_DIR/t.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 1048576}},
	  {"method": "ctrl_create", "params": {"name": "t0"}},
	  {"method": "ns_add", "params": {"ctrl": "t0", "bdev": "m0"}}
	]
	EOF
	LEAPD="$INST/prefix/bin/leapd"
	leapd_start "$LEAPD_DIR/t.json"
	run "$LEAPD_DIR/tenant" "$LEAPD_TENANT"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "2048 blocks of 512" ]
	leapd_stop
}

@test "install: the systemd unit passes systemd-analyze verify; its wrapper starts leapd" {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
	# Installed under a real prefix (no DESTDIR), so the unit's paths exist here.
	install_to "$INST/prefix"
	run systemd-analyze verify "$INST/prefix/lib/systemd/system/leapd.service"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	# Without /etc/leapio/leapd.json the wrapper starts leapd without -c.
	[ -e /etc/leapio/leapd.json ] && skip "/etc/leapio/leapd.json exists on this machine"
	LEAPD="$INST/prefix/libexec/leapio/leapd-start"
	leapd_start
	leapctl_t info >/dev/null
	leapd_stop
}
