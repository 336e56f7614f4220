/*
 * sharehub-audit: what an auditor or data-protection officer runs against a
 * broker's database. It opens the database read-only, so it works while the
 * broker runs. Each subcommand is one function in the table at the bottom;
 * this file holds arguments, output formats and exit codes only. The checking
 * lives in the store (shub_store_verify) and every query and report in the
 * query module (shub_query_*), so tests reach them without this program.
 *
 * Exit codes (include/sharehub/cli.h's table): 0 done; 1 the log does not
 * verify, or explain found no such event; 64 usage; 65 not a sharehub
 * database, a newer schema, a subject key that does not fit it, or a bad
 * orgs.yaml; 66 no such file; 71 out of memory; 73 a report file or the
 * ready file cannot be written; 74 output could not be written, or serve
 * cannot listen; 78 (what-if) the draft agreements do not load.
 */
#include "sharehub/agentdb.h"
#include "sharehub/alloc.h"
#include "sharehub/cli.h"
#include "sharehub/config.h"
#include "sharehub/http.h"
#include "sharehub/keys.h"
#include "sharehub/orgs.h"
#include "sharehub/query.h"
#include "sharehub/report.h"
#include "sharehub/store.h"
#include "sharehub/version.h"
#include "sharehub/web.h"
#include "sharehub/whatif.h"
#include "sharehub/yaml.h"
#include "sharehub/witness.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#define EXIT_TAMPERED 1 /* the log does not verify: distinct from usage and I/O errors   \
                         */
#define EXIT_NOTFOUND 1 /* explain: the log has no row for that event */

static const char *const prog = "sharehub-audit";

/* ---- shared helpers ------------------------------------------------------- */

static int fail_usage(void (*usage)(FILE *), const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Says what is wrong with the arguments, then how to use the command: 64. */
static int fail_usage(void (*usage)(FILE *), const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    usage(stderr);
    return EX_USAGE;
}

/* The exit code for an error from the store, the query module or a key file. */
static int exit_for(int rc)
{
    switch (rc) {
    case SHUB_ENOTFOUND:
    case SHUB_EIO:
        return EX_NOINPUT;
    case SHUB_ENOMEM:
        return EX_OSERR;
    default:
        return EX_DATAERR;
    }
}

static int report_err(int rc, const shub_err_t *err)
{
    char line[1024];
    fprintf(stderr, "%s: %s\n", prog, shub_err_format(err, line, sizeof line));
    return exit_for(rc);
}

/* A missing path is named as such (66) before SQLite can call it something
 * vaguer; a directory is not a database either. */
static int check_file(const char *path)
{
    struct stat st;
    if (shub_store_is_uri(path))
        return 0; /* a PostgreSQL database: the connection says what is wrong */
    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: cannot open '%s': %s\n", prog, path, strerror(errno));
        return EX_NOINPUT;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s: '%s' is not a regular file\n", prog, path);
        return EX_NOINPUT;
    }
    return 0;
}

static int open_db(const char *path, const uint8_t *subject_key, shub_store_t **s)
{
    shub_store_opts_t opts = {.readonly = true, .subject_key = subject_key};
    shub_err_t err;
    int rc = check_file(path);
    if (rc)
        return rc;
    if ((rc = shub_store_open(path, &opts, s, &err)))
        return report_err(rc, &err);
    return 0;
}

/* Renders and writes a result; EX_IOERR if stdout fails (a full disk, a
 * closed pipe). */
static int emit(const shub_query_result_t *r, shub_query_format_t fmt)
{
    shub_err_t err;
    char *text = NULL;
    size_t len = 0;
    int rc = shub_query_render(r, fmt, &text, &len, &err);
    if (rc)
        return report_err(rc, &err);
    size_t put = fwrite(text, 1, len, stdout);
    shub_free(text);
    if (put != len || fflush(stdout) != 0) {
        fprintf(stderr, "%s: writing output: %s\n", prog, strerror(errno));
        return EX_IOERR;
    }
    return 0;
}

