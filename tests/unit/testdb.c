/*
 * testdb: the stores of the tests on SQLite or PostgreSQL (testdb.h). On
 * PostgreSQL each store is a schema named t_<pid>_<n> in the test cluster's
 * database, selected by the URI's `options=-csearch_path=...`, so tests in
 * parallel never meet (the broker's lock is per schema too).
 */
#include "testdb.h"

#include <setjmp.h>
#include <stdarg.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char base_uri[1024];

bool testdb_pg(void)
{
    const char *kind = getenv("SHUB_TEST_DB");
    if (!kind || strcmp(kind, "postgresql") != 0)
        return false;
    if (base_uri[0])
        return true;
    const char *file = getenv("SHUB_TEST_PG_URI_FILE");
    FILE *f = file ? fopen(file, "r") : NULL;
    if (!f || !fgets(base_uri, sizeof base_uri, f)) {
        fprintf(stderr,
                "SKIP: no PostgreSQL test cluster (%s): its start was skipped or "
                "failed (tests/pg_cluster.sh)\n",
                file ? file : "SHUB_TEST_PG_URI_FILE unset");
        exit(77);
    }
    fclose(f);
    base_uri[strcspn(base_uri, "\r\n")] = '\0';
    return true;
}

/* The schema a location names, from its options. */
static const char *schema_of(const char *location)
{
    const char *p = strstr(location, "search_path%3D");
    return p ? p + strlen("search_path%3D") : NULL;
}

static PGconn *pg_connect(const char *uri)
{
    PGconn *c = PQconnectdb(uri);
    if (PQstatus(c) != CONNECTION_OK)
        print_error("connect %s: %s", uri, PQerrorMessage(c));
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

void testdb_new(const char *dir, const char *name, char *out, size_t size)
{
    static int n;
    if (!testdb_pg()) {
        snprintf(out, size, "%s/%s", dir, name);
        return;
    }
    char schema[64], sql[256];
    snprintf(schema, sizeof schema, "t_%ld_%d", (long)getpid(), ++n);
    PGconn *c = pg_connect(base_uri);
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s",
             schema, schema);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
    snprintf(out, size, "%s&options=-csearch_path%%3D%s", base_uri, schema);
}

void testdb_drop(const char *location)
{
    const char *schema = testdb_pg() ? schema_of(location) : NULL;
    if (!schema)
        return;
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    PGconn *c = pg_connect(base_uri);
    PQclear(PQexec(c, sql));
    PQfinish(c);
}

void testdb_sql(const char *location, const char *text)
{
    if (testdb_pg()) {
        PGconn *c = pg_connect(location);
        PGresult *r = PQexec(c, text);
        ExecStatusType s = PQresultStatus(r);
        if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
            print_error("sql: %s\n", PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(c);
        assert_true(s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK);
        return;
    }
    sqlite3 *db = NULL;
    char *msg = NULL;
    assert_int_equal(sqlite3_open(location, &db), SQLITE_OK);
    int rc = sqlite3_exec(db, text, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        print_error("sql: %s\n", msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
    assert_int_equal(rc, SQLITE_OK);
}

int64_t testdb_int(const char *location, const char *text)
{
    int64_t v = -1;
    if (testdb_pg()) {
        PGconn *c = pg_connect(location);
        PGresult *r = PQexec(c, text);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            print_error("sql: %s\n", PQresultErrorMessage(r));
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
            const char *t = PQgetvalue(r, 0, 0);
            v = strcmp(t, "t") == 0 ? 1 : strcmp(t, "f") == 0 ? 0 : strtoll(t, NULL, 10);
        }
        PQclear(r);
        PQfinish(c);
        return v;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(location, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, text, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

void testdb_attach(const char *other, const char *text, char *out, size_t size)
{
    size_t o = 0;
    if (!testdb_pg()) {
        snprintf(out, size, "ATTACH '%s' AS f; %s", other, text);
        return;
    }
    const char *schema = schema_of(other);
    assert_non_null(schema);
    for (const char *p = text; *p && o + 64 < size; p++) {
        if (p[0] == 'f' && p[1] == '.' && (p == text || p[-1] == ' ')) {
            o += (size_t)snprintf(out + o, size - o, "%s.", schema);
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}
