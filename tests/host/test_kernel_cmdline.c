/*
 * test_kernel_cmdline.c - cmdline_parse() against a table of every option type: each
 * accepted form stores its value, each problem is reported once, as one line naming
 * the word, and leaves the previous value in place.
 */
#include <stdint.h>
#include <string.h>

#include <labyrinth/cmdline.h>

#include "testlib.h"

/* ---- A table of every kind of option ------------------------------------------------ */

#include "cmdline_table.h"

/* ---- Capturing reports ------------------------------------------------------------ */

#define MAXREP 16
static char reports[MAXREP][256];
static unsigned nreports;

static void capture(const char *line)
{
	if (nreports < MAXREP) {
		strncpy(reports[nreports], line, sizeof(reports[0]) - 1);
		reports[nreports][sizeof(reports[0]) - 1] = '\0';
	}
	nreports++;
}

static void reset(void)
{
	table_defaults();
	nreports = 0;
	memset(reports, 0, sizeof(reports));
}

static unsigned parse(const char *s)
{
	return cmdline_parse(s, table, NT, capture);
}

/* Exactly one problem, reported once, with a line containing both @word and @why. */
#define EXPECT_ONE_PROBLEM(s, word, why)                                                    \
	do {                                                                                \
		reset();                                                                    \
		unsigned n_ = parse(s);                                                     \
		ASSERT(n_ == 1 && nreports == 1, "'%s': %u problems, %u reports (first: %s)", \
		       (s), n_, nreports, reports[0]);                                      \
		CHECK(strstr(reports[0], (word)) != NULL, "'%s': report does not name '%s': %s", \
		      (s), (word), reports[0]);                                             \
		CHECK(strstr(reports[0], (why)) != NULL, "'%s': report does not say '%s': %s", \
		      (s), (why), reports[0]);                                              \
		CHECK(strchr(reports[0], '\n') == NULL, "report is not one line: %s",        \
		      reports[0]);                                                          \
	} while (0)

#define EXPECT_CLEAN(s)                                                                     \
	do {                                                                                \
		reset();                                                                    \
		unsigned n_ = parse(s);                                                     \
		ASSERT(n_ == 0 && nreports == 0, "'%s': %u problems (first: %s)", (s), n_,  \
		       reports[0]);                                                         \
	} while (0)

/* ---- Accepted forms ---------------------------------------------------------------- */

static void empty_and_blank_lines(void)
{
	EXPECT_CLEAN("");
	EXPECT_CLEAN("   ");
	EXPECT_CLEAN(" \t\n\r ");
	reset();
	CHECK(cmdline_parse(NULL, table, NT, capture) == 0 && nreports == 0, "NULL cmdline");
	CHECK(hz == 1000 && big == 7 && !verbose && quiet, "defaults changed");
}

static void u64_decimal(void)
{
	EXPECT_CLEAN("pit_hz=100");
	CHECK(hz == 100, "hz %llu", (unsigned long long)hz);
	EXPECT_CLEAN("pit_hz=00250");
	CHECK(hz == 250, "leading zeros: hz %llu", (unsigned long long)hz);
}

static void u64_hex(void)
{
	EXPECT_CLEAN("pit_hz=0x3e8");
	CHECK(hz == 1000, "hz %llu", (unsigned long long)hz);
	EXPECT_CLEAN("pit_hz=0X4E20");
	CHECK(hz == 20000, "upper-case hex: hz %llu", (unsigned long long)hz);
	EXPECT_CLEAN("big=0xFFFFFFFFFFFFFFFF");
	CHECK(big == UINT64_MAX, "big %llx", (unsigned long long)big);
	EXPECT_CLEAN("big=0x0000000000000000000001");
	CHECK(big == 1, "leading hex zeros: big %llu", (unsigned long long)big);
}

static void u64_range_bounds_inclusive(void)
{
	EXPECT_CLEAN("pit_hz=18");
	CHECK(hz == 18, "min: hz %llu", (unsigned long long)hz);
	EXPECT_CLEAN("pit_hz=20000");
	CHECK(hz == 20000, "max: hz %llu", (unsigned long long)hz);
	EXPECT_CLEAN("small=5");
	EXPECT_CLEAN("big=0");
	CHECK(big == 0, "big %llu", (unsigned long long)big);
	EXPECT_CLEAN("big=18446744073709551615");
	CHECK(big == UINT64_MAX, "UINT64_MAX decimal: big %llu", (unsigned long long)big);
}

static void string_values(void)
{
	EXPECT_CLEAN("name=hello");
	CHECK(strcmp(name, "hello") == 0, "name '%s'", name);
	EXPECT_CLEAN("name=a=b=c");
	CHECK(strcmp(name, "a=b=c") == 0, "value with '=': '%s'", name);
	EXPECT_CLEAN("name=12345678901"); /* 11 characters: sizeof(name) - 1 */
	CHECK(strcmp(name, "12345678901") == 0, "longest: '%s'", name);
}