static bool parse_count(const char *text, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || !end || end == text || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Options every query command shares: --db, --format, the time window. */
typedef struct common {
    const char *db;
    shub_query_format_t fmt;
    bool has_since, has_until;
    int64_t since_ms, until_ms;
    const char *key_dir, *key_file; /* the subject key: DIR/subject.key or FILE */
} common_t;

enum {
    OPT_DB = 256,
    OPT_FORMAT,
    OPT_SINCE,
    OPT_UNTIL,
    OPT_HELP,
    OPT_ORG,
    OPT_SENDER,
    OPT_RECIPIENT,
    OPT_AGREEMENT,
    OPT_EVENT_TYPE,
    OPT_DECISION,
    OPT_REASON,
    OPT_CASE,
    OPT_LIMIT,
    OPT_AFTER,
    OPT_BEFORE,
    OPT_OLDEST,
    OPT_NEWEST,
    OPT_KEY_DIR,
    OPT_SUBJECT_KEY,
    OPT_SECTION,
    OPT_TOP,
    OPT_ORGS,
    OPT_CSV_DIR,
    OPT_LISTEN,
    OPT_KEY,
    OPT_READY,
    OPT_AGREEMENTS,
    OPT_CONFIG,
};

#define COMMON_OPTIONS                                                                   \
    {"db", required_argument, NULL, OPT_DB},                                             \
        {"format", required_argument, NULL, OPT_FORMAT},                                 \
        {"since", required_argument, NULL, OPT_SINCE},                                   \
        {"until", required_argument, NULL, OPT_UNTIL},                                   \
    {                                                                                    \
        "help", no_argument, NULL, OPT_HELP                                              \
    }

/* What common_opt answers when the command goes on: the option was taken, or
 * it is not a common one. Anything else is the command's exit code. */
enum { COMMON_TAKEN = -1, COMMON_OTHER = -2 };

/* Handles a common option: COMMON_TAKEN, COMMON_OTHER, or the exit code the
 * command ends with (0 after --help, EX_USAGE for a bad value). */
static int common_opt(common_t *c, int opt, const char *arg, void (*usage)(FILE *))
{
    switch (opt) {
    case OPT_HELP:
        return shub_cli_usage(usage, true);
    case OPT_DB:
        c->db = arg;
        return COMMON_TAKEN;
    case OPT_FORMAT:
        if (shub_query_format_parse(arg, &c->fmt))
            return fail_usage(usage, "--format must be table, csv or json, not '%s'",
                              arg);
        return COMMON_TAKEN;
    case OPT_SINCE:
        if (shub_query_time_parse(arg, false, &c->since_ms))
            return fail_usage(usage, "--since '%s' is not RFC 3339 or YYYY-MM-DD", arg);
        c->has_since = true;
        return COMMON_TAKEN;
    case OPT_UNTIL:
        if (shub_query_time_parse(arg, true, &c->until_ms))
            return fail_usage(usage, "--until '%s' is not RFC 3339 or YYYY-MM-DD", arg);
        c->has_until = true;
        return COMMON_TAKEN;
    case OPT_KEY_DIR:
        c->key_dir = arg;
        return COMMON_TAKEN;
    case OPT_SUBJECT_KEY:
        c->key_file = arg;
        return COMMON_TAKEN;
    default:
        return COMMON_OTHER;
    }
}

/* Parses the options of a command that takes only common ones: COMMON_TAKEN
 * when every one was taken, else the exit code the command ends with. */
static int common_only(common_t *com, int argc, char **argv,
                       const struct option *longopts, void (*usage)(FILE *))
{
    int c, rc;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
        if ((rc = common_opt(com, c, optarg, usage)) != COMMON_TAKEN)
            return rc == COMMON_OTHER ? shub_cli_usage(usage, false) : rc;
    return COMMON_TAKEN;
}

/* The broker's subject key, from --key-dir or --subject-key: it makes the
 * keyed hashes the log keeps of subject and case references. */
static int read_subject_key(const common_t *c, uint8_t key[SHUB_STORE_KEY_SIZE])
{
    char path[4096];
    const char *file = c->key_file;
    shub_err_t err;
    int rc;
    if (c->key_dir) {
        if ((size_t)snprintf(path, sizeof path, "%s/subject.key", c->key_dir) >=
            sizeof path) {
            fprintf(stderr, "%s: --key-dir '%s' is too long\n", prog, c->key_dir);
            return EX_USAGE;
        }
        file = path;
    }
    if ((rc = shub_keys_read_hex(file, key, SHUB_STORE_KEY_SIZE, true, &err)))
        return report_err(rc == SHUB_ECRYPTO ? SHUB_EDB : rc, &err);
    return 0;
}

static const char common_help[] =
    "  --db FILE|URI      the broker's database (required; opened read-only): a\n"
    "                     SQLite file or postgresql://...\n"
    "  --format FMT       table (default), csv (RFC 4180, header row) or json\n"
    "  --since TIME       from TIME on (RFC 3339 or YYYY-MM-DD, UTC)\n"
    "  --until TIME       before TIME; a bare date includes that whole day\n";

static const char exit_help[] =
    "exit: 0 done, 64 usage, 65 not a sharehub database or a newer schema,\n"
    "      66 no such file\n";

/* ---- verify ---------------------------------------------------------------- */

static void usage_verify(FILE *out)
{
    fprintf(
        out,
        "usage: sharehub-audit verify --db FILE|URI [--key CHECKPOINT.pub]\n"
        "                             [--witness FILE]...\n"
        "\n"
        "Checks the audit log's hash chain row by row and every signed checkpoint.\n"
        "  --db FILE|URI    the broker's database (opened read-only): a SQLite file\n"
        "                   or postgresql://...\n"
        "  --key FILE       the broker's checkpoint.pub: every checkpoint must be\n"
        "                   signed by it\n"
        "  --witness FILE   checkpoints an organisation keeps: what `sharehub-agent\n"
        "                   checkpoints --export` wrote, or the agent's store itself\n"
        "                   (ORG.db: taken as ORG's); repeatable\n"
        "\n"
        "What is detected:\n"
        "  the chain alone: a row edited, deleted, inserted or moved, unless every\n"
        "    row after it was rehashed;\n"
        "  with --key: also any rewrite of rows a checkpoint signed, a log cut short\n"
        "    before its newest checkpoint, checkpoints signed with another key, and\n"
        "    an unsigned tail appended over more than twice the signing interval\n"
        "    (its checkpoints removed, or a broker that did not sign);\n"
        "  with --witness: also the whole log rewritten and re-signed, rows and\n"
        "    checkpoints removed up to a checkpoint a witness holds, an emptied\n"
        "    log, and a fork a witness kept: a checkpoint the broker's key signed\n"
        "    that contradicts another, so the broker signed two histories.\n"
        "What no log can show: rows appended after the newest checkpoint any\n"
        "  witness holds, then changed or removed together with the checkpoints\n"
        "  that signed them (with checkpoints every few seconds while rows are\n"
        "  appended and every agent a witness, that window is seconds); and a\n"
        "  broker that shows organisations different logs is caught only by\n"
        "  verifying against the witnesses of each of them.\n"
        "\n"
        "exit: 0 intact, 1 tampered (the first bad row is named), 64 usage,\n"
        "      65 not a sharehub database, a newer schema, or a witness file that\n"
        "      is neither an export nor an agent store, 66 no such file\n");
}

/* The checkpoints organisations keep, from the files given with --witness. */
typedef struct witnesses {
    shub_witnessed_t *list;
    size_t n, cap;
    const char *file;                /* the file being read */
    char org[SHUB_MSG_MAX_NAME + 1]; /* an agent store's organisation, or "" */
    int rc;
} witnesses_t;

static int witness_add(witnesses_t *ws, const char *org, const shub_signed_head_t *cp,
                       bool fork)
{
    if (ws->n == ws->cap) {
        size_t cap = ws->cap ? 2 * ws->cap : 64;
        shub_witnessed_t *grown = shub_realloc(ws->list, cap * sizeof *grown);
        if (!grown)
            return SHUB_ENOMEM;
        ws->list = grown;
        ws->cap = cap;
    }
    shub_witnessed_t *w = &ws->list[ws->n++];
    memset(w, 0, sizeof *w);
    snprintf(w->org, sizeof w->org, "%s", org);
    snprintf(w->source, sizeof w->source, "%s", ws->file);
    w->cp = *cp;
    w->fork = fork;
    return 0;
}

static int on_kept(const shub_signed_head_t *cp, shub_cp_state_t state, const char *note,
                   int64_t received_ms, void *ctx)
{
    (void)note;
    (void)received_ms;
    witnesses_t *ws = ctx;
    ws->rc = witness_add(ws, ws->org, cp, state == SHUB_CP_FORK);
    return ws->rc;
}

/* An agent's store does not name its organisation; agents keep it as
 * ORG.db, so a file so named is taken as ORG's ("" otherwise: messages then
 * name the file). */
static void org_of_store(const char *path, char org[SHUB_MSG_MAX_NAME + 1])
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    org[0] = '\0';
    if (n > 3 && n - 3 <= SHUB_MSG_MAX_NAME && strcmp(base + n - 3, ".db") == 0) {
        memcpy(org, base, n - 3);
        org[n - 3] = '\0';
        if (!shub_is_name(org))
            org[0] = '\0';
    }
}

