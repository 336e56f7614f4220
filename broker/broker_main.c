/*
 * sharehub-broker: runs the hub in the foreground. Signal handlers only set
 * flags; the loop acts on them between turns: SIGTERM/SIGINT finish the batch
 * in hand, commit, sign a checkpoint and exit 0; SIGHUP reloads organisations
 * and agreements, keeping the old set if the new one does not load.
 *
 * Before anything starts, the checks `--check` runs are run (check_all): every
 * file the broker will open, named with what it is for when it is missing,
 * so a start under systemd fails with the same words and exit code as a
 * check at the shell. Exit codes are the table in include/sharehub/cli.h.
 */
#include "sharehub/cli.h"
#include "sharehub/config.h"
#include "sharehub/hub.h"
#include "sharehub/keys.h"
#include "sharehub/lifecycle.h"
#include "sharehub/log.h"
#include "sharehub/store.h"
#include "sharehub/time.h"
#include "sharehub/version.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

static const char prog[] = "sharehub-broker";

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;

/* A standby waits for the database lock until it gets it or is stopped. */
static bool keep_waiting(void *ctx)
{
    (void)ctx;
    return !stop_flag;
}

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void on_reload(int sig)
{
    (void)sig;
    reload_flag = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sharehub-broker [--config DIR] [--db FILE|URI] [--endpoint URL] [--keys "
            "DIR]\n"
            "                       [--ready-file FILE] [--log-level LEVEL]\n"
            "       sharehub-broker --check [--strict] [--notice-days N] [--config DIR]\n"
            "                       [--db FILE|URI] [--keys DIR]\n"
            "\n"
            "Routes events between partner organisations under the information-sharing\n"
            "agreements in DIR (hub.yaml, orgs.yaml, agreements/*.yaml), default deny,\n"
            "with a tamper-evident audit log. Runs in the foreground; logs to stderr.\n"
            "\n"
            "  -c, --config DIR      configuration directory (default " SHUB_CONFIG_DIR
            ")\n"
            "  -d, --db FILE|URI     database: a SQLite file, or a PostgreSQL database\n"
            "                        as postgresql://... (default: hub.yaml's `database`)\n"
            "  -e, --endpoint URL    bind here (default: hub.yaml's `endpoint`);\n"
            "                        tcp://127.0.0.1:* picks a free port\n"
            "  -k, --keys DIR        broker and organisation keys (default: hub.yaml's)\n"
            "  -r, --ready-file FILE write the bound endpoint here once listening\n"
            "  -l, --log-level L     debug, info (default), warn, error\n"
            "      --check           check the configuration, the keys and the database\n"
            "                        the broker would open, and exit; warn of\n"
            "                        agreements expiring or due for review within\n"
            "                        hub.yaml's notice_days (default 30), past either\n"
            "                        date, or active with no signatory\n"
            "      --strict          with --check: such a warning fails the check (78)\n"
            "      --notice-days N   with --check: warn N days ahead instead\n"
            "  -V, --version         print the version and exit\n"
            "  -h, --help            this text\n"
            "\n"
            "On PostgreSQL a second broker on the same database is a standby: it logs\n"
            "that it waits, takes over when the active broker's session ends, and only\n"
            "then binds its endpoint. A broker that loses its database session exits 69.\n"
            "\n"
            "signals: TERM/INT stop cleanly (commit, sign a checkpoint); HUP reloads\n"
            "organisations and agreements (a config that fails keeps the old one)\n");
    shub_cli_exit_help(out);
}

/* How the checks speak: plain lines on stderr for `--check` at a shell, log
 * lines (with their level, for the journal) when the broker is starting. */
typedef struct checker {
    bool starting;
    int config_errors;
    bool strict;          /* --strict: a lifecycle warning fails the check */
    uint32_t notice_days; /* --notice-days; 0: hub.yaml's */
} checker_t;

static void say(const checker_t *ck, bool warning, const char *text)
{
    if (ck->starting)
        shub_log(warning ? SHUB_LOG_WARN : SHUB_LOG_ERROR, "%s", text);
    else
        fprintf(stderr, "%s: %s%s\n", prog, warning ? "warning: " : "", text);
}

/* Reports one problem found by a check; returns its exit code. */
static int complain(const checker_t *ck, int code, const shub_err_t *err)
{
    char line[1024];
    say(ck, false, shub_err_format(err, line, sizeof line));
    return code;
}

/* ---- the checks ------------------------------------------------------------ */

