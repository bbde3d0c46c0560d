// SPDX-License-Identifier: BSD-3-Clause
/*
 * Loading a policy object without parsing it in this process. libbpf 1.1's
 * ELF and BTF parsing can be crashed by a corrupt object (about 0.7 % of
 * random byte mutations of a policy make bpf_object__open() fault), and a
 * fault there would take leapd and every tenant down. So with
 * opts->isolate the caller only reads the file (a regular file, size
 * checked); a forked child parses it, creates and pins the maps, has the
 * kernel verify the programs, and passes back over a socket pair:
 *
 *   - a header (status, counts, the failure message),
 *   - SCM_RIGHTS: a memfd holding the description, then every map fd,
 *     then every program's kernel fd,
 *   - the description: per map its name, pin path, reuse and .rodata
 *     flags and the fd number the instructions use for it; per program its
 *     name, section and relocated instructions; the global-variable table.
 *
 * This process then builds the object from that alone: shapes come from
 * the kernel (bpf_map_info on the received fds), the instructions go
 * through the same checks and engine validation as an in-process load.
 * A child that dies (a signal) or hangs (a timeout) is reported as the
 * object's failure; nothing of it stays behind but the pins it made, which
 * are removed. The child holds no descriptor of ours but the socket and
 * logs nothing (its log would go to descriptors it closed).
 *
 * The helper is not a sandbox against a malicious object that exploits
 * libbpf: loading a policy is running code inside leapd by design, and
 * only the control socket's owner (root) can ask for it. It makes a
 * corrupt object cost an error message instead of the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "loader_internal.h"

#define ISO_MAGIC      0x4f53494cu /* "LISO" */
#define ISO_VERSION    1
/* Kernel verification of a large program can take seconds; a hang is not that. */
#define ISO_TIMEOUT_MS 60000
#define ISO_MAX_FDS    (1 + LEAP_OBJ_MAX_MAPS + LEAP_OBJ_MAX_PROGS)

struct iso_hdr {
	uint32_t magic;
	uint32_t version;
	int32_t status; /* 0, or the load's -errno (msg says why) */
	uint32_t nmaps, nprogs, nvars;
	uint64_t blob_len;
	char msg[4096];
};

struct iso_map {
	char name[64];
	char pin_path[512];
	int32_t ref_fd;
	uint8_t reused, read_only, pad[2];
};

struct iso_prog {
	char name[64];
	char section[64];
	uint32_t insn_cnt;
	uint32_t pad;
};

/* blob: iso_map[nmaps] | iso_prog[nprogs] | leap_obj_var[nvars] | insns of each program */

static void discard_log(enum leap_log_level level, const char *subsys, const char *fmt, va_list ap,
			void *ctx)
{
	(void)level, (void)subsys, (void)fmt, (void)ap, (void)ctx;
}

static int blob_write(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -EIO;
		p = (const uint8_t *)p + w;
		n -= (size_t)w;
	}
	return 0;
}

