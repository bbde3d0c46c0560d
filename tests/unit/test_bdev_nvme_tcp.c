// SPDX-License-Identifier: BSD-3-Clause
/*
 * The nvme-tcp backend against nvmf_badtarget (tests/tools), run in threads
 * of this test: creation and its failures word for word, geometry and
 * config, splitting by MDTS and by the iovec limit, Write Zeroes /
 * Deallocate / Flush, and the network going wrong: a target killed and
 * restarted within ctrl_loss_timeout (no failed I/O, data intact), one kept
 * down past it (the path status, then recovery), the hold bound, and every
 * kind of misbehaving peer (the queue is reset and reconnected, the I/O is
 * retried to the right data, and bytes around the buffers stay untouched).
 * Channels are polled from the test thread; the module's admin thread runs
 * on its own.
 */
#include <stdatomic.h>

#define BADTARGET_NO_MAIN
#include "../tools/nvmf_badtarget.c"

#include "test_bdev_helpers.h"
#include "backend/nvme_tcp/nvme_tcp_internal.h" /* NTCP_HELD_MAX, the hold bound */

LEAP_BDEV_MODULE_USE(leap_bdev_nvme_tcp_ops);

#define NQN "nqn.2024-01.io.leap:badtarget"

static void log_quiet(enum leap_log_level level, const char *subsys, const char *fmt, va_list ap,
		      void *ctx)
{
	if (getenv("T_VERBOSE")) {
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
}

/* bdev_create params for the target on `port`, plus "k", v pairs as json_pack takes them. */
static json_t *params_for(uint16_t port, const char *extra_fmt, ...)
{
	json_t *p = json_pack("{s:s, s:s, s:s, s:i, s:s, s:i, s:i}", "name", t_name(), "type",
			      "nvme-tcp", "traddr", "127.0.0.1", "trsvcid", (int)port, "subnqn",
			      NQN, "reconnect_delay", 1, "kato_ms", 2000);

	if (p && extra_fmt) {
		json_error_t e;
		va_list ap;
		json_t *x;

		va_start(ap, extra_fmt);
		x = json_vpack_ex(&e, 0, extra_fmt, ap);
		va_end(ap);
		if (!x || json_object_update(p, x)) {
			fprintf(stderr, "params_for: %s\n", e.text);
			json_decref(p);
			p = NULL;
		}
		json_decref(x);
	}
	return p;
}

static json_t *info_of(struct leap_bdev *b)
{
	return leap_bdev_info(b);
}

static long long counter(struct leap_bdev *b, const char *name)
{
	json_t *i = info_of(b);
	long long v = json_integer_value(json_object_get(json_object_get(i, "counters"), name));

	json_decref(i);
	return v;
}

static bool state_is(struct leap_bdev *b, const char *want)
{
	json_t *i = info_of(b);
	bool ok = !strcmp(json_string_value(json_object_get(i, "state")), want);

	json_decref(i);
	return ok;
}

/* Poll ch until the bdev reports `state` (the admin thread moves it), bounded. */
static bool wait_state(struct leap_bdev *b, struct leap_bdev_channel *ch, const char *state)
{
	uint64_t end = t_now_ns() + GUARD_NS;

	while (!state_is(b, state) && t_now_ns() < end) {
		if (ch)
			leap_bdev_poll(ch);
		usleep(1000);
	}
	return state_is(b, state);
}

static bool fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* A buffer with 4 KiB guard bytes on each side. */
struct gbuf {
	uint8_t *raw;
	uint8_t *p;
	size_t len;
};

#define GUARD 4096u

static void gbuf_init(struct gbuf *g, size_t len)
{
	g->raw = abuf(len + 2 * GUARD);
	memset(g->raw, 0x5c, len + 2 * GUARD);
	g->p = g->raw + GUARD;
	g->len = len;
}

static bool gbuf_guards_ok(const struct gbuf *g)
{
	for (size_t i = 0; i < GUARD; i++)
		if (g->raw[i] != 0x5c || g->p[g->len + i] != 0x5c)
			return false;
	return true;
}

/* ---- creation ------------------------------------------------------------ */

static void test_create_geometry_config(void)
{
	struct bt_cfg cfg;
	struct bt *t;
	struct leap_bdev *b;
	json_t *c, *i;

	bt_cfg_init(&cfg);
	cfg.lba = 4096;
	cfg.size = 32u << 20;
	t = bt_start(&cfg, NULL);
	T_ASSERT(t);
	T_ASSERT_EQ(t_create(params_for(t->port, NULL), &b), 0);
	T_ASSERT_U64_EQ(b->size, 32u << 20);
	T_ASSERT_EQ(b->block_size, 4096); /* the remote's LBA size, nothing asked */
	T_ASSERT(state_is(b, "live"));
	T_ASSERT(leap_bdev_io_type_supported(b, LEAP_BDEV_OP_WRITE_ZEROES));
	T_ASSERT(leap_bdev_io_type_supported(b, LEAP_BDEV_OP_DEALLOCATE));
	c = leap_bdev_config(b);
	T_ASSERT_EQ(json_integer_value(json_object_get(c, "nsid")), 1); /* resolved */
	T_ASSERT(!strncmp(json_string_value(json_object_get(c, "hostnqn")), NVMF_NQN_UUID_PREFIX,
			  strlen(NVMF_NQN_UUID_PREFIX)));
	T_ASSERT(json_string_value(json_object_get(c, "hostid")));
	T_ASSERT_EQ(json_integer_value(json_object_get(c, "queues")), 4);
	i = info_of(b);
	T_ASSERT_EQ(json_integer_value(json_object_get(json_object_get(i, "remote"), "lba_size")),
		    4096);
	T_ASSERT_EQ(
	    json_integer_value(json_object_get(json_object_get(i, "remote"), "max_transfer")),
	    128 << 10);
	T_ASSERT_EQ(atomic_load(&t->connects), 1);
	json_decref(i);
	/* The saved config recreates the same bdev (same host identity). */
	json_object_set_new(c, "name", json_string(t_name()));
	{
		struct leap_bdev *b2;
		json_t *c2;

		T_ASSERT_EQ(t_create(json_incref(c), &b2), 0);
		c2 = leap_bdev_config(b2);
		T_ASSERT_STR_EQ(json_string_value(json_object_get(c2, "hostid")),
				json_string_value(json_object_get(c, "hostid")));
		json_decref(c2);
		T_ASSERT_EQ(leap_bdev_destroy(b2), 0);
	}
	json_decref(c);
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
	bt_stop(t);

	/* Without ONCS the bdev says so. */
	cfg.oncs = 0;
	cfg.lba = 512;
	t = bt_start(&cfg, NULL);
	T_ASSERT_EQ(t_create(params_for(t->port, "{s:i}", "block_size", 4096), &b), 0);
	T_ASSERT_EQ(b->block_size, 4096); /* asked, a multiple of the remote's 512 */
	T_ASSERT(!leap_bdev_io_type_supported(b, LEAP_BDEV_OP_WRITE_ZEROES));
	T_ASSERT(!leap_bdev_io_type_supported(b, LEAP_BDEV_OP_DEALLOCATE));
	T_ASSERT(leap_bdev_io_type_supported(b, LEAP_BDEV_OP_FLUSH));
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
	bt_stop(t);
}

static void test_create_failures_say_why(void)
{
	struct bt_cfg cfg;
	struct bt *t;
	struct leap_bdev *b;
	int lfd, port;
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);

	bt_cfg_init(&cfg);
	cfg.lba = 4096;
	cfg.allow_host = "nqn.2024-01.io.leap:friend";
	t = bt_start(&cfg, NULL);
	T_ASSERT(t);

	T_ASSERT_EQ(t_create(params_for(t->port, NULL), &b), -EACCES);
	T_ASSERT(strstr(t_err.msg, "not allowed"));
	T_ASSERT(strstr(t_err.msg, "184h") || strstr(t_err.msg, "0x184"));
	T_ASSERT_EQ(
	    t_create(params_for(t->port, "{s:s}", "hostnqn", "nqn.2024-01.io.leap:friend"), &b), 0);
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);

	T_ASSERT_EQ(t_create(params_for(t->port, "{s:s, s:s}", "subnqn", "nqn.2024-01.io.leap:nope",
					"hostnqn", "nqn.2024-01.io.leap:friend"),
			     &b),
		    -EINVAL);
	T_ASSERT(strstr(t_err.msg, "no subsystem 'nqn.2024-01.io.leap:nope'"));

	T_ASSERT(t_create(params_for(t->port, "{s:s, s:i}", "hostnqn", "nqn.2024-01.io.leap:friend",
				     "nsid", 7),
			  &b) < 0);
	T_ASSERT(strstr(t_err.msg, "Identify Namespace (nsid 7) failed"));

	T_ASSERT_EQ(t_create(params_for(t->port, "{s:s, s:i}", "hostnqn",
					"nqn.2024-01.io.leap:friend", "block_size", 512),
			     &b),
		    -EINVAL);
	T_ASSERT(strstr(t_err.msg, "smaller than the namespace's LBA size 4096"));
	T_ASSERT_EQ(t_create(params_for(t->port, "{s:s, s:I}", "hostnqn",
					"nqn.2024-01.io.leap:friend", "size", (json_int_t)1 << 40),
			     &b),
		    -EINVAL);
	T_ASSERT(strstr(t_err.msg, "exceeds"));
	port = t->port;
	bt_stop(t);

	/* Nobody listening. */
	T_ASSERT_EQ(t_create(params_for((uint16_t)port, NULL), &b), -ECONNREFUSED);
	T_ASSERT(strstr(t_err.msg, "Connection refused"));

	/* Listening, never answering (a forwarded port with nobody behind it). */
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	T_ASSERT(!bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) && !listen(lfd, 8) &&
		 !getsockname(lfd, (struct sockaddr *)&sa, &sl));
	T_ASSERT_EQ(
	    t_create(params_for(ntohs(sa.sin_port), "{s:i}", "connect_timeout_ms", 300), &b),
	    -ETIMEDOUT);
	T_ASSERT(strstr(t_err.msg, "timed out"));
	close(lfd);

	/* Bad parameters, refused before anything connects. */
	T_ASSERT_EQ(t_create(params_for(4420, "{s:s}", "traddr", "localhost"), &b), -EINVAL);
	T_ASSERT(strstr(t_err.msg, "invalid params"));
	T_ASSERT_EQ(t_create(params_for(4420, "{s:i}", "queues", 0), &b), -EINVAL);
	T_ASSERT(strstr(t_err.msg, "'queues' must be in [1, 64]"));
	T_ASSERT_EQ(t_create(params_for(4420, "{s:b}", "hdgst", 1), &b), -EINVAL);
	T_ASSERT(strstr(t_err.msg, "unknown field 'hdgst'"));
	T_ASSERT_EQ(t_create(params_for(4420, "{s:s}", "subnqn", "has space"), &b), -EINVAL);
}

