/*
 * test_set_isolation.c: in transaction mode, a SET that one client runs
 * outside a transaction block must never be visible to another client. The
 * SET changes the server connection's session, and that server serves the
 * next client's transaction unless the pooler undoes it (or keeps the
 * setting per client and re-applies it). Checked for statement_timeout
 * (not reported by ParameterStatus), application_name and TimeZone
 * (both reported).
 *
 * What a client may see for each setting: its own baseline (what it saw
 * before anyone ran SET) or a value it set itself. A value that another
 * client set is a leak. This holds whether the pooler restores the
 * client's own SET values or resets the server between clients.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#define SETTINGS 3
#define LOAD_CLIENTS 20
#define LOAD_ROUNDS 25

static const char *const setting_names[SETTINGS] = {
	"statement_timeout", "application_name", "TimeZone",
};

/* Zones no fixture runs in by default; client k sets zones[k % n]. */
static const char *const zones[] = {
	"Pacific/Chatham", "Asia/Kathmandu", "America/St_Johns", "Australia/Eucla",
	"Asia/Kolkata",    "Pacific/Marquesas", "Asia/Tehran",    "Africa/Addis_Ababa",
	"Atlantic/Azores", "Asia/Yangon",    "America/Caracas",  "Pacific/Kiritimati",
	"Asia/Kabul",      "Australia/Adelaide", "Europe/Minsk",  "Pacific/Tongatapu",
	"America/Havana",  "Asia/Pyongyang", "Indian/Cocos",     "Antarctica/Troll",
};

struct client {
	PGconn *conn;
	int id;
	char baseline[SETTINGS][64];
	/* Values this client set itself (newest last), per setting. */
	char own[SETTINGS][LOAD_ROUNDS + 1][64];
	int n_own;
};

static PGconn *connect_as(const struct harness_pooler *p, int id)
{
	const struct harness_fixture *fx = harness_fixture();
	char ci[512];

	harness_fmt(ci, sizeof(ci),
		    "host=127.0.0.1 port=%d dbname=%s user=%s password=%s "
		    "connect_timeout=20 application_name=setiso-%d",
		    p->port, fx->db, fx->app_user, fx->app_password, id);
	return harness_connect(ci);
}

/* SHOW one setting (outside a transaction block: any server may run it). */
static void show(PGconn *c, int i, char *buf, size_t len)
{
	char sql[64];
	char *v;

	harness_fmt(sql, sizeof(sql), "SHOW %s", setting_names[i]);
	v = harness_scalar(c, sql);
	harness_fmt(buf, len, "%s", v ? v : "");
	free(v);
}

static void client_open(struct client *cl, const struct harness_pooler *p, int id)
{
	int i;

	memset(cl, 0, sizeof(*cl));
	cl->id = id;
	cl->conn = connect_as(p, id);
	for (i = 0; i < SETTINGS; i++)
		show(cl->conn, i, cl->baseline[i], sizeof(cl->baseline[i]));
}

/* SET all three settings to values unique to (client, round). */
static void client_set(struct client *cl, int round)
{
	char vals[SETTINGS][64], sql[160];
	int i;

	/* Never a multiple of 1000: SHOW would print "41s" for 41000ms. */
	harness_fmt(vals[0], sizeof(vals[0]), "%dms",
		    40000 + cl->id * 100 + round + 1);
	harness_fmt(vals[1], sizeof(vals[1]), "leak-probe-%d-%d", cl->id, round);
	harness_fmt(vals[2], sizeof(vals[2]), "%s",
		    zones[cl->id % (sizeof(zones) / sizeof(zones[0]))]);
	for (i = 0; i < SETTINGS; i++) {
		harness_fmt(sql, sizeof(sql), "SET %s = '%s'", setting_names[i],
			    vals[i]);
		harness_exec(cl->conn, sql);
		/* As SHOW prints it back. */
		harness_fmt(cl->own[i][cl->n_own], sizeof(cl->own[i][0]), "%s", vals[i]);
	}
	cl->n_own++;
}

