// SPDX-License-Identifier: BSD-3-Clause
/*
 * bdev registry and the behaviour every backend shares: data written reads
 * back byte for byte, Write Zeroes / Deallocate read back as zeroes without
 * touching neighbours, Flush succeeds, callbacks come only from poll() in
 * submission order, many I/Os in flight each complete exactly once, and the
 * channel counters add up. Each data test runs on mem, uring O_DIRECT and
 * uring buffered; uring-only features live in test_bdev_uring.c.
 */
#include "test_bdev_helpers.h"

LEAP_BDEV_MODULE_USE(leap_bdev_mem_ops);
LEAP_BDEV_MODULE_USE(leap_bdev_null_ops);
LEAP_BDEV_MODULE_USE(leap_bdev_uring_ops);

enum kind { K_MEM, K_URING_DIRECT, K_URING_BUFFERED, K_NULL };
static const char *const kind_names[] = { "mem", "uring-direct", "uring-buffered", "null" };

static struct leap_bdev *mk(enum kind k, uint64_t size, uint32_t bs)
{
	const char *name = t_name();
	json_t *p = json_pack("{s:s, s:I, s:i}", "name", name, "size", (json_int_t)size,
			      "block_size", (int)bs);
	struct leap_bdev *b = NULL;
	char leaf[32];
	const char *path;

	switch (k) {
	case K_MEM:
		json_object_set_new(p, "type", json_string("mem"));
		break;
	case K_NULL:
		json_object_set_new(p, "type", json_string("null"));
		break;
	default:
		snprintf(leaf, sizeof(leaf), "%s.img", name);
		path = t_path(leaf);
		if (!path) {
			json_decref(p);
			return NULL;
		}
		json_object_set_new(p, "type", json_string("uring"));
		json_object_set_new(p, "path", json_string(path));
		json_object_set_new(p, "buffered", json_boolean(k == K_URING_BUFFERED));
		break;
	}
	if (t_create(p, &b))
		return NULL;
	return b;
}

/* The bdev's file, if it has one (from its own config: uring's "path"). */
static void bdev_path(const struct leap_bdev *b, char *path, size_t len)
{
	json_t *cfg = leap_bdev_config(b);
	const char *p = json_string_value(json_object_get(cfg, "path"));

	snprintf(path, len, "%s", p ? p : "");
	json_decref(cfg);
}

static void rm(struct leap_bdev *b)
{
	char path[256];

	bdev_path(b, path, sizeof(path));
	leap_bdev_destroy(b);
	if (path[0])
		unlink(path);
}

/* ---- registry and validation ------------------------------------------ */

/* Create from JSON text; on failure *msg is the registry's message. */
static int mkj(const char *text, struct leap_bdev **out)
{
	json_error_t jerr;
	json_t *p = json_loads(text, 0, &jerr);

	if (!p)
		T_FAIL("bad JSON in the test: %s", jerr.text);
	return t_create(p, out);
}

static void test_registry_errors(void)
{
	struct leap_bdev *a = NULL, *b = NULL;

	T_ASSERT_EQ(mkj("{\"type\":\"mem\",\"name\":\"dup\",\"size\":1048576}", &a), 0);
	T_ASSERT_EQ(mkj("{\"type\":\"mem\",\"name\":\"dup\",\"size\":1048576}", &b), -EEXIST);
	T_ASSERT_STR_EQ(t_err.msg, "bdev 'dup' already exists");
	/* Same name, other type: still taken. */
	T_ASSERT_EQ(mkj("{\"type\":\"null\",\"name\":\"dup\",\"size\":1048576}", &b), -EEXIST);
	T_ASSERT(leap_bdev_find("other") == NULL);

	/* A referenced bdev cannot go away; the last put lets it. */
	T_ASSERT(leap_bdev_get("dup") == a);
	T_ASSERT(leap_bdev_get("dup") == a);
	T_ASSERT_EQ(a->refs, 2);
	T_ASSERT_EQ(leap_bdev_destroy(a), -EBUSY);
	leap_bdev_put(a);
	T_ASSERT_EQ(leap_bdev_destroy(a), -EBUSY);
	leap_bdev_put(a);
	T_ASSERT(leap_bdev_get("nope") == NULL);
	T_ASSERT_EQ(leap_bdev_destroy(a), 0);
	T_ASSERT(leap_bdev_find("dup") == NULL);
	T_ASSERT_EQ(leap_bdev_destroy(a), -ENOENT);
	T_ASSERT_EQ(leap_bdev_destroy(NULL), -EINVAL);
}

