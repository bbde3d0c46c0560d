// SPDX-License-Identifier: BSD-3-Clause
/*
 * leap_obj_load(): from a BPF ELF object to programs the engine can run.
 * libbpf opens the object, our "leap/" sections become sleepable
 * BPF_PROG_TYPE_SYSCALL programs, the kernel verifier checks them, and the
 * relocated instructions (bpf_program__insns()) go through our own checks
 * before the engine validates and (optionally) JIT-compiles them. See
 * include/leapio/loader.h for the steps and loader_maps.c for the maps.
 *
 * Each program gets its own verifier log buffer: libbpf loads with log
 * level 0 and, when the kernel refuses a program, retries it at level 1
 * into that buffer, so after a failed load the one non-empty buffer names
 * the program and holds the verifier's reasoning (the kernel keeps the
 * tail when the log overflows). Failures outside the verifier (map
 * creation, BTF) are reported from libbpf's own warnings, captured through
 * its print callback; that callback is process-global, so one mutex
 * serialises loads (rare control-plane operations).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "loader_internal.h"

#define LEAP_SEC_PREFIX "leap/"
/* Kernel programs (opts->xdp): libbpf's own SEC("xdp") makes them BPF_PROG_TYPE_XDP. */
#define LEAP_SEC_XDP	"xdp"
/* Verifier log per program; the kernel keeps the last bytes on overflow. */
#define VERIFIER_LOG_SZ (64 * 1024)
/* Lines of the verifier log (or libbpf's output) quoted in a rejection. */
#define TAIL_LINES	15

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static int handler_err;

/* libbpf output captured during one load (under load_lock). */
static char libbpf_log[16384];
static size_t libbpf_log_len;

int leap_loader_fail(const struct leap_obj_opts *opts, int err, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (opts && opts->log_buf && opts->log_sz)
		snprintf(opts->log_buf, opts->log_sz, "%s", msg);
	LEAP_DEBUG("loader", "%s", msg);
	return err;
}

static int capture_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	int n;

	if (level == LIBBPF_DEBUG)
		return 0;
	if (libbpf_log_len >= sizeof(libbpf_log) - 1)
		return 0;
	n = vsnprintf(libbpf_log + libbpf_log_len, sizeof(libbpf_log) - libbpf_log_len, fmt, ap);
	if (n > 0)
		libbpf_log_len = LEAP_MIN(libbpf_log_len + (size_t)n, sizeof(libbpf_log) - 1);
	return 0;
}

static int setup_leap_prog(struct bpf_program *prog, long cookie)
{
	(void)cookie;
	/* Syscall programs must be sleepable; we never run them in the kernel anyway. */
	return bpf_program__set_flags(prog, bpf_program__flags(prog) | BPF_F_SLEEPABLE);
}

static void register_handler(void)
{
	LIBBPF_OPTS(libbpf_prog_handler_opts, hopts, .prog_setup_fn = setup_leap_prog);
	int id;

	/* "leap/" (trailing slash): matches every SEC("leap/<hook>"). */
	id = libbpf_register_prog_handler(LEAP_SEC_PREFIX, BPF_PROG_TYPE_SYSCALL, 0, &hopts);
	handler_err = id < 0 ? id : 0;
}

/*
 * libbpf answers some failures with its own codes (-4000 and up, e.g.
 * LIBBPF_ERRNO__FORMAT for "not a BPF ELF"): our callers get -EINVAL for
 * those, and libbpf's text for the message.
 */
static int errno_of(int err)
{
	return err <= -__LIBBPF_ERRNO__START && err > -__LIBBPF_ERRNO__START - 1000 ? -EINVAL : err;
}

static const char *err_text(int err, char *buf, size_t sz)
{
	if (libbpf_strerror(err, buf, sz))
		snprintf(buf, sz, "error %d", err);
	return buf;
}

/*
 * The last `max_lines` lines of text[0, len), without trailing newlines:
 * the verifier puts its reason and the instruction it stopped at last.
 */
