/*
 * store_backend: the one narrow interface between the store module (store.c,
 * writer.c, verify.c, query.c) and the database engine under it. Two
 * engines stand behind it: SQLite (a file; the embedded default) and
 * PostgreSQL 15 through libpq (a connection URI, postgresql://...). Nothing
 * above the store sees either: the hub, the audit tool and the tests name a
 * store by a path or a URI and call include/sharehub/store.h.
 *
 * The interface is a small statement API shaped like SQLite's own (prepare,
 * bind by index, step, columns, reset), because the store was written
 * against that and its loops read naturally so: on SQLite each call is the
 * sqlite3_ call it names, on PostgreSQL a statement is executed at its first
 * step (prepared once on the server when `persistent`) and its rows are
 * walked from the result. SQL is written once where both dialects agree
 * (`?N` and `:name` parameters are turned into `$N` for PostgreSQL); where
 * they do not, the caller picks the text by shub_db_kind (the schema, a few
 * report queries).
 *
 * Values come back typed as the engine stored them: integers, text, blobs
 * (bytea) or NULL. On PostgreSQL results are fetched in binary form, so a
 * bytea is its bytes and an int8 its value, with no text round trip.
 *
 * A connection belongs to one thread at a time. Errors: SHUB_DB_ERROR from
 * the call, and shub_db_errmsg says what the engine said.
 */
#ifndef SHAREHUB_STORE_BACKEND_H
#define SHAREHUB_STORE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/err.h"

#define SHUB_DB_ROW   100 /* shub_db_step: a row is ready (SQLite's SQLITE_ROW) */
#define SHUB_DB_DONE  101 /* shub_db_step: no more rows (SQLITE_DONE) */
#define SHUB_DB_ERROR 1   /* any failure; shub_db_errmsg has the words */

#define SHUB_DB_MAX_PARAMS 64 /* parameters of one statement (PostgreSQL side) */

typedef enum { SHUB_DB_SQLITE, SHUB_DB_PG } shub_db_kind_t;

typedef enum {
    SHUB_DB_NULL,
    SHUB_DB_INT,
    SHUB_DB_TEXT,
    SHUB_DB_BLOB,
    SHUB_DB_OTHER, /* a float or a type the store never writes */
} shub_db_type_t;

typedef struct shub_db shub_db_t;
typedef struct shub_db_stmt shub_db_stmt_t;

/* How a connection is opened. */
typedef struct shub_db_opts {
    bool readonly;        /* SQLite: SQLITE_OPEN_READONLY; PostgreSQL: every
                             transaction read only */
    bool create;          /* SQLite: create the file if missing */
    const char *app_name; /* PostgreSQL: application_name (NULL: "sharehub") */
} shub_db_opts_t;

/* Whether target names a PostgreSQL database (postgresql:// or postgres://)
 * rather than a SQLite file. */
bool shub_db_is_uri(const char *target);

/* target with any password left out, for logs and messages (a URI is shown
 * as postgresql://user@host:port/dbname): at most size-1 bytes into out. */
void shub_db_display(const char *target, char *out, size_t size);

/* Opens a connection. SHUB_EDB with the engine's words (a URI libpq cannot
 * parse, a server that refuses us, a file SQLite cannot open), SHUB_ENOMEM. */
int shub_db_open(const char *target, const shub_db_opts_t *opts, shub_db_t **db_p,
                 shub_err_t *err);

/* Rolls back an open transaction and closes. Accepts NULL; nulls *db_p. */
void shub_db_close(shub_db_t **db_p);

shub_db_kind_t shub_db_kind(const shub_db_t *db);

/* The engine's last error message (never NULL). */
const char *shub_db_errmsg(const shub_db_t *db);

/* Whether the last shub_db_prepare failed for want of memory (the
 * allocation hook of alloc.h), which callers report as SHUB_ENOMEM. */
bool shub_db_out_of_memory(const shub_db_t *db);

/* Runs sql, which may hold several statements and returns no rows. 0 or
 * SHUB_DB_ERROR. */
int shub_db_exec(shub_db_t *db, const char *sql);

/* One read snapshot until shub_db_exec(db, "COMMIT"): BEGIN on SQLite,
 * REPEATABLE READ on PostgreSQL. */
int shub_db_begin_read(shub_db_t *db);

/* Whether a transaction is open on the connection. */
bool shub_db_in_txn(const shub_db_t *db);

/* Whether the connection itself has failed (PostgreSQL: the server or the
 * network went away); a SQLite file never does. */
bool shub_db_broken(const shub_db_t *db);