/* The files a configuration directory must hold before it is parsed: a
 * missing one is "no input" (66), not a configuration error. */
static int check_config_files(const checker_t *ck, const char *dir)
{
    static const struct {
        const char *name;
        shub_cli_kind_t kind;
        const char *role;
    } need[] = {
        {"", SHUB_CLI_DIR, "the configuration directory; give --config DIR"},
        {"orgs.yaml", SHUB_CLI_FILE, "the partnership's areas and organisations"},
        {"agreements", SHUB_CLI_DIR, "the information-sharing agreements"},
    };
    char path[4096];
    shub_err_t err;
    int code = 0;
    for (size_t i = 0; i < sizeof need / sizeof need[0] && !code; i++) {
        snprintf(path, sizeof path, "%s%s%s", dir, need[i].name[0] ? "/" : "",
                 need[i].name);
        if ((code = shub_cli_need(path, need[i].kind, need[i].role, &err)))
            complain(ck, code, &err);
    }
    snprintf(path, sizeof path, "%s/hub.yaml", dir);
    if (!code && access(path, F_OK) == 0 &&
        (code = shub_cli_need(path, SHUB_CLI_FILE, "the broker's settings", &err)))
        complain(ck, code, &err);
    return code;
}

/* Config errors are `file:line: message` already: no program name before them. */
static void print_config_error(const shub_err_t *err, void *ctx)
{
    checker_t *ck = ctx;
    char line[1024];
    shub_err_format(err, line, sizeof line);
    if (ck->starting)
        shub_error("%s", line);
    else
        fprintf(stderr, "%s\n", line);
    ck->config_errors++;
}

/* One of the broker's own key files: present (66 if not, saying which
 * command writes it), then readable as what it must be (78 if not). */
static int need_key(const checker_t *ck, const char *dir, const char *name,
                    const char *role, char *path, size_t size)
{
    shub_err_t err;
    snprintf(path, size, "%s/%s", dir, name);
    int code = shub_cli_need(path, SHUB_CLI_FILE, role, &err);
    if (code) {
        char hint[4200];
        complain(ck, code, &err);
        snprintf(hint, sizeof hint,
                 "`sharehub-keygen --broker --dir %s` writes the broker's keys", dir);
        say(ck, false, hint);
    }
    return code;
}

/* The broker's keys: its CURVE pair, the checkpoint signing pair (whose
 * public half agents and auditors hold, so it must match) and the subject
 * key. Then a warning for any organisation's secret key found beside them:
 * it belongs on that organisation's agent host only. */
static int check_keys(const checker_t *ck, const shub_config_t *cfg, const char *dir,
                      uint8_t subject[32])
{
    char path[4200];
    shub_err_t err;
    int code;
    shub_curve_keys_t curve;
    uint8_t sign_sk[SHUB_SIGN_SECRET], sign_pk[SHUB_SIGN_PUBLIC];
    if ((code = need_key(ck, dir, "broker.pub", "the broker's public CURVE key", path,
                         sizeof path)) ||
        (code = need_key(ck, dir, "broker.key", "the broker's secret CURVE key", path,
                         sizeof path)))
        return code;
    int rc = shub_keys_read_pair(dir, "broker", &curve, &err);
    sodium_memzero(&curve, sizeof curve);
    if (rc)
        return complain(ck, shub_cli_exit(rc), &err);

    if ((code = need_key(ck, dir, "checkpoint.key",
                         "the key that signs audit checkpoints", path, sizeof path)))
        return code;
    rc = shub_keys_read_hex(path, sign_sk, sizeof sign_sk, true, &err);
    if (rc)
        return complain(ck, shub_cli_exit(rc), &err);
    if ((code = need_key(ck, dir, "checkpoint.pub",
                         "what agents and auditors verify with", path, sizeof path)) ||
        (rc = shub_keys_read_hex(path, sign_pk, sizeof sign_pk, false, &err))) {
        sodium_memzero(sign_sk, sizeof sign_sk);
        return code ? code : complain(ck, shub_cli_exit(rc), &err);
    }
    /* libsodium's Ed25519 secret key carries its public half in its last 32 bytes. */
    bool pair = memcmp(sign_sk + 32, sign_pk, sizeof sign_pk) == 0;
    sodium_memzero(sign_sk, sizeof sign_sk);
    if (!pair) {
        shub_err_set(&err, SHUB_ECRYPTO,
                     "'%s/checkpoint.pub' is not the public half of '%s/checkpoint.key'",
                     dir, dir);
        return complain(ck, EX_CONFIG, &err);
    }
    if ((code = need_key(ck, dir, "subject.key", "the key of subject reference hashes",
                         path, sizeof path)))
        return code;
    if ((rc = shub_keys_read_hex(path, subject, 32, true, &err)))
        return complain(ck, shub_cli_exit(rc), &err);

    for (size_t i = 0; i < shub_config_org_count(cfg); i++) {
        const char *id = shub_config_org_at(cfg, i)->id;
        snprintf(path, sizeof path, "%s/%s.key", dir, id);
        char text[4400];
        if (access(path, F_OK) != 0)
            continue;
        snprintf(text, sizeof text,
                 "'%s' is %s's secret key; it belongs on that organisation's agent host "
                 "only (sharehub-keygen --org %s makes its directory)",
                 path, id, id);
        say(ck, true, text);
    }
    return 0;
}