/* Which client set value v for setting i, or -1 if none of them did. */
static int setter_of(struct client *all, int n, int i, const char *v)
{
	int k, r;

	for (k = 0; k < n; k++)
		for (r = 0; r < all[k].n_own; r++)
			if (strcmp(all[k].own[i][r], v) == 0)
				return k;
	return -1;
}

/* SHOW every setting on cl; fails if it sees another client's value. */
static void client_check(struct client *all, int n, struct client *cl,
			 const char *when)
{
	char v[64];
	int i, k;

	for (i = 0; i < SETTINGS; i++) {
		show(cl->conn, i, v, sizeof(v));
		if (strcmp(v, cl->baseline[i]) == 0)
			continue;
		k = setter_of(all, n, i, v);
		if (k >= 0 && &all[k] == cl)
			continue;
		if (k >= 0)
			fail_msg("%s: client %d sees %s = '%s', which client %d SET "
				 "(its own baseline is '%s')",
				 when, cl->id, setting_names[i], v, all[k].id,
				 cl->baseline[i]);
		fail_msg("%s: client %d sees %s = '%s', neither its baseline '%s' "
			 "nor a value it set", when, cl->id, setting_names[i], v,
			 cl->baseline[i]);
	}
}

/*
 * Pool of one server: B's statements necessarily run on the server A just
 * SET things on, so any leak shows.
 */
static void test_set_not_visible_to_other_client(void **state)
{
	struct harness_pooler_cfg cfg = {
		.settings = "pool_mode = transaction\ndefault_pool_size = 1\n",
	};
	struct harness_pooler p;
	static struct client cl[3];
	char when[64];
	int round, i, k;

	harness_pooler_start(&p, &cfg);
	client_open(&cl[0], &p, 1);
	client_open(&cl[1], &p, 2);
	for (round = 0; round < 3; round++) {
		client_set(&cl[0], round);
		harness_fmt(when, sizeof(when), "after A's SETs, round %d", round);
		client_check(cl, 2, &cl[1], when);
		/* Inside a transaction block too. */
		harness_exec(cl[1].conn, "BEGIN");
		client_check(cl, 2, &cl[1], when);
		harness_exec(cl[1].conn, "COMMIT");
	}
	/* A client that logs in after the SETs starts from no one's values. */
	client_open(&cl[2], &p, 3);
	for (i = 0; i < SETTINGS; i++) {
		k = setter_of(cl, 2, i, cl[2].baseline[i]);
		if (k >= 0)
			fail_msg("a new client starts with %s = '%s', which client %d SET",
				 setting_names[i], cl[2].baseline[i], cl[k].id);
	}
	PQfinish(cl[2].conn);
	PQfinish(cl[1].conn);
	PQfinish(cl[0].conn);
	harness_pooler_stop(&p, 20);
}

/*
 * 20 clients, pool of 5: in each round every third client SETs new values
 * and then every client checks what it sees, so servers pass between
 * clients that did and did not SET, in varying orders.
 */
static void test_set_never_leaks_among_many_clients(void **state)
{
	struct harness_pooler_cfg cfg = {
		.settings = "pool_mode = transaction\ndefault_pool_size = 5\n",
	};
	struct harness_pooler p;
	static struct client cl[LOAD_CLIENTS];
	char when[64];
	int round, k;

	harness_pooler_start(&p, &cfg);
	for (k = 0; k < LOAD_CLIENTS; k++)
		client_open(&cl[k], &p, k + 1);
	for (round = 0; round < LOAD_ROUNDS; round++) {
		for (k = round % 3; k < LOAD_CLIENTS; k += 3)
			client_set(&cl[k], round);
		harness_fmt(when, sizeof(when), "round %d", round);
		for (k = 0; k < LOAD_CLIENTS; k++)
			client_check(cl, LOAD_CLIENTS, &cl[(k * 7 + round) % LOAD_CLIENTS],
				     when);
	}
	for (k = 0; k < LOAD_CLIENTS; k++)
		PQfinish(cl[k].conn);
	harness_pooler_stop(&p, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_set_not_visible_to_other_client,
					  harness_teardown),
		cmocka_unit_test_teardown(test_set_never_leaks_among_many_clients,
					  harness_teardown),
	};

	return cmocka_run_group_tests_name("integration_set_isolation", tests, NULL,
					   NULL);
}
