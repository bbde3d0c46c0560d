# SPDX-License-Identifier: BSD-3-Clause
#
# leapio build. Plain GNU make, out of tree into build/, one pass, automatic
# header dependencies (-MMD). Quiet unless V=1.
#
#   make            build everything (installs missing dependencies first)
#   make run        the main job on an embedded default
#   make test       every test tier; last line "N passed, M failed"
#   make bench      benchmarks; results appended to bench/RESULTS.md
#   make check-style

BUILD ?= build
# Always absolute: the -MMD dependency files name their objects by the path
# they were built under, and a make run with a relative BUILD does not
# match rules written by one with an absolute BUILD (the e2e install test,
# sub-makes): header changes were then not seen, and objects built against
# an old struct layout were linked with new ones.
override BUILD := $(abspath $(BUILD))
V ?= 0
Q := $(if $(filter 1,$(V)),,@)
E := $(if $(filter 1,$(V)),@:,@printf '  %-7s %s\n')

CC := gcc
CLANG ?= clang
BPFTOOL ?= bpftool

CPPFLAGS := -Iinclude -D_GNU_SOURCE
CFLAGS := -std=gnu11 -O2 -g -fno-strict-aliasing -Wall -Wextra -Werror -Wshadow \
	-Wno-unused-parameter -Wmissing-prototypes -MMD -MP $(SAN_CFLAGS)
# The unit tests include the .c under test and declare many static helpers.
TEST_CFLAGS := $(filter-out -Wmissing-prototypes,$(CFLAGS)) -Itests/unit -Iruntime
LDLIBS := -lbpf -lelf -lz -luring -ljansson -lpthread -lm
BPF_CFLAGS := -O2 -g -target bpf -mcpu=v3 -Wall -Werror -Iinclude \
	-I/usr/include/x86_64-linux-gnu

