// SPDX-License-Identifier: BSD-3-Clause
/*
 * The bdev registry: the backend modules that registered themselves, and
 * every bdev under a unique name. Creation parses the common keys, reserves
 * the name, and lets the module work without the registry lock (it may
 * open other bdevs or wait for a remote target); the bdev joins the list
 * when the module calls back. The registry counts the namespaces that hold
 * each bdev and refuses to destroy one still in use. This is control-plane
 * code, so one mutex is enough; the I/O path never comes here. Also the
 * helper thread that opens channels for threads that must not block, and
 * the reactor glue that lets a channel be its own poller.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leapio/common.h"
#include "leapio/log.h"
#include "leapio/nvme_spec.h"
#include "bdev_internal.h"
#include "core/reactor.h"

#define MAX_MODULES 32

/* Written by constructors before main() (one thread), read-only afterwards. */
static const struct leap_bdev_ops *modules[MAX_MODULES];
static size_t nmodules;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct leap_bdev *registry_head;
static uint32_t next_id = 1;
/* Lock-free "may exist" flags by id (leap_bdev_id_live). */
static uint8_t id_live[LEAP_BDEV_MAX_IDS];

/* A creation the module has not finished: its name is taken meanwhile. */
struct creation {
	struct leap_bdev_common_params common;
	char name[64];
	char type[16];
	struct leap_bdev_err *err;
	leap_bdev_create_cb cb;
	void *cb_arg;
	struct creation *next;
};

static struct creation *creating_head;

/* ---- modules ---------------------------------------------------------- */

void leap_bdev_module_register(const struct leap_bdev_ops *ops)
{
	size_t i;

	if (!ops || !ops->type || !ops->create || nmodules == MAX_MODULES ||
	    strlen(ops->type) >= sizeof(((struct leap_bdev *)0)->type)) {
		LEAP_ERR("bdev", "module '%s' refused (incomplete, name too long, or too many)",
			 ops && ops->type ? ops->type : "?");
		return;
	}
	/* Kept sorted by type, so listings and messages do not depend on link order. */
	for (i = 0; i < nmodules && strcmp(modules[i]->type, ops->type) < 0; i++)
		;
	if (i < nmodules && strcmp(modules[i]->type, ops->type) == 0) {
		LEAP_ERR("bdev", "module '%s' registered twice", ops->type);
		return;
	}
	memmove(&modules[i + 1], &modules[i], (nmodules - i) * sizeof(modules[0]));
	modules[i] = ops;
	nmodules++;
}

const struct leap_bdev_ops *leap_bdev_module_next(const struct leap_bdev_ops *prev)
{
	size_t i = 0;

	if (prev) {
		while (i < nmodules && modules[i] != prev)
			i++;
		i++;
	}
	return i < nmodules ? modules[i] : NULL;
}

static const struct leap_bdev_ops *module_find(const char *type)
{
	for (size_t i = 0; i < nmodules; i++)
		if (strcmp(modules[i]->type, type) == 0)
			return modules[i];
	return NULL;
}

/* "a, b or c" */
static void module_list(char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	for (size_t i = 0; i < nmodules && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
					i == 0		    ? ""
					: i + 1 == nmodules ? " or "
							    : ", ",
					modules[i]->type);
	if (!nmodules)
		snprintf(buf, len, "(no backend module linked)");
}

/* ---- creation --------------------------------------------------------- */

void bdev_init_common(struct leap_bdev *bdev, const struct leap_bdev_ops *ops,
		      const struct leap_bdev_common_params *common)
{
	bdev->ops = ops;
	snprintf(bdev->name, sizeof(bdev->name), "%s", common->name);
	snprintf(bdev->type, sizeof(bdev->type), "%s", ops->type);
	bdev->size = common->size;
	bdev->block_size = common->block_size;
	bdev->io_timeout_ms = common->io_timeout_ms;
	bdev->mem_align = 1;
	bdev->refs = 0;
	bdev->next = NULL;
}

int bdev_err(struct leap_bdev_err *err, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return rc;
}

