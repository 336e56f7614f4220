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
 * database, a newer schema, or a subject key that does not fit it; 66 no such
 * file; 71 out of memory; 74 output could not be written.
 */
#include "sharehub/alloc.h"
#include "sharehub/cli.h"
#include "sharehub/keys.h"
#include "sharehub/query.h"
#include "sharehub/store.h"

#include <errno.h>
#include <getopt.h>
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
};

#define COMMON_OPTIONS                                                                   \
    {"db", required_argument, NULL, OPT_DB},                                             \
        {"format", required_argument, NULL, OPT_FORMAT},                                 \
        {"since", required_argument, NULL, OPT_SINCE},                                   \
        {"until", required_argument, NULL, OPT_UNTIL},                                   \
    {                                                                                    \
        "help", no_argument, NULL, OPT_HELP                                              \
    }

/* Handles a common option: 0 taken, 1 not a common option, EX_USAGE bad. */
static int common_opt(common_t *c, int opt, const char *arg, void (*usage)(FILE *))
{
    switch (opt) {
    case OPT_DB:
        c->db = arg;
        return 0;
    case OPT_FORMAT:
        if (shub_query_format_parse(arg, &c->fmt))
            return fail_usage(usage, "--format must be table, csv or json, not '%s'",
                              arg);
        return 0;
    case OPT_SINCE:
        if (shub_query_time_parse(arg, false, &c->since_ms))
            return fail_usage(usage, "--since '%s' is not RFC 3339 or YYYY-MM-DD", arg);
        c->has_since = true;
        return 0;
    case OPT_UNTIL:
        if (shub_query_time_parse(arg, true, &c->until_ms))
            return fail_usage(usage, "--until '%s' is not RFC 3339 or YYYY-MM-DD", arg);
        c->has_until = true;
        return 0;
    case OPT_KEY_DIR:
        c->key_dir = arg;
        return 0;
    case OPT_SUBJECT_KEY:
        c->key_file = arg;
        return 0;
    default:
        return 1;
    }
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
    fprintf(out,
            "usage: sharehub-audit verify --db FILE|URI [--key CHECKPOINT.pub]\n"
            "\n"
            "Checks the audit log's hash chain row by row and every signed checkpoint.\n"
            "With --key, checkpoints must be signed by that key (the broker's\n"
            "checkpoint.pub), so a database re-signed with another key is caught.\n"
            "\n"
            "exit: 0 intact, 1 tampered (the first bad row is named), 64 usage,\n"
            "      65 not a sharehub database or a newer schema, 66 no such file\n");
}

static int cmd_verify(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"key", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *key = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "d:k:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'h':
            usage_verify(stdout);
            return 0;
        default:
            usage_verify(stderr);
            return EX_USAGE;
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
    shub_verify_result_t res;
    shub_verify_opts_t vopts = {.expected_key = key ? pub : NULL, .now_ms = shub_now_ms()};
    if ((rc = shub_store_verify(db, &vopts, &res, &err)))
        return report_err(rc, &err);
    if (!res.ok) {
        printf("FAILED at row %lld: %s\n", (long long)res.bad_seq, res.problem);
        printf("checked %lld rows, %lld checkpoints\n", (long long)res.rows,
               (long long)res.checkpoints);
        return EXIT_TAMPERED;
    }
    printf("ok: %lld rows, %lld checkpoints verified\n", (long long)res.rows,
           (long long)res.checkpoints);
    if (res.unsigned_rows)
        printf("unsigned: %lld rows after the newest checkpoint (row %lld), appended over "
               "%lld ms, the first %lld s ago\n",
               (long long)res.unsigned_rows, (long long)res.signed_upto,
               (long long)res.unsigned_span_ms, (long long)(res.unsigned_age_ms / 1000));
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
        if (c == OPT_HELP) {
            usage_log(stdout);
            return 0;
        }
        if ((rc = common_opt(&com, c, optarg, usage_log)) != 1) {
            if (rc)
                return rc;
            continue;
        }
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
    int c, rc;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == OPT_HELP) {
            usage_subject(stdout);
            return 0;
        }
        if ((rc = common_opt(&com, c, optarg, usage_subject)) != 1) {
            if (rc)
                return rc;
            continue;
        }
        usage_subject(stderr);
        return EX_USAGE;
    }
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