/* ---- data ------------------------------------------------------------------- */

static void test_split_and_data(void)
{
	struct bt_cfg cfg;
	struct bt *t;
	struct leap_bdev *b;
	struct leap_bdev_channel *ch;
	struct gbuf w, r;
	const size_t len = 1u << 20;
	struct tio io;
	uint32_t cmds;

	bt_cfg_init(&cfg);
	cfg.mdts = 1; /* 8 KiB per command */
	t = bt_start(&cfg, NULL);
	T_ASSERT(t);
	T_ASSERT_EQ(t_create(params_for(t->port, NULL), &b), 0);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	gbuf_init(&w, len);
	gbuf_init(&r, len);
	pattern_fill(w.p, len, 4096, 11);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 4096, w.p, len, 4), 0);
	cmds = atomic_load(&t->io_cmds);
	T_ASSERT_EQ(cmds, len / 8192); /* split at MDTS */
	T_ASSERT(!memcmp(t->mem + 4096, w.p, len));
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 4096, r.p, len, 8), 0);
	T_ASSERT(pattern_check(r.p, len, 4096, 11));
	T_ASSERT(gbuf_guards_ok(&r));

	/* 96 iovecs of 512 bytes: more than one command holds (64): cut between them. */
	memset(r.p, 0, len);
	tio_init(&io, LEAP_BDEV_OP_READ, 4096, NULL, 0, 1);
	{
		static struct iovec v[96];

		for (int i = 0; i < 96; i++) {
			v[i].iov_base = r.p + (size_t)i * 1024; /* gaps between the pieces */
			v[i].iov_len = 512;
		}
		io.io.iov = v;
		io.io.iovcnt = 96;
		io.io.len = 96 * 512;
		T_ASSERT_EQ(t_submit(ch, &io), 0);
		T_ASSERT_EQ(t_wait(ch, &io.calls, 1), 1);
		T_ASSERT_EQ(io.status, 0);
		for (int i = 0; i < 96; i++) {
			T_ASSERT(pattern_check(r.p + (size_t)i * 1024, 512,
					       4096 + (uint64_t)i * 512, 11));
			T_ASSERT(all_zero(r.p + (size_t)i * 1024 + 512, 512));
		}
	}
	T_ASSERT(gbuf_guards_ok(&r));

	/* Write Zeroes, Deallocate (DSM, DLFEAT reads zeroes), Flush. */
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE_ZEROES, 4096, NULL, 64 << 10, 1), 0);
	T_ASSERT(all_zero(t->mem + 4096, 64 << 10));
	T_ASSERT(!all_zero(t->mem + 4096 + (64 << 10), 4096));
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_DEALLOCATE, 4096 + (64 << 10), NULL, 128 << 10, 1), 0);
	T_ASSERT(all_zero(t->mem + 4096 + (64 << 10), 128 << 10));
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_FLUSH, 0, NULL, 0, 1), 0);
	/* A remote error passes through as its NVMe status. */
	{
		struct bt_cfg *tc = &t->cfg;

		tc->size /= 2; /* the target now answers LBA Out of Range past half */
		T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, b->size - 4096, r.p, 4096, 1),
			    NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE));
		tc->size *= 2;
	}
	T_ASSERT_EQ(counter(b, "remote_errors"), 1);
	T_ASSERT_EQ(counter(b, "losses"), 0);
	leap_bdev_channel_close(ch);
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
	bt_stop(t);
	free(w.raw);
	free(r.raw);
}