/* SQLite's WAL checkpoints; nothing on PostgreSQL, whose server checkpoints
 * by itself. PASSIVE copies what it can and waits for nobody. RESTART copies
 * everything and then waits until no reader uses the WAL, so that the next
 * commit writes it from its start again. It holds the writer back while it
 * runs, so it waits at most wait_ms for the writer and the readers (a long
 * read elsewhere, such as a verify, makes it give up rather than stall the
 * writer) and the caller tries again later. */
typedef enum { SHUB_WAL_PASSIVE, SHUB_WAL_RESTART } shub_wal_mode_t;
void shub_db_wal_checkpoint(shub_db_t *db, shub_wal_mode_t mode, int wait_ms);

/* A PASSIVE checkpoint that says how many bytes of the WAL are in use after
 * it: its frames since it was last written from the start, which is not the
 * file's size (a file once grown keeps its length and is written over in
 * place). -1 on PostgreSQL or when it could not run. */
int64_t shub_db_wal_passive(shub_db_t *db);

/* ---- statements ---------------------------------------------------------- */

/* Prepares sql into *st_p (NULL on failure). persistent: kept for reuse (SQLite's
 * PREPARE_PERSISTENT; a server-side prepared statement on PostgreSQL). 0 or
 * SHUB_DB_ERROR. */
int shub_db_prepare(shub_db_t *db, const char *sql, bool persistent,
                    shub_db_stmt_t **st_p);

/* PostgreSQL: fetch the rows of a one-off statement one at a time rather
 * than all at its first step, for a walk over a whole table (verify). Until
 * it is done or reset no other statement may run on the connection. Does
 * nothing on SQLite, which always steps so. */
void shub_db_stream(shub_db_stmt_t *st);

/* Frees a statement. Accepts NULL. */
void shub_db_finalize(shub_db_stmt_t *st);

/* Binds parameter i (1-based). Text and blob bytes are borrowed until the
 * statement is next stepped. 0 or SHUB_DB_ERROR (index out of range). */
int shub_db_bind_int(shub_db_stmt_t *st, int i, int64_t v);
int shub_db_bind_text(shub_db_stmt_t *st, int i, const char *p, size_t n);
int shub_db_bind_blob(shub_db_stmt_t *st, int i, const void *p, size_t n);
int shub_db_bind_null(shub_db_stmt_t *st, int i);

/* The index of named parameter ":name", or 0 if the statement has none. */
int shub_db_param_index(shub_db_stmt_t *st, const char *name);

/* Every parameter back to NULL. */
void shub_db_clear(shub_db_stmt_t *st);

/* Runs the statement (first call) or moves to its next row: SHUB_DB_ROW,
 * SHUB_DB_DONE or SHUB_DB_ERROR. */
int shub_db_step(shub_db_stmt_t *st);

/* Back to before the first step; bindings stay. */
void shub_db_reset(shub_db_stmt_t *st);

/* The current row's columns. Pointers are valid until the next step or reset. */
int shub_db_column_count(shub_db_stmt_t *st);
const char *shub_db_column_name(shub_db_stmt_t *st, int i);
shub_db_type_t shub_db_column_type(shub_db_stmt_t *st, int i);
int64_t shub_db_column_int(shub_db_stmt_t *st, int i);      /* text is parsed */
const void *shub_db_column_blob(shub_db_stmt_t *st, int i); /* NULL for NULL */
size_t shub_db_column_bytes(shub_db_stmt_t *st, int i);
const char *shub_db_column_text(shub_db_stmt_t *st, int i); /* NUL-terminated */

/* ---- PostgreSQL's pipeline ------------------------------------------------ */

/* From begin to end, a step sends its statement and returns SHUB_DB_DONE at
 * once (statements that return rows must not be stepped); the answers are
 * read every few hundred statements and at end, so a batch of writes costs
 * a round trip or a few, not one per statement. end: 0, or SHUB_DB_ERROR
 * for the first statement that failed (those after it did nothing). Both do
 * nothing on SQLite, whose statements run where they are. */
int shub_db_pipeline_begin(shub_db_t *db);
int shub_db_pipeline_end(shub_db_t *db);

/* ---- PostgreSQL's session lock ---------------------------------------------- */

/* Tries the broker's session-level advisory lock on this connection (one key
 * per database schema). *got says whether it is ours now; *holder (size
 * bytes) names who holds it otherwise (its application_name and client
 * address), "" if unknown. 0 or SHUB_DB_ERROR. SQLite: SHUB_DB_ERROR. */
int shub_db_try_lock(shub_db_t *db, bool *got, char *holder, size_t size);

#endif
