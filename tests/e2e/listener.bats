#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# Front-end listeners as modules: listener_add/remove/list by type, each
# module's own parameter errors, conflicts, config_save round trip (the
# command-line listener is not saved), and a tenant doing verified I/O
# through a listener added at runtime, then refused once it is removed.

load helpers

setup() {
	leapd_dir
}

teardown() {
	leapd_teardown
}

@test "listener list shows the command-line shm listener, not saved" {
	leapd_start
	run leapctl_t --json listener list
	[ "$status" -eq 0 ]
	[ "$(jq length <<<"$output")" -eq 1 ]
	[ "$(jq -r '.[0].type' <<<"$output")" = shm ]
	[ "$(jq -r '.[0].params.path' <<<"$output")" = "$LEAPD_TENANT" ]
	[ "$(jq -r '.[0].saved' <<<"$output")" = false ]
	run leapctl_t --json config save
	[ "$status" -eq 0 ]
	[ "$(jq '[.[] | select(.method == "listener_add")] | length' <<<"$output")" -eq 0 ]
}

@test "listener add: unknown type, module parameter errors, conflicts" {
	leapd_start
	run leapctl_t listener add bogus
	[ "$status" -eq 1 ]
	[[ "$output" == *"unknown listener type 'bogus' (shm"* ]]
	run leapctl_t rpc listener_add '{"type": "shm", "path": "/x", "mode": 1}'
	[ "$status" -eq 1 ]
	[[ "$output" == *"shm: unknown parameter 'mode'"* ]]
	run leapctl_t listener add shm --path relative.sock
	[ "$status" -eq 1 ]
	[[ "$output" == *"absolute socket path"* ]]
	run leapctl_t listener add shm --path "$LEAPD_TENANT"
	[ "$status" -eq 1 ]
	[[ "$output" == *"already serves these parameters"* ]]
	run leapctl_t listener remove 42
	[ "$status" -eq 1 ]
	[[ "$output" == *"no listener 42"* ]]
	# Nothing was added by the failures.
	[ "$(leapctl_t --json listener list | jq length)" -eq 1 ]
}

@test "a listener added at runtime serves verified I/O, is saved, and refuses once removed" {
	leapd_start
	leapctl_t bdev create m0 --type mem --size 16M
	leapctl_t ctrl add c0
	leapctl_t ns add c0 m0
	run leapctl_t --json listener add shm --path "$LEAPD_DIR/second.sock"
	[ "$status" -eq 0 ]
	id=$(jq -r .id <<<"$output")
	[ "$id" -eq 2 ]
	run "$E2E_BUILD/bin/leap-perf" -s "$LEAPD_DIR/second.sock" -c c0 -q 8 -w randrw --verify -t 1
	[ "$status" -eq 0 ]
	# config_save writes it back with its type and parameters.
	leapctl_t config save "$LEAPD_DIR/saved.json"
	[ "$(jq -r '[.[] | select(.method == "listener_add")][0].params.path' \
		"$LEAPD_DIR/saved.json")" = "$LEAPD_DIR/second.sock" ]
	[ "$(jq -r '[.[] | select(.method == "listener_add")][0].params.type' \
		"$LEAPD_DIR/saved.json")" = shm ]
	leapctl_t listener remove "$id"
	[ ! -e "$LEAPD_DIR/second.sock" ]
	run "$E2E_BUILD/bin/leap-perf" -s "$LEAPD_DIR/second.sock" -c c0 -q 8 -w randread -t 1
	[ "$status" -ne 0 ]
	# The saved config replays in a fresh leapd: the listener comes back.
	leapd_stop
	leapd_start "$LEAPD_DIR/saved.json"
	run "$E2E_BUILD/bin/leap-perf" -s "$LEAPD_DIR/second.sock" -c c0 -q 8 -w randrw --verify -t 1
	[ "$status" -eq 0 ]
}