struct common_raw {
	const char *name, *type;
	uint64_t size;
	uint32_t block_size;
	uint32_t io_timeout_ms;
};

static const struct bdev_param common_spec[] = {
	BDEV_PARAM("name", BDEV_PARAM_STR, true, struct common_raw, name),
	BDEV_PARAM("type", BDEV_PARAM_STR, true, struct common_raw, type),
	BDEV_PARAM("size", BDEV_PARAM_U64, false, struct common_raw, size),
	BDEV_PARAM("block_size", BDEV_PARAM_U32, false, struct common_raw, block_size),
	/* A day: longer is a typo, not a timeout. */
	BDEV_PARAM_RANGE("io_timeout_ms", BDEV_PARAM_U32, false, struct common_raw, io_timeout_ms,
			 0, 86400000),
};

static int common_parse(const json_t *params, struct leap_bdev_common_params *c,
			const struct leap_bdev_ops **ops, struct leap_bdev_err *err)
{
	struct common_raw raw = { .block_size = 512 };
	char types[128];
	int rc;

	rc = bdev_params_get(params, common_spec, LEAP_ARRAY_SIZE(common_spec), &raw, err);
	if (rc)
		return rc;
	if (!raw.name[0] || strlen(raw.name) >= sizeof(((struct leap_bdev *)0)->name))
		return bdev_err(err, -EINVAL, "invalid params: 'name' must be 1..%zu characters",
				sizeof(((struct leap_bdev *)0)->name) - 1);
	*ops = module_find(raw.type);
	if (!*ops) {
		module_list(types, sizeof(types));
		return bdev_err(err, -EINVAL, "invalid params: 'type' must be %s, got '%s'", types,
				raw.type);
	}
	if (raw.block_size != 512 && raw.block_size != 4096)
		return bdev_err(err, -EINVAL,
				"invalid params: 'block_size' must be 512 or 4096, got %u",
				raw.block_size);
	if (raw.size % raw.block_size)
		return bdev_err(
		    err, -EINVAL,
		    "invalid params: 'size' %llu is not a multiple of the block size %u",
		    (unsigned long long)raw.size, raw.block_size);
	c->name = raw.name;
	c->type = raw.type;
	c->size = raw.size;
	c->block_size = raw.block_size;
	c->io_timeout_ms = raw.io_timeout_ms;
	return 0;
}

