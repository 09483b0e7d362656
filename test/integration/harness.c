/*
 * harness.c: fixture loading, pooler process lifecycle, subprocesses and
 * libpq helpers for the integration tests (see harness.h for the contract).
 * Owns every pooler process it spawns until harness_pooler_stop() or
 * harness_teardown() reaps it; nothing here links pgmux code.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

extern char **environ;

#ifndef PGMUX_DEFAULT_BIN
#define PGMUX_DEFAULT_BIN "pgmux"
#endif
#define PGBOUNCER_BIN "/usr/sbin/pgbouncer"
#define LIVE_MAX 16

static struct harness_fixture fixture;
static bool fixture_loaded;
static struct harness_pooler *live[LIVE_MAX];
static bool atexit_armed;

void harness_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		fail_msg("harness: string too long for its buffer (%zu bytes): %.60s...",
			 len, fmt);
}

long long harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- fixture ------------------------------------------------------------ */

static void fixture_set(const char *key, const char *val)
{
	static const struct {
		const char *key;
		size_t off;
		size_t len;
	} map[] = {
#define F(k, f) { k, offsetof(struct harness_fixture, f), sizeof(fixture.f) }
		F("PGFIX_HOST", host),
		F("PGFIX_SOCKDIR", sockdir),
		F("PGFIX_BINDIR", bindir),
		F("PGFIX_LOG", log),
		F("PGFIX_DB", db),
		F("PGFIX_SUPER_USER", super_user),
		F("PGFIX_SUPER_PASSWORD", super_password),
		F("PGFIX_APP_USER", app_user),
		F("PGFIX_APP_PASSWORD", app_password),
		F("PGFIX_MD5_USER", md5_user),
		F("PGFIX_MD5_PASSWORD", md5_password),
		F("PGFIX_ADMIN_USER", admin_user),
		F("PGFIX_ADMIN_PASSWORD", admin_password),
#undef F
	};
	size_t i;

	if (strcmp(key, "PGFIX_PORT") == 0) {
		fixture.port = atoi(val);
		return;
	}
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(key, map[i].key) == 0) {
			harness_fmt((char *)&fixture + map[i].off, map[i].len, "%s", val);
			return;
		}
	}
}

const struct harness_fixture *harness_fixture(void)
{
	const char *path = getenv("PGMUX_FIXTURE_ENV");
	char line[1024];
	FILE *f;

	if (fixture_loaded)
		return &fixture;
	if (path == NULL || *path == '\0')
		fail_msg("PGMUX_FIXTURE_ENV is not set: run the integration tests "
			 "through ctest (the pg fixture), or set it to the env file "
			 "written by test/integration/pg_fixture.sh start <dir>");
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot open fixture env %s: %s (did pg_fixture.sh start fail?)",
			 path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		char *eq = strchr(line, '=');

		line[strcspn(line, "\n")] = '\0';
		if (eq == NULL)
			continue;
		*eq = '\0';
		fixture_set(line, eq + 1);
	}
	fclose(f);
	if (fixture.port <= 0 || fixture.app_user[0] == '\0')
		fail_msg("fixture env %s is incomplete", path);
	fixture_loaded = true;
	return &fixture;
}

/* ---- pooler selection --------------------------------------------------- */

bool harness_is_pgbouncer(void)
{
	const char *k = getenv("PGMUX_TEST_POOLER");

	if (k == NULL || *k == '\0' || strcmp(k, "pgmux") == 0)
		return false;
	if (strcmp(k, "pgbouncer") == 0)
		return true;
	fail_msg("PGMUX_TEST_POOLER=%s: expected pgmux or pgbouncer", k);
	return false;
}

const char *harness_pooler_bin(void)
{
	const char *b = getenv("PGMUX_BIN");

	if (b != NULL && *b != '\0')
		return b;
	return harness_is_pgbouncer() ? PGBOUNCER_BIN : PGMUX_DEFAULT_BIN;
}

const char *harness_pooler_name(void)
{
	return harness_is_pgbouncer() ? "pgbouncer" : "pgmux";
}

/* ---- small utilities ---------------------------------------------------- */