static const char *last_lines(const char *text, size_t len, unsigned int max_lines, int *out_len)
{
	const char *p, *end = text + len;
	unsigned int lines = 0;

	while (end > text && end[-1] == '\n')
		end--;
	for (p = end; p > text; p--) {
		if (p[-1] == '\n' && ++lines >= max_lines)
			break;
	}
	*out_len = (int)(end - p);
	return p;
}

/*
 * The object failed bpf_object__load(): describe why. A program with a
 * non-empty log buffer is the one the verifier refused (libbpf stops at
 * the first); otherwise quote libbpf's warnings (maps, BTF, relocations).
 */
static int describe_load_failure(struct leap_obj *obj, const char *path, int err,
				 const struct leap_obj_opts *opts)
{
	const char *tail;
	char why[128];
	int n;

	for (uint32_t i = 0; i < obj->prog_cnt; i++) {
		struct leap_obj_prog *p = &obj->progs[i];

		if (!p->vlog || !p->vlog[0])
			continue;
		tail = last_lines(p->vlog, strnlen(p->vlog, VERIFIER_LOG_SZ), TAIL_LINES, &n);
		/*
		 * A log that filled the buffer makes the kernel answer -ENOSPC
		 * instead of the verifier's own error; the program was
		 * rejected all the same (libbpf only logs after a failure).
		 */
		if (err == -ENOSPC)
			err = -EACCES;
		return leap_loader_fail(opts, errno_of(err),
					"program '%s': rejected by the kernel verifier (%s); last "
					"lines of its log:\n%.*s",
					p->name, err_text(err, why, sizeof(why)), n, tail);
	}
	tail = last_lines(libbpf_log, libbpf_log_len, TAIL_LINES, &n);
	return leap_loader_fail(opts, errno_of(err),
				"%s: libbpf could not load the object (%s):\n%.*s", path,
				err_text(err, why, sizeof(why)), n, tail);
}

static const struct leap_hook_def *find_hook(const struct leap_obj_opts *opts, const char *sec)
{
	for (uint32_t i = 0; i < opts->hook_cnt; i++)
		if (strcmp(opts->hooks[i].section, sec) == 0)
			return &opts->hooks[i];
	return NULL;
}

static bool is_kernel_sec(const struct leap_obj_opts *opts, const char *sec)
{
	return opts->xdp && strcmp(sec, LEAP_SEC_XDP) == 0;
}

static int check_sections(struct bpf_object *bpf, const struct leap_obj_opts *opts)
{
	struct bpf_program *prog;
	char known[256];
	size_t len = 0;
	int n = 0;

	bpf_object__for_each_program (prog, bpf) {
		const char *sec = bpf_program__section_name(prog);

		n++;
		if (find_hook(opts, sec) || is_kernel_sec(opts, sec))
			continue;
		known[0] = 0;
		for (uint32_t i = 0; i < opts->hook_cnt && len < sizeof(known); i++)
			len += (size_t)snprintf(known + len, sizeof(known) - len, "%s%s",
						i ? ", " : "", opts->hooks[i].section);
		return leap_loader_fail(
		    opts, -EINVAL, "program '%s': unknown section '%s' (known: %s%s)",
		    bpf_program__name(prog), sec, opts->hook_cnt ? known : "none",
		    opts->xdp ? ", " LEAP_SEC_XDP : "");
	}
	if (n == 0)
		return leap_loader_fail(opts, -EINVAL, "object has no programs");
	return 0;
}

static const char *obj_name_from_path(const char *path, char *buf, size_t sz)
{
	const char *base = strrchr(path, '/');
	char *dot;

	snprintf(buf, sz, "%s", base ? base + 1 : path);
	dot = strstr(buf, ".bpf.o");
	if (!dot)
		dot = strrchr(buf, '.');
	if (dot && dot != buf)
		*dot = 0;
	return buf;
}

/* The log buffers are only needed during bpf_object__load(). */
static void free_verifier_logs(struct leap_obj *obj)
{
	struct bpf_program *prog;
	uint32_t i = 0;

	if (obj->bpf) {
		bpf_object__for_each_program (prog, obj->bpf)
			if (i++ < obj->prog_cnt)
				bpf_program__set_log_buf(prog, NULL, 0);
	}
	for (i = 0; i < obj->prog_cnt; i++) {
		free(obj->progs[i].vlog);
		obj->progs[i].vlog = NULL;
	}
}

