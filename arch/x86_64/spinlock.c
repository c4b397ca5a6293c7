/*
 * spinlock.c - ticket spinlocks with a name, a holder and a watchdog.
 *
 * Tickets make the lock fair once there are several CPUs.  Every failure a spinlock
 * can turn into a silent hang is reported instead: a CPU taking a lock it holds
 * (it would wait for itself forever), releasing a lock it does not hold, and a
 * lock spun on for more than ~2^32 TSC cycles (a holder that never releases).
 * Reports use kprintf_emergency: the console lock may be the lock in trouble.
 * Contention is measured per lock (acquisitions that waited, pauses, TSC cycles) by the
 * CPU that finally gets the lock, so the counters need no atomics of their own.
 */
#include <stddef.h>

#include <labyrinth/arch.h>
#include <labyrinth/kprintf.h>
#include <labyrinth/mm_port.h>
#include <labyrinth/spinlock.h>

/* mm/ stores a struct spinlock in its opaque lmm_port_lock_t. */
_Static_assert(sizeof(struct spinlock) <= LMM_PORT_LOCK_BYTES,
	       "struct spinlock must fit in mm/'s LMM_PORT_LOCK_BYTES");
_Static_assert(_Alignof(struct spinlock) <= _Alignof(lmm_port_lock_t),
	       "struct spinlock must not need more alignment than lmm_port_lock_t");
_Static_assert(sizeof(struct spinlock) <= 64, "struct spinlock must fit in 64 bytes");

/* Spinning this long means the holder is stuck, not busy: ~1 s at 4 GHz. */
#define SPIN_TSC_LIMIT (1ull << 32)
/* Backstop in case the TSC does not advance (some emulators): pause loops. */
#define SPIN_ITER_LIMIT (1ull << 30)
/* How often the TSC is read while spinning. */
#define SPIN_CHECK_EVERY 1024

static const char *lock_name(const struct spinlock *l)
{
	return l->name ? l->name : "(unnamed)";
}

_Noreturn static void spin_fatal(const struct spinlock *l, const char *what, uintptr_t pc)
{
	cli();
	kprintf_emergency("\nspinlock: FATAL: %s lock '%s' (%p) on cpu %u at %p\n", what,
			  lock_name(l), (const void *)l, arch_cpu_id(), (void *)pc);
	kprintf_emergency("spinlock: '%s' held by cpu %d since tsc %lu, acquired at %p; "
			  "tickets next=%u serving=%u\n",
			  lock_name(l), l->cpu, l->since_tsc, (void *)l->holder_pc, l->next,
			  l->owner);
	arch_exit_qemu(ARCH_QEMU_EXIT_FAILURE);
}

void spin_lock_init(struct spinlock *l, const char *name)
{
	*l = (struct spinlock)SPINLOCK_INIT(name);
}

static bool is_locked(const struct spinlock *l)
{
	return __atomic_load_n(&l->owner, __ATOMIC_RELAXED) !=
	       __atomic_load_n(&l->next, __ATOMIC_RELAXED);
}

bool spin_holding(const struct spinlock *l)
{
	/*
	 * Only this CPU writes its own id into l->cpu, and clears it before releasing,
	 * so "locked and cpu == me" cannot be a stale answer while we are running.
	 */
	return is_locked(l) && __atomic_load_n(&l->cpu, __ATOMIC_RELAXED) == (int32_t)arch_cpu_id();
}

static void note_holder(struct spinlock *l, uintptr_t pc)
{
	__atomic_store_n(&l->cpu, (int32_t)arch_cpu_id(), __ATOMIC_RELAXED);
	l->holder_pc = pc;
	l->since_tsc = rdtsc();
}

/* Locks that had to wait at least once; a slot is claimed with a CAS, never freed. */
static struct spinlock *table[SPIN_TABLE_MAX];

