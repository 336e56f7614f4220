/*
 * store_backend: SQLite and PostgreSQL behind one statement API
 * (store_backend.h). Each call branches on the connection's engine: on
 * SQLite it is the sqlite3_ call of the same name; on PostgreSQL a statement
 * keeps its parameters in arrays libpq takes as they are, runs at its first
 * step (PQexecPrepared for persistent statements, prepared on the server the
 * first time, else PQexecParams) and hands back its rows from the result.
 *
 * Parameters go to PostgreSQL as text for integers and text (the server
 * parses them for whatever type the column has) and in binary for blobs;
 * results come back in binary, so an int8 is 8 big-endian bytes and a bytea
 * its bytes. Every value is NUL-terminated by libpq, so text needs no copy.
 *
 * The SQL the store writes uses SQLite's ?N and :name parameters; for
 * PostgreSQL they are rewritten to $N once, at prepare (translate below).
 * That rewriter reads only the store's own SQL literals, never outside input.
 */
#include "store_backend.h"

#include "sharehub/alloc.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHUB_STORE_BUSY_WAIT_MS 5000 /* SQLite: wait for a lock this long */

/* PostgreSQL type oids (catalog/pg_type.h, stable across versions). */
enum {
    OID_BOOL = 16,
    OID_BYTEA = 17,
    OID_NAME = 19,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_TEXT = 25,
    OID_OID = 26,
    OID_BPCHAR = 1042,
    OID_VARCHAR = 1043,
};

/* A pipeline is synced and its answers read every this many statements: in
 * blocking mode the server's answers must not fill both sockets' buffers
 * while we are still sending (libpq's pipeline caveat). */
#define PIPE_CHUNK                256
#define SHUB_DB_MAX_PIPE_PREPARES 64

/* The advisory lock's first key: 'SHUB'; the second is the schema's hash. */
#define LOCK_KEY 1397249346

/* SQLite's WAL file format: a 32-byte header, then per page a 24-byte frame
 * header and the page. */
#define WAL_HEADER       32
#define WAL_FRAME_HEADER 24

struct shub_db {
    shub_db_kind_t kind;
    sqlite3 *lite;
    PGconn *pg;
    unsigned next_stmt; /* names of server-side prepared statements */
    bool oom;           /* the last prepare failed for want of memory */
    int64_t page_size;  /* SQLite: read once, for shub_db_wal_passive */
    char msg[512];      /* PostgreSQL: the last error */
    /* PostgreSQL's pipeline mode (shub_db_pipeline_begin): statements sent
     * and not yet answered, the first error among those answered, and the
     * statements whose server-side prepare is among them. */
    bool pipeline;
    int pending;
    bool pipe_failed;
    shub_db_stmt_t *pipe_prepared[SHUB_DB_MAX_PIPE_PREPARES];
    int n_pipe_prepared;
};

typedef struct pg_param {
    Oid type;          /* 0: the server infers it (NULL) */
    const char *value; /* NULL: SQL NULL */
    int len, format;   /* format 1: binary (blobs) */
    char num[24];      /* an integer's text */
} pg_param_t;

struct shub_db_stmt {
    shub_db_t *db;
    sqlite3_stmt *lite;
    /* PostgreSQL */
    char *sql;    /* with $N parameters */
    char **names; /* name of parameter i+1 (":name"), or NULL */
    int nparams;
    pg_param_t *params;
    bool persistent, prepared;
    char name[24]; /* the server-side statement */
    PGresult *res;
    int row, nrows;
    char num[24];   /* an integer column as text */
    bool stream;    /* rows fetched one at a time (shub_db_stream) */
    bool streaming; /* sent, rows still coming */
    bool finished;  /* streamed to the end: DONE until reset */
};

/* ---- errors ------------------------------------------------------------------ */

/* Keeps the message of a failed result (or of the connection), one line. */
static void pg_fail(shub_db_t *db, const PGresult *res)
{
    const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!m || !*m)
        m = PQerrorMessage(db->pg);
    snprintf(db->msg, sizeof db->msg, "%s", m && *m ? m : "unknown PostgreSQL error");
    for (char *p = db->msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    size_t n = strlen(db->msg);
    while (n > 0 && db->msg[n - 1] == ' ')
        db->msg[--n] = '\0';
}

bool shub_db_out_of_memory(const shub_db_t *db)
{
    return db && db->oom;
}