static void test_queues_per_channel(void)
{
	struct bt_cfg cfg;
	struct bt *t;
	struct leap_bdev *b;
	struct leap_bdev_channel *ch[3];
	uint8_t *buf = abuf(4096);

	bt_cfg_init(&cfg);
	t = bt_start(&cfg, NULL);
	T_ASSERT_EQ(t_create(params_for(t->port, "{s:i}", "queues", 2), &b), 0);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch[0]), 0);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch[1]), 0);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch[2]), -ENOSPC);
	T_ASSERT_EQ(t_io(ch[0], LEAP_BDEV_OP_READ, 0, buf, 4096, 1), 0);
	T_ASSERT_EQ(t_io(ch[1], LEAP_BDEV_OP_READ, 0, buf, 4096, 1), 0);
	T_ASSERT_EQ(atomic_load(&t->io_connects), 2);
	leap_bdev_channel_close(ch[0]);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch[2]), 0); /* its qid is free again */
	T_ASSERT_EQ(t_io(ch[2], LEAP_BDEV_OP_READ, 0, buf, 4096, 1), 0);
	leap_bdev_channel_close(ch[1]);
	leap_bdev_channel_close(ch[2]);
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
	bt_stop(t);
	free(buf);
}

static void test_keep_alive(void)
{
	struct bt_cfg cfg;
	struct bt *t;
	struct leap_bdev *b;

	bt_cfg_init(&cfg);
	t = bt_start(&cfg, NULL);
	T_ASSERT_EQ(t_create(params_for(t->port, "{s:i}", "kato_ms", 1000), &b), 0);
	usleep(1300 * 1000);
	/* KATO/2 = 500 ms: two or three by now. */
	T_ASSERT(atomic_load(&t->keep_alives) >= 2);
	T_ASSERT(state_is(b, "live"));
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
	bt_stop(t);
}