/* Every refusal: -EINVAL, the exact message, no callback, nothing registered. */
static void test_validation_messages(void)
{
	static const struct {
		const char *params, *msg;
	} cases[] = {
		/* the registry's common keys */
		{ "[1]", "invalid params: expected an object of named parameters" },
		{ "{\"type\":\"mem\",\"size\":4096}",
		  "invalid params: missing required field 'name'" },
		{ "{\"name\":\"v\",\"size\":4096}",
		  "invalid params: missing required field 'type'" },
		{ "{\"name\":7,\"type\":\"mem\"}", "invalid params: 'name' must be a string" },
		{ "{\"name\":\"\",\"type\":\"mem\",\"size\":4096}",
		  "invalid params: 'name' must be 1..63 characters" },
		{ "{\"name\":\"0123456789012345678901234567890123456789012345678901234567890123\","
		  "\"type\":\"mem\",\"size\":4096}",
		  "invalid params: 'name' must be 1..63 characters" },
		{ "{\"name\":\"v\",\"type\":\"floppy\",\"size\":4096}",
		  "invalid params: 'type' must be mem, null or uring, got 'floppy'" },
		{ "{\"name\":\"v\",\"type\":\"mem\",\"size\":\"big\"}",
		  "invalid params: 'size' must be a non-negative integer" },
		{ "{\"name\":\"v\",\"type\":\"mem\",\"size\":-4096}",
		  "invalid params: 'size' must be a non-negative integer" },
		{ "{\"name\":\"v\",\"type\":\"mem\",\"size\":4096,\"block_size\":1024}",
		  "invalid params: 'block_size' must be 512 or 4096, got 1024" },
		{ "{\"name\":\"v\",\"type\":\"mem\",\"size\":4096,\"block_size\":true}",
		  "invalid params: 'block_size' must be a non-negative integer" },
		{ "{\"name\":\"v\",\"type\":\"mem\",\"size\":12800,\"block_size\":4096}",
		  "invalid params: 'size' 12800 is not a multiple of the block size 4096" },
		{ "{\"name\":\"v\",\"type\":\"mem\",\"size\":1000}",
		  "invalid params: 'size' 1000 is not a multiple of the block size 512" },
		/* mem's and null's own */
		{ "{\"name\":\"v\",\"type\":\"mem\",\"size\":4096,\"colour\":\"red\"}",
		  "invalid params: unknown field 'colour'" },
		{ "{\"name\":\"v\",\"type\":\"mem\",\"size\":4096,\"path\":\"/x\"}",
		  "invalid params: unknown field 'path'" },
		{ "{\"name\":\"v\",\"type\":\"mem\"}",
		  "invalid params: 'size' is required for a mem bdev" },
		{ "{\"name\":\"v\",\"type\":\"null\",\"size\":0}",
		  "invalid params: 'size' is required for a null bdev" },
		{ "{\"name\":\"v\",\"type\":\"null\",\"size\":4096,\"queue_depth\":8}",
		  "invalid params: unknown field 'queue_depth'" },
		/* uring's own */
		{ "{\"name\":\"v\",\"type\":\"uring\",\"size\":4096}",
		  "invalid params: 'path' is required for a uring bdev" },
		{ "{\"name\":\"v\",\"type\":\"uring\",\"path\":\"\"}",
		  "invalid params: 'path' is required for a uring bdev" },
		{ "{\"name\":\"v\",\"type\":\"uring\",\"path\":5}",
		  "invalid params: 'path' must be a string" },
		{ "{\"name\":\"v\",\"type\":\"uring\",\"path\":\"/x\",\"buffered\":\"yes\"}",
		  "invalid params: 'buffered' must be a boolean" },
		{ "{\"name\":\"v\",\"type\":\"uring\",\"path\":\"/x\",\"queue_depth\":0}",
		  "invalid params: 'queue_depth' must be in [1, 4096], got 0" },
		{ "{\"name\":\"v\",\"type\":\"uring\",\"path\":\"/x\",\"queue_depth\":8192}",
		  "invalid params: 'queue_depth' must be in [1, 4096], got 8192" },
		{ "{\"name\":\"v\",\"type\":\"uring\",\"path\":\"/x\",\"qd\":8}",
		  "invalid params: unknown field 'qd'" },
	};
	struct leap_bdev *b;

	for (size_t i = 0; i < LEAP_ARRAY_SIZE(cases); i++) {
		b = (struct leap_bdev *)1;
		if (mkj(cases[i].params, &b) != -EINVAL || b != NULL)
			T_FAIL("case %zu (%s): not refused with -EINVAL", i, cases[i].params);
		if (strcmp(t_err.msg, cases[i].msg) != 0)
			T_FAIL("case %zu (%s): message '%s', want '%s'", i, cases[i].params,
			       t_err.msg, cases[i].msg);
		T_ASSERT(leap_bdev_find("v") == NULL);
	}
	/* The uring path long enough to overflow its field. */
	{
		char path[300], text[400];

		memset(path, 'p', sizeof(path) - 1);
		path[sizeof(path) - 1] = 0;
		snprintf(text, sizeof(text), "{\"name\":\"v\",\"type\":\"uring\",\"path\":\"/%s\"}",
			 path);
		T_ASSERT_EQ(mkj(text, &b), -EINVAL);
		T_ASSERT_STR_EQ(t_err.msg, "invalid params: 'path' must be shorter than 256 bytes");
	}
	/* A creation failure after validation goes through the callback with its reason. */
	T_ASSERT_EQ(mkj("{\"name\":\"v\",\"type\":\"uring\",\"path\":\"/proc/nope/v.img\"}", &b),
		    -ENOENT);
	T_ASSERT_STR_EQ(t_err.msg, "open /proc/nope/v.img: No such file or directory");
	T_ASSERT(leap_bdev_find("v") == NULL);
	/* And the name is free again. */
	T_ASSERT_EQ(mkj("{\"name\":\"v\",\"type\":\"null\",\"size\":4096}", &b), 0);
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
}