const char *shub_db_errmsg(const shub_db_t *db)
{
    if (!db)
        return "no connection";
    if (db->oom)
        return db->msg;
    if (db->kind == SHUB_DB_SQLITE)
        return db->lite ? sqlite3_errmsg(db->lite) : "out of memory";
    return db->msg;
}

/* ---- connections ---------------------------------------------------------- */

bool shub_db_is_uri(const char *target)
{
    return target && (strncmp(target, "postgresql://", 13) == 0 ||
                      strncmp(target, "postgres://", 11) == 0);
}

void shub_db_display(const char *target, char *out, size_t size)
{
    if (!size)
        return;
    if (!shub_db_is_uri(target)) {
        snprintf(out, size, "%s", target ? target : "");
        return;
    }
    /* libpq's own parser: whatever it makes of the URI, the password is not
     * among what we print. */
    PQconninfoOption *opts = PQconninfoParse(target, NULL);
    if (!opts) {
        snprintf(out, size, "postgresql://(unparsable)");
        return;
    }
    const char *user = NULL, *host = NULL, *port = NULL, *dbname = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "user") == 0)
            user = o->val;
        else if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            dbname = o->val;
    }
    snprintf(out, size, "postgresql://%s%s%s%s%s/%s", user ? user : "", user ? "@" : "",
             host ? host : "", port ? ":" : "", port ? port : "", dbname ? dbname : "");
    PQconninfoFree(opts);
}

static int pg_open(shub_db_t *db, const char *target, const shub_db_opts_t *opts,
                   shub_err_t *err)
{
    char *perr = NULL;
    PQconninfoOption *parsed = PQconninfoParse(target, &perr);
    if (!parsed) {
        int rc = shub_err_set(err, SHUB_EDB, "database URI is not valid: %s",
                              perr ? perr : "out of memory");
        PQfreemem(perr);
        return rc;
    }
    /*
     * Keepalives and tcp_user_timeout on our side notice a server that went
     * away within seconds, so a commit fails instead of hanging for the
     * kernel's 15 minutes; listed before dbname, so a URI that says otherwise
     * wins. The same settings for the server's side of the connection go in
     * `options`: they make the server end a dead broker's session, and with
     * it release its advisory lock, so that the standby takes over
     * (docs/postgresql.md). A URI's own options (a search_path, say) follow
     * ours, so that a setting it repeats wins there too.
     */
    static const char server_side[] =
        "-c tcp_keepalives_idle=2 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=2"
        " -c tcp_user_timeout=4000";
    const char *given = NULL;
    for (PQconninfoOption *o = parsed; o->keyword; o++)
        if (strcmp(o->keyword, "options") == 0 && o->val && o->val[0])
            given = o->val;
    size_t n = sizeof server_side + (given ? strlen(given) + 1 : 0);
    char *options = shub_malloc(n);
    if (!options) {
        PQconninfoFree(parsed);
        return shub_err_set(err, SHUB_ENOMEM, "connect: out of memory");
    }
    snprintf(options, n, "%s%s%s", server_side, given ? " " : "", given ? given : "");
    PQconninfoFree(parsed);
    static const char *const keys[] = {
        "application_name",
        "connect_timeout",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "dbname",
        "options",
        NULL,
    };
    const char *vals[] = {
        opts->app_name ? opts->app_name : "sharehub",
        "5",
        "1",
        "2",
        "1",
        "2",
        "4000",
        target,
        options,
        NULL,
    };
    db->pg = PQconnectdbParams(keys, vals, 1);
    shub_free(options);
    if (!db->pg)
        return shub_err_set(err, SHUB_ENOMEM, "connect: out of memory");
    if (PQstatus(db->pg) != CONNECTION_OK) {
        char shown[512];
        pg_fail(db, NULL);
        shub_db_display(target, shown, sizeof shown);
        return shub_err_set(err, SHUB_EDB, "connect to '%s': %s", shown, db->msg);
    }
    /* Our messages are logged one per line; notices would go to stderr raw. */
    if (shub_db_exec(db, "SET client_min_messages = warning") ||
        (opts->readonly && shub_db_exec(db, "SET default_transaction_read_only = on")))
        return shub_err_set(err, SHUB_EDB, "set up the session: %s", db->msg);
    return 0;
}

/* Before SQLite's first use in the process: no memory statistics. Nothing
 * here reads them, and keeping them takes a process-wide mutex on every
 * allocation (two percent of the writer thread's time in bench_broker). If
 * SQLite was already initialised the call is refused and changes nothing. */