/* ---- the network going wrong -------------------------------------------------- */

#define NIO  48
#define IOSZ (64u << 10)

/* NIO writes of IOSZ (pattern seed), then NIO reads checked; all in flight at once. */
static void burst(struct leap_bdev_channel *ch, struct gbuf *bufs, uint32_t seed, bool write,
		  void (*mid)(void *), void *arg)
{
	static struct tio io[NIO];
	int done = 0;

	for (int i = 0; i < NIO; i++) {
		if (write)
			pattern_fill(bufs[i].p, IOSZ, (uint64_t)i * IOSZ, seed);
		else
			memset(bufs[i].p, 0, IOSZ);
		tio_init(&io[i], write ? LEAP_BDEV_OP_WRITE : LEAP_BDEV_OP_READ, (uint64_t)i * IOSZ,
			 bufs[i].p, IOSZ, 2);
		T_ASSERT_EQ(t_submit(ch, &io[i]), 0);
	}
	if (mid)
		mid(arg);
	for (int i = 0; i < NIO; i++) {
		T_ASSERT_EQ(t_wait(ch, &io[i].calls, 1), 1);
		T_ASSERT_EQ(io[i].status, 0);
		done++;
	}
	T_ASSERT_EQ(done, NIO);
	for (int i = 0; i < NIO; i++) {
		T_ASSERT(gbuf_guards_ok(&bufs[i]));
		if (!write)
			T_ASSERT(pattern_check(bufs[i].p, IOSZ, (uint64_t)i * IOSZ, seed));
	}
}