static void test_registry_find_next(void)
{
	const char *names[] = { "r0", "r1", "r2" };
	struct leap_bdev *b[3], *it;
	int seen = 0;

	for (int i = 0; i < 3; i++)
		T_ASSERT_EQ(t_create(json_pack("{s:s, s:s, s:i}", "type", i == 1 ? "null" : "mem",
					       "name", names[i], "size", 8192),
				     &b[i]),
			    0);
	T_ASSERT(leap_bdev_find("r1") == b[1]);
	T_ASSERT_STR_EQ(b[1]->type, "null");
	T_ASSERT_EQ(b[1]->block_size, 512);
	T_ASSERT_U64_EQ(b[2]->size, 8192);
	/* Creation order, each exactly once (other cases may have left none). */
	for (it = leap_bdev_next(NULL); it; it = leap_bdev_next(it)) {
		for (int i = 0; i < 3; i++)
			if (it == b[i]) {
				T_ASSERT_EQ(seen, i);
				seen++;
			}
	}
	T_ASSERT_EQ(seen, 3);
	T_ASSERT_EQ(leap_bdev_destroy(b[1]), 0);
	T_ASSERT(leap_bdev_next(b[0]) == b[2]);
	T_ASSERT_EQ(leap_bdev_destroy(b[0]), 0);
	T_ASSERT_EQ(leap_bdev_destroy(b[2]), 0);
}

/* Modules are listed in type order, whatever the link order. */
static void test_modules_registered(void)
{
	const char *want[] = { "mem", "null", "uring" };
	const struct leap_bdev_ops *m = NULL;
	size_t n = 0;

	while ((m = leap_bdev_module_next(m)) != NULL) {
		T_ASSERT(n < LEAP_ARRAY_SIZE(want));
		T_ASSERT_STR_EQ(m->type, want[n]);
		n++;
	}
	T_ASSERT_EQ(n, 3);
	/* A second module of a type is refused; the first stays. */
	{
		static const struct leap_bdev_ops impostor = { .type = "mem" };

		leap_bdev_module_register(&impostor);
		T_ASSERT(leap_bdev_module_next(NULL) == &leap_bdev_mem_ops);
		T_ASSERT(leap_bdev_module_next(&leap_bdev_mem_ops) == &leap_bdev_null_ops);
	}
}

/*
 * config_save's promise: the object write_config gives back rebuilds the
 * same bdev (same config, same geometry), for every backend, with
 * resolved values (uring: the size found in the file, the default depth).
 */
static void roundtrip(const char *text)
{
	struct leap_bdev *b = NULL, *b2 = NULL;
	json_t *cfg, *cfg2;

	T_ASSERT_EQ(mkj(text, &b), 0);
	cfg = leap_bdev_config(b);
	T_ASSERT(cfg);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(cfg, "name")), b->name);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(cfg, "type")), b->type);
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
	T_ASSERT_EQ(leap_bdev_create_wait(cfg, &b2, &t_err), 0);
	cfg2 = leap_bdev_config(b2);
	if (!json_equal(cfg, cfg2)) {
		char *x = json_dumps(cfg, JSON_COMPACT), *y = json_dumps(cfg2, JSON_COMPACT);

		T_FAIL("config changed across a round trip: %s vs %s", x, y);
	}
	T_ASSERT_U64_EQ(b2->size, json_integer_value(json_object_get(cfg, "size")));
	json_decref(cfg);
	json_decref(cfg2);
	rm(b2);
}