static pthread_once_t lite_once = PTHREAD_ONCE_INIT;
static void lite_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int shub_db_open(const char *target, const shub_db_opts_t *opts, shub_db_t **db_p,
                 shub_err_t *err)
{
    static const shub_db_opts_t none = {0};
    if (!opts)
        opts = &none;
    shub_db_t *db = shub_calloc(1, sizeof *db);
    if (!db)
        return shub_err_set(err, SHUB_ENOMEM, "open: out of memory");
    int rc;
    if (shub_db_is_uri(target)) {
        db->kind = SHUB_DB_PG;
        rc = pg_open(db, target, opts, err);
    } else {
        int flags = opts->readonly
                        ? SQLITE_OPEN_READONLY
                        : SQLITE_OPEN_READWRITE | (opts->create ? SQLITE_OPEN_CREATE : 0);
        db->kind = SHUB_DB_SQLITE;
        rc = 0;
        pthread_once(&lite_once, lite_setup);
        if (sqlite3_open_v2(target, &db->lite, flags | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK)
            rc = shub_err_set(err, SHUB_EDB, "open '%s': %s", target,
                              db->lite ? sqlite3_errmsg(db->lite) : "out of memory");
        else
            sqlite3_busy_timeout(db->lite, SHUB_STORE_BUSY_WAIT_MS);
    }
    if (rc) {
        shub_db_close(&db);
        return rc;
    }
    *db_p = db;
    return 0;
}

void shub_db_close(shub_db_t **db_p)
{
    shub_db_t *db = db_p ? *db_p : NULL;
    if (!db)
        return;
    if (db->lite) {
        if (!sqlite3_get_autocommit(db->lite))
            sqlite3_exec(db->lite, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(db->lite);
    }
    if (db->pg)
        PQfinish(db->pg); /* the server rolls back what was open */
    shub_free(db);
    *db_p = NULL;
}

shub_db_kind_t shub_db_kind(const shub_db_t *db)
{
    return db->kind;
}

int shub_db_exec(shub_db_t *db, const char *sql)
{
    if (db->kind == SHUB_DB_SQLITE)
        return sqlite3_exec(db->lite, sql, NULL, NULL, NULL) == SQLITE_OK ? 0
                                                                          : SHUB_DB_ERROR;
    PGresult *res = PQexec(db->pg, sql);
    ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int rc = 0;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        pg_fail(db, res);
        rc = SHUB_DB_ERROR;
    }
    PQclear(res);
    return rc;
}

int shub_db_begin_read(shub_db_t *db)
{
    return shub_db_exec(db, db->kind == SHUB_DB_SQLITE
                                ? "BEGIN"
                                : "BEGIN ISOLATION LEVEL REPEATABLE READ");
}

bool shub_db_in_txn(const shub_db_t *db)
{
    if (db->kind == SHUB_DB_SQLITE)
        return !sqlite3_get_autocommit(db->lite);
    PGTransactionStatusType t = PQtransactionStatus(db->pg);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

bool shub_db_broken(const shub_db_t *db)
{
    return db->kind == SHUB_DB_PG && PQstatus(db->pg) != CONNECTION_OK;
}

void shub_db_wal_checkpoint(shub_db_t *db, shub_wal_mode_t mode, int wait_ms)
{
    static const int modes[] = {
        [SHUB_WAL_PASSIVE] = SQLITE_CHECKPOINT_PASSIVE,
        [SHUB_WAL_RESTART] = SQLITE_CHECKPOINT_RESTART,
    };
    if (db->kind != SHUB_DB_SQLITE)
        return;
    if (mode != SHUB_WAL_PASSIVE)
        sqlite3_busy_timeout(db->lite, wait_ms);
    sqlite3_wal_checkpoint_v2(db->lite, NULL, modes[mode], NULL, NULL);
    if (mode != SHUB_WAL_PASSIVE)
        sqlite3_busy_timeout(db->lite, SHUB_STORE_BUSY_WAIT_MS);
}

int64_t shub_db_wal_passive(shub_db_t *db)
{
    int frames = -1, done = 0;
    if (db->kind != SHUB_DB_SQLITE ||
        sqlite3_wal_checkpoint_v2(db->lite, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &done) !=
            SQLITE_OK ||
        frames < 0)
        return -1;
    if (!db->page_size) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db->lite, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            db->page_size = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (db->page_size <= 0)
            return -1;
    }
    return frames ? WAL_HEADER + (int64_t)frames * (WAL_FRAME_HEADER + db->page_size) : 0;
}

int shub_db_try_lock(shub_db_t *db, bool *got, char *holder, size_t size)
{
    char sql[512];
    *got = false;
    if (size)
        holder[0] = '\0';
    if (db->kind != SHUB_DB_PG) {
        snprintf(db->msg, sizeof db->msg, "advisory locks are PostgreSQL's");
        return SHUB_DB_ERROR;
    }
    snprintf(sql, sizeof sql,
             "SELECT pg_try_advisory_lock(%d, hashtext(current_schema()))", LOCK_KEY);
    PGresult *res = PQexec(db->pg, sql);
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        pg_fail(db, res);
        PQclear(res);
        return SHUB_DB_ERROR;
    }
    *got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (*got || !size)
        return 0;
    snprintf(sql, sizeof sql,
             "SELECT a.application_name || coalesce(' from ' || host(a.client_addr), '')"
             " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
             " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %d"
             " AND l.objid = hashtext(current_schema())::oid"
             " AND l.database = (SELECT oid FROM pg_database"
             " WHERE datname = current_database()) LIMIT 1",
             LOCK_KEY);
    res = PQexec(db->pg, sql);
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        snprintf(holder, size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

/* ---- statements on PostgreSQL --------------------------------------------- */

static int param_add(shub_db_stmt_t *st, const char *name, size_t n)
{
    for (int i = 0; name && i < st->nparams; i++)
        if (st->names[i] && strlen(st->names[i]) == n &&
            memcmp(st->names[i], name, n) == 0)
            return i + 1;
    if (st->nparams >= SHUB_DB_MAX_PARAMS)
        return -1;
    int i = st->nparams++;
    st->names[i] = NULL;
    if (name) {
        if (!(st->names[i] = shub_malloc(n + 1)))
            return -1;
        memcpy(st->names[i], name, n);
        st->names[i][n] = '\0';
    }
    return i + 1;
}

static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

/* The store's SQL with ?N and :name turned into $N; quoted text, quoted
 * names, comments and :: casts are copied as they are. */
static int translate(shub_db_stmt_t *st, const char *sql)
{
    size_t len = strlen(sql);
    char *out = shub_malloc(len * 2 + 16); /* "$64" is never longer than ":x" twice */
    if (!out)
        return SHUB_DB_ERROR;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char c = sql[i];
        if (c == '\'' || c == '"') {
            size_t j = i + 1;
            while (j < len && sql[j] != c)
                j++;
            j = j < len ? j + 1 : j;
            memcpy(out + o, sql + i, j - i);
            o += j - i;
            i = j;
        } else if (c == '-' && i + 1 < len && sql[i + 1] == '-') {
            size_t j = i;
            while (j < len && sql[j] != '\n')
                j++;
            memcpy(out + o, sql + i, j - i);
            o += j - i;
            i = j;
        } else if (c == ':' && i + 1 < len && sql[i + 1] == ':') {
            out[o++] = ':';
            out[o++] = ':';
            i += 2;
        } else if ((c == ':' && i + 1 < len && ident_char(sql[i + 1]) &&
                    !(sql[i + 1] >= '0' && sql[i + 1] <= '9')) ||
                   c == '?') {
            size_t j = i + 1;
            while (j < len && ident_char(sql[j]))
                j++;
            int k;
            if (c == '?') {
                long n = j > i + 1 ? strtol(sql + i + 1, NULL, 10) : st->nparams + 1;
                if (n < 1 || n > SHUB_DB_MAX_PARAMS) {
                    shub_free(out);
                    return SHUB_DB_ERROR;
                }
                while (st->nparams < n)
                    if (param_add(st, NULL, 0) < 0) {
                        shub_free(out);
                        return SHUB_DB_ERROR;
                    }
                k = (int)n;
            } else if ((k = param_add(st, sql + i, j - i)) < 0) {
                shub_free(out);
                return SHUB_DB_ERROR;
            }
            o += (size_t)snprintf(out + o, 8, "$%d", k);
            i = j;
        } else {
            out[o++] = c;
            i++;
        }
    }
    out[o] = '\0';
    st->sql = out;
    return 0;
}

static void pg_clear_result(shub_db_stmt_t *st)
{
    PQclear(st->res);
    st->res = NULL;
    st->row = -1;
    st->nrows = 0;
    if (st->streaming) { /* stopped early: the server stops sending, the rest
                            is read and dropped */
        char why[256];
        PGcancel *c = PQgetCancel(st->db->pg);
        if (c) {
            PQcancel(c, why, sizeof why);
            PQfreeCancel(c);
        }
        for (PGresult *r; (r = PQgetResult(st->db->pg));)
            PQclear(r);
    }
    st->streaming = st->finished = false;
}

static int pg_prepare(shub_db_t *db, const char *sql, bool persistent, shub_db_stmt_t *st)
{
    st->names = shub_calloc(SHUB_DB_MAX_PARAMS, sizeof *st->names);
    st->params = shub_calloc(SHUB_DB_MAX_PARAMS, sizeof *st->params);
    if (!st->names || !st->params || translate(st, sql)) {
        db->oom = true;
        snprintf(db->msg, sizeof db->msg,
                 "prepare: out of memory or too many parameters");
        return SHUB_DB_ERROR;
    }
    st->persistent = persistent;
    if (persistent)
        snprintf(st->name, sizeof st->name, "shub_%u", ++db->next_stmt);
    st->row = -1;
    return 0;
}

/* A statement's parameters as libpq takes them: one array per property. */
typedef struct pg_args {
    Oid types[SHUB_DB_MAX_PARAMS];
    const char *vals[SHUB_DB_MAX_PARAMS];
    int lens[SHUB_DB_MAX_PARAMS], fmts[SHUB_DB_MAX_PARAMS];
} pg_args_t;

static void pg_args(const shub_db_stmt_t *st, pg_args_t *a)
{
    for (int i = 0; i < st->nparams; i++) {
        a->types[i] = st->params[i].type;
        a->vals[i] = st->params[i].value;
        a->lens[i] = st->params[i].len;
        a->fmts[i] = st->params[i].format;
    }
}

static int pg_run(shub_db_stmt_t *st)
{
    shub_db_t *db = st->db;
    pg_args_t a;
    pg_args(st, &a);
    if (st->persistent && !st->prepared) {
        PGresult *p = PQprepare(db->pg, st->name, st->sql, st->nparams, a.types);
        if (!p || PQresultStatus(p) != PGRES_COMMAND_OK) {
            pg_fail(db, p);
            PQclear(p);
            return SHUB_DB_ERROR;
        }
        PQclear(p);
        st->prepared = true;
    }
    st->res = st->persistent ? PQexecPrepared(db->pg, st->name, st->nparams, a.vals,
                                              a.lens, a.fmts, 1)
                             : PQexecParams(db->pg, st->sql, st->nparams, a.types, a.vals,
                                            a.lens, a.fmts, 1);
    ExecStatusType s = st->res ? PQresultStatus(st->res) : PGRES_FATAL_ERROR;
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        pg_fail(db, st->res);
        pg_clear_result(st);
        return SHUB_DB_ERROR;
    }
    st->nrows = PQntuples(st->res);
    st->row = -1;
    return 0;
}