static int prepare_progs(struct leap_obj *obj, const struct leap_obj_opts *opts)
{
	struct bpf_program *prog;
	uint32_t i = 0;

	bpf_object__for_each_program (prog, obj->bpf)
		i++;
	obj->progs = calloc(i, sizeof(*obj->progs));
	if (!obj->progs)
		return -ENOMEM;
	bpf_object__for_each_program (prog, obj->bpf) {
		struct leap_obj_prog *p = &obj->progs[obj->prog_cnt++];

		snprintf(p->name, sizeof(p->name), "%s", bpf_program__name(prog));
		snprintf(p->section, sizeof(p->section), "%s", bpf_program__section_name(prog));
		p->kernel_fd = -1;
		p->vlog = calloc(1, VERIFIER_LOG_SZ);
		if (!p->vlog)
			return -ENOMEM;
		bpf_program__set_log_buf(prog, p->vlog, VERIFIER_LOG_SZ);
		if (is_kernel_sec(opts, p->section))
			continue; /* libbpf's section definition sets type and attach type */
		/* Belt and braces: the handler sets these, but a user may have
		 * registered another "leap/" handler first. */
		bpf_program__set_type(prog, BPF_PROG_TYPE_SYSCALL);
		bpf_program__set_flags(prog, bpf_program__flags(prog) | BPF_F_SLEEPABLE);
	}
	return 0;
}

static int build_engine_progs(struct leap_obj *obj, const struct leap_obj_opts *opts)
{
	const struct leap_bpf_array **arrays;
	uint32_t narr = 0;
	int err = 0;

	/* Every mmapped array map: map_lookup_elem on it can be inlined by the JIT. */
	arrays = calloc(obj->map_cnt ? obj->map_cnt : 1, sizeof(*arrays));
	if (!arrays)
		return -ENOMEM;
	for (uint32_t m = 0; m < obj->map_cnt; m++)
		if (obj->maps[m].data && obj->maps[m].type == BPF_MAP_TYPE_ARRAY)
			arrays[narr++] = (const struct leap_bpf_array *)&obj->maps[m];

	for (uint32_t i = 0; i < obj->prog_cnt; i++) {
		struct leap_obj_prog *p = &obj->progs[i];
		const struct leap_hook_def *hook = find_hook(opts, p->section);
		struct bpf_insn *insns = NULL;
		char errbuf[512] = "";
		struct leap_bpf_prog_opts popts = {
			.sz = sizeof(popts),
			.helpers = leap_loader_helpers(),
			.ctx_size = 0,
			.errbuf = errbuf,
			.errbuf_sz = sizeof(errbuf),
			.arrays = arrays,
			.array_cnt = narr,
			.single_writer = opts->single_writer,
		};
		uint32_t cnt = p->insn_cnt;

		if (!hook) {
			if (is_kernel_sec(opts, p->section))
				continue; /* a kernel program: the kernel runs what it verified */
			/* A helper process named a section we do not know. */
			err = leap_loader_fail(opts, -EINVAL, "program '%s': unknown section '%s'",
					       p->name, p->section);
			break;
		}
		popts.ctx_size = hook->ctx_size;
		err = leap_loader_insns_resolve(obj, p->name, p->insns, cnt, opts, &insns);
		if (err)
			break;
		err = leap_bpf_prog_create(insns, cnt, &popts, &p->prog);
		free(insns);
		if (err) {
			err = leap_loader_fail(opts, err, "program '%s': %s", p->name, errbuf);
			break;
		}
		if (opts->jit) {
			err = leap_bpf_prog_jit(p->prog, errbuf, sizeof(errbuf));
			if (err) {
				err =
				    leap_loader_fail(opts, err, "program '%s': JIT failed: %s",
						     p->name, errbuf[0] ? errbuf : strerror(-err));
				break;
			}
		}
	}
	free(arrays);
	return err;
}