int harness_free_port(void)
{
	int tries;

	/*
	 * Below the kernel's ephemeral range (32768+), so an outgoing
	 * connection cannot grab the port between this check and the bind.
	 */
	for (tries = 0; tries < 200; tries++) {
		struct sockaddr_in sa = { 0 };
		int port = 20000 + (int)(((unsigned)rand() ^ (unsigned)getpid()) % 12000);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int one = 1;
		int rc;

		assert_true(fd >= 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		sa.sin_family = AF_INET;
		sa.sin_port = htons((uint16_t)port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (rc == 0)
			return port;
	}
	fail_msg("no free TCP port found");
	return -1;
}

void harness_path(char *buf, size_t len, const struct harness_pooler *p,
		  const char *name)
{
	harness_fmt(buf, len, "%s/%s", p->dir, name);
}

char *harness_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (f == NULL)
		fail_msg("cannot read %s: %s", path, strerror(errno));
	for (;;) {
		size_t got;

		if (cap - n < 65536) {
			cap = cap ? cap * 2 : 131072;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

/* Like harness_read_file, but a missing file reads as empty (no assert). */
static char *read_file_quiet(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0) {
		if (f != NULL)
			fclose(f);
		return calloc(1, 1);
	}
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (buf == NULL) {
		fclose(f);
		return NULL;
	}
	n = (long)fread(buf, 1, (size_t)n, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

void harness_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		fail_msg("cannot write %s: %s", path, strerror(errno));
	if (fputs(text, f) == EOF || fclose(f) != 0)
		fail_msg("write to %s failed", path);
	/* Readable by the postgres user when PgBouncer runs as it. */
	chmod(path, 0644);
}

long long harness_proc_cpu_ms(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the parenthesised command name; utime is the 14th. */
	p = strrchr(buf, ')');
	if (p == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &ut, &st) != 2)
		return -1;
	return (long long)((ut + st) * 1000 / (unsigned long long)sysconf(_SC_CLK_TCK));
}

void harness_raise_nofile(long n)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if ((long)rl.rlim_cur >= n)
		return;
	if ((long)rl.rlim_max < n) {
		rl.rlim_max = (rlim_t)n;
		if (geteuid() != 0)
			fail_msg("RLIMIT_NOFILE hard limit %ld < %ld and not root",
				 (long)rl.rlim_max, n);
	}
	rl.rlim_cur = (rlim_t)n;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		fail_msg("setrlimit(NOFILE, %ld): %s", n, strerror(errno));
}

/* ---- subprocesses -------------------------------------------------------- */

static void redirect(const char *path, int fd, int flags)
{
	int f = open(path ? path : "/dev/null", flags, 0644);

	if (f < 0)
		_exit(126);
	if (f != fd) {
		dup2(f, fd);
		close(f);
	}
}

/* environ plus extra "K=V" entries (an extra entry replaces the same K). */
static char **build_env(char *const extra[])
{
	size_t n = 0, m = 0, i, j, k = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	while (extra != NULL && extra[m] != NULL)
		m++;
	env = calloc(n + m + 1, sizeof(*env));
	assert_non_null(env);
	for (i = 0; i < n; i++) {
		bool replaced = false;

		for (j = 0; j < m; j++) {
			size_t kl = strcspn(extra[j], "=");

			if (strncmp(environ[i], extra[j], kl + 1) == 0)
				replaced = true;
		}
		if (!replaced)
			env[k++] = environ[i];
	}
	for (j = 0; j < m; j++)
		env[k++] = extra[j];
	env[k] = NULL;
	return env;
}

int harness_run(char *const argv[], char *const env[], const char *stdin_path,
		const char *out_path, const char *err_path, int timeout_s)
{
	char **envp = build_env(env);
	long long deadline = harness_now_ms() + (long long)timeout_s * 1000;
	int status;
	pid_t pid, r;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		redirect(stdin_path, 0, O_RDONLY);
		redirect(out_path, 1, O_WRONLY | O_CREAT | O_TRUNC);
		redirect(err_path, 2, O_WRONLY | O_CREAT | O_TRUNC);
		execvpe(argv[0], argv, envp);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	free(envp);
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		assert_true(r == 0 || errno == EINTR);
		if (harness_now_ms() > deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		harness_sleep_ms(10);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/* ---- pooler lifecycle ---------------------------------------------------- */

static void kill_live_atexit(void)
{
	int i;

	for (i = 0; i < LIVE_MAX; i++) {
		if (live[i] != NULL && live[i]->pid > 0) {
			kill(live[i]->pid, SIGKILL);
			waitpid(live[i]->pid, NULL, 0);
		}
	}
}

static void live_add(struct harness_pooler *p)
{
	int i;

	if (!atexit_armed) {
		atexit(kill_live_atexit);
		atexit_armed = true;
	}
	for (i = 0; i < LIVE_MAX; i++) {
		if (live[i] == NULL) {
			live[i] = p;
			return;
		}
	}
	fail_msg("harness: more than %d poolers running at once", LIVE_MAX);
}

static void live_remove(struct harness_pooler *p)
{
	int i;

	for (i = 0; i < LIVE_MAX; i++)
		if (live[i] == p)
			live[i] = NULL;
}

/* Is line's key (text before '=', trimmed) set by one of settings' lines? */
static bool settings_have_key(const char *settings, const char *key)
{
	const char *s = settings;
	size_t kl = strlen(key);

	while (s != NULL && *s != '\0') {
		while (*s == ' ' || *s == '\t')
			s++;
		if (strncmp(s, key, kl) == 0) {
			const char *t = s + kl;

			while (*t == ' ' || *t == '\t')
				t++;
			if (*t == '=')
				return true;
		}
		s = strchr(s, '\n');
		if (s != NULL)
			s++;
	}
	return false;
}

static void append(char *buf, size_t len, const char *text)
{
	size_t used = strlen(buf);

	harness_fmt(buf + used, len - used, "%s", text);
}

static void write_files(struct harness_pooler *p)
{
	const struct harness_fixture *fx = harness_fixture();
	char ini[16384] = "", line[1024];
	const struct {
		const char *key;
		char value[HARNESS_PATH_MAX];
	} *d, defaults[] = {
		{ "listen_addr", "127.0.0.1" },
		{ "listen_port", "" },
		{ "unix_socket_dir", "" },
		{ "auth_type", "scram-sha-256" },
		{ "auth_file", "" },
		{ "admin_users", "" },
		{ "stats_users", "" },
		{ "pool_mode", "transaction" },
		{ "default_pool_size", "5" },
		{ "max_client_conn", "1000" },
		{ "logfile", "" },
		{ "pidfile", "" },
		{ NULL, "" },
	};
	char port[16];

	harness_fmt(port, sizeof(port), "%d", p->port);
	for (d = defaults; d->key != NULL; d++) {
		const char *v = d->value;

		if (settings_have_key(p->settings, d->key))
			continue;
		if (strcmp(d->key, "listen_port") == 0)
			v = port;
		else if (strcmp(d->key, "unix_socket_dir") == 0)
			v = p->dir;
		else if (strcmp(d->key, "auth_file") == 0)
			v = p->userlist_path;
		else if (strcmp(d->key, "admin_users") == 0 ||
			 strcmp(d->key, "stats_users") == 0)
			v = fx->admin_user;
		else if (strcmp(d->key, "logfile") == 0)
			v = p->logfile_path;
		else if (strcmp(d->key, "pidfile") == 0)
			v = p->pidfile_path;
		if (ini[0] == '\0') {
			harness_fmt(line, sizeof(line), "[%s]\n", harness_pooler_name());
			append(ini, sizeof(ini), line);
		}
		harness_fmt(line, sizeof(line), "%s = %s\n", d->key, v);
		append(ini, sizeof(ini), line);
	}
	append(ini, sizeof(ini), p->settings);
	if (p->settings[0] != '\0' && p->settings[strlen(p->settings) - 1] != '\n')
		append(ini, sizeof(ini), "\n");
	append(ini, sizeof(ini), "\n[databases]\n");
	append(ini, sizeof(ini), p->databases);
	append(ini, sizeof(ini), "\n");
	harness_write_file(p->ini_path, ini);
	harness_write_file(p->userlist_path, p->userlist);
}

static void take_cfg(struct harness_pooler *p, const struct harness_pooler_cfg *cfg)
{
	const struct harness_fixture *fx = harness_fixture();

	harness_fmt(p->settings, sizeof(p->settings), "%s",
		    cfg && cfg->settings ? cfg->settings : "");
	if (cfg && cfg->databases)
		harness_fmt(p->databases, sizeof(p->databases), "%s", cfg->databases);
	else
		harness_fmt(p->databases, sizeof(p->databases),
			    "%s = host=%s port=%d dbname=%s\n", fx->db, fx->host,
			    fx->port, fx->db);
	if (cfg && cfg->userlist)
		harness_fmt(p->userlist, sizeof(p->userlist), "%s", cfg->userlist);
	else
		harness_fmt(p->userlist, sizeof(p->userlist),
			    "\"%s\" \"%s\"\n\"%s\" \"%s\"\n", fx->app_user,
			    fx->app_password, fx->admin_user, fx->admin_password);
}

void harness_pooler_prepare(struct harness_pooler *p,
			    const struct harness_pooler_cfg *cfg)
{
	char tmpl[] = "/tmp/pgmux-it.XXXXXX";

	memset(p, 0, sizeof(*p));
	harness_fixture();
	if (mkdtemp(tmpl) == NULL)
		fail_msg("mkdtemp: %s", strerror(errno));
	chmod(tmpl, 0755);
	harness_fmt(p->dir, sizeof(p->dir), "%s", tmpl);
	if (harness_is_pgbouncer() && geteuid() == 0) {
		/* PgBouncer refuses root; it runs as postgres and writes here. */
		struct passwd *pw = getpwnam("postgres");

		if (pw == NULL || chown(p->dir, pw->pw_uid, pw->pw_gid) != 0)
			fail_msg("cannot hand %s to the postgres user", p->dir);
	}
	harness_path(p->ini_path, sizeof(p->ini_path), p, "pooler.ini");
	harness_path(p->userlist_path, sizeof(p->userlist_path), p, "userlist.txt");
	harness_path(p->stderr_path, sizeof(p->stderr_path), p, "stderr.log");
	harness_path(p->logfile_path, sizeof(p->logfile_path), p, "pooler.log");
	harness_path(p->pidfile_path, sizeof(p->pidfile_path), p, "pooler.pid");
	p->port = harness_free_port();
	/* Applied at spawn only, so harness_pooler_rewrite() keeps it. */
	p->nofile = cfg ? cfg->nofile : 0;
	take_cfg(p, cfg);
	write_files(p);
}

void harness_pooler_rewrite(struct harness_pooler *p,
			    const struct harness_pooler_cfg *cfg)
{
	take_cfg(p, cfg);
	write_files(p);
}

void harness_pooler_spawn(struct harness_pooler *p)
{
	const char *bin = harness_pooler_bin();
	pid_t pid;

	if (access(bin, X_OK) != 0)
		fail_msg("pooler binary %s is not executable: %s (build it, or set PGMUX_BIN)",
			 bin, strerror(errno));
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* pgmux dies with us even if the test crashes (PgBouncer drops
		 * this when it changes user; teardown/atexit cover it). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		redirect(NULL, 0, O_RDONLY);
		redirect(p->stderr_path, 1, O_WRONLY | O_CREAT | O_APPEND);
		dup2(1, 2);
		/*
		 * Nothing else is inherited (pipes ctest or a shell leak to us):
		 * the pooler's descriptor accounting is tested against what it
		 * opens itself, as under a service manager.
		 */
		close_range(3, ~0U, 0);
		if (p->nofile > 0) {
			struct rlimit rl = { (rlim_t)p->nofile, (rlim_t)p->nofile };

			if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
				dprintf(2, "setrlimit(NOFILE, %ld): %s\n", p->nofile,
					strerror(errno));
				_exit(126);
			}
		}
		if (harness_is_pgbouncer() && geteuid() == 0)
			execl(bin, bin, "-u", "postgres", p->ini_path, (char *)NULL);
		else
			execl(bin, bin, p->ini_path, (char *)NULL);
		dprintf(2, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	p->pid = pid;
	p->exit_status = 0;
	p->killed = false;
	live_add(p);
}

static bool port_accepts(int port)
{
	struct sockaddr_in sa = { 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int rc;

	if (fd < 0)
		return false;
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rc == 0;
}

/* Reaps p if it has exited; true if it has (or had already). */
static bool reap(struct harness_pooler *p, bool block)
{
	int status;
	pid_t r;

	if (p->pid == 0)
		return true;
	do
		r = waitpid(p->pid, &status, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == p->pid) {
		p->exit_status = status;
		p->pid = 0;
		live_remove(p);
		return true;
	}
	return false;
}

bool harness_pooler_alive(struct harness_pooler *p)
{
	return !reap(p, false);
}

void harness_pooler_wait_ready(struct harness_pooler *p)
{
	long long deadline = harness_now_ms() + 30000;

	while (harness_now_ms() < deadline) {
		if (reap(p, false)) {
			harness_pooler_dump_log(p);
			fail_msg("%s exited during startup (wait status 0x%x); config %s",
				 harness_pooler_bin(), p->exit_status, p->ini_path);
		}
		if (port_accepts(p->port))
			return;
		harness_sleep_ms(20);
	}
	harness_pooler_dump_log(p);
	fail_msg("%s did not accept on port %d within 30 s", harness_pooler_bin(),
		 p->port);
}

void harness_pooler_start(struct harness_pooler *p,
			  const struct harness_pooler_cfg *cfg)
{
	harness_pooler_prepare(p, cfg);
	harness_pooler_spawn(p);
	harness_pooler_wait_ready(p);
}

void harness_pooler_signal(struct harness_pooler *p, int sig)
{
	assert_true(p->pid > 0);
	assert_int_equal(kill(p->pid, sig), 0);
}

bool harness_pooler_wait_exit(struct harness_pooler *p, int timeout_s)
{
	long long deadline = harness_now_ms() + (long long)timeout_s * 1000;

	while (!reap(p, false)) {
		if (harness_now_ms() > deadline)
			return false;
		harness_sleep_ms(10);
	}
	return true;
}

static const char *const sanitizer_needles[] = {
	"ERROR: AddressSanitizer",
	"ERROR: LeakSanitizer",
	"LeakSanitizer",
	"runtime error:",
	"WARNING: ThreadSanitizer",
	NULL,
};

static const char *find_sanitizer_report(const char *text)
{
	const char *const *n;

	for (n = sanitizer_needles; *n != NULL; n++) {
		const char *hit = strstr(text, *n);

		if (hit != NULL)
			return hit;
	}
	return NULL;
}

void harness_assert_no_sanitizer_report(const char *text, const char *what)
{
	const char *hit = find_sanitizer_report(text);

	if (hit != NULL) {
		const char *start = hit;

		while (start > text && (hit - start) < 200)
			start--;
		fail_msg("sanitizer report in %s:\n%.3000s", what, start);
	}
}

void harness_print_tail(const char *title, const char *path, size_t max)
{
	char *text = read_file_quiet(path);
	size_t n;

	if (text == NULL) {
		fprintf(stderr, "---- %s: %s cannot be read ----\n", title, path);
		return;
	}
	n = strlen(text);
	fprintf(stderr, "---- %s: %s (last %zu of %zu bytes) ----\n%s%s---- end ----\n", title,
		path, n > max ? max : n, n, n > max ? text + n - max : text,
		n > 0 && text[n - 1] != '\n' ? "\n" : "");
	free(text);
}

void harness_pooler_dump_log(const struct harness_pooler *p)
{
	harness_print_tail("pooler output", p->stderr_path, 4000);
	harness_print_tail("pooler log", p->logfile_path, 4000);
}

/*
 * Prints the pooler's WARNING, ERROR and FATAL log lines (the first max of
 * them) to stderr: the rest of its log is one line per login and logout.
 */
void harness_print_pooler_problems(const struct harness_pooler *p, int max)
{
	char *log = harness_read_file(p->logfile_path, NULL);
	char *line, *save = NULL;
	int n = 0;

	fprintf(stderr, "---- pgmux WARNING/ERROR/FATAL lines (%s) ----\n",
		p->logfile_path);
	for (line = strtok_r(log, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, " WARNING ") == NULL && strstr(line, " ERROR ") == NULL &&
		    strstr(line, " FATAL ") == NULL)
			continue;
		if (n++ < max)
			fprintf(stderr, "%s\n", line);
	}
	fprintf(stderr, "---- end: %d such lines%s ----\n", n,
		n > max ? ", the first shown" : "");
	free(log);
}

bool harness_pooler_log_contains(const struct harness_pooler *p,
				 const char *needle)
{
	char *a = read_file_quiet(p->stderr_path);
	char *b = read_file_quiet(p->logfile_path);
	bool hit = (a && strstr(a, needle)) || (b && strstr(b, needle));

	free(a);
	free(b);
	return hit;
}

static void remove_dir(const char *dir)
{
	char *argv[] = { "rm", "-rf", (char *)dir, NULL };

	if (strncmp(dir, "/tmp/pgmux-it.", 14) == 0)
		harness_run(argv, NULL, NULL, NULL, NULL, 30);
}

int harness_pooler_stop(struct harness_pooler *p, int timeout_s)
{
	char *out, *log;
	const char *keep = getenv("PGMUX_TEST_KEEP");
	const char *bad = NULL;

	if (p->pid > 0) {
		/* PgBouncer's SIGTERM is its "immediate shutdown" and exits 1;
		 * SIGINT is its clean one. pgmux must exit 0 on SIGTERM. */
		kill(p->pid, harness_is_pgbouncer() ? SIGINT : SIGTERM);
		if (!harness_pooler_wait_exit(p, timeout_s)) {
			kill(p->pid, SIGKILL);
			p->killed = true;
			reap(p, true);
		}
	}
	out = read_file_quiet(p->stderr_path);
	log = read_file_quiet(p->logfile_path);
	assert_non_null(out);
	assert_non_null(log);
	if (find_sanitizer_report(out) || find_sanitizer_report(log))
		bad = "sanitizer report";
	else if (p->killed)
		bad = "did not exit after SIGTERM";
	else if (WIFSIGNALED(p->exit_status))
		bad = "died of a signal";
	else if (WEXITSTATUS(p->exit_status) != 0)
		bad = "exited non-zero";
	if (bad != NULL) {
		harness_pooler_dump_log(p);
		harness_assert_no_sanitizer_report(out, p->stderr_path);
		harness_assert_no_sanitizer_report(log, p->logfile_path);
		fail_msg("pooler %s (wait status 0x%x, timeout %d s); files kept in %s",
			 bad, p->exit_status, timeout_s, p->dir);
	}
	free(out);
	free(log);
	if (keep == NULL || *keep == '\0')
		remove_dir(p->dir);
	return p->exit_status;
}

int harness_teardown(void **state)
{
	int i, left = 0;

	(void)state;
	for (i = 0; i < LIVE_MAX; i++) {
		struct harness_pooler *p = live[i];

		if (p == NULL)
			continue;
		left++;
		fprintf(stderr, "harness: pooler pid %d still running after the test; "
			"killing it, files kept in %s\n", (int)p->pid, p->dir);
		kill(p->pid, SIGKILL);
		reap(p, true);
		harness_pooler_dump_log(p);
	}
	return left ? -1 : 0;
}

/* ---- libpq helpers ------------------------------------------------------- */

void harness_conninfo(char *buf, size_t len, int port, const char *db,
		      const char *user, const char *password)
{
	/* Values are test-controlled identifiers without quotes or spaces. */
	int n = snprintf(buf, len,
			 "host=127.0.0.1 port=%d dbname=%s user=%s password=%s "
			 "connect_timeout=20 application_name=pgmux-it",
			 port, db, user, password);

	if (n < 0 || (size_t)n >= len)
		buf[0] = '\0';
}

PGconn *harness_connect(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);

	assert_non_null(c);
	if (PQstatus(c) != CONNECTION_OK) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		PQfinish(c);
		fail_msg("connect \"%s\" failed: %s", conninfo, msg);
	}
	return c;
}

PGconn *harness_connect_pooler(const struct harness_pooler *p, const char *db,
			       const char *user, const char *password)
{
	const struct harness_fixture *fx = harness_fixture();
	char ci[1024];

	harness_conninfo(ci, sizeof(ci), p->port, db ? db : fx->db,
			 user ? user : fx->app_user,
			 password ? password : fx->app_password);
	assert_true(ci[0] != '\0');
	return harness_connect(ci);
}

PGconn *harness_connect_pg_super(const char *db)
{
	const struct harness_fixture *fx = harness_fixture();
	char ci[1024];

	harness_conninfo(ci, sizeof(ci), fx->port, db ? db : fx->db,
			 fx->super_user, fx->super_password);
	assert_true(ci[0] != '\0');
	return harness_connect(ci);
}

PGconn *harness_connect_admin(const struct harness_pooler *p)
{
	const struct harness_fixture *fx = harness_fixture();

	return harness_connect_pooler(p, harness_pooler_name(), fx->admin_user,
				      fx->admin_password);
}

PGresult *harness_query(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		fail_msg("\"%.200s\": got %s, expected rows: %s", sql,
			 PQresStatus(PQresultStatus(r)), msg);
	}
	return r;
}

int harness_col(const PGresult *r, const char *name)
{
	int i;

	/* Exact match: PQfnumber would fold case and strip quotes. */
	for (i = 0; i < PQnfields(r); i++)
		if (strcmp(PQfname(r, i), name) == 0)
			return i;
	fail_msg("result has no column \"%s\" (%d columns)", name, PQnfields(r));
	return -1;
}

const char *harness_value(const PGresult *r, int row, const char *col)
{
	int c = harness_col(r, col);

	if (row < 0 || row >= PQntuples(r))
		fail_msg("row %d of column %s: result has %d rows", row, col,
			 PQntuples(r));
	if (PQgetisnull(r, row, c))
		fail_msg("row %d column %s is NULL", row, col);
	return PQgetvalue(r, row, c);
}

long long harness_value_ll(const PGresult *r, int row, const char *col)
{
	const char *v = harness_value(r, row, col);
	char *end;
	long long n = strtoll(v, &end, 10);

	if (end == v || *end != '\0')
		fail_msg("row %d column %s: \"%s\" is not an integer", row, col, v);
	return n;
}

int harness_find_row(const PGresult *r, const char *col1, const char *val1,
		     const char *col2, const char *val2)
{
	int c1 = harness_col(r, col1), c2 = col2 ? harness_col(r, col2) : -1, i;

	for (i = 0; i < PQntuples(r); i++) {
		if (PQgetisnull(r, i, c1) || strcmp(PQgetvalue(r, i, c1), val1) != 0)
			continue;
		if (c2 >= 0 && (PQgetisnull(r, i, c2) ||
				strcmp(PQgetvalue(r, i, c2), val2) != 0))
			continue;
		return i;
	}
	return -1;
}

/*
 * Runs show on a fresh console connection (closed again before returning:
 * a PGresult outlives its connection); *row is the first row whose key_col
 * is key_val, and the test fails if there is none.
 */
static PGresult *admin_row(const struct harness_pooler *p, const char *show,
			   const char *key_col, const char *key_val, int *row)
{
	PGconn *admin = harness_connect_admin(p);
	PGresult *r = harness_query(admin, show);

	PQfinish(admin);
	*row = harness_find_row(r, key_col, key_val, NULL, NULL);
	if (*row < 0)
		fail_msg("\"%.200s\": no row with %s = \"%s\" (%d rows)", show, key_col,
			 key_val, PQntuples(r));
	return r;
}

long long harness_admin_ll(const struct harness_pooler *p, const char *show,
			   const char *key_col, const char *key_val, const char *col)
{
	int row;
	PGresult *r = admin_row(p, show, key_col, key_val, &row);
	long long v = harness_value_ll(r, row, col);

	PQclear(r);
	return v;
}

char *harness_admin_value(const struct harness_pooler *p, const char *show,
			  const char *key_col, const char *key_val, const char *col)
{
	int row;
	PGresult *r = admin_row(p, show, key_col, key_val, &row);
	char *v = strdup(harness_value(r, row, col));

	assert_non_null(v);
	PQclear(r);
	return v;
}

const char *harness_sqlstate(const PGresult *r)
{
	const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	return s ? s : "";
}

void harness_exec_expect(PGconn *c, const char *sql, ExecStatusType expect)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);

	if (st != expect) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		PQclear(r);
		fail_msg("\"%.200s\": got %s, expected %s: %s", sql, PQresStatus(st),
			 PQresStatus(expect), msg);
	}
	PQclear(r);
}

