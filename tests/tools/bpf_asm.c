// SPDX-License-Identifier: BSD-3-Clause
/*
 * bpf_asm: a small assembler for the data-driven BPF tests. It reads the
 * assembly syntax of the bpf_conformance corpus (uBPF's, with registers
 * written %rN or rN) on stdin and prints the program as hex, 16 digits per
 * instruction (its 8 bytes in memory order), one instruction per line: the
 * format leap-bpfrun reads.
 *
 *   bpf_asm < prog.asm > prog.hex
 *   bpf_asm --raw < words    64-bit instruction words (a .data "-- raw"
 *                            section, 0x-prefixed or decimal) to the same hex
 *
 * Syntax: one instruction per line; "label:" lines; '#' starts a comment.
 * Jump targets are +N/-N or a label; "exit" names the first exit.
 *   mov32 r0, 1        add %r1, %r2       sdiv32 r0, -3      movsx1664 r0, r1
 *   neg r0             be16 r0            le64 r0            bswap32 r0
 *   lddw r0, 0x1122334455667788
 *   ldxw r0, [r1+4]    ldxsb r0, [r1]     stxdw [r10-8], r1  stb [r1+2], 7
 *   jeq r1, 0x10, +2   jgt32 r1, r2, L    ja +1              ja32 label
 *   call 1             call helper 1      call local func    call runtime 7
 *   lock add [r10-8], r1   lock fetch xor32 [r10-4], r1   lock cmpxchg [r10-8], r1
 * Exit: 0 assembled, 1 on the first error (line number and reason on stderr).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/bpf.h>

#ifndef BPF_MEMSX
#define BPF_MEMSX 0x80 /* v4 sign-extending load; the 6.1 UAPI header lacks it */
#endif

#define MAX_INSNS  65536
#define MAX_LABELS 4096
#define MAX_NAME   64
#define MAX_TOKENS 8

struct label {
	char name[MAX_NAME];
	uint32_t pc;
};

struct fixup {
	char name[MAX_NAME];
	uint32_t pc;
	int line;
	bool in_imm; /* call local and ja32 put the offset in imm */
};