/* A streamed statement's next row: one result per row (single-row mode). */
static int pg_stream_step(shub_db_stmt_t *st)
{
    shub_db_t *db = st->db;
    if (st->finished)
        return SHUB_DB_DONE;
    if (!st->streaming) {
        pg_args_t a;
        pg_args(st, &a);
        if (PQsendQueryParams(db->pg, st->sql, st->nparams, a.types, a.vals, a.lens,
                              a.fmts, 1) != 1 ||
            PQsetSingleRowMode(db->pg) != 1) {
            pg_fail(db, NULL);
            for (PGresult *r; (r = PQgetResult(db->pg));)
                PQclear(r);
            return SHUB_DB_ERROR;
        }
        st->streaming = true;
    }
    PQclear(st->res);
    st->res = PQgetResult(db->pg);
    ExecStatusType t = st->res ? PQresultStatus(st->res) : PGRES_TUPLES_OK;
    if (t == PGRES_SINGLE_TUPLE) {
        st->row = 0;
        st->nrows = 1;
        return SHUB_DB_ROW;
    }
    int rc = SHUB_DB_DONE;
    if (t != PGRES_TUPLES_OK && t != PGRES_COMMAND_OK) {
        pg_fail(db, st->res);
        rc = SHUB_DB_ERROR;
    }
    PQclear(st->res); /* the end: read on to the NULL that closes it */
    st->res = NULL;
    for (PGresult *r; (r = PQgetResult(db->pg));)
        PQclear(r);
    st->streaming = false;
    st->finished = rc == SHUB_DB_DONE;
    st->row = -1;
    st->nrows = 0;
    return rc;
}