/* ---- report ---------------------------------------------------------------- */

static void usage_report(FILE *out)
{
    fprintf(out,
            "usage: sharehub-audit report --db FILE|URI [--since TIME] [--until TIME]\n"
            "                             [--section NAME] [--top N] [--format FMT]\n"
            "\n"
            "Tables for an information-governance board, computed over the audit rows\n"
            "up to the latest signed checkpoint only (its seq, time and head hash are\n"
            "stated, with the number of newer rows left out), so anyone holding the\n"
            "database can recompute them:\n"
            "  agreements        shares per agreement, allowed and denied by reason\n"
            "  orgs              shares per sender and recipient organisation\n"
            "  areas             events and shares per area and event type\n"
            "  marac             MARAC referrals received, accepted, withdrawn, and\n"
            "                    cases transferred in and out, per MARAC\n"
            "  fields_stripped   fields withheld most often, per agreement (--top N,\n"
            "                    default %d)\n"
            "  dead_letters      deliveries given up (max attempts, agreement recheck)\n"
            "  pending           deliveries waiting now (the live outbox, not in the\n"
            "                    chain)\n"
            "  agreement_review  agreements past their review date or validity\n"
            "--section NAME prints one of them (and the checkpoint). In csv and json\n"
            "each row names its section.\n"
            "\n%s%s",
            SHUB_QUERY_TOP_FIELDS, common_help, exit_help);
}

static int cmd_report(int argc, char **argv)
{
    static const struct option longopts[] = {
        COMMON_OPTIONS,
        {"section", required_argument, NULL, OPT_SECTION},
        {"top", required_argument, NULL, OPT_TOP},
        {NULL, 0, NULL, 0},
    };
    common_t com = {.fmt = SHUB_QUERY_TABLE};
    shub_query_report_opts_t o = {.now_ms = shub_now_ms()};
    int64_t n;
    int c, rc;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == OPT_HELP) {
            usage_report(stdout);
            return 0;
        }
        if ((rc = common_opt(&com, c, optarg, usage_report)) != 1) {
            if (rc)
                return rc;
            continue;
        }
        if (c == OPT_SECTION) {
            o.section = optarg;
        } else if (c == OPT_TOP) {
            if (!parse_count(optarg, 1, 1000, &n))
                return fail_usage(usage_report,
                                  "--top '%s' is not a number from 1 to 1000", optarg);
            o.top_fields = (size_t)n;
        } else {
            usage_report(stderr);
            return EX_USAGE;
        }
    }
    if (optind != argc)
        return fail_usage(usage_report, "unexpected argument '%s'", argv[optind]);
    if (!com.db)
        return fail_usage(usage_report, "%s", "--db is required");
    o.has_since = com.has_since;
    o.since_ms = com.since_ms;
    o.has_until = com.has_until;
    o.until_ms = com.until_ms;

    shub_store_t *s = NULL;
    shub_query_result_t *r = NULL;
    shub_err_t err;
    if ((rc = open_db(com.db, NULL, &s)))
        return rc;
    rc = shub_query_report(s, &o, &r, &err);
    if (rc == SHUB_EINVAL)
        rc = fail_usage(usage_report, "%s", err.msg);
    else if (rc)
        rc = report_err(rc, &err);
    else
        rc = emit(r, com.fmt);
    shub_query_result_destroy(&r);
    shub_store_close(&s);
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
    int c, rc;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == OPT_HELP) {
            usage_explain(stdout);
            return 0;
        }
        if ((rc = common_opt(&com, c, optarg, usage_explain)) != 1) {
            if (rc)
                return rc;
            continue;
        }
        usage_explain(stderr);
        return EX_USAGE;
    }
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

/* ---- main ------------------------------------------------------------------ */

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"verify", cmd_verify, "check the hash chain and signed checkpoints"},
    {"log", cmd_log, "audit rows, filtered and paged"},
    {"subject", cmd_subject, "every share about one subject (access requests)"},
    {"report", cmd_report, "tables for the information-governance board"},
    {"explain", cmd_explain, "the whole story of one event"},
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