static bool name_taken_locked(const char *name)
{
	for (struct leap_bdev *b = registry_head; b; b = b->next)
		if (strcmp(b->name, name) == 0)
			return true;
	for (struct creation *c = creating_head; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return true;
	return false;
}

static void creation_unlink_locked(struct creation *cr)
{
	struct creation **pp;

	for (pp = &creating_head; *pp && *pp != cr; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = cr->next;
}

/* The module's callback: any thread, any time after create() started. */
static void creation_done(void *arg, int rc, struct leap_bdev *bdev)
{
	struct creation *cr = arg;
	struct leap_bdev **tail;

	if (!rc && !bdev)
		rc = bdev_err(cr->err, -EIO, "module '%s' finished without a bdev", cr->type);
	pthread_mutex_lock(&registry_lock);
	creation_unlink_locked(cr);
	if (!rc) {
		for (tail = &registry_head; *tail; tail = &(*tail)->next)
			;
		*tail = bdev;
		bdev->next = NULL;
		bdev->id = next_id++;
		bdev->qos_weight[0] = bdev->qos_weight[1] = bdev->qos_weight[2] = 1;
		if (bdev->id < LEAP_BDEV_MAX_IDS)
			__atomic_store_n(&id_live[bdev->id], 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&registry_lock);
	if (rc) {
		if (!cr->err->msg[0])
			bdev_err(cr->err, rc, "%s", strerror(-rc));
		LEAP_ERR("bdev", "%s: cannot create %s bdev: %s", cr->name, cr->type, cr->err->msg);
		bdev = NULL;
	} else {
		LEAP_INFO("bdev", "created %s bdev '%s': %llu bytes, block %u", bdev->type,
			  bdev->name, (unsigned long long)bdev->size, bdev->block_size);
	}
	cr->cb(cr->cb_arg, rc, bdev);
	free(cr);
}

int leap_bdev_create(const json_t *params, struct leap_bdev_err *err, leap_bdev_create_cb cb,
		     void *cb_arg)
{
	const struct leap_bdev_ops *ops = NULL;
	struct leap_bdev_common_params common;
	struct creation *cr;
	int rc;

	if (!err || !cb)
		return -EINVAL;
	err->msg[0] = 0;
	rc = common_parse(params, &common, &ops, err);
	if (rc)
		return rc;
	cr = calloc(1, sizeof(*cr));
	if (!cr)
		return bdev_err(err, -ENOMEM, "out of memory");
	snprintf(cr->name, sizeof(cr->name), "%s", common.name);
	snprintf(cr->type, sizeof(cr->type), "%s", common.type);
	cr->common = common;
	cr->common.name = cr->name;
	cr->common.type = cr->type;
	cr->err = err;
	cr->cb = cb;
	cr->cb_arg = cb_arg;

	/* Reserve the name; the module then runs unlocked (it may use the registry). */
	pthread_mutex_lock(&registry_lock);
	if (name_taken_locked(cr->name)) {
		pthread_mutex_unlock(&registry_lock);
		free(cr);
		return bdev_err(err, -EEXIST, "bdev '%s' already exists", common.name);
	}
	cr->next = creating_head;
	creating_head = cr;
	pthread_mutex_unlock(&registry_lock);

	rc = ops->create(&cr->common, params, err, creation_done, cr);
	if (rc) {
		pthread_mutex_lock(&registry_lock);
		creation_unlink_locked(cr);
		pthread_mutex_unlock(&registry_lock);
		if (!err->msg[0])
			bdev_err(err, rc, "%s", strerror(-rc));
		LEAP_ERR("bdev", "%s: %s", cr->name, err->msg);
		free(cr);
		return rc;
	}
	return 0;
}

struct create_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int rc;
	struct leap_bdev *bdev;
};

static void create_wait_done(void *arg, int rc, struct leap_bdev *bdev)
{
	struct create_wait *w = arg;

	pthread_mutex_lock(&w->lock);
	w->rc = rc;
	w->bdev = bdev;
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int leap_bdev_create_wait(const json_t *params, struct leap_bdev **out, struct leap_bdev_err *err)
{
	struct create_wait w = { .lock = PTHREAD_MUTEX_INITIALIZER,
				 .cond = PTHREAD_COND_INITIALIZER };
	struct leap_bdev_err own;
	int rc;

	rc = leap_bdev_create(params, err ? err : &own, create_wait_done, &w);
	if (rc)
		return rc;
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	if (out)
		*out = w.bdev;
	return w.rc;
}

/* ---- lookup and lifetime ---------------------------------------------- */

static struct leap_bdev *find_locked(const char *name)
{
	for (struct leap_bdev *b = registry_head; b; b = b->next)
		if (strcmp(b->name, name) == 0)
			return b;
	return NULL;
}

int leap_bdev_destroy(struct leap_bdev *bdev)
{
	struct leap_bdev **pp;

	if (!bdev)
		return -EINVAL;
	pthread_mutex_lock(&registry_lock);
	for (pp = &registry_head; *pp && *pp != bdev; pp = &(*pp)->next)
		;
	if (!*pp) {
		pthread_mutex_unlock(&registry_lock);
		return -ENOENT;
	}
	if (bdev->refs) {
		pthread_mutex_unlock(&registry_lock);
		LEAP_ERR("bdev", "%s: in use by %u namespace(s)", bdev->name, bdev->refs);
		return -EBUSY;
	}
	*pp = bdev->next;
	if (bdev->id < LEAP_BDEV_MAX_IDS)
		__atomic_store_n(&id_live[bdev->id], 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&registry_lock);
	bdev->ops->destroy(bdev);
	return 0;
}

struct leap_bdev *leap_bdev_find(const char *name)
{
	struct leap_bdev *b;

	if (!name)
		return NULL;
	pthread_mutex_lock(&registry_lock);
	b = find_locked(name);
	pthread_mutex_unlock(&registry_lock);
	return b;
}

struct leap_bdev *leap_bdev_next(struct leap_bdev *prev)
{
	struct leap_bdev *b;

	pthread_mutex_lock(&registry_lock);
	b = prev ? prev->next : registry_head;
	pthread_mutex_unlock(&registry_lock);
	return b;
}

struct leap_bdev *leap_bdev_get(const char *name)
{
	struct leap_bdev *b;

	if (!name)
		return NULL;
	pthread_mutex_lock(&registry_lock);
	b = find_locked(name);
	if (b)
		b->refs++;
	pthread_mutex_unlock(&registry_lock);
	return b;
}

struct leap_bdev *leap_bdev_get_id(uint32_t id)
{
	struct leap_bdev *b;

	pthread_mutex_lock(&registry_lock);
	for (b = registry_head; b && b->id != id; b = b->next)
		;
	if (b)
		b->refs++;
	pthread_mutex_unlock(&registry_lock);
	return b;
}

bool leap_bdev_id_live(uint32_t id)
{
	return id < LEAP_BDEV_MAX_IDS && __atomic_load_n(&id_live[id], __ATOMIC_ACQUIRE);
}

void leap_bdev_put(struct leap_bdev *bdev)
{
	if (!bdev)
		return;
	pthread_mutex_lock(&registry_lock);
	if (bdev->refs)
		bdev->refs--;
	else
		LEAP_WARN("bdev", "%s: put without a matching get", bdev->name);
	pthread_mutex_unlock(&registry_lock);
}

/* ---- descriptions ----------------------------------------------------- */

json_t *leap_bdev_config(const struct leap_bdev *bdev)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:i}", "name", bdev->name, "type", bdev->type,
			      "size", (json_int_t)bdev->size, "block_size", (int)bdev->block_size);

	if (o && bdev->io_timeout_ms &&
	    json_object_set_new(o, "io_timeout_ms", json_integer(bdev->io_timeout_ms))) {
		json_decref(o);
		return NULL;
	}
	if (o && bdev->ops->write_config && bdev->ops->write_config(bdev, o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *leap_bdev_info(const struct leap_bdev *bdev)
{
	uint32_t refs = __atomic_load_n(&bdev->refs, __ATOMIC_RELAXED);
	json_t *o =
	    json_pack("{s:s, s:s, s:I, s:i, s:I, s:i, s:i, s:{s:i, s:[i,i,i]}}", "name", bdev->name,
		      "type", bdev->type, "size", (json_int_t)bdev->size, "block_size",
		      (int)bdev->block_size, "blocks", (json_int_t)(bdev->size / bdev->block_size),
		      "namespaces", (int)refs, "id", (int)bdev->id, "qos", "inflight",
		      (int)__atomic_load_n(&bdev->qos_inflight, __ATOMIC_RELAXED), "weights",
		      bdev->qos_weight[0], bdev->qos_weight[1], bdev->qos_weight[2]);

	if (o && bdev->io_timeout_ms &&
	    json_object_set_new(o, "io_timeout_ms", json_integer(bdev->io_timeout_ms))) {
		json_decref(o);
		return NULL;
	}
	if (o && bdev->ops->dump_info && bdev->ops->dump_info(bdev, o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

uint16_t leap_bdev_status_from_errno(int err, enum leap_bdev_op op)
{
	switch (err) {
	case 0:
		return 0;
	case -EIO:
	case -ENODATA:
		return op == LEAP_BDEV_OP_READ
			   ? NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_UNRECOVERED_READ_ERROR)
			   : NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULTS);
	case -EFAULT:
		return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_TRANSFER_ERROR);
	case -ENOSPC:
	case -EDQUOT:
		return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_CAPACITY_EXCEEDED);
	case -EACCES:
	case -EPERM:
	case -EROFS:
		return NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_ACCESS_DENIED);
	case -ECANCELED:
		return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_ABORTED_BY_REQUEST);
	default:
		return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
	}
}