/* The database: an existing file must be a sharehub store this version can
 * open, keyed with this subject key; a new one needs a directory to go in. */
static int check_database(const checker_t *ck, const char *db, const uint8_t subject[32])
{
    shub_err_t err;
    if (shub_store_is_uri(db)) {
        /* A PostgreSQL database must exist and take our connection; an empty
         * schema is one the broker will create its tables in. */
        shub_store_opts_t opts = {.readonly = true, .subject_key = subject};
        shub_store_t *store = NULL;
        int rc = shub_store_open(db, &opts, &store, &err);
        shub_store_close(&store);
        if (rc == SHUB_EDB && strstr(err.msg, "(no tables)"))
            rc = 0;
        return rc ? complain(ck, rc == SHUB_ECRYPTO ? EX_CONFIG : EX_UNAVAILABLE, &err) : 0;
    }
    if (access(db, F_OK) != 0) {
        char copy[4096];
        snprintf(copy, sizeof copy, "%s", db);
        const char *dir = dirname(copy);
        int code =
            shub_cli_need(dir, SHUB_CLI_DIR, "where the database is to be created", &err);
        if (!code && access(dir, W_OK) != 0) {
            shub_err_set(&err, SHUB_EIO, "cannot create the database in '%s': %s", dir,
                         strerror(errno));
            code = EX_CANTCREAT;
        }
        return code ? complain(ck, code, &err) : 0;
    }
    int code = shub_cli_need(db, SHUB_CLI_FILE, "the audit log and outbox", &err);
    if (code)
        return complain(ck, code, &err);
    shub_store_opts_t opts = {.readonly = true, .subject_key = subject};
    shub_store_t *store = NULL;
    int rc = shub_store_open(db, &opts, &store, &err);
    shub_store_close(&store);
    return rc ? complain(ck, rc == SHUB_ECRYPTO ? EX_CONFIG : EX_DATAERR, &err) : 0;
}

static void say_due(const shub_lifecycle_finding_t *f, void *ctx)
{
    say(ctx, true, f->text);
}

/* What is due in the agreements' lives: warnings, or with --strict a
 * failure, so a review date or an expiry cannot pass unnoticed. */
static int check_lifecycle(const checker_t *ck, const shub_config_t *cfg)
{
    uint32_t days = ck->notice_days ? ck->notice_days : shub_config_hub(cfg)->notice_days;
    size_t n = shub_lifecycle_check(cfg, shub_now_ms(), days, say_due, (void *)ck);
    if (n && ck->strict) {
        char text[128];
        snprintf(text, sizeof text, "%zu agreement date%s due (--strict)", n,
                 n == 1 ? " is" : "s are");
        say(ck, false, text);
        return EX_CONFIG;
    }
    return 0;
}

/* Everything the broker will open, in the order it opens them. 0, or the
 * exit code of the first kind of problem found (each problem is printed). */
