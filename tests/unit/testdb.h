/*
 * testdb: where a test's store lives, on either backend, and the raw SQL a
 * test uses as an attacker's tool on it. The store's tests run unchanged on
 * SQLite (a file in the test's temp directory) and on PostgreSQL (a schema
 * of its own in the private cluster tests/pg_cluster.sh starts), chosen by
 * the environment: SHUB_TEST_DB=postgresql and SHUB_TEST_PG_URI_FILE naming
 * the file with the cluster's URI. ctest runs each such test binary once
 * per backend.
 */
#ifndef SHAREHUB_TESTDB_H
#define SHAREHUB_TESTDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether this run puts stores on PostgreSQL. Exits 77 (ctest's skip) with
 * a message if PostgreSQL is asked for and its cluster is not there. */
bool testdb_pg(void);

/* The location of a fresh, empty store named `name`: dir/name on SQLite, a
 * new schema's URI on PostgreSQL. */
void testdb_new(const char *dir, const char *name, char *out, size_t size);

/* Removes what testdb_new made on PostgreSQL (files are the caller's). */
void testdb_drop(const char *location);

/* Runs SQL on the store at location (fails the test on an error); the
 * integer in the first column of the first row of a query, -1 if none. */
void testdb_sql(const char *location, const char *text);
int64_t testdb_int(const char *location, const char *text);

/* text with every "f." replaced by the schema of other (PostgreSQL), or
 * behind "ATTACH 'other' AS f; " (SQLite): SQL reading a second store. */
void testdb_attach(const char *other, const char *text, char *out, size_t size);

#endif
