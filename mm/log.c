/*
 * log.c - how mm/ talks: the one place refusals are counted and handed to the port as
 * records, a tiny formatter for the port's log sink and for lmm_report_format(), and
 * the names of statuses and frame states.
 *
 * Refusals are data: lmm_refuse() makes no text, so it may run in a handler.  Text is
 * made only by lmm_logf() (normal-context calls: init, dump, check) and by
 * lmm_report_format() when the port asks.  The formatter divides by nothing, so a
 * 32-bit port needs no 64-bit division helper from libgcc.
 */
#include "internal.h"

#define LMM_LINE_MAX 192

struct lmm_buf {
	char *p;
	size_t left;
};

static void buf_putc(struct lmm_buf *b, char c)
{
	if (b->left > 1) {
		*b->p++ = c;
		b->left--;
	}
}

static void buf_puts(struct lmm_buf *b, const char *s)
{
	if (!s)
		s = "(null)";
	while (*s)
		buf_putc(b, *s++);
}

static const unsigned long long powers_of_ten[20] = {
	1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull,
	1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull,
	100000000000000ull, 1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
	1000000000000000000ull, 10000000000000000000ull,
};

/* Digits by shifts (hex) or by subtracting powers of ten (decimal): no division. */
static void buf_putu(struct lmm_buf *b, unsigned long long v, unsigned base, int width, char pad)
{
	int digits = 1;
	if (base == 16) {
		while (digits < 16 && (v >> (4 * digits)))
			digits++;
	} else {
		while (digits < 20 && v >= powers_of_ten[digits])
			digits++;
	}
	while (width-- > digits)
		buf_putc(b, pad);
	while (digits--) {
		if (base == 16) {
			buf_putc(b, "0123456789abcdef"[(v >> (4 * digits)) & 15]);
			continue;
		}
		char d = '0';
		while (v >= powers_of_ten[digits]) {
			v -= powers_of_ten[digits];
			d++;
		}
		buf_putc(b, d);
	}
}

/* Supports %s %c %d %u %x %p with the l/ll/z modifiers and a zero-padded width. */
size_t lmm_vformat(char *buf, size_t len, const char *fmt, va_list ap)
{
	struct lmm_buf b = { buf, len };
	if (len == 0)
		return 0;

	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			buf_putc(&b, *fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0, lng = 0;
		if (*fmt == '0')
			pad = '0', fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z')
			lng += (*fmt++ == 'z' && sizeof(size_t) > sizeof(long)) ? 2 : 1; /* z: size_t's width */

		unsigned long long u;
		switch (*fmt) {
		case 's':
			buf_puts(&b, va_arg(ap, const char *));
			break;
		case 'c':
			buf_putc(&b, (char)va_arg(ap, int));
			break;
		case 'd': {
			long long v = lng >= 2 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : va_arg(ap, int);
			if (v < 0) {
				buf_putc(&b, '-');
				u = 0ull - (unsigned long long)v;
			} else {
				u = (unsigned long long)v;
			}
			buf_putu(&b, u, 10, width, pad);
			break;
		}
		case 'u':
		case 'x':
			u = lng >= 2 ? va_arg(ap, unsigned long long) : lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
			buf_putu(&b, u, *fmt == 'u' ? 10 : 16, width, pad);
			break;
		case 'p':
			buf_puts(&b, "0x");
			buf_putu(&b, (uintptr_t)va_arg(ap, void *), 16, 0, '0');
			break;
		case '%':
			buf_putc(&b, '%');
			break;
		default:
			buf_putc(&b, '?');
			if (!*fmt)
				fmt--;
			break;
		}
	}
	*b.p = '\0';
	return (size_t)(b.p - buf);
}

size_t lmm_format(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = lmm_vformat(buf, len, fmt, ap);
	va_end(ap);
	return n;
}