# ---- components -----------------------------------------------------
# Each component folder builds one static library from its *.c (runtime/
# from its whole tree: its subfolders are layers, checked by
# scripts/check-layers.sh); files named *_main.c are programs:
# dir/foo_bar_main.c -> build/bin/foo-bar. Listed in link order (users
# before what they use).
rwildcard = $(foreach d,$(wildcard $(1:=/*)),$(call rwildcard,$(d),$(2)) $(filter $(subst *,%,$(2)),$(d)))
COMPONENTS := client/leapctl client runtime loader bpf nvmf common
comp_srcs = $(if $(filter runtime,$(1)),$(call rwildcard,$(1),*.c),$(wildcard $(1)/*.c))
lib_srcs = $(filter-out %_main.c,$(call comp_srcs,$(1)))
lib_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(call lib_srcs,$(1)))
lib_file = $(BUILD)/lib/libleap_$(subst /,_,$(1)).a
LIBS := $(foreach c,$(COMPONENTS),$(if $(call lib_srcs,$(c)),$(call lib_file,$(c))))

MAIN_SRCS := $(foreach c,$(COMPONENTS),$(filter %_main.c,$(call comp_srcs,$(c))))
prog_name = $(subst _,-,$(patsubst %_main,%,$(notdir $(basename $(1)))))
PROGS := $(foreach s,$(MAIN_SRCS),$(BUILD)/bin/$(call prog_name,$(s)))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(TOOL_SRCS))
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

POLICY_OBJS := $(patsubst policies/%.bpf.c,$(BUILD)/policies/%.bpf.o,$(wildcard policies/*.bpf.c))
TEST_BPF_OBJS := $(patsubst tests/bpf/progs/%.bpf.c,$(BUILD)/tests/bpf/progs/%.bpf.o,\
	$(wildcard tests/bpf/progs/*.bpf.c))

DEPS_STAMP := $(BUILD)/.deps-stamp
LAYER_STAMP := $(BUILD)/.layers-ok

.PHONY: all deps deps-qemu test run bench bench-quick check-style clean
.DEFAULT_GOAL := all

all: $(PROGS) $(UNIT_BINS) $(TOOL_BINS) $(BENCH_BINS) $(POLICY_OBJS) $(TEST_BPF_OBJS)

# Dependencies: installed once per machine; the stamp is dropped by
# scripts/deps.sh only when every step succeeded. Order-only, so a fresh
# stamp does not rebuild anything.
$(DEPS_STAMP):
	$(E) DEPS scripts/deps.sh
	$(Q)BUILD=$(abspath $(BUILD)) scripts/deps.sh
deps:
	$(Q)BUILD=$(abspath $(BUILD)) scripts/deps.sh
deps-qemu:
	$(Q)BUILD=$(abspath $(BUILD)) scripts/deps.sh --qemu

# runtime/ includes its own headers by layer: "nvme/ctrl.h", "core/reactor.h".
$(BUILD)/obj/runtime/%.o: CPPFLAGS += -Iruntime
$(BUILD)/obj/%.o: %.c | $(DEPS_STAMP) $(LAYER_STAMP)
	$(E) CC $<
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

define lib_rule
$(call lib_file,$(1)): $(call lib_objs,$(1))
	$$(E) AR $$@
	$$(Q)mkdir -p $$(@D)
	$$(Q)rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach c,$(COMPONENTS),$(if $(call lib_srcs,$(c)),$(eval $(call lib_rule,$(c)))))

# Front-end and backend modules register themselves from constructors, which
# nothing else references: a program built from runtime/ links that library
# whole, or the linker would leave the modules out.
RUNTIME_LIB := $(call lib_file,runtime)
prog_libs = $(if $(filter runtime/%,$(1)),$(subst $(RUNTIME_LIB),-Wl$(comma)--whole-archive \
	$(RUNTIME_LIB) -Wl$(comma)--no-whole-archive,$(LIBS)),$(LIBS))
comma := ,
define prog_rule
$(BUILD)/bin/$(call prog_name,$(1)): $(patsubst %.c,$(BUILD)/obj/%.o,$(1)) $(LIBS)
	$$(E) LD $$@
	$$(Q)mkdir -p $$(@D)
	$$(Q)$$(CC) $$(CFLAGS) -o $$@ $$< $(call prog_libs,$(1)) $$(LDLIBS)
endef
$(foreach s,$(MAIN_SRCS),$(eval $(call prog_rule,$(s))))

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIBS) | $(DEPS_STAMP)
	$(E) CC $<
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(TEST_CFLAGS) -MF $@.d -o $@ $< $(LIBS) $(LDLIBS)

$(BUILD)/tests/tools/%: tests/tools/%.c $(LIBS) | $(DEPS_STAMP)
	$(E) CC $<
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(TEST_CFLAGS) -MF $@.d -o $@ $< $(LIBS) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIBS) | $(DEPS_STAMP)
	$(E) CC $<
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(TEST_CFLAGS) -MF $@.d -o $@ $< $(LIBS) $(LDLIBS)

$(BUILD)/policies/%.bpf.o: policies/%.bpf.c | $(DEPS_STAMP)
	$(E) BPF $<
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -MMD -MP -MF $@.d -c $< -o $@

$(BUILD)/tests/bpf/progs/%.bpf.o: tests/bpf/progs/%.bpf.c | $(DEPS_STAMP)
	$(E) BPF $<
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -MMD -MP -MF $@.d -c $< -o $@

# Layering: which folder may include which (scripts/check-layers.sh, the
# table in README.md). Re-checked whenever a source or header changes.
$(LAYER_STAMP): scripts/check-layers.sh $(shell find runtime client loader bpf nvmf common -name '*.[ch]')
	$(E) LAYERS scripts/check-layers.sh
	$(Q)scripts/check-layers.sh
	$(Q)mkdir -p $(@D) && touch $@

# ---- the two README commands ------------------------------------------
# QEMU and a guest kernel for the interop tier: after `all`, in the recipe, so
# two apt-get runs never race for the dpkg lock under make -j.
# The sanitizer tier runs against $(BUILD)/asan, the fuzz smoke against
# $(BUILD)/fuzz: both are built here, so tests/run.sh never skips them.
test: all asan fuzz-build
	$(Q)BUILD=$(abspath $(BUILD)) scripts/deps.sh --qemu
	$(Q)BUILD=$(abspath $(BUILD)) tests/run.sh

# The sanitizer tier alone (ASan+UBSan build in $(BUILD)/asan): what
# `make test` runs of it, for a quick look after a change.
test-asan: all asan
	$(Q)BUILD=$(abspath $(BUILD)) TEST_FILTER=asan/ tests/run.sh

run: all
	$(Q)BUILD=$(abspath $(BUILD)) scripts/run.sh

bench: all
	$(Q)BUILD=$(abspath $(BUILD)) bench/run.sh

bench-quick: all
	$(Q)BUILD=$(abspath $(BUILD)) QUICK=1 bench/run.sh

# ---- style --------------------------------------------------------------
STYLE_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
check-style:
	$(Q)clang-format --dry-run -Werror $(STYLE_SRCS)
	$(Q)if grep -nE '\b(strcpy|sprintf|atoi|strtok)[[:space:]]*\(' $(STYLE_SRCS); then \
		echo "check-style: banned function (strcpy/sprintf/atoi/strtok)"; exit 1; fi
	@echo "check-style: ok"

clean:
	$(Q)rm -rf $(BUILD)/obj $(BUILD)/lib $(BUILD)/bin $(BUILD)/tests $(BUILD)/bench \
		$(BUILD)/policies

-include $(shell find $(BUILD)/obj $(BUILD)/tests $(BUILD)/bench $(BUILD)/policies \
	-name '*.d' 2>/dev/null)

# ---- fio external ioengine ----------------------------------------------
# build/lib/leapio_fio.so = client/fio/*.c + the client library, compiled
# -fPIC (into obj-pic/, apart from the static libraries) and -fvisibility=
# hidden so only the engine's `ioengine` symbol is exported. Built against
# the configured fio tree in $(BUILD)/fio: its config-host.h fixes struct
# thread_data's layout, and fio rejects an engine whose FIO_IOOPS_VERSION
# differs, so run it with that tree's fio binary.
FIO_TREE ?= $(BUILD)/fio
FIO_SO := $(BUILD)/lib/leapio_fio.so
FIO_SO_SRCS := $(wildcard client/fio/*.c) $(filter-out %_main.c client/perf_%.c,$(wildcard client/*.c)) \
	common/fdpass.c $(wildcard nvmf/*.c) common/crc32c.c common/log.c
FIO_SO_OBJS := $(patsubst %.c,$(BUILD)/obj-pic/%.o,$(FIO_SO_SRCS))

all: $(FIO_SO)

$(BUILD)/obj-pic/client/fio/%.o: CPPFLAGS += -isystem $(FIO_TREE) -include $(FIO_TREE)/config-host.h
$(BUILD)/obj-pic/%.o: %.c | $(DEPS_STAMP)
	$(E) CC-PIC $<
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(FIO_SO): $(FIO_SO_OBJS)
	$(E) LD $@
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -shared -o $@ $^ -lpthread

# ---- sanitizer build (issue 11) ---------------------------------------------
# $(BUILD)/asan: leapd, leapctl, leap-perf, the test tools and unit tests built
# with AddressSanitizer + UndefinedBehaviorSanitizer (non-recovering), for the
# sanitizer tier of tests/run.sh. Its own object tree; dependencies are the
# main build's (no second fio).
# -Wno-error: the sanitizers change what gcc proves about value ranges (false
# format-truncation warnings); the main build is the one held to -Werror.
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
	-Wno-error
.PHONY: asan asan-targets clean-asan test-asan
asan: | $(DEPS_STAMP)
	$(Q)mkdir -p $(BUILD)/asan && touch $(BUILD)/asan/.deps-stamp
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SAN_CFLAGS="$(SAN_FLAGS)" asan-targets
asan-targets: $(PROGS) $(UNIT_BINS) $(TOOL_BINS) $(POLICY_OBJS) $(TEST_BPF_OBJS)
clean: clean-asan
clean-asan:
	$(Q)rm -rf $(BUILD)/asan

# ---- fuzzing (issue 11) ---------------------------------------------------------
# tests/fuzz/fuzz_*.c: libFuzzer harnesses, built by clang with ASan+UBSan
# into $(BUILD)/fuzz (its own object tree; the libraries instrumented for
# coverage). `make fuzz` runs each for FUZZ_SECONDS (default 600) over its
# checked-in seeds (tests/fuzz/corpus/NAME) and what it found before
# ($(BUILD)/fuzz/corpus/NAME); `make test` runs a short smoke of each.
FUZZ_SECONDS ?= 600
FUZZ_CFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer -Wno-error
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzzers/%,$(FUZZ_SRCS))
.PHONY: fuzz fuzz-build fuzz-targets clean-fuzz
fuzz-build: | $(DEPS_STAMP)
	$(Q)mkdir -p $(BUILD)/fuzz && touch $(BUILD)/fuzz/.deps-stamp
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/fuzz CC=$(CLANG) \
		SAN_CFLAGS="$(FUZZ_CFLAGS)" fuzz-targets
fuzz-targets: $(FUZZ_BINS) $(POLICY_OBJS) $(TEST_BPF_OBJS)
# The interpreter's threaded dispatch (one function, hundreds of labels) takes
# clang many minutes with UBSan or coverage: ASan only there (no harness
# targets the interpreter; the sanitizer tier checks it with gcc's UBSan).
ifneq ($(findstring fuzzer,$(SAN_CFLAGS)),)
$(BUILD)/obj/bpf/interp.o: CFLAGS += -fno-sanitize=undefined -fsanitize-coverage=0
endif
$(BUILD)/fuzzers/%: tests/fuzz/%.c $(LIBS) | $(DEPS_STAMP)
	$(E) FUZZ $<
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(TEST_CFLAGS) -Iruntime -fsanitize=fuzzer -MF $@.d -o $@ $< \
		$(LIBS) $(LDLIBS)
fuzz: fuzz-build
	$(Q)BUILD=$(abspath $(BUILD)) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh
clean: clean-fuzz
clean-fuzz:
	$(Q)rm -rf $(BUILD)/fuzz

# ---- install (issue 11) ----------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=]: the programs, the policy
# objects, the public headers, the tenant client library (static, with a
# pkg-config file), and leapd as a systemd service (unit, start wrapper,
# sysusers entry for group leapio). See README "Install and run as a service".
PREFIX ?= /usr/local
LEAPIO_VERSION := $(shell sed -n 's/^\#define LEAPD_VERSION[^"]*"\(.*\)"/\1/p' runtime/control/daemon.h)
CLIENT_LIB := $(BUILD)/lib/libleapio-client.a
INST = $(DESTDIR)$(PREFIX)
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(LEAPIO_VERSION)|g'
.PHONY: install
$(CLIENT_LIB): $(call lib_objs,client) $(call lib_objs,common)
	$(E) AR $@
	$(Q)mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^
install: all $(CLIENT_LIB)
	$(E) INSTALL $(INST)
	$(Q)install -d $(INST)/bin $(INST)/lib/leapio/policies $(INST)/include/leapio \
		$(INST)/lib/pkgconfig $(INST)/lib/systemd/system $(INST)/lib/sysusers.d \
		$(INST)/libexec/leapio $(INST)/share/doc/leapio
	$(Q)install -m 0755 $(PROGS) $(INST)/bin/
	$(Q)install -m 0644 $(POLICY_OBJS) $(INST)/lib/leapio/policies/
	$(Q)install -m 0644 include/leapio/*.h $(INST)/include/leapio/
	$(Q)install -m 0644 $(CLIENT_LIB) $(INST)/lib/
	$(Q)$(SUBST) scripts/install/leapio-client.pc.in >$(INST)/lib/pkgconfig/leapio-client.pc
	$(Q)$(SUBST) scripts/install/leapd.service.in >$(INST)/lib/systemd/system/leapd.service
	$(Q)$(SUBST) scripts/install/leapd-start.in >$(INST)/libexec/leapio/leapd-start
	$(Q)chmod 0755 $(INST)/libexec/leapio/leapd-start
	$(Q)install -m 0644 scripts/install/leapio-sysusers.conf $(INST)/lib/sysusers.d/leapio.conf
	$(Q)install -m 0644 README.md $(INST)/share/doc/leapio/

.PHONY: clean-fio-so
clean: clean-fio-so
clean-fio-so:
	$(Q)rm -rf $(BUILD)/obj-pic $(FIO_SO)

-include $(shell find $(BUILD)/obj-pic -name '*.d' 2>/dev/null)
