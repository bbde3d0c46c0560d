// SPDX-License-Identifier: BSD-3-Clause
/*
 * fio external ioengine "leapio": fio jobs drive an NVMe controller, either
 * a leapd virtual controller over shared memory (ctrl=NAME, leapio_shm.c)
 * or any NVMe/TCP controller named by an SPDK-style transport ID in the
 * job's filename (leapio_tcp.c):
 *
 *   filename=trtype=tcp adrfam=ipv4 traddr=127.0.0.1 trsvcid=4420 subnqn=nqn.x\:y
 *
 * fio splits filenames at ':' (several files per job), so a transport ID
 * here uses '=' between key and value, and a ':' inside a value (every NQN
 * has one, IPv6 addresses many) is written '\:', which fio turns back
 * into ':' (the escape SPDK's fio plugin documents too). Pairs are separated
 * by spaces; ns=N picks the namespace, as in SPDK's plugin.
 *
 * This file is what fio sees: the options, the ioengine_ops, and ->setup(),
 * which picks the job's transport. Every other callback is one indirect
 * call through the ops table the job's io_ops_data begins with.
 *
 * Build against the same configured fio tree as the fio that loads it
 * (make builds build/lib/leapio_fio.so against build/fio): fio refuses
 * an engine whose FIO_IOOPS_VERSION differs, and struct thread_data's
 * layout depends on that tree's config-host.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fio.h"
#include "optgroup.h"

#include "engine_internal.h"

static struct fio_option options[] = {
	{
	    .name = "socket",
	    .lname = "leapd tenant socket",
	    .type = FIO_OPT_STR_STORE,
	    .off1 = offsetof(struct lf_options, socket),
	    .def = LEAPIO_FIO_DEFAULT_SOCKET,
	    .help = "leapd's tenant socket (leapd -s)",
	    .category = FIO_OPT_C_ENGINE,
	    .group = FIO_OPT_G_INVALID,
	},
	{
	    .name = "ctrl",
	    .lname = "leapio controller",
	    .type = FIO_OPT_STR_STORE,
	    .off1 = offsetof(struct lf_options, ctrl),
	    .help = "Name of the leapd controller to attach to (shared memory)",
	    .category = FIO_OPT_C_ENGINE,
	    .group = FIO_OPT_G_INVALID,
	},
	{
	    .name = "nsid",
	    .lname = "NVMe namespace id",
	    .type = FIO_OPT_INT,
	    .off1 = offsetof(struct lf_options, nsid),
	    .def = "1",
	    .minval = 1,
	    .help = "Namespace of the controller the job does I/O to",
	    .category = FIO_OPT_C_ENGINE,
	    .group = FIO_OPT_G_INVALID,
	},
	{
	    .name = "mem_size",
	    .lname = "leapio shared region size",
	    .type = FIO_OPT_STR_VAL,
	    .off1 = offsetof(struct lf_options, mem_size),
	    .def = "0",
	    .help = "Bytes of memory shared with leapd per controller (0: sized for the jobs)",
	    .category = FIO_OPT_C_ENGINE,
	    .group = FIO_OPT_G_INVALID,
	},
	{
	    .name = "busy_poll",
	    .lname = "leapio busy poll",
	    .type = FIO_OPT_BOOL,
	    .off1 = offsetof(struct lf_options, busy_poll),
	    .def = "1",
	    .help = "Spin for completions (1) or sleep on the completion vector or socket (0)",
	    .category = FIO_OPT_C_ENGINE,
	    .group = FIO_OPT_G_INVALID,
	},
	{
	    .name = "connect_timeout",
	    .lname = "NVMe/TCP connect timeout",
	    .type = FIO_OPT_INT,
	    .off1 = offsetof(struct lf_options, connect_timeout),
	    .def = "10000",
	    .minval = 1,
	    .help = "Milliseconds an NVMe/TCP controller may take to come up",
	    .category = FIO_OPT_C_ENGINE,
	    .group = FIO_OPT_G_INVALID,
	},
	{
	    .name = NULL,
	},
};

uint64_t lf_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool lf_bs_fits_lba(struct thread_data *td, uint32_t lba_size)
{
	if (td->o.bs_unaligned)
		return false;
	for (int d = DDIR_READ; d < DDIR_RWDIR_CNT; d++) {
		if (td->o.min_bs[d] % lba_size || td->o.max_bs[d] % lba_size)
			return false;
	}
	return true;
}

void lf_set_file_size(struct thread_data *td, const char *name, uint64_t bytes)
{
	unsigned int i;

	/* The namespace is the job's only "file" (as fio's rbd and nbd engines do). */
	if (!td->files_index) {
		add_file(td, td->o.filename ?: name, 0, 0);
		td->o.nr_files = td->o.nr_files ?: 1;
		td->o.open_files++;
	}
	for (i = 0; i < td->files_index; i++)
		td->files[i]->real_file_size = bytes;
}

