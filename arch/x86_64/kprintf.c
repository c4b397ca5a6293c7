/*
 * kprintf.c - printf-style formatting into a sink: the serial console or a buffer.
 *
 * One formatter (fmt_core) feeds a small output sink.  kprintf collects characters in a
 * line buffer of the calling CPU and context (normal, handler, nested exception) and
 * writes each complete line to COM1 under the console lock, so lines from different
 * CPUs and from handlers never interleave mid-line, even when a caller builds a line
 * from several kprintf calls.  ksnprintf writes into memory and takes no lock;
 * kprintf_emergency writes straight to the port and takes no lock either.
 *
 * Lock rule: the console lock is taken with interrupts off and held for one line's
 * serial write only.  It is skipped when this CPU already holds it (we interrupted our
 * own write: an exception in kprintf) and on the CPU that owns a panic (the others are
 * stopped, maybe while holding it).
 */
#include <stdbool.h>
#include <stdint.h>

#include <labyrinth/arch.h>
#include <labyrinth/kprintf.h>
#include <labyrinth/spinlock.h>

enum sink_kind {
	SINK_MEMORY, /* ksnprintf: into the caller's buffer, NUL-terminated       */
	SINK_DIRECT, /* kprintf_emergency: to the port whenever the stage is full */
	SINK_LINE,   /* kprintf: to the port one whole line at a time, locked     */
};

/* Where formatted characters go.  Console output is staged in buf and flushed. */
struct sink {
	char *buf;
	size_t size;    /* capacity of buf                              */
	size_t used;    /* characters currently in buf                  */
	size_t total;   /* characters produced so far (the return value) */
	enum sink_kind kind;
};

static struct spinlock console_lock = SPINLOCK_INIT("console");

/* One line to the port.  Interrupts are off (kvprintf). */
static void write_line(const char *p, size_t n)
{
	bool unlocked = spin_holding(&console_lock) || arch_panic_cpu() == (int)arch_cpu_id();

	if (!unlocked)
		spin_lock(&console_lock);
	arch_serial_write(p, n);
	if (!unlocked)
		spin_unlock(&console_lock);
}

static void sink_flush(struct sink *s)
{
	if (s->kind == SINK_MEMORY || !s->used)
		return;
	if (s->kind == SINK_LINE)
		write_line(s->buf, s->used);
	else
		arch_serial_write(s->buf, s->used);
	s->used = 0;
}

static void sink_putc(struct sink *s, char c)
{
	s->total++;
	if (s->kind == SINK_LINE) {
		/* a line longer than the buffer goes out in pieces, each one still whole */
		s->buf[s->used++] = c;
		if (c == '\n' || s->used == s->size)
			sink_flush(s);
	} else if (s->kind == SINK_DIRECT) {
		if (s->used == s->size)
			sink_flush(s);
		s->buf[s->used++] = c;
	} else if (s->used + 1 < s->size) {
		/* keep the last byte for the terminating NUL */
		s->buf[s->used++] = c;
	}
}

static void sink_pad(struct sink *s, char c, int n)
{
	while (n-- > 0)
		sink_putc(s, c);
}

struct spec {
	bool left, zero, plus, space, alt;
	int width, prec; /* prec < 0: none */
	int length;      /* 0, 'H' (hh), 'h', 'l', 'L' (ll/j), 'z' */
};

/* Digits of @v in @base, least significant first, into @tmp; returns the count. */
static int utoa_rev(uint64_t v, unsigned base, bool upper, char *tmp)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	int n = 0;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	return n;
}

