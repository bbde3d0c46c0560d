// SPDX-License-Identifier: BSD-3-Clause
/*
 * Decoding a bdev_create object by a table of keys, for the registry's
 * common keys and each module's own. The messages are worded as the RPC
 * layer words its own parameter errors, so a user sees one style whichever
 * layer refused the request.
 */
#include <errno.h>
#include <string.h>

#include "bdev_internal.h"

/* The keys the registry owns; a module's decode accepts them silently. */
static const char *const common_keys[] = { "name", "type", "size", "block_size", "io_timeout_ms" };

static const char *type_name(enum bdev_param_type t)
{
	switch (t) {
	case BDEV_PARAM_STR:
		return "a string";
	case BDEV_PARAM_U32:
	case BDEV_PARAM_U64:
		return "a non-negative integer";
	case BDEV_PARAM_BOOL:
		return "a boolean";
	default:
		return "a value";
	}
}

static int decode_one(const struct bdev_param *p, json_t *v, void *out, struct leap_bdev_err *err)
{
	char *dst = (char *)out + p->offset;
	uint64_t max = p->max ? p->max : (p->type == BDEV_PARAM_U32 ? UINT32_MAX : UINT64_MAX);
	json_int_t iv;

	switch (p->type) {
	case BDEV_PARAM_STR:
		if (!json_is_string(v))
			break;
		*(const char **)dst = json_string_value(v);
		return 0;
	case BDEV_PARAM_BOOL:
		if (!json_is_boolean(v))
			break;
		*(bool *)dst = json_is_true(v);
		return 0;
	case BDEV_PARAM_JSON:
		*(json_t **)dst = v;
		return 0;
	case BDEV_PARAM_U32:
	case BDEV_PARAM_U64:
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			break;
		iv = json_integer_value(v);
		if ((uint64_t)iv < p->min || (uint64_t)iv > max)
			return bdev_err(err, -EINVAL,
					"invalid params: '%s' must be in [%llu, %llu], got %lld",
					p->name, (unsigned long long)p->min,
					(unsigned long long)max, (long long)iv);
		if (p->type == BDEV_PARAM_U32)
			*(uint32_t *)dst = (uint32_t)iv;
		else
			*(uint64_t *)dst = (uint64_t)iv;
		return 0;
	}
	return bdev_err(err, -EINVAL, "invalid params: '%s' must be %s", p->name,
			type_name(p->type));
}

static bool in_spec(const struct bdev_param *spec, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(spec[i].name, key) == 0)
			return true;
	return false;
}

static int decode(const json_t *params, const struct bdev_param *spec, size_t n, void *out,
		  struct leap_bdev_err *err, bool strict)
{
	const char *key;
	json_t *v;
	int rc;

	if (params && !json_is_object(params))
		return bdev_err(err, -EINVAL,
				"invalid params: expected an object of named parameters");
	/* Unknown names are refused so that a typo is not silently a default. */
	if (strict)
		json_object_foreach ((json_t *)params, key, v) {
			bool common = false;

			for (size_t i = 0; i < sizeof(common_keys) / sizeof(common_keys[0]); i++)
				common |= strcmp(common_keys[i], key) == 0;
			if (!common && !in_spec(spec, n, key))
				return bdev_err(err, -EINVAL, "invalid params: unknown field '%s'",
						key);
		}
	for (size_t i = 0; i < n; i++) {
		v = params ? json_object_get(params, spec[i].name) : NULL;
		if (!v || json_is_null(v)) {
			if (spec[i].required)
				return bdev_err(err, -EINVAL,
						"invalid params: missing required field '%s'",
						spec[i].name);
			continue;
		}
		rc = decode_one(&spec[i], v, out, err);
		if (rc)
			return rc;
	}
	return 0;
}

int bdev_params_decode(const json_t *params, const struct bdev_param *spec, size_t n, void *out,
		       struct leap_bdev_err *err)
{
	return decode(params, spec, n, out, err, true);
}

int bdev_params_get(const json_t *params, const struct bdev_param *spec, size_t n, void *out,
		    struct leap_bdev_err *err)
{
	return decode(params, spec, n, out, err, false);
}