/* ---- module methods ---------------------------------------------------- */

const struct leap_bdev_method *leap_bdev_method_next(const struct leap_bdev_method *prev)
{
	size_t i = 0;

	if (prev) {
		/* The module whose table holds prev; the next entry, or the next module's first. */
		for (; i < nmodules; i++) {
			const struct leap_bdev_method *m = modules[i]->methods;

			for (; m && m->name; m++)
				if (m == prev)
					break;
			if (m && m->name) {
				if ((m + 1)->name)
					return m + 1;
				i++;
				break;
			}
		}
	}
	for (; i < nmodules; i++)
		if (modules[i]->methods && modules[i]->methods[0].name)
			return &modules[i]->methods[0];
	return NULL;
}

int leap_bdev_method_call(const char *method, const json_t *params, json_t **result,
			  struct leap_bdev_err *err)
{
	const struct leap_bdev_method *m = NULL;
	const struct leap_bdev_ops *ops = NULL;
	json_t *name = json_is_object(params) ? json_object_get(params, "name") : NULL;
	struct leap_bdev *bdev;

	*result = NULL;
	err->msg[0] = 0;
	for (size_t i = 0; i < nmodules && !m; i++)
		for (const struct leap_bdev_method *t = modules[i]->methods; t && t->name; t++)
			if (strcmp(t->name, method) == 0) {
				m = t;
				ops = modules[i];
				break;
			}
	if (!m)
		return bdev_err(err, -ENOSYS, "no backend module has a method '%s'", method);
	if (!json_is_string(name))
		return bdev_err(err, -EINVAL, "invalid params: missing required field 'name'");
	bdev = leap_bdev_find(json_string_value(name));
	if (!bdev)
		return bdev_err(err, -ENOENT, "bdev '%s' not found", json_string_value(name));
	if (bdev->ops != ops)
		return bdev_err(err, -EINVAL, "invalid params: bdev '%s' is a %s bdev, not %s",
				bdev->name, bdev->type, ops->type);
	return m->fn(bdev, params, result, err);
}