void lmm_logf(const char *fmt, ...)
{
	char line[LMM_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	lmm_vformat(line, sizeof(line), fmt, ap);
	va_end(ap);
	lmm_port_log(line);
}

const char *lmm_status_str(enum lmm_status status)
{
	static const char *const names[LMM_STATUS_COUNT] = {
		[LMM_OK] = "ok",
		[LMM_ERR_NOT_ALIGNED] = "address not page aligned",
		[LMM_ERR_NOT_MANAGED] = "address not managed by this allocator",
		[LMM_ERR_NOT_HEAD] = "address inside a block, not its first page",
		[LMM_ERR_ALREADY_FREE] = "block already free (double free)",
		[LMM_ERR_RESERVED] = "page is reserved",
		[LMM_ERR_WRONG_ORDER] = "order differs from the allocation's",
		[LMM_ERR_WRONG_OWNER] = "caller is not the exclusive owner",
		[LMM_ERR_EXCLUSIVE] = "exclusive page cannot be shared",
		[LMM_ERR_NOT_EXCLUSIVE] = "page is not exclusive",
		[LMM_ERR_BAD_ORDER] = "order above LMM_MAX_ORDER",
		[LMM_ERR_BAD_FLAGS] = "invalid gfp flags",
		[LMM_ERR_BAD_OWNER] = "owner tag 0 is not an owner",
		[LMM_ERR_BAD_CONTEXT] = "call not allowed in this context (e.g. KERNEL from a handler)",
		[LMM_ERR_REFCOUNT] = "reference count overflow",
		[LMM_ERR_EMPTY_RANGE] = "range holds no whole page",
		[LMM_ERR_ABSURD_RANGE] = "range wraps or lies past the physical address limit",
		[LMM_ERR_TOO_MANY_RANGES] = "range table full",
		[LMM_ERR_STATE] = "call not allowed in this phase",
		[LMM_ERR_NO_MEMORY] = "no usable memory (or no room for the metadata)",
		[LMM_ERR_POISONED] = "freed page was written after its free",
		[LMM_ERR_BAD_CPU] = "CPU index not below LMM_PORT_MAX_CPUS",
		[LMM_ERR_BAD_MARKS] = "pool marks out of range (low above target, or target above pool_most)",
		[LMM_ERR_NOT_CONTIGUOUS] = "range not virtually contiguous through lmm_port_phys_to_virt",
	};
	if ((unsigned)status >= LMM_STATUS_COUNT || !names[status])
		return "unknown status";
	return names[status];
}

const char *lmm_state_str(uint8_t state)
{
	switch (state) {
	case LMM_FRAME_TAIL: return "tail";
	case LMM_FRAME_FREE: return "free";
	case LMM_FRAME_ALLOCATED: return "allocated";
	case LMM_FRAME_EXCLUSIVE: return "exclusive";
	case LMM_FRAME_POOL: return "pool";
	case LMM_FRAME_CACHED: return "cached";
	case LMM_FRAME_RESERVED: return "reserved";
	default: return "corrupt";
	}
}

enum lmm_status lmm_state_refusal(uint8_t state)
{
	switch (state) {
	/* A page in a cache or the pool was freed (or never handed out): a double free. */
	case LMM_FRAME_FREE:
	case LMM_FRAME_CACHED:
	case LMM_FRAME_POOL: return LMM_ERR_ALREADY_FREE;
	case LMM_FRAME_TAIL: return LMM_ERR_NOT_HEAD;
	case LMM_FRAME_RESERVED: return LMM_ERR_RESERVED;
	default: lmm_port_fatal("lmm: frame metadata holds an impossible state");
	}
}

void lmm_check_canary(const struct lmm *mm)
{
	if (mm->canary_head != LMM_CANARY || mm->canary_tail != LMM_CANARY)
		lmm_port_fatal("lmm: struct lmm canary overwritten (stray write or not initialised)");
}

void lmm_refuse(struct lmm *mm, struct lmm_report *r)
{
	__atomic_fetch_add(&mm->refused[r->reason], 1, __ATOMIC_RELAXED);
	r->context = lmm_port_context();
	struct lmm_irq_cpu ic = lmm_irq_save_cpu();
	r->cpu = (unsigned)ic.cpu;
	lmm_port_irq_restore(ic.flags);
	lmm_port_report(r);
}

static lmm_cold void refuse_context(struct lmm *mm, const char *op, const void *caller)
{
	struct lmm_report r = { .reason = LMM_ERR_BAD_CONTEXT, .op = op, .phys = LMM_PHYS_INVALID,
				.caller = caller };
	lmm_refuse(mm, &r);
}

enum lmm_status lmm_refuse_cpu_index(struct lmm *mm, unsigned cpu, const char *op, const void *caller)
{
	struct lmm_report r = { .reason = LMM_ERR_BAD_CPU, .op = op, .phys = LMM_PHYS_INVALID,
				.cpu_named = cpu, .caller = caller };
	lmm_refuse(mm, &r);
	return LMM_ERR_BAD_CPU;
}

bool lmm_refuse_context_above(struct lmm *mm, enum lmm_context most, const char *op, const void *caller)
{
	if (likely(lmm_port_context() <= most))
		return false;
	refuse_context(mm, op, caller);
	return true;
}

static const char *context_str(enum lmm_context ctx)
{
	switch (ctx) {
	case LMM_CTX_NORMAL: return "normal";
	case LMM_CTX_IRQS_OFF: return "irqs-off";
	case LMM_CTX_INTERRUPT: return "interrupt";
	}
	return "?";
}

/* Whether @op is @name (no libc here). */
static bool op_is(const char *op, const char *name)
{
	while (op && *op && *op == *name)
		op++, name++;
	return op && *op == *name;
}

size_t lmm_report_format(const struct lmm_report *r, char *buf, size_t len)
{
	const char *why = lmm_status_str(r->reason);
	char where[96];

	lmm_format(where, sizeof(where), "cpu %u, %s context, caller %p", r->cpu, context_str(r->context),
		   r->caller);
	/* A call on no page: an allocation says what it asked for; the rest (walk, check,
	 * pool marks...) have only their name. */
	if (r->phys == LMM_PHYS_INVALID && r->ptr == NULL && op_is(r->op, "alloc"))
		return lmm_format(buf, len, "lmm: refused %s (order %u, gfp 0x%x, owner 0x%04x): %s [%s]",
				  r->op, r->order, r->gfp, r->caller_owner, why, where);
	if (r->reason == LMM_ERR_BAD_CPU)
		return lmm_format(buf, len, "lmm: refused %s of cpu %u: %s (%u) [%s]", r->op, r->cpu_named, why,
				  (unsigned)LMM_PORT_MAX_CPUS, where);
	if (op_is(r->op, "usable range") || op_is(r->op, "reserved range"))
		return lmm_format(buf, len, "lmm: refused %s [0x%llx +0x%llx]: %s [%s]", r->op,
				  (unsigned long long)r->range_base, (unsigned long long)r->range_len, why, where);
	if (r->reason == LMM_ERR_BAD_MARKS)
		return lmm_format(buf, len, "lmm: refused %s (low %u, target %u): %s [%s]", r->op, r->marks_low,
				  r->marks_target, why, where);
	if (r->phys == LMM_PHYS_INVALID && r->ptr == NULL)
		return lmm_format(buf, len, "lmm: refused %s: %s [%s]", r->op, why, where);
	if (r->phys == LMM_PHYS_INVALID)
		return lmm_format(buf, len, "lmm: refused %s of %p (order %u): %s [%s]", r->op, r->ptr,
				  r->order, why, where);
	if (r->reason == LMM_ERR_WRONG_OWNER || r->reason == LMM_ERR_EXCLUSIVE)
		return lmm_format(buf, len, "lmm: refused %s of page phys 0x%llx: %s (owner 0x%04x, caller 0x%04x) [%s]",
				  r->op, (unsigned long long)r->phys, why, r->owner, r->caller_owner, where);
	/* A poison report names the word found overwritten; an unaligned pointer, its page. */
	char subject[64];
	if (r->phys & (LMM_PAGE_SIZE - 1))
		lmm_format(subject, sizeof(subject), "word at phys 0x%llx", (unsigned long long)r->phys);
	else if (r->reason == LMM_ERR_NOT_ALIGNED && r->ptr != NULL)
		lmm_format(subject, sizeof(subject), "%p in page phys 0x%llx", r->ptr, (unsigned long long)r->phys);
	else
		lmm_format(subject, sizeof(subject), "page phys 0x%llx", (unsigned long long)r->phys);
	return lmm_format(buf, len, "lmm: refused %s of %s (order %u): %s, frame %s order %u [%s]", r->op, subject,
			  r->order, why, lmm_state_str(r->found_state), r->found_order, where);
}