static int read_agent_store(witnesses_t *ws)
{
    shub_agentdb_t *db = NULL;
    shub_err_t err;
    org_of_store(ws->file, ws->org);
    int rc = shub_agentdb_open(ws->file, false, &db, &err);
    if (rc == 0)
        rc = shub_agentdb_checkpoints(db, on_kept, ws, &err);
    shub_agentdb_close(&db);
    if (rc == 0 && ws->rc)
        rc = shub_err_set(&err, ws->rc, "out of memory");
    if (rc) {
        char line[1024];
        fprintf(stderr, "%s: witness '%s': %s\n", prog, ws->file,
                shub_err_format(&err, line, sizeof line));
        return rc == SHUB_ENOMEM ? EX_OSERR : EX_DATAERR;
    }
    return 0;
}

static int read_export(witnesses_t *ws, FILE *f, size_t size)
{
    size_t max = (size_t)SHUB_CP_EXPORT_MAX * SHUB_CP_EXPORT_LINE_MAX + 64;
    if (size > max) {
        fprintf(stderr, "%s: witness '%s': %zu bytes exceeds limit %zu\n", prog, ws->file,
                size, max);
        return EX_DATAERR;
    }
    char *text = shub_malloc(size ? size : 1);
    if (!text || fread(text, 1, size, f) != size) {
        fprintf(stderr, "%s: witness '%s': %s\n", prog, ws->file,
                text ? "cannot read it" : "out of memory");
        shub_free(text);
        return text ? EX_IOERR : EX_OSERR;
    }
    shub_kept_cp_t *kept = NULL;
    size_t n = 0;
    shub_err_t err;
    int rc = shub_cp_export_parse(ws->file, text, size, &kept, &n, &err);
    shub_free(text);
    if (rc) {
        char line[1024];
        fprintf(stderr, "%s: witness %s\n", prog,
                shub_err_format(&err, line, sizeof line));
        return rc == SHUB_ENOMEM ? EX_OSERR : EX_DATAERR;
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = witness_add(ws, kept[i].org, &kept[i].cp, kept[i].state == SHUB_CP_FORK);
    shub_free(kept);
    if (rc) {
        fprintf(stderr, "%s: witness '%s': out of memory\n", prog, ws->file);
        return EX_OSERR;
    }
    return 0;
}

/* A witness file is an agent's store (an SQLite file) or an export. */
static int read_witness(witnesses_t *ws, const char *path)
{
    static const char sqlite_magic[16] = "SQLite format 3";
    int code = check_file(path);
    if (code)
        return code;
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "%s: cannot open '%s': %s\n", prog, path, strerror(errno));
        if (f)
            fclose(f);
        return EX_NOINPUT;
    }
    char head[16];
    size_t got = fread(head, 1, sizeof head, f);
    ws->file = path;
    if (got == sizeof head && memcmp(head, sqlite_magic, sizeof head) == 0) {
        fclose(f);
        return read_agent_store(ws);
    }
    rewind(f);
    code = read_export(ws, f, (size_t)st.st_size);
    fclose(f);
    return code;
}

/* "witnessed: 3 checkpoints from 2 organisations, newest rows up to N": what
 * the evidence was (a store whose organisation is unknown counts as one). */
static void print_witnessed(const witnesses_t *ws, const shub_verify_result_t *res)
{
    size_t orgs = 0, forks = 0;
    for (size_t i = 0; i < ws->n; i++) {
        const shub_witnessed_t *w = &ws->list[i];
        forks += w->fork;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(ws->list[k].org, w->org) == 0 &&
                   (w->org[0] || strcmp(ws->list[k].source, w->source) == 0);
        orgs += !seen;
    }
    printf(
        "witnessed: %lld checkpoint%s from %zu organisation%s, newest rows up to %lld; "
        "%zu fork%s\n",
        (long long)res->witnessed, res->witnessed == 1 ? "" : "s", orgs,
        orgs == 1 ? "" : "s", (long long)res->witnessed_upto, forks,
        forks == 1 ? "" : "s");
}