/* Child: describe a loaded object into a memfd; returns it, or -errno. */
static int describe_obj(const struct leap_obj *obj, uint64_t *len)
{
	int fd = memfd_create("leapio-obj", MFD_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	for (uint32_t i = 0; i < obj->map_cnt && !err; i++) {
		const struct leap_map *m = &obj->maps[i];
		struct iso_map im = { .ref_fd = m->ref_fd,
				      .reused = m->reused,
				      .read_only = m->read_only };

		snprintf(im.name, sizeof(im.name), "%s", m->name);
		snprintf(im.pin_path, sizeof(im.pin_path), "%s", m->pin_path);
		err = blob_write(fd, &im, sizeof(im));
	}
	for (uint32_t i = 0; i < obj->prog_cnt && !err; i++) {
		const struct leap_obj_prog *p = &obj->progs[i];
		struct iso_prog ip = { .insn_cnt = p->insn_cnt };

		snprintf(ip.name, sizeof(ip.name), "%s", p->name);
		snprintf(ip.section, sizeof(ip.section), "%s", p->section);
		err = blob_write(fd, &ip, sizeof(ip));
	}
	if (!err && obj->var_cnt)
		err = blob_write(fd, obj->vars, obj->var_cnt * sizeof(*obj->vars));
	for (uint32_t i = 0; i < obj->prog_cnt && !err; i++)
		err = blob_write(fd, obj->progs[i].insns,
				 (size_t)obj->progs[i].insn_cnt * sizeof(struct bpf_insn));
	*len = (uint64_t)lseek(fd, 0, SEEK_CUR);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

static void send_result(int sock, struct iso_hdr *h, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * ISO_MAX_FDS)] __attribute__((aligned(8)));
	struct iovec iov = { h, sizeof(*h) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *cm;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	/* Nothing to do if the parent is gone. */
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
		return;
}

/* The child: parse, verify, describe, send, exit. Never returns. */
static void __attribute__((noreturn))
helper_main(int sock, const void *buf, size_t len, const char *path,
	    const struct leap_obj_opts *popts)
{
	static struct iso_hdr h;
	struct leap_obj_opts opts = *popts;
	int fds[ISO_MAX_FDS], nfds = 0;
	struct leap_obj *obj = NULL;
	sigset_t all;

	/* Die with the parent; no signal of leapd's mask or handlers applies here. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigfillset(&all);
	pthread_sigmask(SIG_UNBLOCK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
	leap_log_set_callback(discard_log, NULL);
	/* Only the socket stays: the daemon's sockets, tenants' memory and logs are not ours. */
	if (dup2(sock, 3) < 0)
		_exit(2);
	sock = 3;
	close_range(4, ~0u, 0);

	h.magic = ISO_MAGIC;
	h.version = ISO_VERSION;
	opts.isolate = false;
	opts.log_buf = h.msg;
	opts.log_sz = sizeof(h.msg);
	h.status = leap_loader_parse_verify(buf, len, path, &opts, false, &obj);
	if (!h.status && (obj->map_cnt > LEAP_OBJ_MAX_MAPS || obj->prog_cnt > LEAP_OBJ_MAX_PROGS)) {
		h.status = leap_loader_fail(
		    &opts, -EFBIG, "%u maps and %u programs (at most %u, %u)", obj->map_cnt,
		    obj->prog_cnt, LEAP_OBJ_MAX_MAPS, LEAP_OBJ_MAX_PROGS);
		leap_loader_maps_unpin_created(obj);
	}
	if (!h.status) {
		int blob = describe_obj(obj, &h.blob_len);

		if (blob < 0) {
			h.status = leap_loader_fail(&opts, blob, "describing the object: %s",
						    strerror(-blob));
			leap_loader_maps_unpin_created(obj);
		} else {
			fds[nfds++] = blob;
			for (uint32_t i = 0; i < obj->map_cnt; i++)
				fds[nfds++] = obj->maps[i].fd;
			for (uint32_t i = 0; i < obj->prog_cnt; i++)
				fds[nfds++] = obj->progs[i].kernel_fd;
			h.nmaps = obj->map_cnt;
			h.nprogs = obj->prog_cnt;
			h.nvars = obj->var_cnt;
		}
	}
	send_result(sock, &h, fds, h.status ? 0 : nfds);
	_exit(0);
}

/* ---- parent ------------------------------------------------------------------ */

static int wait_child(pid_t pid, int sock, struct iso_hdr *h, int *fds, int *nfds, const char *path,
		      const struct leap_obj_opts *opts)
{
	char cbuf[CMSG_SPACE(sizeof(int) * ISO_MAX_FDS)] __attribute__((aligned(8)));
	struct iovec iov = { h, sizeof(*h) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct pollfd p = { .fd = sock, .events = POLLIN };
	ssize_t n = -1;
	int rc, st = 0;

	*nfds = 0;
	do
		rc = poll(&p, 1, ISO_TIMEOUT_MS);
	while (rc < 0 && errno == EINTR);
	if (rc == 1)
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	if (rc == 0)
		kill(pid, SIGKILL);
	for (struct cmsghdr *cm = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm;
	     cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*nfds < ISO_MAX_FDS)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (rc == 0)
		return leap_loader_fail(opts, -ETIMEDOUT,
					"%s: the loader's helper process did not finish in %u s",
					path, ISO_TIMEOUT_MS / 1000);
	if (n != (ssize_t)sizeof(*h) || h->magic != ISO_MAGIC || h->version != ISO_VERSION) {
		char how[64];

		/* A signal; or, under a sanitizer that catches the fault, a failing exit. */
		if (WIFSIGNALED(st))
			snprintf(how, sizeof(how), "%s", strsignal(WTERMSIG(st)));
		else
			snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(st));
		return leap_loader_fail(opts, -EINVAL,
					"%s: the object crashed the loader's helper process (%s); "
					"not a usable BPF object",
					path, how);
	}
	if (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC))
		return leap_loader_fail(opts, -EPROTO, "%s: the helper's answer was cut short",
					path);
	h->msg[sizeof(h->msg) - 1] = 0;
	return 0;
}