static void fmt_number(struct sink *s, const struct spec *sp, uint64_t v, bool negative,
		       unsigned base, bool upper)
{
	char tmp[24];
	char prefix[3];
	int np = 0;
	int nd = (v == 0 && sp->prec == 0) ? 0 : utoa_rev(v, base, upper, tmp);
	int zeros = sp->prec > nd ? sp->prec - nd : 0;

	if (negative)
		prefix[np++] = '-';
	else if (sp->plus)
		prefix[np++] = '+';
	else if (sp->space)
		prefix[np++] = ' ';
	if (sp->alt && base == 16 && v) {
		prefix[np++] = '0';
		prefix[np++] = upper ? 'X' : 'x';
	} else if (sp->alt && base == 8 && zeros == 0 && (nd == 0 || tmp[nd - 1] != '0')) {
		zeros = 1;
	}

	int len = np + zeros + nd;
	int pad = sp->width > len ? sp->width - len : 0;
	/* '0' pads after the sign/prefix; ignored with '-' or an explicit precision */
	bool zero_pad = sp->zero && !sp->left && sp->prec < 0;

	if (!sp->left && !zero_pad)
		sink_pad(s, ' ', pad);
	for (int i = 0; i < np; i++)
		sink_putc(s, prefix[i]);
	if (zero_pad)
		sink_pad(s, '0', pad);
	sink_pad(s, '0', zeros);
	while (nd > 0)
		sink_putc(s, tmp[--nd]);
	if (sp->left)
		sink_pad(s, ' ', pad);
}

static void fmt_string(struct sink *s, const struct spec *sp, const char *str)
{
	int len = 0;

	if (!str)
		str = "(null)";
	while (str[len] && (sp->prec < 0 || len < sp->prec))
		len++;
	int pad = sp->width > len ? sp->width - len : 0;
	if (!sp->left)
		sink_pad(s, ' ', pad);
	for (int i = 0; i < len; i++)
		sink_putc(s, str[i]);
	if (sp->left)
		sink_pad(s, ' ', pad);
}

/* Read flags, width, precision and length of the conversion at *pf (just past '%'). */
static void parse_spec(const char **pf, va_list *ap, struct spec *sp)
{
	const char *f = *pf;

	*sp = (struct spec){ .prec = -1 };
	for (;; f++) {
		if (*f == '-') sp->left = true;
		else if (*f == '0') sp->zero = true;
		else if (*f == '+') sp->plus = true;
		else if (*f == ' ') sp->space = true;
		else if (*f == '#') sp->alt = true;
		else break;
	}
	if (*f == '*') {
		sp->width = va_arg(*ap, int);
		if (sp->width < 0) {
			sp->left = true;
			sp->width = -sp->width;
		}
		f++;
	} else {
		while (*f >= '0' && *f <= '9')
			sp->width = sp->width * 10 + (*f++ - '0');
	}
	if (*f == '.') {
		f++;
		sp->prec = 0;
		if (*f == '*') {
			sp->prec = va_arg(*ap, int);
			f++;
		} else {
			while (*f >= '0' && *f <= '9')
				sp->prec = sp->prec * 10 + (*f++ - '0');
		}
	}
	if (f[0] == 'h' && f[1] == 'h') { sp->length = 'H'; f += 2; }
	else if (f[0] == 'l' && f[1] == 'l') { sp->length = 'L'; f += 2; }
	else if (*f == 'h' || *f == 'l' || *f == 'z' || *f == 't') sp->length = *f++;
	else if (*f == 'j') { sp->length = 'L'; f++; }
	*pf = f;
}

static uint64_t arg_unsigned(va_list *ap, int length)
{
	switch (length) {
	case 'H': return (unsigned char)va_arg(*ap, unsigned);
	case 'h': return (unsigned short)va_arg(*ap, unsigned);
	case 'l': return va_arg(*ap, unsigned long);
	case 'L': return va_arg(*ap, unsigned long long);
	case 'z': return va_arg(*ap, size_t);
	case 't': return (uint64_t)va_arg(*ap, long);
	default:  return va_arg(*ap, unsigned);
	}
}