static int cmd_verify(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"key", required_argument, NULL, 'k'},
        {"witness", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *key = NULL;
    const char *files[64];
    size_t n_files = 0;
    int c;
    while ((c = getopt_long(argc, argv, "d:k:w:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'w':
            if (n_files == sizeof files / sizeof files[0])
                return fail_usage(usage_verify, "more than %zu --witness files",
                                  sizeof files / sizeof files[0]);
            files[n_files++] = optarg;
            break;
        case 'h':
        default:
            return shub_cli_usage(usage_verify, c == 'h');
        }
    }
    if (!db || optind != argc) {
        usage_verify(stderr);
        return EX_USAGE;
    }
    shub_err_t err;
    uint8_t pub[SHUB_SIGN_PUBLIC];
    int rc;
    if (key && (rc = shub_keys_read_hex(key, pub, sizeof pub, false, &err)) != 0)
        return report_err(rc == SHUB_ECRYPTO ? SHUB_EDB : rc, &err);
    if ((rc = check_file(db)))
        return rc;
    witnesses_t ws = {0};
    for (size_t i = 0; i < n_files; i++)
        if ((rc = read_witness(&ws, files[i]))) {
            shub_free(ws.list);
            return rc;
        }
    shub_verify_result_t res;
    shub_verify_opts_t vopts = {.expected_key = key ? pub : NULL,
                                .witnessed = ws.list,
                                .n_witnessed = ws.n,
                                .now_ms = shub_now_ms()};
    rc = shub_store_verify(db, &vopts, &res, &err);
    if (rc) {
        shub_free(ws.list);
        return report_err(rc, &err);
    }
    if (!res.ok) {
        printf("FAILED at row %lld: %s\n", (long long)res.bad_seq, res.problem);
        printf("checked %lld rows, %lld checkpoints\n", (long long)res.rows,
               (long long)res.checkpoints);
        shub_free(ws.list);
        return EXIT_TAMPERED;
    }
    printf("ok: %lld rows, %lld checkpoints verified\n", (long long)res.rows,
           (long long)res.checkpoints);
    if (n_files)
        print_witnessed(&ws, &res);
    if (res.unsigned_rows)
        printf("unsigned: %lld rows after the newest checkpoint (row %lld), appended over "
               "%lld ms, the first %lld s ago\n",
               (long long)res.unsigned_rows, (long long)res.signed_upto,
               (long long)res.unsigned_span_ms, (long long)(res.unsigned_age_ms / 1000));
    shub_free(ws.list);
    return 0;
}

/* ---- log ------------------------------------------------------------------- */

static void usage_log(FILE *out)
{
    fprintf(
        out,
        "usage: sharehub-audit log --db FILE|URI [FILTERS] [--limit N]\n"
        "                          [--after SEQ | --before SEQ] [--oldest | --newest]\n"
        "                          [--format table|csv|json]\n"
        "\n"
        "Prints audit rows, one page at a time: who disclosed what to whom, when,\n"
        "under which agreement, flow and legal basis, and which fields were\n"
        "withheld. Filters combine (all must match):\n"
        "  --org ORG          sent or received by ORG\n"
        "  --sender ORG, --recipient ORG, --agreement ID, --event-type TYPE,\n"
        "  --decision allow|deny, --reason CODE\n"
        "  --case REF         one case reference (the log keeps its keyed hash:\n"
        "                     needs --key-dir DIR or --subject-key FILE)\n"
        "%s"
        "Paging (by seq, never by offset):\n"
        "  --limit N          rows per page (default %d, at most %d)\n"
        "  --newest           newest first (the default)\n"
        "  --oldest           oldest first (the default after --after alone)\n"
        "  --before SEQ       rows before SEQ; --after SEQ: rows after SEQ\n"
        "The cursor for the next page is printed after the table, or on stderr\n"
        "for csv and json (\"next page: --before 1234\").\n"
        "\n%s",
        common_help, SHUB_QUERY_LIMIT_DEFAULT, SHUB_QUERY_LIMIT_MAX, exit_help);
}

/* Writes a page and where the next one starts. Table: after the rows on
 * stdout; csv and json: on stderr, so stdout stays one parseable document. */
static int emit_page(const shub_query_result_t *r, shub_query_format_t fmt,
                     bool oldest_first)
{
    int rc = emit(r, fmt);
    int64_t cursor;
    bool more = shub_query_next(r, &cursor);
    if (rc)
        return rc;
    if (fmt == SHUB_QUERY_TABLE)
        printf("(%zu rows%s)\n", shub_query_row_count(r, "log"), more ? "" : "; no more");
    if (more)
        fprintf(fmt == SHUB_QUERY_TABLE ? stdout : stderr, "next page: --%s %lld\n",
                oldest_first ? "after" : "before", (long long)cursor);
    return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

static int cmd_log(int argc, char **argv)
{
    static const struct option longopts[] = {
        COMMON_OPTIONS,
        {"org", required_argument, NULL, OPT_ORG},
        {"sender", required_argument, NULL, OPT_SENDER},
        {"recipient", required_argument, NULL, OPT_RECIPIENT},
        {"agreement", required_argument, NULL, OPT_AGREEMENT},
        {"event-type", required_argument, NULL, OPT_EVENT_TYPE},
        {"decision", required_argument, NULL, OPT_DECISION},
        {"reason", required_argument, NULL, OPT_REASON},
        {"case", required_argument, NULL, OPT_CASE},
        {"key-dir", required_argument, NULL, OPT_KEY_DIR},
        {"subject-key", required_argument, NULL, OPT_SUBJECT_KEY},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"after", required_argument, NULL, OPT_AFTER},
        {"before", required_argument, NULL, OPT_BEFORE},
        {"oldest", no_argument, NULL, OPT_OLDEST},
        {"newest", no_argument, NULL, OPT_NEWEST},
        {NULL, 0, NULL, 0},
    };
    common_t com = {.fmt = SHUB_QUERY_TABLE};
    shub_query_filter_t f = {.limit = SHUB_QUERY_LIMIT_DEFAULT};
    const char *case_ref = NULL;
    uint8_t case_hash[SHUB_STORE_HASH_SIZE];
    int order = 0; /* -1 newest, 1 oldest, 0 not said */
    int64_t n;
    int c, rc;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if ((rc = common_opt(&com, c, optarg, usage_log)) == COMMON_TAKEN)
            continue;
        if (rc != COMMON_OTHER)
            return rc;
        switch (c) {
        case OPT_ORG:
            f.org = optarg;
            break;
        case OPT_SENDER:
            f.sender = optarg;
            break;
        case OPT_RECIPIENT:
            f.recipient = optarg;
            break;
        case OPT_AGREEMENT:
            f.agreement = optarg;
            break;
        case OPT_EVENT_TYPE:
            f.event_type = optarg;
            break;
        case OPT_DECISION:
            if (strcmp(optarg, "allow") != 0 && strcmp(optarg, "deny") != 0)
                return fail_usage(usage_log, "--decision must be allow or deny, not '%s'",
                                  optarg);
            f.decision = optarg;
            break;
        case OPT_REASON:
            f.reason = optarg;
            break;
        case OPT_CASE:
            case_ref = optarg;
            break;
        case OPT_LIMIT:
            if (!parse_count(optarg, 1, SHUB_QUERY_LIMIT_MAX, &n))
                return fail_usage(
                    usage_log, "--limit '%s' is not a number from 1 to 100000", optarg);
            f.limit = (size_t)n;
            break;
        case OPT_AFTER:
        case OPT_BEFORE:
            if (!parse_count(optarg, 0, INT64_MAX, &n))
                return fail_usage(usage_log, "--after/--before '%s' is not a row number",
                                  optarg);
            *(c == OPT_AFTER ? &f.after_seq : &f.before_seq) = n;
            break;
        case OPT_OLDEST:
        case OPT_NEWEST:
            order = c == OPT_OLDEST ? 1 : -1;
            break;
        default:
            usage_log(stderr);
            return EX_USAGE;
        }
    }
    if (optind != argc)
        return fail_usage(usage_log, "unexpected argument '%s'", argv[optind]);
    if (!com.db)
        return fail_usage(usage_log, "%s", "--db is required");
    if (case_ref) {
        /* The log keeps only a keyed hash of each case reference. */
        if (!com.key_dir == !com.key_file)
            return fail_usage(usage_log, "%s",
                              "--case needs one of --key-dir and --subject-key");
        uint8_t key[SHUB_STORE_KEY_SIZE];
        if ((rc = read_subject_key(&com, key)))
            return rc;
        shub_store_ref_hash_key(key, SHUB_REF_CASE, case_ref, case_hash);
        memset(key, 0, sizeof key);
        f.case_hash = case_hash;
    }
    f.oldest_first = order == 1 || (order == 0 && f.after_seq > 0 && f.before_seq == 0);
    f.has_since = com.has_since;
    f.since_ms = com.since_ms;
    f.has_until = com.has_until;
    f.until_ms = com.until_ms;

    shub_store_t *s = NULL;
    shub_query_result_t *r = NULL;
    shub_err_t err;
    if ((rc = open_db(com.db, NULL, &s)))
        return rc;
    if ((rc = shub_query_log(s, &f, &r, &err)))
        rc = report_err(rc, &err);
    else
        rc = emit_page(r, com.fmt, f.oldest_first);
    shub_query_result_destroy(&r);
    shub_store_close(&s);
    return rc;
}