static bool fd_is(int fd, const char *what)
{
	char link[64], target[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return strcmp(target, what) == 0;
}

/* Build obj from the helper's answer; everything in it is checked, nothing trusted blindly. */
static int build_from(struct leap_obj *obj, const struct iso_hdr *h, const int *fds, int nfds,
		      const struct leap_obj_opts *opts)
{
	const uint8_t *blob, *p, *end;
	size_t fixed;
	int err = 0;

	if (h->nmaps > LEAP_OBJ_MAX_MAPS || h->nprogs > LEAP_OBJ_MAX_PROGS ||
	    h->nvars > LEAP_OBJ_MAX_VARS || nfds != 1 + (int)h->nmaps + (int)h->nprogs ||
	    h->blob_len > (uint64_t)LEAP_OBJ_MAX_BYTES * 2)
		return leap_loader_fail(opts, -EPROTO, "the helper's answer is malformed");
	fixed = h->nmaps * sizeof(struct iso_map) + h->nprogs * sizeof(struct iso_prog) +
		h->nvars * sizeof(struct leap_obj_var);
	if (h->blob_len < fixed || !h->blob_len)
		return leap_loader_fail(opts, -EPROTO, "the helper's description is too short");
	blob = mmap(NULL, h->blob_len, PROT_READ, MAP_PRIVATE, fds[0], 0);
	if (blob == MAP_FAILED)
		return leap_loader_fail(opts, -errno, "cannot read the helper's description");
	p = blob;
	end = blob + h->blob_len;

	obj->maps = calloc(h->nmaps ? h->nmaps : 1, sizeof(*obj->maps));
	obj->progs = calloc(h->nprogs ? h->nprogs : 1, sizeof(*obj->progs));
	obj->vars = calloc(h->nvars ? h->nvars : 1, sizeof(*obj->vars));
	if (!obj->maps || !obj->progs || !obj->vars) {
		err = -ENOMEM;
		goto out;
	}
	/* Take the fds over first, so that close frees them whatever fails below. */
	obj->own_fds = true;
	for (uint32_t i = 0; i < h->nmaps; i++) {
		obj->maps[i].fd = fds[1 + i];
		obj->map_cnt++;
	}
	for (uint32_t i = 0; i < h->nprogs; i++) {
		obj->progs[i].kernel_fd = fds[1 + h->nmaps + i];
		obj->prog_cnt++;
	}
	for (uint32_t i = 0; i < h->nmaps; i++, p += sizeof(struct iso_map)) {
		struct iso_map im;
		struct leap_map *m = &obj->maps[i];

		memcpy(&im, p, sizeof(im));
		im.name[sizeof(im.name) - 1] = 0;
		im.pin_path[sizeof(im.pin_path) - 1] = 0;
		if (!fd_is(m->fd, "anon_inode:bpf-map")) {
			err = leap_loader_fail(opts, -EPROTO, "map %u from the helper is not a map",
					       i);
			goto out;
		}
		snprintf(m->name, sizeof(m->name), "%s", im.name);
		snprintf(m->pin_path, sizeof(m->pin_path), "%s", im.pin_path);
		/*
		 * Kernel-only maps (XDP's LPM tries, per-CPU maps) are told by
		 * the map the kernel holds, not by what the helper says.
		 */
		{
			struct bpf_map_info info = { 0 };
			__u32 len = sizeof(info);

			if (bpf_obj_get_info_by_fd(m->fd, &info, &len) == 0)
				m->kernel_only = opts->xdp && leap_loader_map_type_kernel_only(
								  (enum bpf_map_type)info.type);
		}
		m->ref_fd = im.ref_fd;
		m->reused = im.reused;
		m->read_only = im.read_only;
	}
	for (uint32_t i = 0; i < h->nprogs; i++, p += sizeof(struct iso_prog)) {
		struct iso_prog ip;
		struct leap_obj_prog *pr = &obj->progs[i];

		memcpy(&ip, p, sizeof(ip));
		ip.name[sizeof(ip.name) - 1] = 0;
		ip.section[sizeof(ip.section) - 1] = 0;
		if (!fd_is(pr->kernel_fd, "anon_inode:bpf-prog") || !ip.insn_cnt ||
		    ip.insn_cnt > LEAP_OBJ_MAX_INSNS) {
			err = leap_loader_fail(opts, -EPROTO,
					       "program %u from the helper is malformed", i);
			goto out;
		}
		snprintf(pr->name, sizeof(pr->name), "%s", ip.name);
		snprintf(pr->section, sizeof(pr->section), "%s", ip.section);
		pr->insn_cnt = ip.insn_cnt;
	}
	memcpy(obj->vars, p, h->nvars * sizeof(*obj->vars));
	p += h->nvars * sizeof(*obj->vars);
	obj->var_cnt = h->nvars;
	for (uint32_t i = 0; i < obj->var_cnt; i++)
		obj->vars[i].name[sizeof(obj->vars[i].name) - 1] = 0;
	for (uint32_t i = 0; i < obj->prog_cnt; i++) {
		struct leap_obj_prog *pr = &obj->progs[i];
		size_t bytes = (size_t)pr->insn_cnt * sizeof(struct bpf_insn);

		if ((size_t)(end - p) < bytes) {
			err = leap_loader_fail(opts, -EPROTO, "program '%s': instructions missing",
					       pr->name);
			goto out;
		}
		pr->insns = malloc(bytes);
		if (!pr->insns) {
			err = -ENOMEM;
			goto out;
		}
		memcpy(pr->insns, p, bytes);
		p += bytes;
	}
out:
	munmap((void *)blob, h->blob_len);
	return err;
}

int leap_loader_load_isolated(const char *path, const struct leap_obj_opts *opts,
			      struct leap_obj **out)
{
	int sv[2], fds[ISO_MAX_FDS], nfds = 0, err;
	static struct iso_hdr h; /* 4 KiB; loads of one process are rare, serialise them */
	static pthread_mutex_t iso_lock = PTHREAD_MUTEX_INITIALIZER;
	struct leap_obj *obj;
	size_t len;
	void *buf;
	pid_t pid;

	*out = NULL;
	err = leap_loader_read_file(path, opts, &buf, &len);
	if (err)
		return err;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		err = -errno;
		free(buf);
		return leap_loader_fail(opts, err, "socketpair: %s", strerror(-err));
	}
	pthread_mutex_lock(&iso_lock);
	pid = fork();
	if (pid == 0)
		helper_main(sv[1], buf, len, path, opts);
	err = pid < 0 ? -errno : 0;
	close(sv[1]);
	free(buf);
	if (!err)
		err = wait_child(pid, sv[0], &h, fds, &nfds, path, opts);
	else
		leap_loader_fail(opts, err, "fork: %s", strerror(-err));
	close(sv[0]);
	if (!err && h.status) {
		err = h.status < 0 && h.status > -4096 ? h.status : -EINVAL;
		if (opts->log_buf && opts->log_sz)
			snprintf(opts->log_buf, opts->log_sz, "%s", h.msg);
	}
	if (err) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		pthread_mutex_unlock(&iso_lock);
		return err;
	}
	obj = calloc(1, sizeof(*obj));
	if (!obj) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		pthread_mutex_unlock(&iso_lock);
		return -ENOMEM;
	}
	err = build_from(obj, &h, fds, nfds, opts);
	pthread_mutex_unlock(&iso_lock);
	close(fds[0]);
	if (!err)
		err = leap_loader_finish(obj, opts);
	if (err) {
		/* Pins the helper made for this load hold no state yet: take them back. */
		leap_loader_maps_unpin_created(obj);
		if (!obj->own_fds) /* build_from failed before taking the fds over */
			for (int i = 1; i < nfds; i++)
				close(fds[i]);
		leap_obj_close(obj);
		return err;
	}
	*out = obj;
	return 0;
}
