/*
 * log.c - how mm/ talks: a tiny formatter feeding the port's log sink, the names of
 * statuses and frame states, and the one place refusals are reported.
 *
 * mm/ formats its own lines so a port only has to provide "write this string".
 * Nothing here may be called with mm->lock held (the sink may take its own locks).
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

static void buf_putu(struct lmm_buf *b, unsigned long long v, unsigned base, int width, char pad)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (width-- > n)
		buf_putc(b, pad);
	while (n)
		buf_putc(b, tmp[--n]);
}

/* Supports %s %c %d %u %x %p with the l/ll/z modifiers and a zero-padded width. */
void lmm_vlogf(const char *fmt, va_list ap)
{
	char line[LMM_LINE_MAX];
	struct lmm_buf b = { line, sizeof(line) };

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
			lng += (*fmt++ == 'z') ? 2 : 1;

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
	lmm_port_log(line);
}

void lmm_logf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	lmm_vlogf(fmt, ap);
	va_end(ap);
}

const char *lmm_status_str(enum lmm_status status)
{
	static const char *const names[LMM_STATUS_COUNT] = {
		[LMM_OK] = "ok",
		[LMM_ERR_NOT_ALIGNED] = "address not page aligned",
		[LMM_ERR_NOT_MANAGED] = "address not managed by this allocator",
		[LMM_ERR_NOT_HEAD] = "address inside a block, not its first page",
		[LMM_ERR_ALREADY_FREE] = "block already free (double free)",
		[LMM_ERR_IN_POOL] = "page is in the emergency pool (never handed out)",
		[LMM_ERR_RESERVED] = "page is reserved",
		[LMM_ERR_WRONG_ORDER] = "order differs from the allocation's",
		[LMM_ERR_WRONG_OWNER] = "caller is not the exclusive owner",
		[LMM_ERR_EXCLUSIVE] = "exclusive page cannot be shared",
		[LMM_ERR_NOT_EXCLUSIVE] = "page is not exclusive",
		[LMM_ERR_BAD_ORDER] = "order above LMM_MAX_ORDER",
		[LMM_ERR_BAD_FLAGS] = "invalid gfp flags",
		[LMM_ERR_BAD_OWNER] = "owner tag 0 is not an owner",
		[LMM_ERR_BAD_CONTEXT] = "normal-context call made with interrupts off or from a handler",
		[LMM_ERR_REFCOUNT] = "reference count overflow",
		[LMM_ERR_EMPTY_RANGE] = "range holds no whole page",
		[LMM_ERR_ABSURD_RANGE] = "range wraps or lies past the physical address limit",
		[LMM_ERR_TOO_MANY_RANGES] = "range table full",
		[LMM_ERR_STATE] = "call not allowed in this phase",
		[LMM_ERR_NO_MEMORY] = "no usable memory (or no room for the metadata)",
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
	case LMM_FRAME_RESERVED: return "reserved";
	default: return "corrupt";
	}
}

enum lmm_status lmm_state_refusal(uint8_t state)
{
	switch (state) {
	case LMM_FRAME_FREE: return LMM_ERR_ALREADY_FREE;
	case LMM_FRAME_TAIL: return LMM_ERR_NOT_HEAD;
	case LMM_FRAME_POOL: return LMM_ERR_IN_POOL;
	case LMM_FRAME_RESERVED: return LMM_ERR_RESERVED;
	default: lmm_port_fatal("lmm: frame metadata holds an impossible state");
	}
}

void lmm_check_canary(const struct lmm *mm)
{
	if (mm->canary_head != LMM_CANARY || mm->canary_tail != LMM_CANARY)
		lmm_port_fatal("lmm: struct lmm canary overwritten (stray write or not initialised)");
}

void lmm_count_refusal(struct lmm *mm, enum lmm_status st)
{
	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm->lock);
	mm->refused[st]++;
	lmm_port_unlock_irqrestore(&mm->lock, fl);
}

void lmm_report_refusal(struct lmm *mm, enum lmm_status st, const struct lmm_refusal *r)
{
	(void)mm;
	if (r->phys == LMM_PHYS_INVALID) {
		lmm_logf("lmm: refused %s of %p (order %u): %s", r->op, r->ptr, r->order,
			 lmm_status_str(st));
	} else if (st == LMM_ERR_BAD_ORDER) {
		lmm_logf("lmm: refused %s of page phys 0x%llx (order %u): %s", r->op,
			 (unsigned long long)r->phys, r->order, lmm_status_str(st));
	} else if (st == LMM_ERR_WRONG_OWNER || st == LMM_ERR_EXCLUSIVE) {
		lmm_logf("lmm: refused %s of page phys 0x%llx: %s (owner 0x%04x, caller 0x%04x)",
			 r->op, (unsigned long long)r->phys, lmm_status_str(st), r->owner, r->caller);
	} else {
		lmm_logf("lmm: refused %s of page phys 0x%llx (order %u): %s [frame %s, order %u]",
			 r->op, (unsigned long long)r->phys, r->order, lmm_status_str(st),
			 lmm_state_str(r->state), r->found_order);
	}
}
