/*
 * pooler.c: process-wide lifecycle around g_pooler: start listening, react
 * to signals (SIGINT: stop now; SIGTERM: stop accepting, let clients finish
 * up to shutdown_wait_timeout; SIGHUP: reload), reload by swapping a fully
 * validated config, and tear everything down so the loop closes clean.
 */
#include "pooler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "admin.h"
#include "auth.h"
#include "cancel.h"
#include "tls.h"
#include "client.h"
#include "fds.h"
#include "iobuf.h"
#include "janitor.h"
#include "listener.h"
#include "hba.h"
#include "log.h"
#include "params.h"
#include "pool.h"
#include "server.h"
#include "util.h"

struct pooler g_pooler;

static void pooler_on_signal(uv_signal_t *h, int signum);
static void pooler_on_check(uv_check_t *h);

/*
 * Runs after every loop iteration. Cheap unless a console command waits for
 * a condition (PAUSE, WAIT_CLOSE, SHUTDOWN WAIT_FOR_SERVERS).
 */
static void pooler_on_check(uv_check_t *h)
{
	(void)h;
	if (g_pooler.admin_waiting > 0)
		admin_check_waiting();
	if (g_pooler.run_state == POOLER_SHUTDOWN_WAIT_SERVERS &&
	    pool_count_active_servers() == 0) {
		log_info("all servers are released");
		pooler_close_everything();
	}
}
static void pooler_on_shutdown_timer(uv_timer_t *t);

/* Expected descriptor peak: every client, every server, plus slack for
 * listeners, the log file, libuv's own descriptors and cancel requests. */
static uint64_t pooler_fd_estimate(const struct cfg *cfg)
{
	uint64_t servers = 0;
	size_t i;

	for (i = 0; i < cfg->ndbs; i++) {
		int ps = cfg->dbs[i].pool_size >= 0 ? cfg->dbs[i].pool_size : cfg->default_pool_size;

		servers += (uint64_t)ps + (uint64_t)(cfg->reserve_pool_size > 0 ?
							     cfg->reserve_pool_size :
							     0);
	}
	return (uint64_t)cfg->max_client_conn + servers + 32;
}

/* Raises the soft fd limit toward the hard one as far as the config needs. */
static void pooler_adjust_fd_limit(const struct cfg *cfg)
{
	struct rlimit rl;
	uint64_t want = pooler_fd_estimate(cfg);

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
		rlim_t target = want < rl.rlim_max ? (rlim_t)want : rl.rlim_max;

		rl.rlim_cur = target;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("could not raise the open-files limit: %s", strerror(errno));
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	log_info("open-files limit %llu (hard %llu); expected peak %llu "
		 "(max_client_conn + pool sizes + reserve + 32)",
		 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
		 (unsigned long long)want);
	if (rl.rlim_cur < want)
		log_warn("expected peak of %llu descriptors exceeds the limit of %llu: "
			 "clients beyond it will be refused",
			 (unsigned long long)want, (unsigned long long)rl.rlim_cur);
}

static int pooler_load_userlist(const struct cfg *cfg, struct cfg_userlist **out)
{
	char err[512];

	*out = NULL;
	if (!cfg->auth_file)
		return 0;
	*out = cfg_userlist_load(cfg->auth_file, err, sizeof(err));
	if (!*out) {
		log_error("could not load auth_file: %s", err);
		return -1;
	}
	return 0;
}

/*
 * auth_hba_file, when auth_type = hba: loaded whole or not at all (a bad
 * line fails the start or the RELOAD, so no rule is silently dropped).
 */
static int pooler_hba_load(const struct cfg *cfg, struct hba **out, char *err, size_t errlen)
{
	char why[512];

	*out = NULL;
	if (cfg->auth_type != CFG_AUTH_HBA)
		return 0;
	if (!cfg->auth_hba_file) {
		snprintf(err, errlen, "auth_type = hba needs auth_hba_file");
		return -1;
	}
	*out = hba_load(cfg->auth_hba_file, why, sizeof(why));
	if (!*out) {
		snprintf(err, errlen, "auth_hba_file: %s", why);
		return -1;
	}
	for (size_t i = 0; i < hba_warning_count(*out); i++)
		log_warn("auth_hba_file: %s", hba_warning(*out, i));
	return 0;
}

/* One side's context, or NULL when that side's sslmode is disable. */
static int pooler_tls_ctx(bool accept_side, const struct cfg *cfg, SSL_CTX **out, char *err,
			  size_t errlen)
{
	struct tls_settings set;
	char why[400];

	if (accept_side) {
		set = (struct tls_settings){ cfg->client_tls_sslmode, cfg->client_tls_key_file,
					     cfg->client_tls_cert_file, cfg->client_tls_ca_file,
					     cfg->client_tls_protocols, cfg->client_tls_ciphers,
					     cfg->client_tls13_ciphers };
	} else {
		set = (struct tls_settings){ cfg->server_tls_sslmode, cfg->server_tls_key_file,
					     cfg->server_tls_cert_file, cfg->server_tls_ca_file,
					     cfg->server_tls_protocols, cfg->server_tls_ciphers,
					     cfg->server_tls13_ciphers };
	}
	*out = NULL;
	if (set.mode == TLS_MODE_DISABLE)
		return 0;
	*out = tls_ctx_new(accept_side, &set, why, sizeof(why));
	if (!*out) {
		snprintf(err, errlen, "%s TLS: %s", accept_side ? "client" : "server", why);
		return -1;
	}
	return 0;
}