/*
 * libbpf's OPTS_VALID rule: a caller built against a newer header may pass
 * a larger struct, accepted only when the fields this loader does not know
 * are zero; a smaller one predates fields we rely on.
 */
static bool opts_valid(const struct leap_obj_opts *opts)
{
	if (!opts || opts->sz < sizeof(*opts))
		return false;
	for (size_t i = sizeof(*opts); i < opts->sz; i++)
		if (((const uint8_t *)opts)[i])
			return false;
	return !opts->hook_cnt || opts->hooks;
}

int leap_loader_read_file(const char *path, const struct leap_obj_opts *opts, void **buf,
			  size_t *len)
{
	struct stat st;
	size_t got = 0;
	uint8_t *p;
	int fd, err;

	*buf = NULL;
	*len = 0;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return leap_loader_fail(opts, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		err = leap_loader_fail(opts, -errno, "%s: %s", path, strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		err = leap_loader_fail(opts, -EINVAL, "%s: not a regular file", path);
		goto out_close;
	}
	if (st.st_size > (off_t)LEAP_OBJ_MAX_BYTES) {
		err = leap_loader_fail(opts, -EFBIG, "%s: %lld bytes, more than the %u MiB allowed",
				       path, (long long)st.st_size, LEAP_OBJ_MAX_BYTES >> 20);
		goto out_close;
	}
	p = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!p) {
		err = -ENOMEM;
		goto out_close;
	}
	/* A file that grows while we read it is read up to the size we checked. */
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, p + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	*buf = p;
	*len = got;
	err = 0;
out_close:
	close(fd);
	return err;
}

int leap_loader_parse_verify(const void *buf, size_t len, const char *path,
			     const struct leap_obj_opts *opts, bool take_lock,
			     struct leap_obj **out)
{
	char name[64];
	struct leap_obj *obj;
	libbpf_print_fn_t old_print;
	struct bpf_program *prog;
	uint32_t i = 0;
	int err;

	*out = NULL;
	pthread_once(&handler_once, register_handler);
	if (handler_err)
		return leap_loader_fail(opts, handler_err, "cannot register the leap/ section: %s",
					strerror(-handler_err));
	obj = calloc(1, sizeof(*obj));
	if (!obj)
		return -ENOMEM;

	if (take_lock)
		pthread_mutex_lock(&load_lock);
	libbpf_log_len = 0;
	libbpf_log[0] = 0;
	old_print = libbpf_set_print(capture_print);

	{
		LIBBPF_OPTS(bpf_object_open_opts, oopts,
			    .object_name = opts->name
					       ? opts->name
					       : obj_name_from_path(path, name, sizeof(name)));
		errno = 0;
		obj->bpf = bpf_object__open_mem(buf, len, &oopts);
	}
	if (!obj->bpf) {
		char why[128];

		err = errno ? -errno : -EINVAL;
		err = leap_loader_fail(opts, errno_of(err), "%s: not a valid BPF ELF object (%s)",
				       path, err_text(err, why, sizeof(why)));
		goto err_unlock;
	}
	err = check_sections(obj->bpf, opts);
	if (err)
		goto err_unlock;
	err = prepare_progs(obj, opts);
	if (err)
		goto err_unlock;
	err = leap_loader_rodata_apply(obj->bpf, opts);
	if (err)
		goto err_unlock;
	err = leap_loader_maps_prepare(obj, opts);
	if (err)
		goto err_unlock;

	err = bpf_object__load(obj->bpf);
	if (err) {
		err = describe_load_failure(obj, path, err, opts);
		goto err_unlock;
	}
	libbpf_set_print(old_print);
	if (take_lock)
		pthread_mutex_unlock(&load_lock);
	free_verifier_logs(obj);