void harness_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		PQclear(r);
		fail_msg("\"%.200s\" failed (%s): %s", sql, PQresStatus(st), msg);
	}
	PQclear(r);
}

void harness_exec_sqlstate(PGconn *c, const char *sql, const char *sqlstate)
{
	PGresult *r = PQexec(c, sql);
	char got[8];

	snprintf(got, sizeof(got), "%s", harness_sqlstate(r));
	if (PQresultStatus(r) != PGRES_FATAL_ERROR || strcmp(got, sqlstate) != 0) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		PQclear(r);
		fail_msg("\"%.200s\": expected SQLSTATE %s, got status %s sqlstate '%s': %s",
			 sql, sqlstate, PQresStatus(PQresultStatus(r)), got, msg);
	}
	PQclear(r);
}

char *harness_scalar(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	char *v = NULL;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
	    PQnfields(r) < 1) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		fail_msg("\"%.200s\": expected one row, got %s with %d rows: %s", sql,
			 PQresStatus(PQresultStatus(r)), PQntuples(r), msg);
	}
	if (!PQgetisnull(r, 0, 0)) {
		v = strdup(PQgetvalue(r, 0, 0));
		assert_non_null(v);
	}
	PQclear(r);
	return v;
}

long long harness_scalar_ll(PGconn *c, const char *sql)
{
	char *v = harness_scalar(c, sql);
	long long n;

	if (v == NULL)
		fail_msg("\"%.200s\" returned NULL", sql);
	n = strtoll(v, NULL, 10);
	free(v);
	return n;
}