void shub_db_stream(shub_db_stmt_t *st)
{
    if (!st->lite && !st->persistent)
        st->stream = true;
}

static pg_param_t *pg_param(shub_db_stmt_t *st, int i)
{
    if (i < 1 || i > st->nparams) {
        snprintf(st->db->msg, sizeof st->db->msg, "bind: no parameter %d", i);
        return NULL;
    }
    return &st->params[i - 1];
}

/* ---- PostgreSQL's pipeline ------------------------------------------------------ */

/* Reads every answer up to the next sync point; keeps the first error. */
static void pipe_drain(shub_db_t *db)
{
    if (PQpipelineSync(db->pg) != 1) {
        if (!db->pipe_failed)
            pg_fail(db, NULL);
        db->pipe_failed = true;
        db->pending = 0;
        return;
    }
    for (;;) {
        PGresult *r = PQgetResult(db->pg);
        if (!r) {
            if (PQstatus(db->pg) != CONNECTION_OK) { /* the connection is gone */
                if (!db->pipe_failed)
                    pg_fail(db, NULL);
                db->pipe_failed = true;
                break;
            }
            continue; /* the end of one statement's answers */
        }
        ExecStatusType t = PQresultStatus(r);
        if (t == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK && !db->pipe_failed) {
            pg_fail(db, r);
            db->pipe_failed = true;
        }
        PQclear(r);
    }
    db->pending = 0;
}