/* Under @l, just acquired after @spins pauses and @cycles cycles of waiting. */
static void note_contention(struct spinlock *l, uint64_t spins, uint64_t cycles)
{
	l->contended++;
	l->spins += spins;
	l->wait_cycles += cycles;
	if (l->listed)
		return;
	l->listed = 1;
	for (unsigned i = 0; i < SPIN_TABLE_MAX; i++) {
		struct spinlock *expected = NULL;
		if (__atomic_compare_exchange_n(&table[i], &expected, l, false, __ATOMIC_RELEASE,
						__ATOMIC_RELAXED))
			return;
	}
}

size_t spin_contention_get(struct spin_contention *out, size_t max)
{
	size_t n = 0;

	for (unsigned i = 0; i < SPIN_TABLE_MAX; i++) {
		struct spinlock *l = __atomic_load_n(&table[i], __ATOMIC_ACQUIRE);
		if (!l)
			break;
		if (n < max)
			out[n] = (struct spin_contention){
				lock_name(l), l,
				__atomic_load_n(&l->contended, __ATOMIC_RELAXED),
				__atomic_load_n(&l->spins, __ATOMIC_RELAXED),
				__atomic_load_n(&l->wait_cycles, __ATOMIC_RELAXED),
			};
		n++;
	}
	return n;
}

void spin_contention_reset(void)
{
	for (unsigned i = 0; i < SPIN_TABLE_MAX; i++) {
		struct spinlock *l = __atomic_load_n(&table[i], __ATOMIC_ACQUIRE);
		if (!l)
			break;
		__atomic_store_n(&l->contended, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&l->spins, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&l->wait_cycles, 0, __ATOMIC_RELAXED);
	}
}

static void check_magic(const struct spinlock *l, uintptr_t pc)
{
	if (l->magic != SPINLOCK_MAGIC)
		spin_fatal(l, "uninitialised or corrupted", pc);
}

static void spin_lock_at(struct spinlock *l, uintptr_t pc)
{
	check_magic(l, pc);
	if (spin_holding(l))
		spin_fatal(l, "recursive acquire of", pc);

	uint32_t ticket = __atomic_fetch_add(&l->next, 1, __ATOMIC_RELAXED);
	uint64_t start = rdtsc();
	uint64_t iters = 0;

	while (__atomic_load_n(&l->owner, __ATOMIC_ACQUIRE) != ticket) {
		cpu_pause();
		if (++iters % SPIN_CHECK_EVERY)
			continue;
		if (rdtsc() - start > SPIN_TSC_LIMIT || iters > SPIN_ITER_LIMIT)
			spin_fatal(l, "spun too long (deadlock or lost release) on", pc);
	}
	note_holder(l, pc);
	if (iters)
		note_contention(l, iters, l->since_tsc - start);
}

void spin_lock(struct spinlock *l)
{
	spin_lock_at(l, (uintptr_t)__builtin_return_address(0));
}

bool spin_trylock(struct spinlock *l)
{
	uintptr_t pc = (uintptr_t)__builtin_return_address(0);

	check_magic(l, pc);
	if (spin_holding(l))
		spin_fatal(l, "recursive trylock of", pc);

	uint32_t serving = __atomic_load_n(&l->owner, __ATOMIC_RELAXED);
	uint32_t expected = serving;
	/* Take the next ticket only if it is the one being served right now. */
	if (!__atomic_compare_exchange_n(&l->next, &expected, serving + 1, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return false;
	note_holder(l, pc);
	return true;
}

void spin_unlock(struct spinlock *l)
{
	if (!spin_holding(l))
		spin_fatal(l, "release of a lock this cpu does not hold:",
			   (uintptr_t)__builtin_return_address(0));
	__atomic_store_n(&l->cpu, -1, __ATOMIC_RELAXED);
	l->holder_pc = 0;
	__atomic_store_n(&l->owner, l->owner + 1, __ATOMIC_RELEASE);
}

arch_irqflags_t spin_lock_irqsave(struct spinlock *l)
{
	arch_irqflags_t flags = arch_irq_save();

	spin_lock_at(l, (uintptr_t)__builtin_return_address(0));
	return flags;
}

void spin_unlock_irqrestore(struct spinlock *l, arch_irqflags_t flags)
{
	spin_unlock(l);
	arch_irq_restore(flags);
}
