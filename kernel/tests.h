/*
 * tests.h - the kernel's built-in test and demo entry points (kernel/-internal).
 */
#ifndef KERNEL_TESTS_H
#define KERNEL_TESTS_H

#include <stdbool.h>

/* KTAP suite of in-kernel mm/ tests; returns the number that failed.  Normal context. */
unsigned kernel_run_mm_tests(void);

/* The PIT-driven stress test of the atomic path (kopts: pit_hz, stress_*, seed);
 * prints progress and a summary ending in "stress: PASS" or "stress: FAIL". */
bool kernel_run_stress(void);

/* mode=bench: W1, W2, W5 in the kernel against free-list baselines, TSC cycles/op. */
bool kernel_run_bench(void);

#endif /* KERNEL_TESTS_H */