int shub_db_pipeline_begin(shub_db_t *db)
{
    if (db->kind != SHUB_DB_PG)
        return 0;
    if (PQenterPipelineMode(db->pg) != 1) {
        pg_fail(db, NULL);
        return SHUB_DB_ERROR;
    }
    db->pipeline = true;
    db->pending = 0;
    db->pipe_failed = false;
    db->n_pipe_prepared = 0;
    return 0;
}

int shub_db_pipeline_end(shub_db_t *db)
{
    if (db->kind != SHUB_DB_PG || !db->pipeline)
        return 0;
    pipe_drain(db);
    db->pipeline = false;
    if (PQexitPipelineMode(db->pg) != 1 && !db->pipe_failed) {
        pg_fail(db, NULL);
        db->pipe_failed = true;
    }
    if (db->pipe_failed) /* a prepare that failed, or never ran, is not there */
        for (int i = 0; i < db->n_pipe_prepared; i++)
            db->pipe_prepared[i]->prepared = false;
    db->n_pipe_prepared = 0;
    return db->pipe_failed ? SHUB_DB_ERROR : 0;
}

/* Sends the statement within the pipeline; its answer is read later. */
static int pipe_send(shub_db_stmt_t *st)
{
    shub_db_t *db = st->db;
    pg_args_t a;
    pg_args(st, &a);
    if (db->pipe_failed)
        return SHUB_DB_ERROR;
    int ok;
    if (st->persistent) {
        if (!st->prepared) {
            if (db->n_pipe_prepared == SHUB_DB_MAX_PIPE_PREPARES ||
                PQsendPrepare(db->pg, st->name, st->sql, st->nparams, a.types) != 1) {
                pg_fail(db, NULL);
                return SHUB_DB_ERROR;
            }
            st->prepared = true;
            db->pipe_prepared[db->n_pipe_prepared++] = st;
            db->pending++;
        }
        ok =
            PQsendQueryPrepared(db->pg, st->name, st->nparams, a.vals, a.lens, a.fmts, 1);
    } else {
        ok = PQsendQueryParams(db->pg, st->sql, st->nparams, a.types, a.vals, a.lens,
                               a.fmts, 1);
    }
    if (ok != 1) {
        pg_fail(db, NULL);
        return SHUB_DB_ERROR;
    }
    if (++db->pending >= PIPE_CHUNK)
        pipe_drain(db);
    return db->pipe_failed ? SHUB_DB_ERROR : 0;
}

/* ---- statements: the interface ------------------------------------------------ */

int shub_db_prepare(shub_db_t *db, const char *sql, bool persistent,
                    shub_db_stmt_t **st_p)
{
    *st_p = NULL; /* as sqlite3_prepare: a failed prepare leaves no statement */
    shub_db_stmt_t *st = shub_calloc(1, sizeof *st);
    db->oom = !st;
    if (!st) {
        snprintf(db->msg, sizeof db->msg, "out of memory");
        return SHUB_DB_ERROR;
    }
    st->db = db;
    int rc;
    if (db->kind == SHUB_DB_SQLITE)
        rc = sqlite3_prepare_v3(db->lite, sql, -1,
                                persistent ? SQLITE_PREPARE_PERSISTENT : 0, &st->lite,
                                NULL) == SQLITE_OK
                 ? 0
                 : SHUB_DB_ERROR;
    else
        rc = pg_prepare(db, sql, persistent, st);
    if (rc) {
        shub_db_finalize(st);
        return rc;
    }
    *st_p = st;
    return 0;
}