static void test_write_config_roundtrip_mem(void)
{
	roundtrip("{\"name\":\"rt\",\"type\":\"mem\",\"size\":1048576,\"block_size\":4096}");
}

static void test_write_config_roundtrip_null(void)
{
	roundtrip("{\"name\":\"rt\",\"type\":\"null\",\"size\":1073741824}");
}

static void test_write_config_roundtrip_uring(void)
{
	const char *path = t_path("rt.img");
	char text[512];
	struct leap_bdev *b = NULL;
	json_t *cfg;
	int fd;

	if (!path)
		T_SKIP("no filesystem with O_DIRECT");
	/* A file of 1 MiB + 100 bytes and no size asked: the config says 1 MiB. */
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	T_ASSERT(fd >= 0);
	T_ASSERT_EQ(ftruncate(fd, (1 << 20) + 100), 0);
	close(fd);
	snprintf(text, sizeof(text),
		 "{\"name\":\"rt\",\"type\":\"uring\",\"path\":\"%s\",\"buffered\":true}", path);
	T_ASSERT_EQ(mkj(text, &b), 0);
	cfg = leap_bdev_config(b);
	T_ASSERT_U64_EQ(json_integer_value(json_object_get(cfg, "size")), 1 << 20);
	T_ASSERT_EQ(json_integer_value(json_object_get(cfg, "queue_depth")), 256);
	T_ASSERT(json_is_true(json_object_get(cfg, "buffered")));
	T_ASSERT_STR_EQ(json_string_value(json_object_get(cfg, "path")), path);
	T_ASSERT_EQ(json_object_size(cfg), 7);
	json_decref(cfg);
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
	snprintf(text, sizeof(text),
		 "{\"name\":\"rt\",\"type\":\"uring\",\"path\":\"%s\",\"size\":2097152,"
		 "\"block_size\":4096,\"queue_depth\":64}",
		 path);
	roundtrip(text);
	unlink(path);
}

/* bdev_list's view: common keys, then the module's own state. */
static void test_info(void)
{
	struct leap_bdev *m = mk(K_MEM, 1 << 20, 4096), *u = mk(K_URING_BUFFERED, 1 << 20, 512);
	json_t *im, *iu;

	T_ASSERT(m && u);
	im = leap_bdev_info(m);
	iu = leap_bdev_info(u);
	T_ASSERT_STR_EQ(json_string_value(json_object_get(im, "type")), "mem");
	T_ASSERT_EQ(json_integer_value(json_object_get(im, "blocks")), 256);
	T_ASSERT_EQ(json_integer_value(json_object_get(im, "namespaces")), 0);
	T_ASSERT(json_object_get(im, "path") == NULL); /* mem has no dump_info */
	T_ASSERT(json_is_true(json_object_get(iu, "buffered")));
	T_ASSERT_EQ(json_integer_value(json_object_get(iu, "mem_align")), 1);
	{
		char path[256];

		bdev_path(u, path, sizeof(path));
		T_ASSERT(path[0] == '/');
		T_ASSERT_STR_EQ(json_string_value(json_object_get(iu, "path")), path);
	}
	json_decref(im);
	json_decref(iu);
	/* Every backend takes every op today. */
	for (int op = 0; op < LEAP_BDEV_OP_CNT; op++) {
		T_ASSERT(leap_bdev_io_type_supported(m, op));
		T_ASSERT(leap_bdev_io_type_supported(u, op));
	}
	rm(m);
	rm(u);
}

