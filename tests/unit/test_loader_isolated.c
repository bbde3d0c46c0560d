// SPDX-License-Identifier: BSD-3-Clause
/*
 * The loader tests again, every load through the helper process
 * (leap_obj_opts.isolate, loader/loader_isolate.c): same objects, same
 * messages, same leak checks, plus corrupt objects that crash libbpf.
 */
#define LOADER_ISOLATE true
#include "test_loader.c"
