/*
 * cmdline.c - table-driven `key=value` parsing of the kernel command line.
 *
 * Freestanding (no libc) and host-testable: tests/host/test_kernel_cmdline.c checks
 * every accepted form and every reported problem under the sanitizers.
 */
#include <labyrinth/cmdline.h>

/*
 * A word is a maximal run of non-whitespace.  `key=value` splits at the first '='
 * (values may contain '=').  Words are never modified or copied: the parser works
 * on (pointer, length) slices of the caller's string, so there is no word length
 * limit other than what a report line shows (long words are cut with "...").
 *
 * A problem leaves the option's previous value in place and is reported as one line
 * that quotes the whole word, so a user can find it in what they typed.
 */

#define REPORT_MAX 192
#define WORD_SHOWN 64

struct line {
	char buf[REPORT_MAX];
	size_t len;
};

static void put_n(struct line *l, const char *s, size_t n)
{
	for (size_t i = 0; i < n && l->len + 1 < sizeof(l->buf); i++)
		l->buf[l->len++] = s[i];
	l->buf[l->len] = '\0';
}

static void put(struct line *l, const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	put_n(l, s, n);
}

static void put_u64(struct line *l, uint64_t v)
{
	char digits[20];
	size_t n = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		put_n(l, &digits[--n], 1);
}