int harness_count_server_conns(PGconn *super, const char *db, const char *user)
{
	const char *params[2] = { db, user };
	PGresult *r = PQexecParams(super,
		"SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
		"AND usename = $2 AND backend_type = 'client backend' "
		"AND pid <> pg_backend_pid()", 2, NULL, params, NULL, NULL, 0);
	int n;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(super));
		PQclear(r);
		fail_msg("pg_stat_activity query failed: %s", msg);
	}
	n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

/* ---- pg_stat_activity poller -------------------------------------------- */

static void *poller_main(void *arg)
{
	struct harness_poller *pl = arg;
	const char *params[2] = { pl->db, pl->user };
	PGconn *c = PQconnectdb(pl->conninfo);

	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(pl->error, sizeof(pl->error), "poller connect: %s",
			 PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	while (!pl->stop) {
		PGresult *r = PQexecParams(c,
			"SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
			"AND usename = $2 AND backend_type = 'client backend' "
			"AND pid <> pg_backend_pid()", 2, NULL, params, NULL, NULL, 0);
		int n;

		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			snprintf(pl->error, sizeof(pl->error), "poller query: %s",
				 PQerrorMessage(c));
			PQclear(r);
			break;
		}
		n = atoi(PQgetvalue(r, 0, 0));
		PQclear(r);
		if (n > pl->max)
			pl->max = n;
		pl->samples++;
		harness_sleep_ms(10);
	}
	PQfinish(c);
	return NULL;
}

