/*
 * teach_main.c - the teaching kernel's own tests of kalloc()/kfree() on mm/ (teach.h):
 * three harts as threads, a timer trap on every hart taking and freeing one page per
 * tick while a "user program" on every hart takes every page there is (issue 10's
 * scenario: the reserve must hold), and kfree() panicking on a bad free.
 * One "PASS teach-NAME" / "FAIL teach-NAME: why" line per check.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "teach.h"

static int failures;

static void verdict(const char *name, const char *why)
{
	if (why) {
		printf("FAIL teach-%s: %s\n", name, why);
		failures++;
	} else {
		printf("PASS teach-%s\n", name);
	}
	fflush(stdout);
}

static struct lmm_stats stats(void)
{
	struct lmm_stats s;
	lmm_get_stats(&kmem, &s);
	return s;
}

/* ---- kfree() on a bad page panics with mm/'s reason (in a child: panic stops the kernel) */

static const char *expect_panic(void (*body)(void), const char *needle)
{
	static char out[512];
	int fd[2];
	if (pipe(fd) != 0)
		return "pipe";
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 1);
		body();
		printf("no panic\n");
		_exit(0);
	}
	close(fd[1]);
	ssize_t n, got = 0;
	while ((n = read(fd[0], out + got, sizeof(out) - 1 - (size_t)got)) > 0)
		got += n;
	out[got] = '\0';
	close(fd[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 3 || !strstr(out, needle)) {
		static char why[600];
		snprintf(why, sizeof(why), "expected a panic with '%s', got: %s", needle, out);
		return why;
	}
	return NULL;
}

static void double_kfree(void)
{
	void *p = kalloc();
	kfree(p);
	kfree(p);
}

static void misaligned_kfree(void)
{
	kfree((char *)kalloc() + 8);
}

/* ---- The trap: one page per tick on every hart --------------------------------------- */

static struct {
	unsigned long ticks, failed, nowait;
} per_hart[NCPU];

static void clockintr(void)
{
	unsigned id = cpuid();
	per_hart[id].ticks++;
	unsigned char *p = kalloc_atomic();
	if (!p) {
		per_hart[id].failed++;
		return;
	}
	p[0] = (unsigned char)id; /* the page is ours */
	/* A NOWAIT page too: this hart's cache, which the user program uses between ticks
	 * (NULL is fine here: the user program may hold every page). */
	unsigned char *q = lmm_alloc_pages(&kmem, 0, LMM_GFP_NOWAIT);
	if (q)
		per_hart[id].nowait++;
	kfree(q);
	kfree(p); /* with interrupts off, as every free in a trap */
}

/* ---- The user program: take every page, give them back, again, on every hart --------- */

static volatile int stop;
static pthread_t harts[NCPU];
static struct spinlock proc_lock; /* stands for p->lock: kalloc() and kfree() under it */
static unsigned long rounds[NCPU], most_pages[NCPU];

static void *hart_main(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	hart_start(id);
	intr_on();
	while (!stop) {
		void *list = NULL;
		unsigned long n = 0;
		for (;;) { /* odd pages under the process lock (interrupts off), even ones without */
			void *p;
			if (n % 2) {
				acquire(&proc_lock);
				p = kalloc();
				release(&proc_lock);
			} else {
				p = kalloc();
			}
			if (!p)
				break;
			*(void **)p = list;
			list = p;
			n++;
		}
		if (n > most_pages[id])
			most_pages[id] = n;
		/* Give back: half with the process lock held (interrupts off), half without. */
		for (unsigned long k = 0; list; k++) {
			void *next = *(void **)list;
			if (k % 2) {
				acquire(&proc_lock);
				kfree(list);
				release(&proc_lock);
			} else {
				kfree(list);
			}
			list = next;
		}
		rounds[id]++;
	}
	intr_off();
	lmm_cpu_drain(&kmem, id); /* the hart goes offline: its cache back to the core */
	return NULL;
}

static void *clock_main(void *arg)
{
	(void)arg;
	struct timespec tick = { 0, 500 * 1000 }; /* 0.5 ms: 2000 ticks a second per hart */
	while (!stop) {
		for (unsigned i = 0; i < NCPU; i++)
			pthread_kill(harts[i], SIGUSR1);
		nanosleep(&tick, NULL);
	}
	return NULL;
}