/* ---- channels opened off the caller's thread --------------------------- */

struct open_job {
	struct leap_bdev *bdev;
	leap_bdev_channel_open_cb cb;
	void *cb_arg;
};

static void *open_thread(void *arg)
{
	struct open_job job = *(struct open_job *)arg;
	struct leap_bdev_channel *ch = NULL;
	int rc;

	free(arg);
	rc = leap_bdev_channel_open(job.bdev, &ch);
	job.cb(job.cb_arg, rc, rc ? NULL : ch);
	return NULL;
}

int leap_bdev_channel_open_async(struct leap_bdev *bdev, leap_bdev_channel_open_cb cb, void *cb_arg)
{
	struct open_job *job = malloc(sizeof(*job));
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	if (!job)
		return -ENOMEM;
	*job = (struct open_job){ .bdev = bdev, .cb = cb, .cb_arg = cb_arg };
	/* One short-lived thread per open: opens are rare (a first redirect), never per I/O. */
	rc = pthread_attr_init(&attr);
	if (!rc) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		rc = pthread_create(&t, &attr, open_thread, job);
		pthread_attr_destroy(&attr);
	}
	if (rc) {
		free(job);
		LEAP_ERR("bdev", "%s: no thread to open a channel: %s", bdev->name, strerror(rc));
		return -rc;
	}
	return 0;
}

/* ---- a channel as a reactor poller ---------------------------------- */

static int bdev_poller_poll(void *arg)
{
	return leap_bdev_poll(arg) > 0 ? LEAP_POLL_BUSY : LEAP_POLL_IDLE;
}

static bool bdev_poller_sleep_prepare(void *arg)
{
	return leap_bdev_channel_sleep_prepare(arg);
}

static void bdev_poller_sleep_done(void *arg)
{
	leap_bdev_channel_sleep_done(arg);
}

const struct leap_poller_ops leap_bdev_poller_ops = {
	.poll = bdev_poller_poll,
	.sleep_prepare = bdev_poller_sleep_prepare,
	.sleep_done = bdev_poller_sleep_done,
};
