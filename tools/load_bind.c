/*
 * load_bind.c: the connect() interposer behind --source-addrs (see
 * load_bind.h for why it exists). IP_BIND_ADDRESS_NO_PORT matters: a plain
 * bind() to port 0 picks the local port at once, unique per source address
 * alone, which would cap each address at the ephemeral range for every
 * destination together; with the option the kernel picks the port at
 * connect() time, unique per 4-tuple, as it does for an unbound socket.
 */
#include "load_bind.h"

#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>

/*
 * glibc declares connect()'s address as a transparent union under
 * _GNU_SOURCE; the definition below must match that declaration exactly.
 */
#ifndef __CONST_SOCKADDR_ARG
#define __CONST_SOCKADDR_ARG const struct sockaddr *
#endif

typedef int (*load_bind_connect_fn)(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len);

/* The address armed for libpq's next connect() calls; NULL when disarmed. */
static const struct sockaddr_in *g_load_bind_src;

void load_bind_arm(const struct sockaddr_in *src)
{
	g_load_bind_src = src;
}

void load_bind_disarm(void)
{
	g_load_bind_src = NULL;
}

static load_bind_connect_fn load_bind_real_connect(void)
{
	static load_bind_connect_fn real;

	if (real == NULL)
		real = (load_bind_connect_fn)dlsym(RTLD_NEXT, "connect");
	return real;
}

/* Binds fd to the armed address if it is an IPv4 socket; 0 or -1 (errno). */
static int load_bind_socket(int fd)
{
	int domain = 0;
	socklen_t len = sizeof(domain);
	int one = 1;

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
		return -1;
	/* An IPv6 or unix socket cannot take a 127.x source: leave it alone. */
	if (domain != AF_INET)
		return 0;
	if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) != 0)
		return -1;
	return bind(fd, (const struct sockaddr *)g_load_bind_src, sizeof(*g_load_bind_src));
}

/*
 * The process-wide connect(). A failed bind fails the connect with the
 * bind's errno, so libpq reports it like any connect error ("Cannot assign
 * requested address") and the attempt is classified, not silently unbound.
 */
int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	load_bind_connect_fn real = load_bind_real_connect();

	if (real == NULL) {
		errno = ENOSYS;
		return -1;
	}
	if (g_load_bind_src != NULL && load_bind_socket(fd) != 0)
		return -1;
	return real(fd, addr, len);
}

bool load_bind_active(void)
{
	void *global = dlsym(RTLD_DEFAULT, "connect");

	return global != NULL && global == (void *)connect;
}