void harness_poller_start(struct harness_poller *pl, const char *db,
			  const char *user)
{
	const struct harness_fixture *fx = harness_fixture();
	pthread_t t;

	memset(pl, 0, sizeof(*pl));
	harness_fmt(pl->db, sizeof(pl->db), "%s", db);
	harness_fmt(pl->user, sizeof(pl->user), "%s", user);
	harness_conninfo(pl->conninfo, sizeof(pl->conninfo), fx->port, "postgres",
			 fx->super_user, fx->super_password);
	assert_int_equal(pthread_create(&t, NULL, poller_main, pl), 0);
	pl->thread = (unsigned long)t;
}

int harness_poller_stop(struct harness_poller *pl)
{
	pl->stop = 1;
	pthread_join((pthread_t)pl->thread, NULL);
	if (pl->error[0] != '\0')
		fail_msg("%s", pl->error);
	if (pl->samples == 0)
		fail_msg("pg_stat_activity poller took no sample");
	return pl->max;
}

void harness_wait_no_server_conns(const char *db, const char *user, int timeout_s)
{
	long long deadline = harness_now_ms() + (long long)timeout_s * 1000;
	PGconn *super = harness_connect_pg_super("postgres");
	int n;

	while ((n = harness_count_server_conns(super, db, user)) > 0 &&
	       harness_now_ms() < deadline)
		harness_sleep_ms(20);
	PQfinish(super);
	if (n > 0)
		fail_msg("%d server connections for %s/%s still open after %d s",
			 n, db, user, timeout_s);
}