/* -errno -> NVMe status, per op. */
static void test_status_from_errno(void)
{
	T_ASSERT_EQ(leap_bdev_status_from_errno(0, LEAP_BDEV_OP_READ), 0);
	T_ASSERT_EQ(leap_bdev_status_from_errno(-EIO, LEAP_BDEV_OP_READ),
		    NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_UNRECOVERED_READ_ERROR));
	T_ASSERT_EQ(leap_bdev_status_from_errno(-ENODATA, LEAP_BDEV_OP_READ),
		    NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_UNRECOVERED_READ_ERROR));
	for (int op = LEAP_BDEV_OP_WRITE; op < LEAP_BDEV_OP_CNT; op++)
		T_ASSERT_EQ(leap_bdev_status_from_errno(-EIO, op),
			    NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULTS));
	T_ASSERT_EQ(leap_bdev_status_from_errno(-EFAULT, LEAP_BDEV_OP_WRITE),
		    NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_TRANSFER_ERROR));
	T_ASSERT_EQ(leap_bdev_status_from_errno(-ENOSPC, LEAP_BDEV_OP_WRITE),
		    NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_CAPACITY_EXCEEDED));
	T_ASSERT_EQ(leap_bdev_status_from_errno(-EDQUOT, LEAP_BDEV_OP_WRITE_ZEROES),
		    NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_CAPACITY_EXCEEDED));
	T_ASSERT_EQ(leap_bdev_status_from_errno(-EROFS, LEAP_BDEV_OP_WRITE),
		    NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_ACCESS_DENIED));
	T_ASSERT_EQ(leap_bdev_status_from_errno(-ECANCELED, LEAP_BDEV_OP_READ),
		    NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_ABORTED_BY_REQUEST));
	T_ASSERT_EQ(leap_bdev_status_from_errno(-EINVAL, LEAP_BDEV_OP_FLUSH),
		    NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR));
	T_ASSERT_EQ(leap_bdev_status_from_errno(-ENOMEM, LEAP_BDEV_OP_READ),
		    NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR));
}

/* ---- data paths, per backend ---------------------------------------- */

static void rw_pattern(enum kind k)
{
	const size_t len = 64 * 1024;
	struct leap_bdev *b = mk(k, 4 << 20, 512);
	struct leap_bdev_channel *ch = NULL;
	uint8_t *w = abuf(len), *r = abuf(len);

	T_ASSERT(b && w && r);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	/* Write as 4 segments, read back as 1 and as 8: layout must not matter. */
	pattern_fill(w, len, 12288, 7);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 12288, w, len, 4), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 12288, r, len, 1), 0);
	T_ASSERT(pattern_check(r, len, 12288, 7));
	memset(r, 0, len);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 12288, r, len, 8), 0);
	T_ASSERT(pattern_check(r, len, 12288, 7));
	/* Overwrite part with another seed: only that part changes. */
	pattern_fill(w, 4096, 16384, 9);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 16384, w, 4096, 1), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 12288, r, len, 2), 0);
	T_ASSERT(pattern_check(r, 4096, 12288, 7));
	T_ASSERT(pattern_check(r + 4096, 4096, 16384, 9));
	T_ASSERT(pattern_check(r + 8192, len - 8192, 12288 + 8192, 7));
	/* Never written: zeroes (mem is anonymous memory, uring a sparse file). */
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 1 << 20, r, len, 1), 0);
	T_ASSERT(all_zero(r, len));
	/* Last block of the device. */
	pattern_fill(w, 512, (4 << 20) - 512, 3);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, (4 << 20) - 512, w, 512, 1), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, (4 << 20) - 512, r, 512, 1), 0);
	T_ASSERT(pattern_check(r, 512, (4 << 20) - 512, 3));
	/* FUA write completes and is visible. */
	pattern_fill(w, 4096, 0, 11);
	{
		struct tio t;

		tio_init(&t, LEAP_BDEV_OP_WRITE, 0, w, 4096, 1);
		t.io.flags = LEAP_BDEV_IO_FUA;
		T_ASSERT_EQ(t_submit(ch, &t), 0);
		T_ASSERT_EQ(t_wait(ch, &t.calls, 1), 1);
		T_ASSERT_EQ(t.status, 0);
	}
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, r, 4096, 1), 0);
	T_ASSERT(pattern_check(r, 4096, 0, 11));
	T_ASSERT_EQ(ch->inflight, 0);
	T_ASSERT_U64_EQ(ch->stats.submitted, 10);
	T_ASSERT_U64_EQ(ch->stats.completed, 10);
	T_ASSERT_U64_EQ(ch->stats.errors, 0);
	T_ASSERT_U64_EQ(ch->stats.bytes_written, len + 4096 + 512 + 4096);
	T_ASSERT_U64_EQ(ch->stats.bytes_read, 4 * len + 512 + 4096);
	leap_bdev_channel_close(ch);
	rm(b);
	free(w);
	free(r);
}

/*
 * Zero a range that starts and ends mid-page (block aligned only), and one
 * big page-aligned range (mem: the MADV_DONTNEED path); neighbours keep data.
 */
