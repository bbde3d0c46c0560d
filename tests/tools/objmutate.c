// SPDX-License-Identifier: BSD-3-Clause
/*
 * objmutate: byte-mutated copies of a BPF ELF object, for the corrupt-policy
 * tests (issue 11, class 7). Mutation `seed` overwrites 1..8 bytes at
 * positions and with values drawn from a xorshift64 seeded with `seed`, so a
 * seed names the same mutant on every machine.
 *
 *   objmutate write IN OUTDIR FIRST COUNT   writes OUTDIR/mut-<seed>.bpf.o
 *   objmutate crashes IN FIRST COUNT         prints the seeds whose mutant
 *                                            crashes libbpf's bpf_object__open
 *                                            (each tried in a child process)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <bpf/libbpf.h>

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void mutate(uint8_t *b, size_t n, uint64_t seed)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	int k = 1 + (int)(next(&s) % 8);

	for (int i = 0; i < k; i++) {
		size_t at = (size_t)(next(&s) % n);

		b[at] = (uint8_t)next(&s);
	}
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level, (void)fmt, (void)ap;
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t *orig, *m;
	long first, count;
	FILE *f;
	long n;

	if (argc < 5 || (strcmp(argv[1], "write") && strcmp(argv[1], "crashes")) ||
	    (!strcmp(argv[1], "write") && argc != 6)) {
		fprintf(stderr, "usage: objmutate write IN OUTDIR FIRST COUNT | crashes IN FIRST "
				"COUNT\n");
		return 2;
	}
	f = fopen(argv[2], "rb");
	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET)) {
		fprintf(stderr, "objmutate: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	orig = malloc((size_t)n);
	m = malloc((size_t)n);
	if (!orig || !m || fread(orig, 1, (size_t)n, f) != (size_t)n)
		return 1;
	fclose(f);
	first = strtol(argv[argc == 6 ? 4 : 3], NULL, 10);
	count = strtol(argv[argc == 6 ? 5 : 4], NULL, 10);
	libbpf_set_print(quiet);
	for (long seed = first; seed < first + count; seed++) {
		memcpy(m, orig, (size_t)n);
		mutate(m, (size_t)n, (uint64_t)seed);
		if (!strcmp(argv[1], "write")) {
			char path[4096];

			snprintf(path, sizeof(path), "%s/mut-%ld.bpf.o", argv[3], seed);
			f = fopen(path, "wb");
			if (!f || fwrite(m, 1, (size_t)n, f) != (size_t)n || fclose(f)) {
				fprintf(stderr, "objmutate: %s: %s\n", path, strerror(errno));
				return 1;
			}
		} else {
			pid_t pid = fork();
			int st;

			if (pid == 0) {
				struct bpf_object *o = bpf_object__open_mem(m, (size_t)n, NULL);

				bpf_object__close(o);
				_exit(0);
			}
			if (pid < 0 || waitpid(pid, &st, 0) < 0)
				return 1;
			if (WIFSIGNALED(st))
				printf("%ld\n", seed);
		}
	}
	free(orig);
	free(m);
	return 0;
}