/*
 * A filename naming an NVMe/TCP controller: "traddr=" somewhere, or
 * "trtype=" first (so a typo in traddr still gets the parser's message).
 */
static bool is_trid(const char *name)
{
	return name && (strstr(name, "traddr=") || strstr(name, "traddr:") ||
			!strncasecmp(name, "trtype=", 7) || !strncasecmp(name, "trtype:", 7));
}

/*
 * The filename option as fio reads it: ':' separates files and '\:' is a
 * literal ':'. Returns the one name with the escapes undone (free() it),
 * or NULL with *several set when the string names more than one file.
 */
static char *unescape_filename(const char *s, bool *several)
{
	char *out = malloc(strlen(s) + 1), *o = out;

	*several = false;
	if (!out)
		return NULL;
	for (; *s; s++) {
		if (*s == '\\' && s[1] == ':') {
			*o++ = ':';
			s++;
		} else if (*s == ':') {
			*several = true;
			free(out);
			return NULL;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return out;
}

/* In fio's main thread, before any job runs (or in the job, with create_serialize=0). */
static int lf_setup(struct thread_data *td)
{
	struct lf_options *o = td->eo;
	bool several;
	char *trid;
	int rc;

	if (td->io_ops_data)
		return 0;
	if (!td->o.use_thread) {
		log_err("leapio: %s: needs thread=1 (the jobs of one fio process share one attach "
			"per controller and cannot be forked)\n",
			td->o.name);
		return 1;
	}
	if (!is_trid(td->o.filename))
		return lf_shm_setup(td);
	if (o->ctrl && o->ctrl[0]) {
		log_err("leapio: %s: give either ctrl= (a leapd controller over shared memory) or "
			"a transport ID as filename= (NVMe/TCP), not both\n",
			td->o.name);
		return 1;
	}
	trid = unescape_filename(td->o.filename, &several);
	if (!trid) {
		if (several)
			log_err("leapio: %s: filename '%s' names several files: one NVMe/TCP "
				"controller per job, and a ':' inside a value must be written "
				"'\\:' (fio separates files with ':'); key and value are joined "
				"by '='\n",
				td->o.name, td->o.filename);
		return 1;
	}
	rc = lf_tcp_setup(td, trid);
	free(trid);
	return rc;
}

static inline const struct lf_transport *tr(struct thread_data *td)
{
	return ((const struct lf_job_base *)td->io_ops_data)->tr;
}

static int lf_init(struct thread_data *td)
{
	return td->io_ops_data ? tr(td)->init(td) : 1;
}

static enum fio_q_status lf_queue(struct thread_data *td, struct io_u *io_u)
{
	return tr(td)->queue(td, io_u);
}

static int lf_commit(struct thread_data *td)
{
	return tr(td)->commit(td);
}

static int lf_getevents(struct thread_data *td, unsigned int min, unsigned int max,
			const struct timespec *t)
{
	return tr(td)->getevents(td, min, max, t);
}

static struct io_u *lf_event(struct thread_data *td, int event)
{
	return tr(td)->event(td, event);
}

static void lf_cleanup(struct thread_data *td)
{
	if (td->io_ops_data)
		tr(td)->cleanup(td);
}

static int lf_iomem_alloc(struct thread_data *td, size_t total)
{
	return td->io_ops_data ? tr(td)->iomem_alloc(td, total) : 1;
}

static void lf_iomem_free(struct thread_data *td)
{
	if (td->io_ops_data)
		tr(td)->iomem_free(td);
}

static int lf_open_file(struct thread_data *td, struct fio_file *f)
{
	return 0;
}

static int lf_close_file(struct thread_data *td, struct fio_file *f)
{
	return 0;
}

/*
 * Found by fio as dlsym("ioengine") when loaded with ioengine=external:PATH,
 * and registered by name ("leapio") when the object is LD_PRELOADed.
 */
__attribute__((visibility("default"))) struct ioengine_ops ioengine = {
	.name = "leapio",
	.version = FIO_IOOPS_VERSION,
	.flags = FIO_DISKLESSIO | FIO_NODISKUTIL | FIO_NOEXTEND,
	.setup = lf_setup,
	.init = lf_init,
	.queue = lf_queue,
	.commit = lf_commit,
	.getevents = lf_getevents,
	.event = lf_event,
	.cleanup = lf_cleanup,
	.open_file = lf_open_file,
	.close_file = lf_close_file,
	.iomem_alloc = lf_iomem_alloc,
	.iomem_free = lf_iomem_free,
	.option_struct_size = sizeof(struct lf_options),
	.options = options,
};

static void fio_init lf_register(void)
{
	register_ioengine(&ioengine);
}

static void fio_exit lf_unregister(void)
{
	unregister_ioengine(&ioengine);
}