static void zeroes(enum kind k, int op)
{
	const size_t len = 2 << 20;
	struct leap_bdev *b = mk(k, len, 512);
	struct leap_bdev_channel *ch = NULL;
	uint8_t *w = abuf(len), *r = abuf(len);
	const uint64_t z1 = 4096 + 1536, n1 = 8192 + 1024; /* odd 512-multiples */
	const uint64_t z2 = 256 * 1024, n2 = 1 << 20;

	T_ASSERT(b && w && r);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	pattern_fill(w, len, 0, 5);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, w, len, 1), 0);
	T_ASSERT_EQ(t_io(ch, op, z1, NULL, n1, 0), 0);
	T_ASSERT_EQ(t_io(ch, op, z2, NULL, n2, 0), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, r, len, 4), 0);
	T_ASSERT(pattern_check(r, z1, 0, 5));
	T_ASSERT(all_zero(r + z1, n1));
	T_ASSERT(pattern_check(r + z1 + n1, z2 - z1 - n1, z1 + n1, 5));
	T_ASSERT(all_zero(r + z2, n2));
	T_ASSERT(pattern_check(r + z2 + n2, len - z2 - n2, z2 + n2, 5));
	/* The zeroed range is writable again. */
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, z2, w + z2, 4096, 1), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, z2, r, 4096, 1), 0);
	T_ASSERT(pattern_check(r, 4096, z2, 5));
	T_ASSERT_U64_EQ(ch->stats.errors, 0);
	leap_bdev_channel_close(ch);
	rm(b);
	free(w);
	free(r);
}

static void flush(enum kind k)
{
	struct leap_bdev *b = mk(k, 1 << 20, 4096);
	struct leap_bdev_channel *ch = NULL;
	uint8_t *w = abuf(8192);

	T_ASSERT(b && w);
	T_ASSERT_EQ(b->block_size, 4096);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_FLUSH, 0, NULL, 0, 0), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 8192, w, 8192, 2), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_FLUSH, 0, NULL, 0, 0), 0);
	T_ASSERT_U64_EQ(ch->stats.completed, 3);
	leap_bdev_channel_close(ch);
	rm(b);
	free(w);
}

/*
 * 256 writes in flight, then 256 reads: each callback exactly once with 0,
 * each block holds its own writer's data. A callback never runs in submit().
 */
static void many_inflight(enum kind k)
{
	enum { N = 256, BS = 4096 };
	static struct tio t[N];
	struct leap_bdev *b = mk(k, (uint64_t)N * BS, BS);
	struct leap_bdev_channel *ch = NULL;
	uint8_t *buf = abuf((size_t)N * BS);
	int total = 0;

	T_ASSERT(b && buf);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	for (int pass = 0; pass < 2; pass++) {
		int op = pass ? LEAP_BDEV_OP_READ : LEAP_BDEV_OP_WRITE;

		if (pass)
			memset(buf, 0, (size_t)N * BS);
		for (int i = 0; i < N; i++) {
			/* Reverse block order so buffer i never sits at offset i*BS by luck. */
			uint64_t off = (uint64_t)(N - 1 - i) * BS;

			if (!pass)
				pattern_fill(buf + i * BS, BS, off, 21);
			tio_init(&t[i], op, off, buf + i * BS, BS, 1);
			T_ASSERT_EQ(t_submit(ch, &t[i]), 0);
		}
		total = 0;
		for (uint64_t end = t_now_ns() + GUARD_NS; ch->inflight && t_now_ns() < end;)
			leap_bdev_poll(ch);
		for (int i = 0; i < N; i++) {
			T_ASSERT_EQ(t[i].calls, 1);
			T_ASSERT_EQ(t[i].status, 0);
			total += t[i].calls;
		}
		T_ASSERT_EQ(total, N);
	}
	for (int i = 0; i < N; i++)
		if (k != K_NULL && !pattern_check(buf + i * BS, BS, (uint64_t)(N - 1 - i) * BS, 21))
			T_FAIL("%s: block %d holds the wrong data", kind_names[k], i);
	T_ASSERT_U64_EQ(ch->stats.completed, 2 * N);
	leap_bdev_channel_close(ch);
	rm(b);
	free(buf);
}

/* A callback that submits the next I/O: a chain of 100 on one tio. */
struct chain {
	struct tio t;
	struct leap_bdev_channel *ch;
	int left, fails;
};

static void chain_cb(struct leap_bdev_io *io, uint16_t status)
{
	struct chain *c = leap_container_of(io, struct chain, t.io);

	if (status)
		c->fails++;
	if (--c->left > 0) {
		io->offset = (io->offset + 4096) % (1 << 20);
		if (leap_bdev_submit(c->ch, io))
			c->fails++;
	}
}