/* Begin a report line with the quoted word: 'word' (cut with ... if long). */
static void put_word(struct line *l, const char *w, size_t n)
{
	put(l, "'");
	if (n > WORD_SHOWN) {
		put_n(l, w, WORD_SHOWN - 3);
		put(l, "...");
	} else {
		put_n(l, w, n);
	}
	put(l, "'");
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Does the slice [s, s+n) equal the NUL-terminated @lit (ASCII case-insensitive if @fold)? */
static bool slice_eq(const char *s, size_t n, const char *lit, bool fold)
{
	size_t i = 0;
	for (; i < n; i++) {
		if (!lit[i])
			return false;
		if (fold ? lower(s[i]) != lower(lit[i]) : s[i] != lit[i])
			return false;
	}
	return lit[i] == '\0';
}

enum num_result { NUM_OK, NUM_MALFORMED, NUM_OVERFLOW };

/* Decimal, or hex after 0x/0X; no sign, no suffix, at least one digit. */
static enum num_result parse_u64(const char *s, size_t n, uint64_t *out)
{
	unsigned radix = 10;
	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		radix = 16;
		s += 2;
		n -= 2;
	}
	if (n == 0)
		return NUM_MALFORMED;
	uint64_t v = 0;
	bool overflow = false;
	for (size_t i = 0; i < n; i++) {
		char c = lower(s[i]);
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (radix == 16 && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return NUM_MALFORMED; /* checked to the end: "99999999999999999999x" is malformed */
		if (v > (UINT64_MAX - d) / radix)
			overflow = true;
		v = v * radix + d;
	}
	if (overflow)
		return NUM_OVERFLOW;
	*out = v;
	return NUM_OK;
}

static bool parse_bool(const char *s, size_t n, bool *out)
{
	static const char *const yes[] = { "1", "yes", "on", "true" };
	static const char *const no[] = { "0", "no", "off", "false" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (slice_eq(s, n, yes[i], true)) {
			*out = true;
			return true;
		}
		if (slice_eq(s, n, no[i], true)) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* Is [v, v+n) one of the '|'-separated @choices? */
static bool one_of(const char *v, size_t n, const char *choices)
{
	const char *c = choices;
	for (;;) {
		size_t len = 0;
		while (c[len] && c[len] != '|')
			len++;
		if (len == n) { /* by hand: the choice is '|'-terminated, not NUL-terminated */
			size_t i = 0;
			while (i < n && v[i] == c[i])
				i++;
			if (i == n)
				return true;
		}
		if (!c[len])
			return false;
		c += len + 1;
	}
}

static void describe_expected(struct line *l, const struct kopt *o)
{
	switch (o->type) {
	case KOPT_U64:
		put(l, " (expected a number ");
		put_u64(l, o->min);
		put(l, "..");
		put_u64(l, o->max);
		put(l, ")");
		break;
	case KOPT_STRING:
		if (o->choices) {
			put(l, " (expected one of ");
			put(l, o->choices);
			put(l, ")");
		} else {
			put(l, " (expected a string)");
		}
		break;
	case KOPT_BOOL:
		put(l, " (expected 0/1, yes/no, on/off or true/false)");
		break;
	}
}

/*
 * Apply one `key[=value]` word.  Returns true if understood; otherwise fills @l with
 * the report (after the quoted word already in it) and returns false.
 */
static bool apply_word(const char *w, size_t n, const struct kopt *table, size_t nopts,
		       struct line *l)
{
	size_t klen = 0;
	while (klen < n && w[klen] != '=')
		klen++;
	bool has_value = klen < n;
	const char *val = w + klen + (has_value ? 1 : 0);
	size_t vlen = has_value ? n - klen - 1 : 0;

	const struct kopt *o = NULL;
	for (size_t i = 0; i < nopts && !o; i++)
		if (klen > 0 && slice_eq(w, klen, table[i].key, false))
			o = &table[i];
	if (!o) {
		put(l, ": unknown option");
		return false;
	}

	if (!has_value && o->type == KOPT_BOOL) {
		*(bool *)o->dst = true;
		return true;
	}
	if (vlen == 0) {
		put(l, ": missing value");
		describe_expected(l, o);
		return false;
	}

	switch (o->type) {
	case KOPT_U64: {
		uint64_t v = 0;
		enum num_result r = parse_u64(val, vlen, &v);
		if (r == NUM_MALFORMED) {
			put(l, ": not a number (decimal, or hex with 0x)");
			return false;
		}
		if (r == NUM_OVERFLOW) {
			put(l, ": number too large for 64 bits");
			return false;
		}
		if (v < o->min || v > o->max) {
			put(l, ": out of range ");
			put_u64(l, o->min);
			put(l, "..");
			put_u64(l, o->max);
			return false;
		}
		*(uint64_t *)o->dst = v;
		return true;
	}
	case KOPT_STRING: {
		/* Choices first: "must be one of" helps more than "too long". */
		if (o->choices && !one_of(val, vlen, o->choices)) {
			put(l, ": must be one of ");
			put(l, o->choices);
			return false;
		}
		if (o->max == 0 || vlen > o->max - 1) {
			put(l, ": too long (at most ");
			put_u64(l, o->max ? o->max - 1 : 0);
			put(l, " characters)");
			return false;
		}
		char *dst = o->dst;
		for (size_t i = 0; i < vlen; i++)
			dst[i] = val[i];
		dst[vlen] = '\0';
		return true;
	}
	case KOPT_BOOL: {
		bool b;
		if (!parse_bool(val, vlen, &b)) {
			put(l, ": not a boolean (0/1, yes/no, on/off, true/false)");
			return false;
		}
		*(bool *)o->dst = b;
		return true;
	}
	}
	put(l, ": option has an unknown type");
	return false;
}

unsigned cmdline_parse(const char *cmdline, const struct kopt *table, size_t n,
		       void (*report)(const char *line))
{
	unsigned problems = 0;
	if (!cmdline)
		return 0;

	const char *p = cmdline;
	for (;;) {
		while (*p && is_space(*p))
			p++;
		if (!*p)
			return problems;
		const char *w = p;
		while (*p && !is_space(*p))
			p++;
		size_t wlen = (size_t)(p - w);

		struct line l;
		l.len = 0;
		l.buf[0] = '\0';
		put_word(&l, w, wlen);
		if (!apply_word(w, wlen, table, n, &l)) {
			problems++;
			if (report)
				report(l.buf);
		}
	}
}