	leap_loader_maps_describe(obj);
	bpf_object__for_each_program (prog, obj->bpf) {
		struct leap_obj_prog *p = &obj->progs[i++];
		size_t cnt = bpf_program__insn_cnt(prog);

		p->kernel_fd = bpf_program__fd(prog);
		p->insns = malloc((cnt ? cnt : 1) * sizeof(*p->insns));
		if (!p->insns) {
			err = -ENOMEM;
			goto err_unpin;
		}
		memcpy(p->insns, bpf_program__insns(prog), cnt * sizeof(*p->insns));
		p->insn_cnt = (uint32_t)cnt;
	}
	err = leap_loader_vars_collect(obj, opts);
	if (err)
		goto err_unpin;
	*out = obj;
	return 0;

err_unlock:
	/* A failed bpf_object__load() unpins what it pinned itself. */
	libbpf_set_print(old_print);
	if (take_lock)
		pthread_mutex_unlock(&load_lock);
	leap_obj_close(obj);
	return err;
err_unpin:
	leap_loader_maps_unpin_created(obj);
	leap_obj_close(obj);
	return err;
}

int leap_loader_finish(struct leap_obj *obj, const struct leap_obj_opts *opts)
{
	int err = leap_loader_maps_bind(obj, opts);

	if (!err)
		err = build_engine_progs(obj, opts);
	return err;
}

int leap_obj_load(const char *path, const struct leap_obj_opts *opts, struct leap_obj **out)
{
	struct leap_obj *obj;
	size_t len;
	void *buf;
	int err;

	*out = NULL;
	if (!path || !opts_valid(opts))
		return -EINVAL;
	if (opts->log_buf && opts->log_sz)
		opts->log_buf[0] = 0;
	if (opts->isolate)
		return leap_loader_load_isolated(path, opts, out);
	err = leap_loader_read_file(path, opts, &buf, &len);
	if (err)
		return err;
	err = leap_loader_parse_verify(buf, len, path, opts, true, &obj);
	free(buf);
	if (err)
		return err;
	err = leap_loader_finish(obj, opts);
	if (err) {
		/*
		 * Rejected after the kernel created and pinned the maps: take
		 * back the pins this load made (they hold no state yet), so a
		 * corrected object is not refused for the rejected one's map
		 * shapes.
		 */
		leap_loader_maps_unpin_created(obj);
		leap_obj_close(obj);
		return err;
	}
	*out = obj;
	return 0;
}

void leap_obj_close(struct leap_obj *obj)
{
	if (!obj)
		return;
	free_verifier_logs(obj);
	for (uint32_t i = 0; i < obj->prog_cnt; i++) {
		leap_bpf_prog_free(obj->progs[i].prog);
		free(obj->progs[i].insns);
		if (obj->own_fds && obj->progs[i].kernel_fd >= 0)
			close(obj->progs[i].kernel_fd);
	}
	free(obj->progs);
	if (obj->own_fds)
		for (uint32_t i = 0; i < obj->map_cnt; i++)
			if (obj->maps[i].fd >= 0)
				close(obj->maps[i].fd);
	leap_loader_maps_release(obj);
	free(obj->vars);
	bpf_object__close(obj->bpf);
	free(obj);
}

uint32_t leap_obj_prog_cnt(const struct leap_obj *obj)
{
	return obj->prog_cnt;
}

const char *leap_obj_prog_name(const struct leap_obj *obj, uint32_t idx)
{
	return idx < obj->prog_cnt ? obj->progs[idx].name : NULL;
}

const char *leap_obj_prog_section(const struct leap_obj *obj, uint32_t idx)
{
	return idx < obj->prog_cnt ? obj->progs[idx].section : NULL;
}

int leap_obj_prog_kernel_fd(const struct leap_obj *obj, uint32_t idx)
{
	return idx < obj->prog_cnt ? obj->progs[idx].kernel_fd : -ENOENT;
}

struct leap_bpf_prog *leap_obj_prog(const struct leap_obj *obj, uint32_t idx)
{
	return idx < obj->prog_cnt ? obj->progs[idx].prog : NULL;
}

int leap_obj_find_prog(const struct leap_obj *obj, const char *section)
{
	for (uint32_t i = 0; i < obj->prog_cnt; i++)
		if (strcmp(obj->progs[i].section, section) == 0)
			return (int)i;
	return -ENOENT;
}