static void resubmit_from_callback(enum kind k)
{
	struct leap_bdev *b = mk(k, 1 << 20, 512);
	struct chain c = { .left = 100 };
	uint8_t *buf = abuf(4096);

	T_ASSERT(b && buf);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &c.ch), 0);
	tio_init(&c.t, LEAP_BDEV_OP_READ, 0, buf, 4096, 1);
	c.t.io.cb = chain_cb;
	T_ASSERT_EQ(leap_bdev_submit(c.ch, &c.t.io), 0);
	for (uint64_t end = t_now_ns() + GUARD_NS; c.left > 0 && t_now_ns() < end;)
		leap_bdev_poll(c.ch);
	T_ASSERT_EQ(c.left, 0);
	T_ASSERT_EQ(c.fails, 0);
	T_ASSERT_U64_EQ(c.ch->stats.completed, 100);
	T_ASSERT_EQ(c.ch->inflight, 0);
	leap_bdev_channel_close(c.ch);
	rm(b);
	free(buf);
}

#define PER_KIND(fn, k)                                                                            \
	static void test_##fn##_##k(void)                                                          \
	{                                                                                          \
		fn(k);                                                                             \
	}

PER_KIND(rw_pattern, K_MEM)
PER_KIND(rw_pattern, K_URING_DIRECT)
PER_KIND(rw_pattern, K_URING_BUFFERED)
PER_KIND(flush, K_MEM)
PER_KIND(flush, K_NULL)
PER_KIND(flush, K_URING_DIRECT)
PER_KIND(flush, K_URING_BUFFERED)
PER_KIND(many_inflight, K_MEM)
PER_KIND(many_inflight, K_NULL)
PER_KIND(many_inflight, K_URING_DIRECT)
PER_KIND(resubmit_from_callback, K_MEM)
PER_KIND(resubmit_from_callback, K_NULL)
PER_KIND(resubmit_from_callback, K_URING_DIRECT)

static void test_write_zeroes_mem(void)
{
	zeroes(K_MEM, LEAP_BDEV_OP_WRITE_ZEROES);
}
static void test_deallocate_mem(void)
{
	zeroes(K_MEM, LEAP_BDEV_OP_DEALLOCATE);
}
static void test_write_zeroes_uring_direct(void)
{
	zeroes(K_URING_DIRECT, LEAP_BDEV_OP_WRITE_ZEROES);
}
static void test_deallocate_uring_direct(void)
{
	zeroes(K_URING_DIRECT, LEAP_BDEV_OP_DEALLOCATE);
}
static void test_write_zeroes_uring_buffered(void)
{
	zeroes(K_URING_BUFFERED, LEAP_BDEV_OP_WRITE_ZEROES);
}
static void test_deallocate_uring_buffered(void)
{
	zeroes(K_URING_BUFFERED, LEAP_BDEV_OP_DEALLOCATE);
}

/* ---- mem and null specifics ----------------------------------------- */

/* Completions come from poll(), never submit(), in submission order. */
static void order_from_poll(enum kind k)
{
	struct leap_bdev *b = mk(k, 1 << 20, 512);
	struct leap_bdev_channel *ch = NULL;
	uint8_t *buf = abuf(3 * 4096);
	struct tio t[3];

	T_ASSERT(b && buf);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	tio_init(&t[0], LEAP_BDEV_OP_WRITE, 0, buf, 4096, 1);
	tio_init(&t[1], LEAP_BDEV_OP_FLUSH, 0, NULL, 0, 0);
	tio_init(&t[2], LEAP_BDEV_OP_READ, 8192, buf + 8192, 4096, 1);
	tio_seq = 0;
	for (int i = 0; i < 3; i++)
		T_ASSERT_EQ(leap_bdev_submit(ch, &t[i].io), 0);
	T_ASSERT_EQ(t[0].calls + t[1].calls + t[2].calls, 0);
	T_ASSERT_EQ(ch->inflight, 3);
	T_ASSERT_EQ(leap_bdev_poll(ch), 3);
	for (int i = 0; i < 3; i++) {
		T_ASSERT_EQ(t[i].calls, 1);
		T_ASSERT_EQ(t[i].order, i);
	}
	T_ASSERT_EQ(leap_bdev_poll(ch), 0);
	T_ASSERT_EQ(ch->inflight, 0);
	/* No wake fd: may sleep only with nothing in flight. */
	T_ASSERT_EQ(leap_bdev_channel_wake_fd(ch), -1);
	T_ASSERT(leap_bdev_channel_sleep_prepare(ch));
	T_ASSERT_EQ(leap_bdev_submit(ch, &t[0].io), 0);
	T_ASSERT(!leap_bdev_channel_sleep_prepare(ch));
	leap_bdev_channel_sleep_done(ch);
	T_ASSERT_EQ(leap_bdev_poll(ch), 1);
	T_ASSERT_EQ(leap_bdev_region_register(ch, buf, 4096), -EOPNOTSUPP);
	leap_bdev_channel_close(ch);
	rm(b);
	free(buf);
}

