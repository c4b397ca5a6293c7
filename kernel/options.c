/*
 * options.c - the kernel's command-line options: defaults, the option table with its
 * help text, and the glue that parses the boot command line into kopts.
 *
 * Adding an option: a field in struct kernel_options (cmdline.h), its default below,
 * one row in options[].
 */
#include <labyrinth/cmdline.h>
#include <labyrinth/kprintf.h>

struct kernel_options kopts = {
	.fault = "",
	.fault_cpu = 0,
	.smp_absent_apic = 0,
	.mode = "demo",
	.pit_hz = 1000,
	.stress_seconds = 3,
	.stress_ticks = 0,
	.seed = 1,
	.pool_pages = 0,
	.pool_low = 0,
	.atomic_per_tick = 4,
	.mm_poison = false,
	.mm_holders = false,
	.mm_map = true,
	.help = false,
};

#define FAULT_CHOICES "pagefault|ud|divide|gpf|doublefault"
#define MODE_CHOICES "demo|test|stress|bench|idle"

static const struct kopt options[] = {
	{ "mode", KOPT_STRING, kopts.mode, 0, sizeof(kopts.mode),
	  "what to run after boot: demo = the KTAP tests then the stress test",
	  MODE_CHOICES },
	{ "fault", KOPT_STRING, kopts.fault, 0, sizeof(kopts.fault),
	  "raise this exception on purpose after boot (tests the exception report)",
	  FAULT_CHOICES },
	{ "fault_cpu", KOPT_U64, &kopts.fault_cpu, 0, 255,
	  "raise the fault on this CPU instead (an AP, once all are up; tests stopping the others)",
	  NULL },
	{ "smp_absent_apic", KOPT_U64, &kopts.smp_absent_apic, 0, 254,
	  "also try to start this local APIC id (one with no CPU: tests the start-up timeout)",
	  NULL },
	{ "pit_hz", KOPT_U64, &kopts.pit_hz, 18, 20000,
	  "timer interrupt rate in Hz (PIT channel 0)", NULL },
	{ "stress_seconds", KOPT_U64, &kopts.stress_seconds, 1, 3600,
	  "stress test duration in seconds", NULL },
	{ "stress_ticks", KOPT_U64, &kopts.stress_ticks, 0, 100000000,
	  "if non-zero, run the stress test for this many timer ticks instead", NULL },
	{ "seed", KOPT_U64, &kopts.seed, 0, UINT64_MAX,
	  "seed for the tests' pseudo-random numbers", NULL },
	{ "pool_pages", KOPT_U64, &kopts.pool_pages, 0, 1u << 20,
	  "emergency pool target in pages, 0 = scaled to RAM", NULL },
	{ "pool_low", KOPT_U64, &kopts.pool_low, 0, 1u << 20,
	  "emergency pool low mark in pages, 0 = half the target", NULL },
	{ "atomic_per_tick", KOPT_U64, &kopts.atomic_per_tick, 0, 1024,
	  "atomic allocations made by each timer tick during the stress test", NULL },
	{ "mm_holders", KOPT_BOOL, &kopts.mm_holders, 0, 1,
	  "record the call site holding each block (16 B/frame) and list the top holders during and after the stress test",
	  NULL },
	{ "mm_poison", KOPT_BOOL, &kopts.mm_poison, 0, 1,
	  "fill freed pages with a pattern and check it on allocation (slow on big machines)",
	  NULL },
	{ "mm_map", KOPT_BOOL, &kopts.mm_map, 0, 1,
	  "draw the memory maps in ANSI colour; 0 = plain letters (for logs)", NULL },
	{ "help", KOPT_BOOL, &kopts.help, 0, 1,
	  "print this table at boot", NULL },
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static void report(const char *line)
{
	kprintf("cmdline: %s\n", line);
}

/*
 * GRUB passes only the words after the kernel's path in the multiboot2 command line
 * tag; some loaders pass the path too.  A first word that starts with '/' is that
 * path, not an option.
 */
static const char *skip_image_path(const char *s)
{
	const char *p = s;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '/')
		return s;
	while (*p && *p != ' ' && *p != '\t')
		p++;
	return p;
}

unsigned kernel_options_parse(const char *cmdline)
{
	if (!cmdline)
		cmdline = "";
	unsigned problems = cmdline_parse(skip_image_path(cmdline), options, NOPTIONS, report);
	if (problems)
		kprintf("cmdline: %u problem%s in '%s'; those words were ignored "
			"(boot with 'help' for the option list)\n",
			problems, problems == 1 ? "" : "s", cmdline);
	if (kopts.help)
		kernel_options_help();
	return problems;
}

void kernel_options_help(void)
{
	kprintf("kernel command line options (key=value, separated by spaces):\n");
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct kopt *o = &options[i];
		switch (o->type) {
		case KOPT_U64:
			kprintf("  %-16s = %-20llu %llu..%llu: %s\n", o->key,
				(unsigned long long)*(const uint64_t *)o->dst,
				(unsigned long long)o->min, (unsigned long long)o->max, o->help);
			break;
		case KOPT_STRING:
			kprintf("  %-16s = %-20s %s: %s\n", o->key, *(const char *)o->dst ?
				(const char *)o->dst : "(none)", o->choices ? o->choices : "string",
				o->help);
			break;
		case KOPT_BOOL:
			kprintf("  %-16s = %-20s yes|no: %s\n", o->key,
				*(const bool *)o->dst ? "yes" : "no", o->help);
			break;
		}
	}
}
