/*
 * test_log.c: unit tests for pooler/log.c: the line format, level
 * filtering by verbosity, truncation of long messages, neutralised control
 * characters, and reopening (append mode, O_CLOEXEC, old file kept when the
 * new one cannot be opened).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

struct fixture {
	char path[64];
	char path2[64];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	int fd;

	assert_non_null(fx);
	snprintf(fx->path, sizeof(fx->path), "/tmp/pgmux-test-log-XXXXXX");
	fd = mkstemp(fx->path);
	assert_true(fd >= 0);
	close(fd);
	snprintf(fx->path2, sizeof(fx->path2), "/tmp/pgmux-test-log-XXXXXX");
	fd = mkstemp(fx->path2);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(log_open(fx->path, false), 0);
	log_set_verbose(0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	log_close();
	log_set_verbose(0);
	unlink(fx->path);
	unlink(fx->path2);
	free(fx);
	return 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static void test_log_line_format(void **state)
{
	struct fixture *fx = *state;
	char pattern[160], *text;
	regex_t re;

	log_info("hello %s %d", "world", 42);
	log_warn("careful");
	text = slurp(fx->path);
	snprintf(pattern, sizeof(pattern),
		 "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} UTC "
		 "\\[%ld\\] LOG hello world 42\n",
		 (long)getpid());
	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED), 0);
	assert_int_equal(regexec(&re, text, 0, NULL, 0), 0);
	regfree(&re);
	assert_non_null(strstr(text, "] WARNING careful\n"));
	assert_int_equal(count_lines(text), 2);
	free(text);
}

static void test_log_verbosity_filters_levels(void **state)
{
	struct fixture *fx = *state;
	char *text;

	log_debug("d0");
	log_noise("n0");
	log_set_verbose(1);
	log_debug("d1");
	log_noise("n1");
	log_set_verbose(2);
	log_debug("d2");
	log_noise("n2");
	log_error("e");
	log_fatal("f");
	text = slurp(fx->path);
	assert_null(strstr(text, "d0"));
	assert_null(strstr(text, "n0"));
	assert_non_null(strstr(text, "] DEBUG d1\n"));
	assert_null(strstr(text, "n1"));
	assert_non_null(strstr(text, "] DEBUG d2\n"));
	assert_non_null(strstr(text, "] NOISE n2\n"));
	assert_non_null(strstr(text, "] ERROR e\n"));
	assert_non_null(strstr(text, "] FATAL f\n"));
	free(text);
}

static void test_log_truncates_and_neutralises(void **state)
{
	struct fixture *fx = *state;
	char *big = malloc(10000), *text, *nl;

	assert_non_null(big);
	memset(big, 'x', 9999);
	big[9999] = '\0';
	log_info("%s", big);
	log_info("user \"evil\nLOG fake line\r\x1b[0m\" tab\there\n\n");
	text = slurp(fx->path);
	assert_int_equal(count_lines(text), 2);
	nl = strchr(text, '\n');
	assert_true(nl - text < 4096);
	assert_memory_equal(nl - 3, "...", 3);
	assert_non_null(strstr(nl, "user \"evil?LOG fake line??[0m\" tab\there\n"));
	free(text);
	free(big);
}

static void test_log_reopen_appends_and_keeps_old_on_failure(void **state)
{
	struct fixture *fx = *state;
	char *text;
	int fd;

	log_info("first");
	fd = log_fd();
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(fd, F_GETFL) & O_APPEND);

	/* SIGHUP: the same path again appends to what is there. */
	assert_int_equal(log_open(fx->path, false), 0);
	log_info("second");

	/* A path that cannot be opened leaves the current file in use. */
	assert_true(log_open("/nonexistent/dir/pgmux.log", false) < 0);
	assert_true(log_fd() >= 0);
	log_info("third");
	text = slurp(fx->path);
	assert_non_null(strstr(text, "LOG first\n"));
	assert_non_null(strstr(text, "LOG second\n"));
	assert_non_null(strstr(text, "LOG third\n"));
	free(text);

	/* Switching files closes the old one. */
	assert_int_equal(log_open(fx->path2, false), 0);
	log_info("fourth");
	text = slurp(fx->path2);
	assert_non_null(strstr(text, "LOG fourth\n"));
	free(text);
	text = slurp(fx->path);
	assert_null(strstr(text, "fourth"));
	free(text);

	/* NULL or "": stderr only. */
	assert_int_equal(log_open("", true), 0);
	assert_int_equal(log_fd(), -1);
	log_close();
	assert_int_equal(log_fd(), -1);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_log_line_format),
		TEST(test_log_verbosity_filters_levels),
		TEST(test_log_truncates_and_neutralises),
		TEST(test_log_reopen_appends_and_keeps_old_on_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