static int64_t arg_signed(va_list *ap, int length)
{
	switch (length) {
	case 'H': return (signed char)va_arg(*ap, int);
	case 'h': return (short)va_arg(*ap, int);
	case 'l': return va_arg(*ap, long);
	case 'L': return va_arg(*ap, long long);
	case 'z': return (int64_t)va_arg(*ap, size_t);
	case 't': return va_arg(*ap, long);
	default:  return va_arg(*ap, int);
	}
}

static void fmt_core(struct sink *s, const char *f, va_list ap_in)
{
	va_list ap;
	struct spec sp;

	va_copy(ap, ap_in);
	for (; *f; f++) {
		if (*f != '%') {
			sink_putc(s, *f);
			continue;
		}
		f++;
		parse_spec(&f, &ap, &sp);
		switch (*f) {
		case 'd':
		case 'i': {
			int64_t v = arg_signed(&ap, sp.length);
			uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
			fmt_number(s, &sp, mag, v < 0, 10, false);
			break;
		}
		case 'u': fmt_number(s, &sp, arg_unsigned(&ap, sp.length), false, 10, false); break;
		case 'x': fmt_number(s, &sp, arg_unsigned(&ap, sp.length), false, 16, false); break;
		case 'X': fmt_number(s, &sp, arg_unsigned(&ap, sp.length), false, 16, true); break;
		case 'o': fmt_number(s, &sp, arg_unsigned(&ap, sp.length), false, 8, false); break;
		case 'p': {
			struct spec pp = { .alt = false, .zero = true, .width = 16, .prec = -1 };
			sink_putc(s, '0');
			sink_putc(s, 'x');
			fmt_number(s, &pp, (uintptr_t)va_arg(ap, void *), false, 16, false);
			break;
		}
		case 's': fmt_string(s, &sp, va_arg(ap, const char *)); break;
		case 'c': {
			char c[2] = { (char)va_arg(ap, int), 0 };
			sp.prec = 1;
			fmt_string(s, &sp, c);
			break;
		}
		case '%': sink_putc(s, '%'); break;
		case '\0': f--; break; /* lone '%' at the end: drop it */
		default:
			/* unknown conversion: show it rather than hide the bug */
			sink_putc(s, '%');
			sink_putc(s, *f);
			break;
		}
	}
	va_end(ap);
}

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink s = { .buf = buf, .size = size };

	fmt_core(&s, fmt, ap);
	if (size)
		buf[s.used] = '\0';
	return (int)s.total;
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = kvsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

/* Normal code, a handler, an exception inside a handler: each its own partial line. */
#define LINE_LEVELS 3
#define LINE_BYTES 256

/* Each touched only by its own CPU at its own level, with interrupts off. */
struct line_buf {
	char buf[LINE_BYTES];
	size_t used;
};
static struct line_buf lines[ARCH_MAX_CPUS][LINE_LEVELS];

int kvprintf(const char *fmt, va_list ap)
{
	arch_irqflags_t flags = arch_irq_save();
	unsigned depth = arch_in_interrupt();
	unsigned level = depth < LINE_LEVELS ? depth : LINE_LEVELS - 1;
	struct line_buf *line = &lines[arch_cpu_id()][level];
	struct sink s = { .buf = line->buf, .size = sizeof(line->buf), .used = line->used,
			  .kind = SINK_LINE };

	if (s.used >= s.size)
		s.used = 0;
	fmt_core(&s, fmt, ap);
	line->used = s.used; /* a partial line waits for its end */
	arch_irq_restore(flags);
	return (int)s.total;
}

int kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = kvprintf(fmt, ap);
	va_end(ap);
	return n;
}

int kprintf_emergency(const char *fmt, ...)
{
	char stage[128];
	struct sink s = { .buf = stage, .size = sizeof(stage), .kind = SINK_DIRECT };
	va_list ap;

	va_start(ap, fmt);
	arch_irqflags_t flags = arch_irq_save();
	fmt_core(&s, fmt, ap);
	sink_flush(&s);
	int n = (int)s.total;
	arch_irq_restore(flags);
	va_end(ap);
	return n;
}