static int check_all(const shub_hub_opts_t *opts, bool starting, bool strict,
                     uint32_t notice_days)
{
    checker_t checker = {.starting = starting, .strict = strict, .notice_days = notice_days},
              *ck = &checker;
    int code = check_config_files(ck, opts->config_dir);
    if (code)
        return code;
    shub_config_t *cfg = NULL;
    shub_config_opts_t copts = {.key_dir = opts->key_dir};
    int rc = shub_config_load(opts->config_dir, &copts, &cfg, print_config_error, ck);
    if (rc) {
        char text[4200];
        snprintf(text, sizeof text, "%d error%s in %s", ck->config_errors,
                 ck->config_errors == 1 ? "" : "s", opts->config_dir);
        say(ck, false, text);
        return rc == SHUB_ENOMEM ? EX_OSERR : EX_CONFIG;
    }
    const shub_hub_settings_t *set = shub_config_hub(cfg);
    const char *keys = opts->key_dir ? opts->key_dir : set->key_dir;
    const char *db = opts->database ? opts->database : set->database;
    char shown[512];
    shub_store_display(db, shown, sizeof shown);
    uint8_t subject[32];
    if (!(code = check_keys(ck, cfg, keys, subject)) &&
        !(code = check_database(ck, db, subject)))
        code = check_lifecycle(ck, cfg);
    sodium_memzero(subject, sizeof subject);
    if (!code && !starting)
        printf("%s: ok (%zu organisations, %zu agreements; keys in %s; database %s)\n",
               opts->config_dir, shub_config_org_count(cfg),
               shub_config_agreement_count(cfg), keys, shown);
    shub_config_destroy(&cfg);
    return code;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"db", required_argument, NULL, 'd'},
        {"endpoint", required_argument, NULL, 'e'},
        {"keys", required_argument, NULL, 'k'},
        {"ready-file", required_argument, NULL, 'r'},
        {"log-level", required_argument, NULL, 'l'},
        {"check", no_argument, NULL, 'C'},
        {"strict", no_argument, NULL, 'S'},
        {"notice-days", required_argument, NULL, 'N'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    shub_hub_opts_t opts = {.config_dir = SHUB_CONFIG_DIR};
    bool check = false, strict = false;
    uint32_t notice_days = 0;
    int level = SHUB_LOG_INFO, c;
    while ((c = getopt_long(argc, argv, "c:d:e:k:r:l:Vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            opts.config_dir = optarg;
            break;
        case 'd':
            opts.database = optarg;
            break;
        case 'e':
            opts.endpoint = optarg;
            break;
        case 'k':
            opts.key_dir = optarg;
            break;
        case 'r':
            opts.ready_file = optarg;
            break;
        case 'l':
            if ((level = shub_log_level_parse(optarg)) < 0) {
                fprintf(stderr, "%s: unknown log level '%s'\n", prog, optarg);
                return EX_USAGE;
            }
            break;
        case 'C':
            check = true;
            break;
        case 'S':
            strict = true;
            break;
        case 'N': {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 366) {
                fprintf(stderr, "%s: --notice-days '%s' is not a number of days from 1 to "
                                "366\n",
                        prog, optarg);
                return EX_USAGE;
            }
            notice_days = (uint32_t)v;
            break;
        }
        case 'V':
            return shub_cli_version(prog);
        case 'h':
        default:
            return shub_cli_usage(usage, c == 'h');
        }
    }
    if (optind != argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        usage(stderr);
        return EX_USAGE;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "%s: libsodium failed to initialise\n", prog);
        return EX_OSERR;
    }
    shub_log_init(prog, (shub_log_level_t)level);
    if ((strict || notice_days) && !check) {
        fprintf(stderr, "%s: --strict and --notice-days go with --check\n", prog);
        return EX_USAGE;
    }
    int code = check_all(&opts, !check, strict, notice_days);
    if (check || code)
        return code;

    shub_cli_on_signal(SIGTERM, on_stop);
    shub_cli_on_signal(SIGINT, on_stop);
    shub_cli_on_signal(SIGHUP, on_reload);
    signal(SIGPIPE, SIG_IGN);

    shub_hub_t *hub = NULL;
    shub_err_t err;
    opts.wait_lock = keep_waiting;
    int rc = shub_hub_new(&opts, &hub, &err);
    if (rc == SHUB_EBUSY && stop_flag) {
        shub_info("stopped while standby");
        return 0;
    }
    if (rc) {
        char line[1024];
        shub_error("cannot start: %s", shub_err_format(&err, line, sizeof line));
        return shub_cli_exit(rc);
    }
    shub_info("ready endpoint=%s version=%s", shub_hub_endpoint(hub), SHUB_VERSION);
    while (!stop_flag) {
        if (reload_flag) {
            reload_flag = 0;
            shub_hub_reload(hub);
        }
        if (shub_hub_poll(hub, 100) == SHUB_EBUSY) {
            shub_error("stopping: the database lock is lost; a standby may be serving");
            shub_hub_destroy(&hub);
            return EX_UNAVAILABLE;
        }
    }
    shub_info("stopping: committing and signing a checkpoint");
    shub_hub_destroy(&hub);
    shub_info("stopped");
    return 0;
}