static void string_choices(void)
{
	EXPECT_CLEAN("mode=test");
	CHECK(strcmp(mode, "test") == 0, "mode '%s'", mode);
	EXPECT_CLEAN("mode=bench");
	CHECK(strcmp(mode, "bench") == 0, "last choice: mode '%s'", mode);
	EXPECT_CLEAN("mode=demo");
	CHECK(strcmp(mode, "demo") == 0, "first choice: mode '%s'", mode);
}

static void bool_forms(void)
{
	static const char *const yes[] = { "verbose", "verbose=1", "verbose=yes", "verbose=on",
					   "verbose=true", "verbose=YES", "verbose=True" };
	static const char *const no[] = { "quiet=0", "quiet=no", "quiet=off", "quiet=false",
					  "quiet=OFF", "quiet=No" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		EXPECT_CLEAN(yes[i]);
		CHECK(verbose, "'%s' did not set true", yes[i]);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		EXPECT_CLEAN(no[i]);
		CHECK(!quiet, "'%s' did not set false", no[i]);
	}
}

static void several_words_any_whitespace(void)
{
	EXPECT_CLEAN("  pit_hz=50\tmode=test\n verbose  name=x\r\nquiet=off ");
	CHECK(hz == 50 && strcmp(mode, "test") == 0 && verbose && strcmp(name, "x") == 0 && !quiet,
	      "hz %llu mode %s verbose %d name %s quiet %d", (unsigned long long)hz, mode, verbose,
	      name, quiet);
}

static void later_word_wins(void)
{
	EXPECT_CLEAN("pit_hz=100 pit_hz=200");
	CHECK(hz == 200, "hz %llu", (unsigned long long)hz);
}

/* ---- Problems ---------------------------------------------------------------------- */

static void unknown_keys(void)
{
	EXPECT_ONE_PROBLEM("bogus_key=1", "'bogus_key=1'", "unknown option");
	EXPECT_ONE_PROBLEM("bogus", "'bogus'", "unknown option");
	EXPECT_ONE_PROBLEM("=5", "'=5'", "unknown option");
	EXPECT_ONE_PROBLEM("=", "'='", "unknown option");
	EXPECT_ONE_PROBLEM("pit=100", "'pit=100'", "unknown option");       /* a prefix   */
	EXPECT_ONE_PROBLEM("pit_hz_x=100", "'pit_hz_x=100'", "unknown option"); /* longer */
	EXPECT_ONE_PROBLEM("PIT_HZ=100", "'PIT_HZ=100'", "unknown option");  /* keys are exact */
	CHECK(hz == 1000, "an unknown key changed a value");
}

static void missing_values(void)
{
	EXPECT_ONE_PROBLEM("pit_hz", "'pit_hz'", "missing value");
	CHECK(strstr(reports[0], "18..20000"), "does not say what is expected: %s", reports[0]);
	EXPECT_ONE_PROBLEM("pit_hz=", "'pit_hz='", "missing value");
	EXPECT_ONE_PROBLEM("name", "'name'", "missing value");
	EXPECT_ONE_PROBLEM("mode=", "'mode='", "missing value");
	CHECK(strstr(reports[0], "demo|test|bench"), "does not list the choices: %s", reports[0]);
	EXPECT_ONE_PROBLEM("verbose=", "'verbose='", "missing value");
	CHECK(!verbose, "verbose= set the flag");
	CHECK(hz == 1000, "value changed");
}

static void malformed_numbers(void)
{
	static const char *const bad[] = {
		"pit_hz=abc", "pit_hz=12abc", "pit_hz=0x",  "pit_hz=0xg1", "pit_hz=-5",
		"pit_hz=+5",  "pit_hz=1e3",   "pit_hz=1.5", "pit_hz=0b101", "pit_hz=100Hz",
		"pit_hz=0x1 0", "pit_hz=x10",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reset();
		unsigned n = parse(bad[i]);
		if (strcmp(bad[i], "pit_hz=0x1 0") == 0) {
			/* two words: 0x1 is out of range, and '0' is an unknown option */
			CHECK(n == 2, "'%s': %u problems", bad[i], n);
			continue;
		}
		CHECK(n == 1 && nreports == 1, "'%s': %u problems", bad[i], n);
		CHECK(strstr(reports[0], bad[i]) && strstr(reports[0], "not a number"),
		      "'%s': report: %s", bad[i], reports[0]);
		CHECK(hz == 1000, "'%s' changed the value to %llu", bad[i], (unsigned long long)hz);
	}
}

static void number_overflow(void)
{
	EXPECT_ONE_PROBLEM("big=18446744073709551616", "'big=18446744073709551616'", "too large");
	CHECK(big == 7, "value changed to %llu", (unsigned long long)big);
	EXPECT_ONE_PROBLEM("big=99999999999999999999999", "big=9999", "too large");
	EXPECT_ONE_PROBLEM("big=0x10000000000000000", "'big=0x10000000000000000'", "too large");
	/* Not a silent wrap into range: 2^64 + 100 must not read as 100. */
	EXPECT_ONE_PROBLEM("pit_hz=18446744073709551716", "pit_hz=", "too large");
	CHECK(hz == 1000, "wrapped into range: hz %llu", (unsigned long long)hz);
	/* Malformed wins over overflow: the whole value is checked. */
	EXPECT_ONE_PROBLEM("big=99999999999999999999x", "big=", "not a number");
}