/* ---- subject --------------------------------------------------------------- */

static void usage_subject(FILE *out)
{
    fprintf(out,
            "usage: sharehub-audit subject REF --db FILE|URI (--key-dir DIR | --subject-key "
            "FILE)\n"
            "                              [--since TIME] [--until TIME] [--format FMT]\n"
            "\n"
            "Every share about one subject reference, oldest first, for a subject\n"
            "access request. The log holds only a keyed hash of each reference; the\n"
            "broker's subject key (DIR/subject.key, or FILE) makes the same hash.\n"
            "Each event comes with all its rows: decisions, acknowledgements, dead\n"
            "letters. The reference is shown only in the table's header line.\n"
            "\n%s%s",
            common_help, exit_help);
}

static int cmd_subject(int argc, char **argv)
{
    static const struct option longopts[] = {
        COMMON_OPTIONS,
        {"key-dir", required_argument, NULL, OPT_KEY_DIR},
        {"subject-key", required_argument, NULL, OPT_SUBJECT_KEY},
        {NULL, 0, NULL, 0},
    };
    common_t com = {.fmt = SHUB_QUERY_TABLE};
    int rc;
    if ((rc = common_only(&com, argc, argv, longopts, usage_subject)) != COMMON_TAKEN)
        return rc;
    if (optind + 1 != argc)
        return fail_usage(usage_subject, "%s", "give exactly one subject reference");
    if (!com.db)
        return fail_usage(usage_subject, "%s", "--db is required");
    if (!com.key_dir == !com.key_file)
        return fail_usage(usage_subject, "%s", "give one of --key-dir and --subject-key");
    const char *ref = argv[optind];
    if (ref[0] == '\0')
        return fail_usage(usage_subject, "%s", "the subject reference is empty");

    uint8_t key[SHUB_STORE_KEY_SIZE], hash[SHUB_STORE_HASH_SIZE];
    shub_err_t err;
    if ((rc = read_subject_key(&com, key)))
        return rc;
    shub_store_ref_hash_key(key, SHUB_REF_SUBJECT, ref, hash);

    shub_store_t *s = NULL;
    shub_query_result_t *r = NULL;
    rc = open_db(com.db, key, &s);
    memset(key, 0, sizeof key);
    if (rc)
        return rc;
    shub_query_filter_t f = {
        .subject_hash = hash,
        .oldest_first = true,
        .has_since = com.has_since,
        .since_ms = com.since_ms,
        .has_until = com.has_until,
        .until_ms = com.until_ms,
    };
    if ((rc = shub_query_log(s, &f, &r, &err))) {
        rc = report_err(rc, &err);
    } else {
        if (com.fmt == SHUB_QUERY_TABLE)
            printf("subject reference: %s (%zu rows)\n", ref,
                   shub_query_row_count(r, "log"));
        rc = emit(r, com.fmt);
    }
    shub_query_result_destroy(&r);
    shub_store_close(&s);
    return rc;
}

/* ---- organisation names ------------------------------------------------------ */

/* orgs.yaml's display names for report and serve: the file is read by the
 * broker's own schema (base/orgs.c), and a mistake in it is named with file,
 * line and column. The document stays open: the names are borrowed from it. */
typedef struct names {
    shub_yaml_doc_t *doc;
    shub_orgs_t orgs;
    bool loaded;
} names_t;

static int names_load(names_t *n, const char *path)
{
    shub_err_t err;
    char line[1024];
    memset(n, 0, sizeof *n);
    if (!path)
        return 0;
    int rc = check_file(path);
    if (rc)
        return rc;
    rc = shub_yaml_load(path, &n->doc, &err);
    if (rc == 0)
        rc = shub_orgs_bind(n->doc, &n->orgs);
    if (rc) {
        if (n->doc)
            shub_yaml_report_first(n->doc, &err);
        fprintf(stderr, "%s: %s\n", prog, shub_err_format(&err, line, sizeof line));
        shub_yaml_destroy(&n->doc);
        return rc == SHUB_ENOMEM ? EX_OSERR : EX_DATAERR;
    }
    n->loaded = true;
    return 0;
}