static void test_order_from_poll_mem(void)
{
	order_from_poll(K_MEM);
}

static void test_order_from_poll_null(void)
{
	order_from_poll(K_NULL);
}

static void test_null_leaves_data_alone(void)
{
	struct leap_bdev *b = mk(K_NULL, 1 << 30, 4096);
	struct leap_bdev_channel *ch = NULL;
	uint8_t *buf = abuf(8192);

	T_ASSERT(b && buf);
	T_ASSERT_U64_EQ(b->size, 1 << 30);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	pattern_fill(buf, 8192, 0, 1);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, buf, 8192, 2), 0);
	memset(buf, 0xA5, 8192);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, buf, 8192, 2), 0);
	for (int i = 0; i < 8192; i++)
		if (buf[i] != 0xA5)
			T_FAIL("null read touched byte %d", i);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE_ZEROES, 0, NULL, 1 << 20, 0), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_DEALLOCATE, 0, NULL, 1 << 20, 0), 0);
	T_ASSERT_U64_EQ(ch->stats.bytes_read, 8192);
	leap_bdev_channel_close(ch);
	rm(b);
	free(buf);
}

/* Two channels on one mem bdev see each other's writes (one shared store). */
static void test_mem_channels_share_data(void)
{
	struct leap_bdev *b = mk(K_MEM, 1 << 20, 512);
	struct leap_bdev_channel *c1 = NULL, *c2 = NULL;
	uint8_t *w = abuf(4096), *r = abuf(4096);

	T_ASSERT(b && w && r);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &c1), 0);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &c2), 0);
	pattern_fill(w, 4096, 512, 77);
	T_ASSERT_EQ(t_io(c1, LEAP_BDEV_OP_WRITE, 512, w, 4096, 1), 0);
	T_ASSERT_EQ(t_io(c2, LEAP_BDEV_OP_READ, 512, r, 4096, 1), 0);
	T_ASSERT(pattern_check(r, 4096, 512, 77));
	leap_bdev_channel_close(c1);
	leap_bdev_channel_close(c2);
	rm(b);
	free(w);
	free(r);
}

static void quiet(enum leap_log_level l, const char *s, const char *f, va_list ap, void *c)
{
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_registry_errors),
		TAP_CASE(test_validation_messages),
		TAP_CASE(test_registry_find_next),
		TAP_CASE(test_modules_registered),
		TAP_CASE(test_write_config_roundtrip_mem),
		TAP_CASE(test_write_config_roundtrip_null),
		TAP_CASE(test_write_config_roundtrip_uring),
		TAP_CASE(test_info),
		TAP_CASE(test_status_from_errno),
		TAP_CASE(test_rw_pattern_K_MEM),
		TAP_CASE(test_rw_pattern_K_URING_DIRECT),
		TAP_CASE(test_rw_pattern_K_URING_BUFFERED),
		TAP_CASE(test_write_zeroes_mem),
		TAP_CASE(test_deallocate_mem),
		TAP_CASE(test_write_zeroes_uring_direct),
		TAP_CASE(test_deallocate_uring_direct),
		TAP_CASE(test_write_zeroes_uring_buffered),
		TAP_CASE(test_deallocate_uring_buffered),
		TAP_CASE(test_flush_K_MEM),
		TAP_CASE(test_flush_K_NULL),
		TAP_CASE(test_flush_K_URING_DIRECT),
		TAP_CASE(test_flush_K_URING_BUFFERED),
		TAP_CASE(test_many_inflight_K_MEM),
		TAP_CASE(test_many_inflight_K_NULL),
		TAP_CASE(test_many_inflight_K_URING_DIRECT),
		TAP_CASE(test_resubmit_from_callback_K_MEM),
		TAP_CASE(test_resubmit_from_callback_K_NULL),
		TAP_CASE(test_resubmit_from_callback_K_URING_DIRECT),
		TAP_CASE(test_order_from_poll_mem),
		TAP_CASE(test_order_from_poll_null),
		TAP_CASE(test_null_leaves_data_alone),
		TAP_CASE(test_mem_channels_share_data),
	};

	/* Error paths log by design; keep the TAP stream readable. */
	leap_log_set_callback(quiet, NULL);
	return tap_run(cases, TAP_N(cases));
}
