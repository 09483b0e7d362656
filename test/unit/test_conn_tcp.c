/*
 * test_conn_tcp.c: conn_tcp_apply() puts the [pgmux] TCP keys on a socket
 * the way the kernel reports them back: TCP_NODELAY always, keepalive and
 * its three timings, TCP_USER_TIMEOUT and the buffer sizes only when set.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "conn.h"

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

static int tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	return fd;
}

static void test_conn_tcp_defaults_set_nodelay_and_keepalive_only(void **state)
{
	struct cfg cfg;
	int fd = tcp_socket();
	int user_timeout_before = opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT);
	int sndbuf_before = opt(fd, SOL_SOCKET, SO_SNDBUF);

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.tcp_keepalive = true;
	assert_int_equal(conn_tcp_apply(fd, &cfg), 0);
	assert_int_equal(opt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
	assert_int_equal(opt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
	assert_int_equal(opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), user_timeout_before);
	assert_int_equal(opt(fd, SOL_SOCKET, SO_SNDBUF), sndbuf_before);
	close(fd);
}

static void test_conn_tcp_every_key_reaches_the_socket(void **state)
{
	struct cfg cfg;
	int fd = tcp_socket();

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.tcp_keepalive = true;
	cfg.tcp_keepidle = 31;
	cfg.tcp_keepintvl = 7;
	cfg.tcp_keepcnt = 4;
	cfg.tcp_user_timeout = 12345;
	cfg.tcp_socket_buffer = 65536;
	assert_int_equal(conn_tcp_apply(fd, &cfg), 0);
	assert_int_equal(opt(fd, IPPROTO_TCP, TCP_KEEPIDLE), 31);
	assert_int_equal(opt(fd, IPPROTO_TCP, TCP_KEEPINTVL), 7);
	assert_int_equal(opt(fd, IPPROTO_TCP, TCP_KEEPCNT), 4);
	assert_int_equal(opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 12345);
	/* Linux doubles the requested buffer sizes for its bookkeeping. */
	assert_true(opt(fd, SOL_SOCKET, SO_SNDBUF) >= 65536);
	assert_true(opt(fd, SOL_SOCKET, SO_RCVBUF) >= 65536);
	close(fd);
}

static void test_conn_tcp_keepalive_off_leaves_keepalive_off(void **state)
{
	struct cfg cfg;
	int fd = tcp_socket();

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.tcp_keepalive = false;
	cfg.tcp_keepidle = 31;
	assert_int_equal(conn_tcp_apply(fd, &cfg), 0);
	assert_int_equal(opt(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
	assert_int_equal(opt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
	close(fd);
}

static void test_conn_tcp_refused_option_is_counted_not_fatal(void **state)
{
	struct cfg cfg;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0); /* no TCP options at all */

	(void)state;
	assert_true(fd >= 0);
	memset(&cfg, 0, sizeof(cfg));
	cfg.tcp_keepalive = false;
	cfg.tcp_user_timeout = 1000;
	assert_int_equal(conn_tcp_apply(fd, &cfg), 2); /* TCP_NODELAY, TCP_USER_TIMEOUT */
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conn_tcp_defaults_set_nodelay_and_keepalive_only),
		cmocka_unit_test(test_conn_tcp_every_key_reaches_the_socket),
		cmocka_unit_test(test_conn_tcp_keepalive_off_leaves_keepalive_off),
		cmocka_unit_test(test_conn_tcp_refused_option_is_counted_not_fatal),
	};

	return cmocka_run_group_tests_name("unit_conn_tcp", tests, NULL, NULL);
}