static struct bpf_insn insns[MAX_INSNS];
static uint32_t ninsns;
static struct label labels[MAX_LABELS];
static uint32_t nlabels;
static struct fixup fixups[MAX_INSNS];
static uint32_t nfixups;
static int lineno;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bpf_asm: line %d: ", lineno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Signed decimal or 0x hex (hex may use all 64 bits, like the corpus's assembler). */
static bool parse_num(const char *s, int64_t *out)
{
	bool neg = false;
	uint64_t v = 0;
	int base = 10, digits = 0;

	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (; *s; s++, digits++) {
		int d;

		if (isdigit((unsigned char)*s))
			d = *s - '0';
		else if (base == 16 && isxdigit((unsigned char)*s))
			d = tolower((unsigned char)*s) - 'a' + 10;
		else
			return false;
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return false;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	if (!digits)
		return false;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

static int32_t imm32(const char *s)
{
	int64_t v;

	if (!parse_num(s, &v))
		die("bad number '%s'", s);
	/* Hex spells a bit pattern (0xffffffff is -1); decimal must fit int32. */
	if (strstr(s, "0x") || strstr(s, "0X")) {
		if (s[0] != '-' && (uint64_t)v > UINT32_MAX)
			die("immediate '%s' does not fit 32 bits", s);
		return (int32_t)(uint32_t)v;
	}
	if (v < INT32_MIN || v > INT32_MAX)
		die("immediate '%s' does not fit 32 bits", s);
	return (int32_t)v;
}

static int16_t off16(const char *s)
{
	int64_t v;

	if (!parse_num(s, &v))
		die("bad offset '%s'", s);
	if (strstr(s, "0x") && s[0] != '-' && v >= 0 && v <= UINT16_MAX)
		return (int16_t)(uint16_t)v;
	if (v < INT16_MIN || v > INT16_MAX)
		die("offset '%s' does not fit 16 bits", s);
	return (int16_t)v;
}

static bool is_reg(const char *s)
{
	if (*s == '%')
		s++;
	return s[0] == 'r' && isdigit((unsigned char)s[1]);
}

/* r0..r10; r11..r15 are accepted so negative tests can encode invalid registers. */
static uint8_t reg(const char *s)
{
	const char *p = *s == '%' ? s + 1 : s;
	int64_t v;

	if (p[0] != 'r' || !parse_num(p + 1, &v) || p[1] == '+' || p[1] == '-' || v < 0 || v > 15)
		die("bad register '%s'", s);
	return (uint8_t)v;
}

/* "[rN]", "[rN+off]", "[rN-off]" (spaces already removed). */
static void memop(const char *s, uint8_t *r, int16_t *off)
{
	char buf[MAX_NAME];
	size_t n = strlen(s);
	char *sign;

	if (n < 3 || s[0] != '[' || s[n - 1] != ']' || n - 2 >= sizeof(buf))
		die("bad memory operand '%s'", s);
	memcpy(buf, s + 1, n - 2);
	buf[n - 2] = '\0';
	sign = strpbrk(buf, "+-");
	*off = 0;
	if (sign) {
		*off = off16(sign);
		*sign = '\0';
	}
	*r = reg(buf);
}

static struct bpf_insn *emit(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	struct bpf_insn *in;

	if (ninsns >= MAX_INSNS)
		die("more than %d instructions", MAX_INSNS);
	in = &insns[ninsns++];
	*in = (struct bpf_insn){
		.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm
	};
	return in;
}

/* A +N/-N offset, or a label resolved after the whole program is read. */
static int32_t target(const char *s, bool in_imm)
{
	struct fixup *f;

	if (s[0] == '+' || s[0] == '-' || isdigit((unsigned char)s[0]))
		return in_imm ? imm32(s) : off16(s);
	if (strlen(s) >= MAX_NAME)
		die("label '%s' too long", s);
	f = &fixups[nfixups++];
	snprintf(f->name, sizeof(f->name), "%s", s);
	f->pc = ninsns; /* the instruction about to be emitted */
	f->line = lineno;
	f->in_imm = in_imm;
	return 0;
}

static void add_label(const char *name, uint32_t pc)
{
	if (strlen(name) >= MAX_NAME)
		die("label '%s' too long", name);
	for (uint32_t i = 0; i < nlabels; i++)
		if (strcmp(labels[i].name, name) == 0)
			die("duplicate label '%s'", name);
	if (nlabels >= MAX_LABELS)
		die("too many labels");
	snprintf(labels[nlabels].name, MAX_NAME, "%s", name);
	labels[nlabels++].pc = pc;
}

static const struct {
	const char *name;
	uint8_t op;
} alu_ops[] = {
	{ "add", BPF_ADD },  { "sub", BPF_SUB }, { "mul", BPF_MUL },   { "div", BPF_DIV },
	{ "sdiv", BPF_DIV }, { "or", BPF_OR },	 { "and", BPF_AND },   { "lsh", BPF_LSH },
	{ "rsh", BPF_RSH },  { "neg", BPF_NEG }, { "mod", BPF_MOD },   { "smod", BPF_MOD },
	{ "xor", BPF_XOR },  { "mov", BPF_MOV }, { "arsh", BPF_ARSH },
};

static const struct {
	const char *name;
	uint8_t op;
} jmp_ops[] = {
	{ "jeq", BPF_JEQ }, { "jgt", BPF_JGT },	  { "jge", BPF_JGE },	{ "jset", BPF_JSET },
	{ "jne", BPF_JNE }, { "jsgt", BPF_JSGT }, { "jsge", BPF_JSGE }, { "jlt", BPF_JLT },
	{ "jle", BPF_JLE }, { "jslt", BPF_JSLT }, { "jsle", BPF_JSLE },
};

static uint8_t size_suffix(const char *s)
{
	if (strcmp(s, "b") == 0)
		return BPF_B;
	if (strcmp(s, "h") == 0)
		return BPF_H;
	if (strcmp(s, "w") == 0)
		return BPF_W;
	if (strcmp(s, "dw") == 0)
		return BPF_DW;
	return 0xff;
}

static void want(int ntok, int n, const char *m)
{
	if (ntok != n)
		die("'%s' takes %d operand%s, got %d", m, n, n == 1 ? "" : "s", ntok);
}

/* Strip a trailing "32"/"64" width suffix; returns 32, 64 or 0 (none). */
static int width_suffix(char *m)
{
	size_t n = strlen(m);

	if (n > 2 && strcmp(m + n - 2, "32") == 0) {
		m[n - 2] = '\0';
		return 32;
	}
	if (n > 2 && strcmp(m + n - 2, "64") == 0) {
		m[n - 2] = '\0';
		return 64;
	}
	return 0;
}

static bool asm_alu(const char *mnem, char **op, int nop)
{
	char m[MAX_NAME];
	int width, sx = 0;
	uint8_t cls;
	int16_t off = 0;

	snprintf(m, sizeof(m), "%s", mnem);
	/* Byte swaps: be/le are ALU (to-big/to-little), bswap/swap ALU64 (v4). */
	if (!strncmp(m, "be", 2) || !strncmp(m, "le", 2) || !strncmp(m, "bswap", 5) ||
	    !strncmp(m, "swap", 4)) {
		const char *w = m + (m[0] == 'b' && m[1] == 's' ? 5 : m[0] == 's' ? 4 : 2);
		uint8_t code;

		if (strcmp(w, "16") && strcmp(w, "32") && strcmp(w, "64"))
			return false;
		want(nop, 1, mnem);
		if (m[0] == 'b' && m[1] == 'e')
			code = BPF_ALU | BPF_END | BPF_TO_BE;
		else if (m[0] == 'l')
			code = BPF_ALU | BPF_END | BPF_TO_LE;
		else
			code = BPF_ALU64 | BPF_END | BPF_TO_LE;
		emit(code, reg(op[0]), 0, 0, w[0] == '1' ? 16 : w[0] == '3' ? 32 : 64);
		return true;
	}
	if (!strncmp(m, "movsx", 5)) {
		/* movsx{8,16,32}{32,64}: source width then destination width. */
		width = width_suffix(m);
		if (!width || (strcmp(m + 5, "8") && strcmp(m + 5, "16") && strcmp(m + 5, "32")))
			return false;
		sx = m[5] == '8' ? 8 : m[5] == '1' ? 16 : 32;
		m[3] = '\0'; /* movsx is mov with a sign-extension width in off */
	} else {
		width = width_suffix(m);
	}
	for (size_t i = 0; i < sizeof(alu_ops) / sizeof(alu_ops[0]); i++) {
		if (strcmp(m, alu_ops[i].name))
			continue;
		cls = width == 32 ? BPF_ALU : BPF_ALU64;
		if (m[0] == 's' && (m[1] == 'd' || m[1] == 'm'))
			off = 1; /* sdiv / smod */
		if (sx)
			off = (int16_t)sx;
		if (alu_ops[i].op == BPF_NEG) {
			want(nop, 1, mnem);
			emit(cls | BPF_NEG, reg(op[0]), 0, 0, 0);
			return true;
		}
		want(nop, 2, mnem);
		if (is_reg(op[1]))
			emit(cls | BPF_X | alu_ops[i].op, reg(op[0]), reg(op[1]), off, 0);
		else
			emit(cls | BPF_K | alu_ops[i].op, reg(op[0]), 0, off, imm32(op[1]));
		return true;
	}
	return false;
}

static bool asm_jmp(const char *mnem, char **op, int nop)
{
	char m[MAX_NAME];
	int width;

	if (!strcmp(mnem, "ja") || !strcmp(mnem, "ja32")) {
		bool gotol = mnem[2] == '3';

		want(nop, 1, mnem);
		if (gotol)
			emit(BPF_JMP32 | BPF_JA, 0, 0, 0, target(op[0], true));
		else
			emit(BPF_JMP | BPF_JA, 0, 0, (int16_t)target(op[0], false), 0);
		return true;
	}
	if (!strcmp(mnem, "exit")) {
		want(nop, 0, mnem);
		emit(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
		return true;
	}
	if (!strcmp(mnem, "call")) {
		if (nop == 1 && is_reg(op[0])) { /* callx: register in dst_reg */
			emit(BPF_JMP | BPF_CALL | BPF_X, reg(op[0]), 0, 0, 0);
		} else if (nop == 1) {
			emit(BPF_JMP | BPF_CALL, 0, 0, 0, imm32(op[0]));
		} else if (nop == 2 && !strcmp(op[0], "helper")) {
			if (is_reg(op[1]))
				emit(BPF_JMP | BPF_CALL | BPF_X, reg(op[1]), 0, 0, 0);
			else
				emit(BPF_JMP | BPF_CALL, 0, 0, 0, imm32(op[1]));
		} else if (nop == 2 && !strcmp(op[0], "local")) {
			emit(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, target(op[1], true));
		} else if (nop == 2 && !strcmp(op[0], "runtime")) {
			emit(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, imm32(op[1]));
		} else {
			die("call wants 'N', 'helper N', 'local label|+N' or 'runtime N'");
		}
		return true;
	}
	snprintf(m, sizeof(m), "%s", mnem);
	width = width_suffix(m);
	if (width == 64)
		return false;
	for (size_t i = 0; i < sizeof(jmp_ops) / sizeof(jmp_ops[0]); i++) {
		uint8_t cls = width == 32 ? BPF_JMP32 : BPF_JMP;

		if (strcmp(m, jmp_ops[i].name))
			continue;
		want(nop, 3, mnem);
		if (is_reg(op[1])) {
			uint8_t d = reg(op[0]), s = reg(op[1]);

			emit(cls | BPF_X | jmp_ops[i].op, d, s, (int16_t)target(op[2], false), 0);
		} else {
			uint8_t d = reg(op[0]);
			int32_t k = imm32(op[1]);

			emit(cls | BPF_K | jmp_ops[i].op, d, 0, (int16_t)target(op[2], false), k);
		}
		return true;
	}
	return false;
}

static bool asm_mem(const char *mnem, char **op, int nop)
{
	uint8_t r, sz;
	int16_t off;

	if (!strcmp(mnem, "lddw")) {
		int64_t v;

		want(nop, 2, mnem);
		if (!parse_num(op[1], &v))
			die("bad number '%s'", op[1]);
		emit(BPF_LD | BPF_DW | BPF_IMM, reg(op[0]), 0, 0, (int32_t)(uint32_t)(uint64_t)v);
		emit(0, 0, 0, 0, (int32_t)(uint32_t)((uint64_t)v >> 32));
		return true;
	}
	if (!strncmp(mnem, "ldxs", 4) && (sz = size_suffix(mnem + 4)) != 0xff && sz != BPF_DW) {
		want(nop, 2, mnem);
		memop(op[1], &r, &off);
		emit(BPF_LDX | BPF_MEMSX | sz, reg(op[0]), r, off, 0);
		return true;
	}
	if (!strncmp(mnem, "ldx", 3) && (sz = size_suffix(mnem + 3)) != 0xff) {
		want(nop, 2, mnem);
		memop(op[1], &r, &off);
		emit(BPF_LDX | BPF_MEM | sz, reg(op[0]), r, off, 0);
		return true;
	}
	if (!strncmp(mnem, "stx", 3) && (sz = size_suffix(mnem + 3)) != 0xff) {
		want(nop, 2, mnem);
		memop(op[0], &r, &off);
		emit(BPF_STX | BPF_MEM | sz, r, reg(op[1]), off, 0);
		return true;
	}
	if (!strncmp(mnem, "st", 2) && (sz = size_suffix(mnem + 2)) != 0xff) {
		want(nop, 2, mnem);
		memop(op[0], &r, &off);
		emit(BPF_ST | BPF_MEM | sz, r, 0, off, imm32(op[1]));
		return true;
	}
	return false;
}

/* lock [fetch] add|and|or|xor|xchg|cmpxchg[32] [rN+off], rM */
static bool asm_lock(char **op, int nop)
{
	static const struct {
		const char *name;
		int32_t imm;
	} ops[] = {
		{ "add", BPF_ADD }, { "and", BPF_AND },	  { "or", BPF_OR },
		{ "xor", BPF_XOR }, { "xchg", BPF_XCHG }, { "cmpxchg", BPF_CMPXCHG },
	};
	bool fetch = nop > 0 && !strcmp(op[0], "fetch");
	char m[MAX_NAME];
	uint8_t r;
	int16_t off;
	int width;

	if (fetch) {
		op++;
		nop--;
	}
	if (nop != 3)
		die("lock wants '[fetch] op [reg+off], reg'");
	snprintf(m, sizeof(m), "%s", op[0]);
	width = width_suffix(m);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		int32_t imm = ops[i].imm;

		if (strcmp(m, ops[i].name))
			continue;
		if (fetch && (imm == BPF_XCHG || imm == BPF_CMPXCHG))
			die("%s always fetches", m);
		memop(op[1], &r, &off);
		emit(BPF_STX | BPF_ATOMIC | (width == 32 ? BPF_W : BPF_DW), r, reg(op[2]), off,
		     imm | (fetch ? BPF_FETCH : 0));
		return true;
	}
	die("unknown atomic operation '%s'", op[0]);
}

/* Split a line into tokens: commas are spaces, "[r1 + 4]" becomes one token "[r1+4]". */
static int tokenize(char *line, char **tok, char *store, size_t store_sz)
{
	int n = 0;
	size_t used = 0;
	char *p = line;

	for (char *c = line; *c; c++)
		if (*c == ',' || *c == '\t' || *c == '\r' || *c == '\n')
			*c = ' ';
	while (*p) {
		bool bracket;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		if (n == MAX_TOKENS)
			die("too many operands");
		tok[n++] = store + used;
		bracket = *p == '[';
		while (*p && (bracket ? true : *p != ' ')) {
			if (*p != ' ') {
				if (used + 2 >= store_sz)
					die("line too long");
				store[used++] = *p;
			}
			if (bracket && *p == ']') {
				p++;
				break;
			}
			p++;
		}
		store[used++] = '\0';
	}
	return n;
}

static void assemble_line(char *line)
{
	char store[512], *tok[MAX_TOKENS], *hash = strchr(line, '#');
	static bool seen_exit;
	int n;

	if (hash)
		*hash = '\0';
	n = tokenize(line, tok, store, sizeof(store));
	while (n && tok[0][strlen(tok[0]) - 1] == ':') {
		tok[0][strlen(tok[0]) - 1] = '\0';
		add_label(tok[0], ninsns);
		memmove(tok, tok + 1, (size_t)--n * sizeof(tok[0]));
	}
	if (!n)
		return;
	if (!strcmp(tok[0], "exit") && !seen_exit) {
		/* The corpus uses "exit" as a label naming the first exit. */
		seen_exit = true;
		bool defined = false;

		for (uint32_t i = 0; i < nlabels; i++)
			defined |= !strcmp(labels[i].name, "exit");
		if (!defined)
			add_label("exit", ninsns);
	}
	if (!strcmp(tok[0], "lock")) {
		asm_lock(tok + 1, n - 1);
		return;
	}
	if (tok[0][0] == 'j' || !strcmp(tok[0], "call") || !strcmp(tok[0], "exit")) {
		if (asm_jmp(tok[0], tok + 1, n - 1))
			return;
	} else if (asm_mem(tok[0], tok + 1, n - 1) || asm_alu(tok[0], tok + 1, n - 1)) {
		return;
	}
	die("unknown mnemonic '%s'", tok[0]);
}

static void resolve(void)
{
	for (uint32_t f = 0; f < nfixups; f++) {
		struct fixup *fx = &fixups[f];
		uint32_t i;

		for (i = 0; i < nlabels; i++)
			if (!strcmp(labels[i].name, fx->name))
				break;
		lineno = fx->line;
		if (i == nlabels)
			die("undefined label '%s'", fx->name);
		int64_t rel = (int64_t)labels[i].pc - fx->pc - 1;

		if (fx->in_imm)
			insns[fx->pc].imm = (int32_t)rel;
		else if (rel < INT16_MIN || rel > INT16_MAX)
			die("jump to '%s' is too far", fx->name);
		else
			insns[fx->pc].off = (int16_t)rel;
	}
}

/* "-- raw" words: each is an instruction read as a little-endian 64-bit value. */
static void read_raw(char *line)
{
	char store[512], *tok[MAX_TOKENS];
	int n = tokenize(line, tok, store, sizeof(store));

	for (int i = 0; i < n; i++) {
		int64_t v;

		if (!parse_num(tok[i], &v))
			die("bad instruction word '%s'", tok[i]);
		if (ninsns >= MAX_INSNS)
			die("more than %d instructions", MAX_INSNS);
		uint64_t u = (uint64_t)v;

		memcpy(&insns[ninsns++], &u, 8);
	}
}

int main(int argc, char **argv)
{
	bool raw = argc == 2 && !strcmp(argv[1], "--raw");
	char line[1024];

	if (argc > 2 || (argc == 2 && !raw)) {
		fprintf(stderr, "usage: bpf_asm [--raw] < program > hex\n");
		return 2;
	}
	while (fgets(line, sizeof(line), stdin)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(stdin))
			die("line too long");
		if (raw) {
			char *hash = strchr(line, '#');

			if (hash)
				*hash = '\0';
			read_raw(line);
		} else {
			assemble_line(line);
		}
	}
	resolve();
	if (!ninsns) {
		lineno = 0;
		die("no instructions");
	}
	for (uint32_t i = 0; i < ninsns; i++) {
		const uint8_t *b = (const uint8_t *)&insns[i];

		for (int j = 0; j < 8; j++)
			printf("%02x", b[j]);
		putchar('\n');
	}
	return 0;
}