void shub_db_finalize(shub_db_stmt_t *st)
{
    if (!st)
        return;
    sqlite3_finalize(st->lite);
    if (st->prepared && st->db->pg && PQstatus(st->db->pg) == CONNECTION_OK) {
        char sql[48];
        snprintf(sql, sizeof sql, "DEALLOCATE %s", st->name);
        PQclear(PQexec(st->db->pg, sql));
    }
    PQclear(st->res);
    for (int i = 0; st->names && i < SHUB_DB_MAX_PARAMS; i++)
        shub_free(st->names[i]);
    shub_free(st->names);
    shub_free(st->params);
    shub_free(st->sql);
    shub_free(st);
}

int shub_db_bind_int(shub_db_stmt_t *st, int i, int64_t v)
{
    if (st->lite)
        return sqlite3_bind_int64(st->lite, i, v) == SQLITE_OK ? 0 : SHUB_DB_ERROR;
    pg_param_t *p = pg_param(st, i);
    if (!p)
        return SHUB_DB_ERROR;
    *p = (pg_param_t){.type = OID_INT8, .format = 0};
    snprintf(p->num, sizeof p->num, "%lld", (long long)v);
    p->value = p->num;
    return 0;
}

/* Text and blobs alike go to PostgreSQL in binary form: text's is its bytes,
 * counted, so the writer's op records (not NUL-terminated) go as they are. */
static int bind_bytes(shub_db_stmt_t *st, int i, const void *b, size_t n, Oid type)
{
    if (st->lite) {
        int rc = type == OID_TEXT
                     ? sqlite3_bind_text(st->lite, i, b, (int)n, SQLITE_STATIC)
                     : sqlite3_bind_blob(st->lite, i, b, (int)n, SQLITE_STATIC);
        return rc == SQLITE_OK ? 0 : SHUB_DB_ERROR;
    }
    pg_param_t *p = pg_param(st, i);
    if (!p)
        return SHUB_DB_ERROR;
    *p = (pg_param_t){.type = type, .value = b ? b : "", .len = (int)n, .format = 1};
    return 0;
}

int shub_db_bind_text(shub_db_stmt_t *st, int i, const char *t, size_t n)
{
    return bind_bytes(st, i, t, n, OID_TEXT);
}

int shub_db_bind_blob(shub_db_stmt_t *st, int i, const void *b, size_t n)
{
    return bind_bytes(st, i, b, n, OID_BYTEA);
}

int shub_db_bind_null(shub_db_stmt_t *st, int i)
{
    if (st->lite)
        return sqlite3_bind_null(st->lite, i) == SQLITE_OK ? 0 : SHUB_DB_ERROR;
    pg_param_t *p = pg_param(st, i);
    if (!p)
        return SHUB_DB_ERROR;
    *p = (pg_param_t){0};
    return 0;
}

int shub_db_param_index(shub_db_stmt_t *st, const char *name)
{
    if (st->lite)
        return sqlite3_bind_parameter_index(st->lite, name);
    for (int i = 0; i < st->nparams; i++)
        if (st->names[i] && strcmp(st->names[i], name) == 0)
            return i + 1;
    return 0;
}

void shub_db_clear(shub_db_stmt_t *st)
{
    if (st->lite) {
        sqlite3_clear_bindings(st->lite);
        return;
    }
    for (int i = 0; i < st->nparams; i++)
        st->params[i] = (pg_param_t){0};
}

int shub_db_step(shub_db_stmt_t *st)
{
    if (st->lite) {
        int rc = sqlite3_step(st->lite);
        return rc == SQLITE_ROW    ? SHUB_DB_ROW
               : rc == SQLITE_DONE ? SHUB_DB_DONE
                                   : SHUB_DB_ERROR;
    }
    if (st->db->pipeline) /* sent; its answer is read at the next sync */
        return pipe_send(st) ? SHUB_DB_ERROR : SHUB_DB_DONE;
    if (st->stream)
        return pg_stream_step(st);
    if (!st->res && pg_run(st))
        return SHUB_DB_ERROR;
    if (st->row + 1 < st->nrows) {
        st->row++;
        return SHUB_DB_ROW;
    }
    st->row = st->nrows;
    return SHUB_DB_DONE;
}