static struct gbuf *bufs_new(void)
{
	struct gbuf *g = calloc(NIO, sizeof(*g));

	for (int i = 0; i < NIO; i++)
		gbuf_init(&g[i], IOSZ);
	return g;
}

static void bufs_free(struct gbuf *g)
{
	for (int i = 0; i < NIO; i++)
		free(g[i].raw);
	free(g);
}

struct restart {
	struct bt **t;
	struct bt_cfg cfg;
	uint8_t *mem;
	int down_ms;
};

static void kill_and_restart(void *arg)
{
	struct restart *r = arg;

	bt_stop(*r->t);
	usleep((useconds_t)r->down_ms * 1000);
	*r->t = bt_start(&r->cfg, r->mem);
}

static void test_target_restart_within_loss_timeout(void)
{
	struct bt_cfg cfg;
	struct bt *t;
	struct leap_bdev *b;
	struct leap_bdev_channel *ch;
	struct gbuf *g = bufs_new();
	uint8_t *mem;
	struct restart r;

	bt_cfg_init(&cfg);
	mem = calloc(1, cfg.size);
	t = bt_start(&cfg, mem);
	T_ASSERT_EQ(t_create(params_for(t->port, "{s:i}", "ctrl_loss_timeout", 10), &b), 0);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	burst(ch, g, 1, true, NULL, NULL);
	cfg.port = t->port;
	r = (struct restart){ .t = &t, .cfg = cfg, .mem = mem, .down_ms = 1500 };
	/* Writes in flight when the target dies: held, retried, 0 failed. */
	burst(ch, g, 2, true, kill_and_restart, &r);
	T_ASSERT(t);
	burst(ch, g, 2, false, NULL, NULL);
	T_ASSERT_EQ(counter(b, "path_failed"), 0);
	T_ASSERT(counter(b, "losses") >= 1);
	T_ASSERT(counter(b, "retried") >= 1);
	T_ASSERT(state_is(b, "live"));
	/* Reads in flight when it dies again. */
	burst(ch, g, 2, false, kill_and_restart, &r);
	T_ASSERT(counter(b, "losses") >= 2);
	T_ASSERT_EQ(counter(b, "path_failed"), 0);
	for (int i = 0; i < NIO; i++)
		T_ASSERT(pattern_check(mem + (size_t)i * IOSZ, IOSZ, (uint64_t)i * IOSZ, 2));
	leap_bdev_channel_close(ch);
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
	bt_stop(t);
	free(mem);
	bufs_free(g);
}

