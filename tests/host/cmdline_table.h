/*
 * cmdline_table.h - one option table with every kind of option, shared by the command
 * line parser's host test and its fuzzer so both exercise the same table.
 * Included once per program (it defines the table and its variables).
 */
#ifndef LABYRINTH_CMDLINE_TABLE_H
#define LABYRINTH_CMDLINE_TABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <labyrinth/cmdline.h>

static uint64_t hz, big, small;
static char mode[8], name[12];
static bool verbose, quiet;

static const struct kopt table[] = {
	{ "pit_hz", KOPT_U64, &hz, 18, 20000, "timer rate", NULL },
	{ "big", KOPT_U64, &big, 0, UINT64_MAX, "anything", NULL },
	{ "small", KOPT_U64, &small, 5, 5, "exactly five", NULL },
	{ "mode", KOPT_STRING, mode, 0, sizeof(mode), "mode", "demo|test|bench" },
	{ "name", KOPT_STRING, name, 0, sizeof(name), "free text", NULL },
	{ "verbose", KOPT_BOOL, &verbose, 0, 1, "flag", NULL },
	{ "quiet", KOPT_BOOL, &quiet, 0, 1, "flag", NULL },
};
#define NT (sizeof(table) / sizeof(table[0]))

/* The defaults every case starts from. */
static void table_defaults(void)
{
	hz = 1000;
	big = 7;
	small = 5;
	strcpy(mode, "demo");
	strcpy(name, "");
	verbose = false;
	quiet = true;
}

#endif /* LABYRINTH_CMDLINE_TABLE_H */