static void names_free(names_t *n)
{
    shub_yaml_destroy(&n->doc);
    n->loaded = false;
}

/* ---- report ---------------------------------------------------------------- */

static void usage_report(FILE *out)
{
    fprintf(out,
            "usage: sharehub-audit report --db FILE|URI [--orgs ORGS.yaml] [--since TIME]\n"
            "                             [--until TIME] [--section NAME | --csv-dir DIR]\n"
            "                             [--format text|csv|json]\n"
            "\n"
            "The board report, in plain words: what the partnership shared, under which\n"
            "agreements, what was refused and withheld, MARAC referrals and how soon\n"
            "they were answered, and what is overdue. It counts the audit records up to\n"
            "the newest signed checkpoint only (and says how many newer ones it left\n"
            "out), so anyone holding the database can recompute it. With --orgs (the\n"
            "partnership's orgs.yaml) organisations are named as people know them.\n"
            "\n"
            "Sections (--section NAME prints one; csv needs one, or --csv-dir):\n"
            "  summary           the period in numbers\n"
            "  marac             per MARAC: received, accepted, withdrawn, moved in and\n"
            "                    out, first answers on time (not shown where there is no\n"
            "                    MARAC)\n"
            "  timeliness        per flow with a deadline: on time, late, overdue,\n"
            "                    escalated, median and 90th percentile hours\n"
            "  agreements        shares and refusals per agreement\n"
            "  orgs              shares per organisation\n"
            "  fields_withheld   fields removed before delivery, per agreement\n"
            "  given_up          deliveries given up\n"
            "  waiting           deliveries waiting now (live, not in the signed log)\n"
            "  agreement_review  agreements past their review date or validity\n"
            "  marac_repeats     per MARAC: referrals, repeats, DASH risk factors\n"
            "                    (coercive control, knife, child contact), complex cases\n"
            "  marac_actions     per MARAC: actions raised, done, gone overdue, handed\n"
            "                    on with a transfer, still open\n"
            "  idva_engagement   per MARAC: victims notified to an IDVA service and the\n"
            "                    outcomes reported back\n"
            "  (the last three only where the log has such rows)\n"
            "  --csv-dir DIR     writes DIR/SECTION.csv for every section, each with a\n"
            "                    header row\n"
            "\n%s%s",
            common_help, exit_help);
}

static int cmd_report(int argc, char **argv)
{
    static const struct option longopts[] = {
        COMMON_OPTIONS,
        {"section", required_argument, NULL, OPT_SECTION},
        {"orgs", required_argument, NULL, OPT_ORGS},
        {"csv-dir", required_argument, NULL, OPT_CSV_DIR},
        {NULL, 0, NULL, 0},
    };
    common_t com = {.fmt = SHUB_QUERY_TABLE};
    shub_report_opts_t o = {.q = {.now_ms = shub_now_ms()}};
    shub_report_format_t fmt = SHUB_REPORT_TEXT;
    const char *orgs = NULL, *csv_dir = NULL;
    int c, rc;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == OPT_FORMAT) {
            if (shub_report_format_parse(optarg, &fmt))
                return fail_usage(usage_report, "--format must be text, csv or json, not '%s'",
                                  optarg);
            continue;
        }
        if ((rc = common_opt(&com, c, optarg, usage_report)) == COMMON_TAKEN)
            continue;
        if (rc != COMMON_OTHER)
            return rc;
        if (c == OPT_SECTION) {
            o.section = optarg;
        } else if (c == OPT_ORGS) {
            orgs = optarg;
        } else if (c == OPT_CSV_DIR) {
            csv_dir = optarg;
        } else {
            usage_report(stderr);
            return EX_USAGE;
        }
    }
    if (optind != argc)
        return fail_usage(usage_report, "unexpected argument '%s'", argv[optind]);
    if (!com.db)
        return fail_usage(usage_report, "%s", "--db is required");
    if (fmt == SHUB_REPORT_CSV && !o.section && !csv_dir)
        return fail_usage(usage_report, "%s",
                          "csv is one table a file: give --section NAME, or --csv-dir DIR");
    if (csv_dir && o.section)
        return fail_usage(usage_report, "%s", "give --section or --csv-dir, not both");
    o.q.has_since = com.has_since;
    o.q.since_ms = com.since_ms;
    o.q.has_until = com.has_until;
    o.q.until_ms = com.until_ms;

    names_t names;
    shub_store_t *s = NULL;
    shub_report_t *r = NULL;
    shub_err_t err;
    if ((rc = names_load(&names, orgs)))
        return rc;
    o.orgs = names.loaded ? &names.orgs : NULL;
    if ((rc = open_db(com.db, NULL, &s))) {
        names_free(&names);
        return rc;
    }
    rc = shub_report_build(s, &o, &r, &err);
    if (rc == SHUB_EINVAL) {
        rc = fail_usage(usage_report, "%s", err.msg);
    } else if (rc) {
        rc = report_err(rc, &err);
    } else if (csv_dir) {
        if ((rc = shub_report_write_csv_dir(r, csv_dir, &err)))
            rc = rc == SHUB_EIO ? (fprintf(stderr, "%s: %s\n", prog, err.msg), EX_CANTCREAT)
                                : report_err(rc, &err);
    } else {
        shub_buf_t out = {0};
        if ((rc = shub_report_render(r, fmt, &out, &err)))
            rc = report_err(rc, &err);
        else if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
            fprintf(stderr, "%s: writing output: %s\n", prog, strerror(errno));
            rc = EX_IOERR;
        }
        shub_buf_free(&out);
    }
    shub_report_destroy(&r);
    shub_store_close(&s);
    names_free(&names);
    return rc;
}

/* ---- serve ----------------------------------------------------------------- */

static volatile sig_atomic_t stop_serving;

static void on_stop(int sig)
{
    (void)sig;
    stop_serving = 1;
}