static void test_target_down_past_loss_timeout(void)
{
	struct bt_cfg cfg;
	struct bt *t;
	struct leap_bdev *b;
	struct leap_bdev_channel *ch;
	uint8_t *buf = abuf(4096), *mem;
	static struct tio io[NTCP_HELD_MAX + 8];
	uint64_t t0;
	int n;

	bt_cfg_init(&cfg);
	mem = calloc(1, cfg.size);
	t = bt_start(&cfg, mem);
	T_ASSERT_EQ(t_create(params_for(t->port, "{s:i}", "ctrl_loss_timeout", 2), &b), 0);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, buf, 4096, 1), 0);
	cfg.port = t->port;
	bt_stop(t);
	T_ASSERT(wait_state(b, ch, "reconnecting"));
	/* The admin side's change woke the channel's wake fd; a sleep drains it. */
	T_ASSERT(fd_readable(leap_bdev_channel_wake_fd(ch)));
	leap_bdev_channel_sleep_prepare(ch);
	leap_bdev_channel_sleep_done(ch);
	T_ASSERT(!fd_readable(leap_bdev_channel_wake_fd(ch)));

	/* Held up to the bound; one more fails at once with the path status. */
	for (n = 0; n < (int)NTCP_HELD_MAX + 1; n++) {
		tio_init(&io[n], LEAP_BDEV_OP_READ, 0, buf, 4096, 1);
		T_ASSERT_EQ(leap_bdev_submit(ch, &io[n].io), 0);
	}
	leap_bdev_poll(ch);
	T_ASSERT_EQ(io[NTCP_HELD_MAX].calls, 1);
	T_ASSERT_EQ(io[NTCP_HELD_MAX].status, NVME_STATUS(NVME_SCT_PATH, 0x70));
	T_ASSERT_EQ(io[0].calls, 0);
	T_ASSERT_EQ(counter(b, "held"), NTCP_HELD_MAX);

	/* Past ctrl_loss_timeout: the held I/O fails with the path status too. */
	t0 = t_now_ns();
	T_ASSERT_EQ(t_wait(ch, &io[NTCP_HELD_MAX - 1].calls, 1), 1);
	T_ASSERT(t_now_ns() - t0 > 500ull * 1000000); /* not before the timeout */
	for (n = 0; n < (int)NTCP_HELD_MAX; n++) {
		T_ASSERT_EQ(io[n].calls, 1);
		T_ASSERT_EQ(io[n].status, NVME_STATUS(NVME_SCT_PATH, 0x70));
	}
	T_ASSERT(state_is(b, "failed"));
	T_ASSERT(fd_readable(leap_bdev_channel_wake_fd(ch))); /* kicked again */
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, buf, 4096, 1), NVME_STATUS(NVME_SCT_PATH, 0x70));
	T_ASSERT_EQ(counter(b, "path_failed"), NTCP_HELD_MAX + 2);

	/* The target returns: so does the bdev. */
	t = bt_start(&cfg, mem);
	T_ASSERT(t);
	T_ASSERT(wait_state(b, ch, "live"));
	pattern_fill(buf, 4096, 0, 9);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_WRITE, 0, buf, 4096, 1), 0);
	T_ASSERT(pattern_check(mem, 4096, 0, 9));
	leap_bdev_channel_close(ch);
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
	bt_stop(t);
	free(mem);
	free(buf);
}