static void user_takes_every_page(void)
{
	struct lmm_stats before = stats();
	char why[256] = "";
	pthread_t clock;

	initlock(&proc_lock, "proc");
	timer_install(clockintr);
	for (unsigned i = 0; i < NCPU; i++)
		pthread_create(&harts[i], NULL, hart_main, (void *)(uintptr_t)i);
	pthread_create(&clock, NULL, clock_main, NULL);
	struct timespec run = { 2, 0 };
	nanosleep(&run, NULL);
	stop = 1;
	pthread_join(clock, NULL);
	for (unsigned i = 0; i < NCPU; i++)
		pthread_join(harts[i], NULL);
	hart_start(0); /* main is hart 0 again, interrupts off */

	struct lmm_stats s = stats();
	unsigned long ticks = 0, failed = 0, taken = 0;
	for (unsigned i = 0; i < NCPU; i++) {
		ticks += per_hart[i].ticks;
		failed += per_hart[i].failed;
		taken += most_pages[i];
		if (per_hart[i].ticks < 50 || rounds[i] < 3)
			snprintf(why, sizeof(why), "hart %u: only %lu ticks, %lu rounds", i, per_hart[i].ticks,
				 rounds[i]);
	}
	printf("    %lu ticks on %u harts, %lu failed; user rounds %lu/%lu/%lu; reserve %u pages, "
	       "%llu served to traps, %llu to kalloc()\n",
	       ticks, NCPU, failed, rounds[0], rounds[1], rounds[2], s.pool_target,
	       (unsigned long long)s.reserve_to[LMM_CLASS_ATOMIC],
	       (unsigned long long)s.reserve_to[LMM_CLASS_KERNEL]);
	verdict("harts-and-ticks", why[0] ? why : NULL);
	unsigned long in_mm = 0;
	for (unsigned i = 0; i < NCPU; i++)
		in_mm += cpu_of(i)->traps_in_mm;
	verdict("no-trap-inside-mm", in_mm ? "timer traps ran inside mm/'s interrupts-off sections "
					     "(lmm_port_irq_save does not nest with push_off)" : NULL);
	verdict("reserve-holds-under-exhaustion",
		failed ? "a timer trap got no page while the user program held every other page"
		: s.pool_empty_failures ? "the reserve ran empty"
		: s.reserve_to[LMM_CLASS_ATOMIC] == 0 ? "the traps were never served from the reserve" : NULL);
	verdict("kalloc-never-gets-the-reserve",
		s.reserve_to[LMM_CLASS_KERNEL] || s.reserve_to[LMM_CLASS_NOWAIT] ? "a KERNEL caller received a reserve page"
		: taken == 0 ? "the user program took nothing" : NULL);
	verdict("nothing-leaks",
		s.allocated != 0 || s.reserve_held != 0 ? "pages still allocated after every free"
		: s.available != before.available ? "stats.available moved"
		: s.pool != before.pool ? "the reserve did not come back whole"
		: lmm_check(&kmem) != 0 ? "lmm_check found broken invariants" : NULL);
}

/* One hart, interrupts off (boot): kalloc() gets every free page, never the reserve. */
static const char *one_hart_takes_everything(void)
{
	struct lmm_stats before = stats();
	void *list = NULL;
	uint64_t n = 0;
	for (void *p; (p = kalloc()) != NULL; n++) {
		*(void **)p = list;
		list = p;
	}
	struct lmm_stats full = stats();
	while (list) {
		void *next = *(void **)list;
		kfree(list);
		list = next;
	}
	struct lmm_stats after = stats();
	if (n != before.free + before.cached || full.pool != before.pool)
		return "kalloc() did not get exactly every page outside the reserve";
	if (after.available != before.available || after.allocated != 0)
		return "stats.available moved after every page came back";
	return NULL;
}

int main(void)
{
	hart_start(0); /* boot on hart 0 with interrupts off, as xv6's main() */
	kinit();
	struct lmm_stats s = stats();
	verdict("kinit", s.managed != (PHYSTOP - KERNEL_END) / PGSIZE ? "wrong number of frames"
			 : s.pool_target != (s.free + s.pool) / 128 ? "the reserve is not free/128"
								      : NULL);
	verdict("kalloc-takes-every-page-but-the-reserve", one_hart_takes_everything());
	verdict("kfree-panics-on-double-free", expect_panic(double_kfree, "kfree: lmm: refused free of page phys 0x"));
	verdict("kfree-panics-with-the-reason", expect_panic(misaligned_kfree, "address not page aligned"));
	user_takes_every_page();
	return failures ? 1 : 0;
}