/*
 * Builds both contexts from cfg and, only if both succeed, puts them in
 * place of the old ones: a RELOAD with a bad certificate keeps serving
 * with the old one. Connections made with an old context keep it alive.
 */
static int pooler_tls_load(const struct cfg *cfg, char *err, size_t errlen)
{
	SSL_CTX *client_ctx;
	SSL_CTX *server_ctx;

	if (pooler_tls_ctx(true, cfg, &client_ctx, err, errlen) != 0)
		return -1;
	if (pooler_tls_ctx(false, cfg, &server_ctx, err, errlen) != 0) {
		tls_ctx_free(client_ctx);
		return -1;
	}
	tls_ctx_free(g_pooler.client_tls);
	tls_ctx_free(g_pooler.server_tls);
	g_pooler.client_tls = client_ctx;
	g_pooler.server_tls = server_ctx;
	return 0;
}

int pooler_init(uv_loop_t *loop, struct cfg *cfg, const char *config_path)
{
	memset(&g_pooler, 0, sizeof(g_pooler));
	g_pooler.loop = loop;
	g_pooler.cfg = cfg;
	g_pooler.config_path = xstrdup(config_path);
	g_pooler.start_time_us = util_wall_us();
	g_pooler.run_state = POOLER_RUNNING;
	list_init(&g_pooler.login_clients);
	list_init(&g_pooler.admin_clients);
	list_init(&g_pooler.listeners);
	iobuf_setup(cfg->pkt_buf > 0 ? (size_t)cfg->pkt_buf : 16384);
	if (pooler_load_userlist(cfg, &g_pooler.userlist) < 0)
		return -1;
	{
		char err[512];

		if (pooler_tls_load(cfg, err, sizeof(err)) != 0 ||
		    pooler_hba_load(cfg, &g_pooler.hba, err, sizeof(err)) != 0 ||
		    param_registry_init(cfg->track_extra_parameters, err, sizeof(err)) != 0) {
			log_error("%s", err);
			return -1;
		}
	}
	pooler_adjust_fd_limit(cfg);
	fds_init();
	return 0;
}

int pooler_start(void)
{
	uv_signal_init(g_pooler.loop, &g_pooler.sig_int);
	uv_signal_init(g_pooler.loop, &g_pooler.sig_term);
	uv_signal_init(g_pooler.loop, &g_pooler.sig_hup);
	uv_timer_init(g_pooler.loop, &g_pooler.shutdown_timer);
	uv_signal_start(&g_pooler.sig_int, pooler_on_signal, SIGINT);
	uv_signal_start(&g_pooler.sig_term, pooler_on_signal, SIGTERM);
	uv_signal_start(&g_pooler.sig_hup, pooler_on_signal, SIGHUP);
	uv_check_init(g_pooler.loop, &g_pooler.reaper);
	uv_check_start(&g_pooler.reaper, pooler_on_check);
	if (listener_start_all() < 0 || admin_start() < 0)
		return -1;
	janitor_start();
	/* The loop's own descriptors (epoll, wakeup, signal pipe) and the log
	 * file now exist: enter them once so nothing is unaccounted. */
	fds_adopt_internal();
	return 0;
}

int pooler_reload(char *err, size_t errlen)
{
	struct hba *hba;
	struct cfg *next = cfg_load(g_pooler.config_path, err, errlen);
	struct cfg_userlist *ul;
	char fixed[512];

	if (!next)
		return -1;
	if (pooler_load_userlist(next, &ul) < 0) {
		snprintf(err, errlen, "could not load auth_file %s", next->auth_file);
		cfg_free(next);
		return -1;
	}
	if (pooler_hba_load(next, &hba, err, errlen) != 0) {
		cfg_userlist_free(ul);
		cfg_free(next);
		return -1;
	}
	if (pooler_tls_load(next, err, errlen) != 0) {
		hba_free(hba);
		cfg_userlist_free(ul);
		cfg_free(next);
		return -1;
	}
	hba_free(g_pooler.hba);
	g_pooler.hba = hba;
	if (cfg_diff_fixed(g_pooler.cfg, next, fixed, sizeof(fixed)) > 0)
		log_warn("reload: these settings need a restart and keep their old values: %s",
			 fixed);
	/* Settings that cannot change at run time keep their running values. */
	next->listen_port = g_pooler.cfg->listen_port;
	next->pkt_buf = g_pooler.cfg->pkt_buf;
	cfg_free(g_pooler.cfg);
	g_pooler.cfg = next;
	cfg_userlist_free(g_pooler.userlist);
	g_pooler.userlist = ul;
	auth_cache_clear();
	log_set_verbose(next->verbose);
	fds_untrack(log_fd());
	if (log_open(next->logfile, true) < 0)
		log_warn("could not reopen logfile %s", next->logfile ? next->logfile : "");
	fds_adopt_internal();
	pool_apply_config();
	log_info("configuration reloaded from %s", g_pooler.config_path);
	return 0;
}