static void usage_serve(FILE *out)
{
    fprintf(out,
            "usage: sharehub-audit serve --db FILE|URI [--orgs ORGS.yaml] [--listen ADDR]\n"
            "                            [--key CHECKPOINT.pub] [--ready-file FILE]\n"
            "\n"
            "Read-only pages for a browser: the board report with its charts, the audit\n"
            "log with filters and paging, one share explained, the agreements with their\n"
            "versions, review dates and flows, and the log's verification with its\n"
            "newest checkpoint and witnesses. Safe beside a running broker (the database\n"
            "is opened read-only). No script, nothing fetched from elsewhere, a strict\n"
            "Content-Security-Policy; any method but GET and HEAD is answered 405.\n"
            "  --listen ADDR      a loopback address and port (default 127.0.0.1:8080;\n"
            "                     port 0 picks a free one). Reach it from elsewhere\n"
            "                     through an SSH tunnel, never by listening wider.\n"
            "  --orgs FILE        the partnership's orgs.yaml: organisations by name\n"
            "  --key FILE         the broker's checkpoint.pub: verification checks every\n"
            "                     signature against it\n"
            "  --ready-file FILE  written with the pages' address once they are served\n"
            "Runs until interrupted (SIGINT, SIGTERM); one line per request on stderr.\n"
            "\n"
            "exit: 0 stopped, 64 usage, 65 not a sharehub database or a bad orgs.yaml,\n"
            "      66 no such file, 74 cannot listen on ADDR\n");
}

/* The pages, and one line per request on stderr. */
static void serve_logged(const shub_http_request_t *req, shub_http_response_t *resp,
                         void *ctx)
{
    shub_web_serve(req, resp, ctx);
    fprintf(stderr, "%s: %s %s %d %zu bytes\n", prog, req->method, req->path, resp->status,
            resp->body.len);
}

static int cmd_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"orgs", required_argument, NULL, OPT_ORGS},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"key", required_argument, NULL, OPT_KEY},
        {"ready-file", required_argument, NULL, OPT_READY},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *orgs = NULL, *listen = "127.0.0.1:8080", *key = NULL,
               *ready = NULL;
    int c, rc;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_HELP:
            usage_serve(stdout);
            return 0;
        case OPT_DB:
            db = optarg;
            break;
        case OPT_ORGS:
            orgs = optarg;
            break;
        case OPT_LISTEN:
            listen = optarg;
            break;
        case OPT_KEY:
            key = optarg;
            break;
        case OPT_READY:
            ready = optarg;
            break;
        default:
            usage_serve(stderr);
            return EX_USAGE;
        }
    }
    if (optind != argc)
        return fail_usage(usage_serve, "unexpected argument '%s'", argv[optind]);
    if (!db)
        return fail_usage(usage_serve, "%s", "--db is required");
    shub_err_t err;
    uint8_t pub[SHUB_SIGN_PUBLIC];
    if (key && (rc = shub_keys_read_hex(key, pub, sizeof pub, false, &err)) != 0)
        return report_err(rc == SHUB_ECRYPTO ? SHUB_EDB : rc, &err);
    names_t names;
    if ((rc = check_file(db)) || (rc = names_load(&names, orgs)))
        return rc;
    shub_web_t *web = NULL;
    shub_http_t *http = NULL;
    shub_web_opts_t wo = {.db = db,
                          .orgs = names.loaded ? &names.orgs : NULL,
                          .checkpoint_key = key ? pub : NULL};
    if ((rc = shub_web_new(&wo, &web, &err))) {
        rc = report_err(rc, &err);
        goto done;
    }
    shub_cli_on_signal(SIGINT, on_stop);
    shub_cli_on_signal(SIGTERM, on_stop);
    if ((rc = shub_http_start(listen, SHUB_WEB_CSP, serve_logged, web, &http, &err))) {
        if (rc == SHUB_EINVAL) {
            rc = fail_usage(usage_serve, "--listen: %s", err.msg);
        } else {
            fprintf(stderr, "%s: %s\n", prog, err.msg);
            rc = EX_IOERR;
        }
        goto done;
    }
    char url[128];
    snprintf(url, sizeof url, "http://%.*s:%u/", (int)(strrchr(listen, ':') - listen), listen,
             (unsigned)shub_http_port(http));
    fprintf(stderr, "%s: serving %s db=%s (read-only)\n", prog, url, db);
    if (ready) {
        FILE *f = fopen(ready, "w");
        if (!f || fprintf(f, "%s\n", url) < 0 || fclose(f) != 0) {
            fprintf(stderr, "%s: cannot write ready file '%s'\n", prog, ready);
            rc = EX_CANTCREAT;
            goto done;
        }
    }
    while (!stop_serving)
        pause();
    fprintf(stderr, "%s: stopped serving %s\n", prog, url);
    rc = 0;
done:
    shub_http_stop(&http);
    shub_web_destroy(&web);
    names_free(&names);
    return rc;
}

/* ---- explain --------------------------------------------------------------- */

static void usage_explain(FILE *out)
{
    fprintf(out,
            "usage: sharehub-audit explain EVENT_ID --db FILE|URI [--format FMT]\n"
            "\n"
            "The whole story of one event: who sent it and when, then for each\n"
            "recipient the decision, the agreement, version and flow that allowed it\n"
            "or the reason it was denied, the fields shared and stripped, and when it\n"
            "was queued, acknowledged or given up.\n"
            "\n%s"
            "exit: 0 done, 1 no such event in the log, 64 usage, 65 not a sharehub\n"
            "      database or a newer schema, 66 no such file\n",
            common_help);
}

static int cmd_explain(int argc, char **argv)
{
    static const struct option longopts[] = {
        COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    common_t com = {.fmt = SHUB_QUERY_TABLE};
    int rc;
    if ((rc = common_only(&com, argc, argv, longopts, usage_explain)) != COMMON_TAKEN)
        return rc;
    if (optind + 1 != argc)
        return fail_usage(usage_explain, "%s", "give exactly one event id");
    if (!com.db)
        return fail_usage(usage_explain, "%s", "--db is required");
    if (com.has_since || com.has_until)
        return fail_usage(usage_explain, "%s", "--since and --until do not apply");
    shub_id_t id;
    if (shub_id_parse(argv[optind], &id) != 0)
        return fail_usage(usage_explain, "'%s' is not an event id", argv[optind]);

    shub_store_t *s = NULL;
    shub_query_result_t *r = NULL;
    shub_err_t err;
    if ((rc = open_db(com.db, NULL, &s)))
        return rc;
    rc = shub_query_explain(s, &id, &r, &err);
    if (rc == SHUB_ENOTFOUND) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        rc = EXIT_NOTFOUND;
    } else if (rc) {
        rc = report_err(rc, &err);
    } else {
        rc = emit(r, com.fmt);
    }
    shub_query_result_destroy(&r);
    shub_store_close(&s);
    return rc;
}

