// SPDX-License-Identifier: BSD-3-Clause
/*
 * The bdev registry: creates a backend by type name, keeps every bdev in one
 * list under a unique name, counts the namespaces that hold each one and
 * refuses to destroy a bdev still in use. This is control-plane code (RPCs,
 * namespace attach), so one mutex is enough; the I/O path never comes here.
 * Also the reactor glue that lets a channel be its own poller.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "leapio/log.h"
#include "leapio/nvme_spec.h"
#include "bdev_internal.h"
#include "core/reactor.h"

static const struct leap_bdev_ops *const bdev_types[] = {
	&leap_bdev_uring_ops,
	&leap_bdev_mem_ops,
	&leap_bdev_null_ops,
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct leap_bdev *registry_head;
static uint32_t next_id = 1;
/* Lock-free "may exist" flags by id (leap_bdev_id_live). */
static uint8_t id_live[LEAP_BDEV_MAX_IDS];

static const struct leap_bdev_ops *type_lookup(const char *type)
{
	for (size_t i = 0; i < sizeof(bdev_types) / sizeof(bdev_types[0]); i++)
		if (strcmp(bdev_types[i]->type, type) == 0)
			return bdev_types[i];
	return NULL;
}

static struct leap_bdev *find_locked(const char *name)
{
	for (struct leap_bdev *b = registry_head; b; b = b->next)
		if (strcmp(b->name, name) == 0)
			return b;
	return NULL;
}

void bdev_init_common(struct leap_bdev *bdev, const struct leap_bdev_ops *ops,
		      const struct leap_bdev_params *p)
{
	bdev->ops = ops;
	snprintf(bdev->name, sizeof(bdev->name), "%s", p->name);
	snprintf(bdev->type, sizeof(bdev->type), "%s", ops->type);
	snprintf(bdev->path, sizeof(bdev->path), "%s", p->path ? p->path : "");
	bdev->size = p->size;
	bdev->block_size = p->block_size ? p->block_size : 512;
	bdev->mem_align = 1;
	bdev->refs = 0;
	bdev->next = NULL;
}

static int params_check(const struct leap_bdev_params *p)
{
	uint32_t bs = p->block_size ? p->block_size : 512;

	if (!p->name || !p->name[0] || strlen(p->name) >= sizeof(((struct leap_bdev *)0)->name)) {
		LEAP_ERR("bdev", "name must be 1..63 bytes");
		return -EINVAL;
	}
	if (bs != 512 && bs != 4096) {
		LEAP_ERR("bdev", "%s: block_size %u: must be 512 or 4096", p->name, bs);
		return -EINVAL;
	}
	if (p->size % bs) {
		LEAP_ERR("bdev", "%s: size %llu is not a multiple of block_size %u", p->name,
			 (unsigned long long)p->size, bs);
		return -EINVAL;
	}
	return 0;
}

int leap_bdev_create(const struct leap_bdev_params *p, struct leap_bdev **out)
{
	const struct leap_bdev_ops *ops;
	struct leap_bdev *bdev = NULL, **tail;
	int err;

	if (!p || !out)
		return -EINVAL;
	err = params_check(p);
	if (err)
		return err;
	ops = p->type ? type_lookup(p->type) : NULL;
	if (!ops) {
		LEAP_ERR("bdev", "%s: unknown type '%s'", p->name, p->type ? p->type : "(null)");
		return -ENOENT;
	}

	/*
	 * Hold the lock across create so two RPCs racing on one name cannot
	 * both open the backing file; creation is rare and never on the I/O path.
	 */
	pthread_mutex_lock(&registry_lock);
	if (find_locked(p->name)) {
		pthread_mutex_unlock(&registry_lock);
		LEAP_ERR("bdev", "%s: name already exists", p->name);
		return -EEXIST;
	}
	err = ops->create(p, &bdev);
	if (err) {
		pthread_mutex_unlock(&registry_lock);
		return err;
	}
	for (tail = &registry_head; *tail; tail = &(*tail)->next)
		;
	*tail = bdev;
	bdev->id = next_id++;
	bdev->qos_weight[0] = bdev->qos_weight[1] = bdev->qos_weight[2] = 1;
	if (bdev->id < LEAP_BDEV_MAX_IDS)
		__atomic_store_n(&id_live[bdev->id], 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&registry_lock);
	LEAP_INFO("bdev", "created %s bdev '%s': %llu bytes, block %u", bdev->type, bdev->name,
		  (unsigned long long)bdev->size, bdev->block_size);
	*out = bdev;
	return 0;
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