bool harness_collect_results(PGconn *c, char *states, size_t len, int timeout_ms,
			     int *n_ok)
{
	long long deadline = harness_now_ms() + timeout_ms;
	size_t used = 0;

	states[0] = '\0';
	if (n_ok != NULL)
		*n_ok = 0;
	for (;;) {
		PGresult *r;
		const char *st;

		if (PQisBusy(c) && PQstatus(c) == CONNECTION_BAD) {
			r = PQgetResult(c);
			if (r == NULL)
				break;
			goto record;
		}
		if (PQisBusy(c)) {
			struct pollfd pfd = { PQsocket(c), POLLIN, 0 };
			long long left = deadline - harness_now_ms();

			if (left <= 0)
				return false;
			if (pfd.fd < 0)
				break;
			if (poll(&pfd, 1, (int)(left > 100 ? 100 : left)) < 0 &&
			    errno != EINTR)
				return false;
			if (PQconsumeInput(c) == 0 && PQisBusy(c)) {
				/* Broken: let libpq turn it into an error result. */
				r = PQgetResult(c);
				if (r == NULL)
					break;
				goto record;
			}
			continue;
		}
		r = PQgetResult(c);
		if (r == NULL)
			break;
record:
		st = harness_sqlstate(r);
		if (PQresultStatus(r) == PGRES_TUPLES_OK ||
		    PQresultStatus(r) == PGRES_COMMAND_OK) {
			if (n_ok != NULL)
				(*n_ok)++;
		}
		if (*st != '\0' && used + strlen(st) + 2 < len) {
			used += (size_t)snprintf(states + used, len - used, "%s%s",
						 used ? "," : "", st);
		}
		PQclear(r);
		if (PQstatus(c) == CONNECTION_BAD && !PQisBusy(c)) {
			/* Drain whatever libpq still queued, then stop. */
			while ((r = PQgetResult(c)) != NULL) {
				st = harness_sqlstate(r);
				if (*st != '\0' && used + strlen(st) + 2 < len)
					used += (size_t)snprintf(states + used, len - used,
								 "%s%s", used ? "," : "", st);
				PQclear(r);
			}
			break;
		}
	}
	return true;
}

bool harness_sqlstate_is(const char *got, const char *want)
{
	const char *lenient = getenv("PGMUX_TEST_ACCEPT_08P01");

	if (strcmp(got, want) == 0)
		return true;
	return harness_is_pgbouncer() && lenient != NULL &&
	       strcmp(lenient, "1") == 0 && strcmp(got, "08P01") == 0;
}