/* ---- what-if ----------------------------------------------------------------- */

static void usage_whatif(FILE *out)
{
    fprintf(out,
            "usage: sharehub-audit what-if --db FILE|URI --agreements DRAFT_DIR\n"
            "                              [--config DIR] [--since TIME] [--until TIME]\n"
            "                              [--format FMT]\n"
            "\n"
            "Re-decides past shares under draft agreements (every NAME.yaml in\n"
            "DRAFT_DIR, checked as the broker checks agreements, against DIR's\n"
            "orgs.yaml; default " SHUB_CONFIG_DIR ") at the time each was decided,\n"
            "from what the log keeps of it: sender, recipient, event type, area,\n"
            "purpose, legal basis, consent, the names of the payload's fields and the\n"
            "report codes. Prints the totals, then per agreement and flow the shares\n"
            "unchanged, newly denied (with the draft's reason), newly allowed and\n"
            "undecidable (the draft's answer rests on a payload value the log never\n"
            "held, e.g. a DASH score), then the fields newly stripped or shared.\n"
            "\n%s"
            "exit: 0 done, 64 usage, 65 not a sharehub database or a newer schema,\n"
            "      66 no such file, 78 the draft agreements do not load (each error\n"
            "      on stderr as file:line:column: message)\n",
            common_help);
}

static void print_draft_error(const shub_err_t *err, void *ctx)
{
    char line[1024];
    (void)ctx;
    fprintf(stderr, "%s\n", shub_err_format(err, line, sizeof line));
}

static int cmd_whatif(int argc, char **argv)
{
    static const struct option longopts[] = {
        COMMON_OPTIONS,
        {"agreements", required_argument, NULL, OPT_AGREEMENTS},
        {"config", required_argument, NULL, OPT_CONFIG},
        {NULL, 0, NULL, 0},
    };
    common_t com = {.fmt = SHUB_QUERY_TABLE};
    const char *draft = NULL, *config = SHUB_CONFIG_DIR;
    int c, rc;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if ((rc = common_opt(&com, c, optarg, usage_whatif)) == COMMON_TAKEN)
            continue;
        if (rc != COMMON_OTHER)
            return rc;
        if (c == OPT_AGREEMENTS) {
            draft = optarg;
        } else if (c == OPT_CONFIG) {
            config = optarg;
        } else {
            usage_whatif(stderr);
            return EX_USAGE;
        }
    }
    if (optind != argc)
        return fail_usage(usage_whatif, "unexpected argument '%s'", argv[optind]);
    if (!com.db || !draft)
        return fail_usage(usage_whatif, "%s", "--db and --agreements are required");
    shub_err_t err;
    if ((rc = shub_cli_need(draft, SHUB_CLI_DIR, "the draft agreements", &err)) ||
        (rc = shub_cli_need(config, SHUB_CLI_DIR, "the configuration with orgs.yaml",
                            &err))) {
        char line[1024];
        fprintf(stderr, "%s: %s\n", prog, shub_err_format(&err, line, sizeof line));
        return rc;
    }
    shub_config_t *cfg = NULL;
    shub_config_opts_t copts = {.agreements_dir = draft};
    rc = shub_config_load(config, &copts, &cfg, print_draft_error, NULL);
    if (rc) {
        fprintf(stderr, "%s: the draft in '%s' does not load (errors above)\n", prog,
                draft);
        return rc == SHUB_ENOMEM ? EX_OSERR : EX_CONFIG;
    }
    /* The agreements in force say what each row's own decision proved; a
     * directory that does not load only costs those hints. */
    shub_config_t *live = NULL;
    if (shub_config_load(config, NULL, &live, NULL, NULL) != 0)
        fprintf(stderr,
                "%s: warning: the agreements in '%s/agreements' do not load: conditions "
                "are judged without what the log's decisions proved\n",
                prog, config);
    shub_store_t *s = NULL;
    shub_whatif_t *w = NULL;
    shub_query_result_t *r = NULL;
    if ((rc = open_db(com.db, NULL, &s)) == 0) {
        if ((rc = shub_whatif_new(cfg, live, &w, &err)) ||
            (rc = shub_whatif_run(w, s, com.has_since, com.since_ms, com.has_until,
                                  com.until_ms, &err)) ||
            (rc = shub_whatif_result(w, &r, &err)))
            rc = report_err(rc, &err);
        else
            rc = emit(r, com.fmt);
    }
    shub_query_result_destroy(&r);
    shub_whatif_destroy(&w);
    shub_store_close(&s);
    shub_config_destroy(&live);
    shub_config_destroy(&cfg);
    return rc;
}

/* ---- main ------------------------------------------------------------------ */

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"verify", cmd_verify, "check the hash chain and signed checkpoints"},
    {"log", cmd_log, "audit rows, filtered and paged"},
    {"subject", cmd_subject, "every share about one subject (access requests)"},
    {"report", cmd_report, "the board report, in plain words (text, csv, json)"},
    {"explain", cmd_explain, "the whole story of one event"},
    {"serve", cmd_serve, "read-only pages for a browser: report, log, agreements"},
    {"what-if", cmd_whatif, "past shares re-decided under draft agreements"},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sharehub-audit COMMAND [OPTIONS]\n\n"
            "Reads a sharehub broker's audit log (read-only; safe while it runs).\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`sharehub-audit COMMAND --help` describes each command;\n"
                 "`sharehub-audit --version` prints the version.\n\n");
    shub_cli_exit_help(out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EX_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
        return shub_cli_version(prog);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "sharehub-audit: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EX_USAGE;
}