/* A target that returns with another namespace behind the NQN is not reattached. */
static void test_changed_namespace_not_reattached(void)
{
	struct bt_cfg cfg;
	struct bt *t;
	struct leap_bdev *b;
	struct leap_bdev_channel *ch;
	uint8_t *buf = abuf(4096);
	struct tio io;
	json_t *i;

	bt_cfg_init(&cfg);
	t = bt_start(&cfg, NULL);
	T_ASSERT_EQ(t_create(params_for(t->port, "{s:i}", "ctrl_loss_timeout", 2), &b), 0);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	cfg.port = t->port;
	bt_stop(t);
	cfg.size /= 2; /* same NQN, half the blocks */
	t = bt_start(&cfg, NULL);
	T_ASSERT(t);
	tio_init(&io, LEAP_BDEV_OP_READ, 0, buf, 4096, 1);
	T_ASSERT_EQ(t_submit(ch, &io), 0);
	T_ASSERT_EQ(t_wait(ch, &io.calls, 1), 1);
	T_ASSERT_EQ(io.status, NVME_STATUS(NVME_SCT_PATH, 0x70));
	T_ASSERT(state_is(b, "failed"));
	i = info_of(b);
	T_ASSERT(
	    strstr(json_string_value(json_object_get(i, "reason")), "changed while disconnected"));
	json_decref(i);
	T_ASSERT(atomic_load(&t->connects) >= 1); /* it did reconnect, and looked */
	T_ASSERT_EQ(atomic_load(&t->io_cmds), 0); /* but sent it nothing */
	leap_bdev_channel_close(ch);
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
	bt_stop(t);
	free(buf);
}

/* The registry's io_timeout_ms: held I/O past it leaves with the timeout status. */
static void test_generic_io_timeout_aborts_held_io(void)
{
	struct bt_cfg cfg;
	struct bt *t;
	struct leap_bdev *b;
	struct leap_bdev_channel *ch;
	uint8_t *buf = abuf(4096);
	struct tio io;
	uint64_t t0;

	bt_cfg_init(&cfg);
	t = bt_start(&cfg, NULL);
	T_ASSERT_EQ(t_create(params_for(t->port, "{s:i, s:i}", "io_timeout_ms", 500,
					"ctrl_loss_timeout", 30),
			     &b),
		    0);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	T_ASSERT_EQ(t_io(ch, LEAP_BDEV_OP_READ, 0, buf, 4096, 1), 0);
	bt_stop(t);
	T_ASSERT(wait_state(b, ch, "reconnecting"));
	tio_init(&io, LEAP_BDEV_OP_READ, 0, buf, 4096, 1);
	t0 = t_now_ns();
	T_ASSERT_EQ(t_submit(ch, &io), 0);
	T_ASSERT_EQ(t_wait(ch, &io.calls, 1), 1);
	T_ASSERT(t_now_ns() - t0 >= 500ull * 1000000);
	T_ASSERT_EQ(io.status, LEAP_BDEV_STATUS_TIMEOUT);
	T_ASSERT_EQ(ch->stats.aborts, 1);
	T_ASSERT_EQ(counter(b, "held"), 0);
	leap_bdev_channel_close(ch);
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
	free(buf);
}