static void pooler_close_list(struct list *l)
{
	struct list_node *it;
	struct list_node *tmp;

	list_foreach_safe(l, it, tmp)
	{
		client_close(container_of(it, struct client, node), "pgmux is shutting down");
	}
}

static void pooler_close_server_list(struct list *l)
{
	struct list_node *it;
	struct list_node *tmp;

	list_foreach_safe(l, it, tmp)
	{
		server_close(container_of(it, struct server, node), "pgmux is shutting down");
	}
}

void pooler_close_everything(void)
{
	struct pool *p;
	struct pool *tmp;

	if (g_pooler.run_state == POOLER_SHUTDOWN_NOW)
		return;
	g_pooler.run_state = POOLER_SHUTDOWN_NOW;
	listener_close_all(false);
	pooler_close_list(&g_pooler.login_clients);
	pooler_close_list(&g_pooler.admin_clients);
	cancel_close_all();
	HASH_ITER(hh, g_pooler.pools, p, tmp)
	{
		pooler_close_list(&p->welcome_clients);
		pooler_close_list(&p->idle_clients);
		pooler_close_list(&p->waiting_clients);
		pooler_close_list(&p->active_clients);
		pooler_close_server_list(&p->login_servers);
		pooler_close_server_list(&p->idle_servers);
		pooler_close_server_list(&p->active_servers);
	}
	uv_close((uv_handle_t *)&g_pooler.sig_int, NULL);
	uv_close((uv_handle_t *)&g_pooler.sig_term, NULL);
	uv_close((uv_handle_t *)&g_pooler.sig_hup, NULL);
	uv_close((uv_handle_t *)&g_pooler.shutdown_timer, NULL);
	uv_close((uv_handle_t *)&g_pooler.reaper, NULL);
	janitor_stop();
	admin_stop();
	auth_stop();
	conn_tls_cleanup();
}

void pooler_shutdown_wait_servers(void)
{
	if (g_pooler.run_state != POOLER_RUNNING)
		return;
	log_info("shutting down once every server is released");
	g_pooler.run_state = POOLER_SHUTDOWN_WAIT_SERVERS;
	listener_close_all(true);
}

void pooler_shutdown(bool wait_for_clients)
{
	if (g_pooler.run_state == POOLER_SHUTDOWN_NOW)
		return;
	if (!wait_for_clients) {
		log_info("shutting down now");
		pooler_close_everything();
		return;
	}
	if (g_pooler.run_state == POOLER_RUNNING) {
		double t = g_pooler.cfg->shutdown_wait_timeout;

		log_info("shutting down: no new clients, waiting up to %.0f s for %u clients",
			 t, g_pooler.client_count);
		g_pooler.run_state = POOLER_SHUTDOWN_WAIT;
		listener_close_all(true);
		if (t > 0)
			uv_timer_start(&g_pooler.shutdown_timer, pooler_on_shutdown_timer,
				       (uint64_t)(t * 1000), 0);
	}
	pooler_maybe_finish_shutdown();
}

void pooler_maybe_finish_shutdown(void)
{
	if (g_pooler.run_state != POOLER_SHUTDOWN_WAIT)
		return;
	if (g_pooler.client_count > 0)
		return;
	log_info("all clients are gone");
	pooler_close_everything();
}

static void pooler_on_shutdown_timer(uv_timer_t *t)
{
	(void)t;
	log_info("shutdown_wait_timeout reached with %u clients left", g_pooler.client_count);
	pooler_close_everything();
}

static void pooler_on_signal(uv_signal_t *h, int signum)
{
	char err[512];

	(void)h;
	switch (signum) {
	case SIGINT:
		log_info("got SIGINT");
		pooler_shutdown(false);
		break;
	case SIGTERM:
		log_info("got SIGTERM");
		pooler_shutdown(true);
		break;
	case SIGHUP:
		log_info("got SIGHUP, reloading");
		if (pooler_reload(err, sizeof(err)) < 0)
			log_error("reload failed, keeping the old configuration: %s", err);
		break;
	default:
		break;
	}
}

void pooler_cleanup(void)
{
	pool_free_all();
	param_registry_free();
	hba_free(g_pooler.hba);
	g_pooler.hba = NULL;
	tls_ctx_free(g_pooler.client_tls);
	tls_ctx_free(g_pooler.server_tls);
	g_pooler.client_tls = NULL;
	g_pooler.server_tls = NULL;
	fds_cleanup();
	auth_cleanup();
	cfg_userlist_free(g_pooler.userlist);
	g_pooler.userlist = NULL;
	iobuf_cleanup();
	free(g_pooler.config_path);
	g_pooler.config_path = NULL;
}