static void out_of_range(void)
{
	EXPECT_ONE_PROBLEM("pit_hz=17", "'pit_hz=17'", "out of range 18..20000");
	EXPECT_ONE_PROBLEM("pit_hz=20001", "'pit_hz=20001'", "out of range 18..20000");
	EXPECT_ONE_PROBLEM("pit_hz=0", "'pit_hz=0'", "out of range");
	EXPECT_ONE_PROBLEM("pit_hz=0xFFFFFFFFFFFFFFFF", "'pit_hz=0xFFFFFFFFFFFFFFFF'", "out of range");
	EXPECT_ONE_PROBLEM("small=4", "'small=4'", "out of range 5..5");
	EXPECT_ONE_PROBLEM("small=6", "'small=6'", "out of range 5..5");
	CHECK(hz == 1000 && small == 5, "value changed");
}

static void string_too_long(void)
{
	EXPECT_ONE_PROBLEM("name=123456789012", "'name=123456789012'", "too long (at most 11");
	CHECK(name[0] == '\0', "value changed to '%s'", name);
}

static void string_not_a_choice(void)
{
	EXPECT_ONE_PROBLEM("mode=bogus", "'mode=bogus'", "must be one of demo|test|bench");
	EXPECT_ONE_PROBLEM("mode=tes", "'mode=tes'", "must be one of");   /* a prefix */
	EXPECT_ONE_PROBLEM("mode=tests", "'mode=tests'", "must be one of"); /* longer */
	EXPECT_ONE_PROBLEM("mode=TEST", "'mode=TEST'", "must be one of"); /* exact case */
	EXPECT_ONE_PROBLEM("mode=demo|test", "'mode=demo|test'", "must be one of");
	CHECK(strcmp(mode, "demo") == 0, "value changed to '%s'", mode);
}

static void bool_malformed(void)
{
	EXPECT_ONE_PROBLEM("verbose=maybe", "'verbose=maybe'", "not a boolean");
	EXPECT_ONE_PROBLEM("verbose=2", "'verbose=2'", "not a boolean");
	EXPECT_ONE_PROBLEM("verbose=yess", "'verbose=yess'", "not a boolean");
	CHECK(!verbose, "value changed");
}

/* The kernel's own malformed-cmdline boot test: both problems reported, in order. */
static void each_problem_reported_in_order(void)
{
	reset();
	unsigned n = parse("bogus_key=1 pit_hz=abc mode=test pit_hz foo=");
	CHECK(n == 4 && nreports == 4, "%u problems, %u reports", n, nreports);
	CHECK(strstr(reports[0], "'bogus_key=1'") && strstr(reports[0], "unknown"), "0: %s", reports[0]);
	CHECK(strstr(reports[1], "'pit_hz=abc'") && strstr(reports[1], "not a number"), "1: %s",
	      reports[1]);
	CHECK(strstr(reports[2], "'pit_hz'") && strstr(reports[2], "missing value"), "2: %s", reports[2]);
	CHECK(strstr(reports[3], "'foo='") && strstr(reports[3], "unknown"), "3: %s", reports[3]);
	CHECK(strcmp(mode, "test") == 0, "the good word between bad ones was not applied");
}

/* A huge word is cut in the report; the line stays bounded and says so with "...". */
static void long_word_cut_in_report(void)
{
	static char s[4096];
	memset(s, 'z', sizeof(s) - 1);
	memcpy(s, "zzz=", 4);
	reset();
	CHECK(parse(s) == 1 && nreports == 1, "%u reports", nreports);
	CHECK(strlen(reports[0]) < 200, "report of %zu characters", strlen(reports[0]));
	CHECK(strstr(reports[0], "...'") && strstr(reports[0], "unknown option"), "report: %s",
	      reports[0]);
}

static void no_report_callback_still_counts(void)
{
	reset();
	CHECK(cmdline_parse("bogus pit_hz=1 verbose", table, NT, NULL) == 2, "wrong count");
	CHECK(verbose, "good word not applied");
}

int main(void)
{
	TEST(empty_and_blank_lines);
	TEST(u64_decimal);
	TEST(u64_hex);
	TEST(u64_range_bounds_inclusive);
	TEST(string_values);
	TEST(string_choices);
	TEST(bool_forms);
	TEST(several_words_any_whitespace);
	TEST(later_word_wins);
	TEST(unknown_keys);
	TEST(missing_values);
	TEST(malformed_numbers);
	TEST(number_overflow);
	TEST(out_of_range);
	TEST(string_too_long);
	TEST(string_not_a_choice);
	TEST(bool_malformed);
	TEST(each_problem_reported_in_order);
	TEST(long_word_cut_in_report);
	TEST(no_report_callback_still_counts);
	return testlib_exit();
}