/* One misbehaving peer: the fault hits once, mid-burst; everything completes right. */
static void bad_peer(enum bt_fault f, uint32_t after, const char *extra)
{
	struct bt_cfg cfg;
	struct bt *t;
	struct leap_bdev *b;
	struct leap_bdev_channel *ch;
	struct gbuf *g = bufs_new();
	json_t *p;

	bt_cfg_init(&cfg);
	cfg.fault = f;
	cfg.fault_after = after;
	cfg.fault_count = 1;
	t = bt_start(&cfg, NULL);
	T_ASSERT(t);
	p = params_for(t->port, "{s:i}", "stall_timeout_ms", 500);
	if (extra)
		json_object_set_new(p, extra, json_true());
	T_ASSERT_EQ(t_create(p, &b), 0);
	T_ASSERT_EQ(leap_bdev_channel_open(b, &ch), 0);
	burst(ch, g, 3, true, NULL, NULL);
	burst(ch, g, 3, false, NULL, NULL);
	if (f != BT_R2T_UNKNOWN)
		burst(ch, g, 3, false, NULL, NULL);
	T_ASSERT(atomic_load(&t->faults) >= 1);
	T_ASSERT(counter(b, "losses") >= 1);
	T_ASSERT(counter(b, "retried") >= 1);
	T_ASSERT_EQ(counter(b, "path_failed"), 0);
	T_ASSERT(state_is(b, "live"));
	leap_bdev_channel_close(ch);
	T_ASSERT_EQ(leap_bdev_destroy(b), 0);
	bt_stop(t);
	bufs_free(g);
}

/* NIO writes first: `after` NIO + k puts the fault among the reads. */
static void test_bad_peer_garbage(void)
{
	bad_peer(BT_GARBAGE, NIO + 5, NULL);
}

static void test_bad_peer_wrong_cid(void)
{
	bad_peer(BT_WRONG_CID, NIO + 5, NULL);
}

static void test_bad_peer_c2h_beyond_buffer(void)
{
	bad_peer(BT_C2H_OVERFLOW, NIO + 5, NULL);
}

static void test_bad_peer_r2t_unknown(void)
{
	bad_peer(BT_R2T_UNKNOWN, 5, NULL); /* 64 KiB writes go by R2T */
}

static void test_bad_peer_data_digest(void)
{
	bad_peer(BT_DDGST, NIO + 5, "data_digest");
}

static void test_bad_peer_header_digest(void)
{
	bad_peer(BT_HDGST, NIO + 5, "hdr_digest");
}

static void test_bad_peer_drop_after_write(void)
{
	bad_peer(BT_DROP, 5, NULL); /* the write ran, its answer never came: retried */
}

static void test_bad_peer_silent(void)
{
	bad_peer(BT_SILENT, NIO + 5, NULL); /* stall_timeout_ms 500 */
}

static void test_bad_peer_term_req(void)
{
	bad_peer(BT_TERM, NIO + 5, NULL);
}

int main(void)
{
	static const struct tap_case cases[] = {
		TAP_CASE(test_create_geometry_config),
		TAP_CASE(test_create_failures_say_why),
		TAP_CASE(test_split_and_data),
		TAP_CASE(test_queues_per_channel),
		TAP_CASE(test_keep_alive),
		TAP_CASE(test_target_restart_within_loss_timeout),
		TAP_CASE(test_target_down_past_loss_timeout),
		TAP_CASE(test_generic_io_timeout_aborts_held_io),
		TAP_CASE(test_changed_namespace_not_reattached),
		TAP_CASE(test_bad_peer_garbage),
		TAP_CASE(test_bad_peer_wrong_cid),
		TAP_CASE(test_bad_peer_c2h_beyond_buffer),
		TAP_CASE(test_bad_peer_r2t_unknown),
		TAP_CASE(test_bad_peer_data_digest),
		TAP_CASE(test_bad_peer_header_digest),
		TAP_CASE(test_bad_peer_drop_after_write),
		TAP_CASE(test_bad_peer_silent),
		TAP_CASE(test_bad_peer_term_req),
	};

	signal(SIGPIPE, SIG_IGN);
	leap_log_set_callback(log_quiet, NULL);
	return tap_run(cases, TAP_N(cases));
}