void shub_db_reset(shub_db_stmt_t *st)
{
    if (st->lite)
        sqlite3_reset(st->lite);
    else
        pg_clear_result(st);
}

/* PostgreSQL knows a statement's columns once it has run: asked before the
 * first step, run it now (a failure is reported again by that step). */
static void pg_ensure_run(shub_db_stmt_t *st)
{
    if (!st->res && !st->stream)
        pg_run(st);
}

int shub_db_column_count(shub_db_stmt_t *st)
{
    if (st->lite)
        return sqlite3_column_count(st->lite);
    pg_ensure_run(st);
    return st->res ? PQnfields(st->res) : 0;
}

const char *shub_db_column_name(shub_db_stmt_t *st, int i)
{
    if (st->lite)
        return sqlite3_column_name(st->lite, i);
    pg_ensure_run(st);
    return st->res ? PQfname(st->res, i) : NULL;
}

/* Whether the PostgreSQL cursor has a value at column i. */
static bool pg_has(const shub_db_stmt_t *st, int i)
{
    return st->res && st->row >= 0 && st->row < st->nrows && i >= 0 &&
           i < PQnfields(st->res) && !PQgetisnull(st->res, st->row, i);
}

shub_db_type_t shub_db_column_type(shub_db_stmt_t *st, int i)
{
    if (st->lite) {
        switch (sqlite3_column_type(st->lite, i)) {
        case SQLITE_INTEGER:
            return SHUB_DB_INT;
        case SQLITE_TEXT:
            return SHUB_DB_TEXT;
        case SQLITE_BLOB:
            return SHUB_DB_BLOB;
        case SQLITE_NULL:
            return SHUB_DB_NULL;
        default:
            return SHUB_DB_OTHER;
        }
    }
    if (!pg_has(st, i))
        return SHUB_DB_NULL;
    switch (PQftype(st->res, i)) {
    case OID_INT8:
    case OID_INT4:
    case OID_INT2:
    case OID_OID:
    case OID_BOOL:
        return SHUB_DB_INT;
    case OID_TEXT:
    case OID_VARCHAR:
    case OID_BPCHAR:
    case OID_NAME:
        return SHUB_DB_TEXT;
    case OID_BYTEA:
        return SHUB_DB_BLOB;
    default:
        return SHUB_DB_OTHER;
    }
}

int64_t shub_db_column_int(shub_db_stmt_t *st, int i)
{
    if (st->lite)
        return sqlite3_column_int64(st->lite, i);
    shub_db_type_t type = shub_db_column_type(st, i);
    if (type != SHUB_DB_INT && type != SHUB_DB_TEXT)
        return 0;
    const unsigned char *p = (const unsigned char *)PQgetvalue(st->res, st->row, i);
    if (type == SHUB_DB_TEXT)
        return strtoll((const char *)p, NULL, 10);
    /* Binary integers: big-endian, of their type's width. */
    int n = PQgetlength(st->res, st->row, i);
    uint64_t v = 0;
    if (n != 8 && n != 4 && n != 2 && n != 1)
        return 0;
    for (int k = 0; k < n; k++)
        v = v << 8 | p[k];
    if (n == 4 && PQftype(st->res, i) != OID_OID)
        return (int32_t)(uint32_t)v;
    if (n == 2)
        return (int16_t)(uint16_t)v;
    return (int64_t)v;
}

const void *shub_db_column_blob(shub_db_stmt_t *st, int i)
{
    if (st->lite)
        return sqlite3_column_blob(st->lite, i);
    return pg_has(st, i) ? PQgetvalue(st->res, st->row, i) : NULL;
}

size_t shub_db_column_bytes(shub_db_stmt_t *st, int i)
{
    if (st->lite)
        return (size_t)sqlite3_column_bytes(st->lite, i);
    return pg_has(st, i) ? (size_t)PQgetlength(st->res, st->row, i) : 0;
}

const char *shub_db_column_text(shub_db_stmt_t *st, int i)
{
    if (st->lite)
        return (const char *)sqlite3_column_text(st->lite, i);
    if (!pg_has(st, i))
        return NULL;
    /* Integers are binary on the wire: give their decimal text, as SQLite
     * would. Other types are text, or bytes shown as they are. */
    if (shub_db_column_type(st, i) == SHUB_DB_INT) {
        snprintf(st->num, sizeof st->num, "%lld", (long long)shub_db_column_int(st, i));
        return st->num;
    }
    return PQgetvalue(st->res, st->row, i);
}
