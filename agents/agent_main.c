/*
 * sharehub-agent: the command line of the agent (include/sharehub/agent.h).
 * Arguments, exit codes and output only; everything else is in the agent
 * and agentdb modules so that tests reach it without a process.
 *
 *   run     the agent itself, in the foreground, until SIGTERM/SIGINT
 *   submit  queue one event (JSON) into an organisation's outbox
 *   inbox   list what was received
 *   outbox  list what was shared and each recipient's outcome
 *
 * Exit codes (sysexits.h): 0 success, 64 usage, 65 bad event data, 66 no such
 * store or input, 69 cannot start (keys, broker, store), 74 store I/O error,
 * 78 bad configuration.
 */
#include "sharehub/agent.h"
#include "sharehub/agentdb.h"
#include "sharehub/alloc.h"
#include "sharehub/cli.h"
#include "sharehub/json.h"
#include "sharehub/log.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sharehub-agent [--log-level L] COMMAND [options]\n"
            "       sharehub-agent --version | --help\n"
            "\n"
            "  run --org ID --config DIR [--db FILE] [--broker URL] [--keys DIR]\n"
            "      [--on-receive CMD]\n"
            "      [--scenario FILE --seed N] [--until-done]\n"
            "        connect to the broker as ID and share and receive events until\n"
            "        SIGTERM; resends the outbox until receipted, commits each delivery\n"
            "        to the inbox before acknowledging it\n"
            "  submit --org ID [--config DIR] [--db FILE] [FILE|-]\n"
            "        queue one event given as JSON into ID's outbox; prints its id\n"
            "  inbox --org ID [--db FILE] [--since T] [--format table|json]\n"
            "        list events received (T: RFC 3339 time or ms since 1970)\n"
            "  outbox --org ID [--db FILE]\n"
            "        list events shared, with each recipient's outcome\n"
            "\n"
            "  --db FILE defaults to ./ID.db; --broker defaults to hub.yaml's endpoint.\n"
            "  'sharehub-agent COMMAND --help' describes one command.\n"
            "\n");
    shub_cli_exit_help(out);
}

static void run_usage(FILE *out)
{
    fprintf(
        out,
        "usage: sharehub-agent run --org ID --config DIR [--db FILE] [--broker URL]\n"
        "                          [--keys DIR] [--on-receive CMD] [--scenario FILE] [--seed N]\n"
        "                          [--until-done]\n"
        "\n"
        "  -o, --org ID           the organisation to run as (its keys: KEY_DIR/ID.key)\n"
        "  -c, --config DIR       the partnership's config (hub.yaml, orgs.yaml)\n"
        "  -d, --db FILE          the local store (default ./ID.db)\n"
        "  -b, --broker URL       the broker (default: hub.yaml's endpoint)\n"
        "  -k, --keys DIR         key directory (default: hub.yaml's key_dir)\n"
        "  -r, --on-receive CMD   run CMD via /bin/sh -c for each new inbox event,\n"
        "                         the event as JSON on its stdin; failures are logged\n"
        "  -s, --scenario FILE    drive the organisation's profile with this scenario\n"
        "  -S, --seed N           the scenario's random seed (default 1)\n"
        "  -u, --until-done       exit 0 once the scenario's period is over, the\n"
        "                         profile is done, nothing is pending and nothing\n"
        "                         has arrived for a few seconds\n"
        "  -h, --help             this text\n"
        "signals: TERM/INT stop cleanly\n");
}

static void submit_usage(FILE *out)
{
    fprintf(out,
            "usage: sharehub-agent submit --org ID [--config DIR] [--db FILE] [FILE|-]\n"
            "\n"
            "Queues one event into ID's outbox, whether or not the agent is running; a\n"
            "running agent sends it within a fraction of a second. The event is JSON:\n"
            "  {\"event\": \"marac.referral\", \"occurred\": \"2026-07-01T10:00:00Z\",\n"
            "   \"case\": \"...\", \"subject\": \"...\", \"area\": \"coventry\",\n"
            "   \"purpose\": \"...\", \"basis\": \"...\", \"consent\": \"given\",\n"
            "   \"to\": [\"marac@coventry\"], \"payload\": {...}}\n"
            "optional: \"id\" (generated if absent), \"override\", \"reply_to\".\n"
            "Prints the event id. Exit 65 for bad JSON or a bad field (named), nothing "
            "queued.\n"
            "\n"
            "  -o, --org ID       the organisation\n"
            "  -c, --config DIR   checked to hold ID, if given\n"
            "  -d, --db FILE      the store (default ./ID.db; created if missing)\n"
            "  -h, --help         this text\n");
}

static void inbox_usage(FILE *out)
{
    fprintf(
        out,
        "usage: sharehub-agent inbox --org ID [--db FILE] [--since T] [--format "
        "table|json]\n"
        "\n"
        "  -o, --org ID        the organisation\n"
        "  -d, --db FILE       the store (default ./ID.db)\n"
        "  -s, --since T       only events received at or after T (RFC 3339 or ms)\n"
        "  -f, --format F      table (default) or json: one object per line with the\n"
        "                      payload, from, agreement, version, flow, received\n"
        "  -h, --help          this text\n");
}

static void outbox_usage(FILE *out)
{
    fprintf(
        out,
        "usage: sharehub-agent outbox --org ID [--db FILE]\n"
        "\n"
        "Lists each event shared: pending (no receipt yet), receipted or failed (and\n"
        "why), then each recipient's outcome: queued, delivered, acknowledged,\n"
        "denied (reason) or dead.\n"
        "\n"
        "  -o, --org ID        the organisation\n"
        "  -d, --db FILE       the store (default ./ID.db)\n"
        "  -h, --help          this text\n");
}

/* Exit code for a failure of a store or agent call. */
static int exit_code(int rc)
{
    switch (rc) {
    case SHUB_ECONFIG:
    case SHUB_ENOTFOUND:
        return EX_CONFIG;
    case SHUB_EDB:
        return EX_IOERR;
    case SHUB_EMALFORMED:
    case SHUB_ETYPE:
    case SHUB_EMISSING:
    case SHUB_EDUPKEY:
    case SHUB_ELIMIT:
    case SHUB_EUTF8:
    case SHUB_EVALUE:
    case SHUB_EEXIST:
        return EX_DATAERR;
    default:
        return EX_UNAVAILABLE;
    }
}

static char *default_db(const char *org)
{
    size_t n = strlen(org) + 8;
    char *p = shub_malloc(n);
    if (p)
        snprintf(p, n, "./%s.db", org);
    return p;
}

static bool org_ok(const char *org)
{
    if (shub_is_name(org))
        return true;
    fprintf(stderr, "sharehub-agent: '%s' is not an organisation id\n", org);
    return false;
}

/* ---- run ---------------------------------------------------------------- */

static int cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"org", required_argument, NULL, 'o'},
        {"config", required_argument, NULL, 'c'},
        {"db", required_argument, NULL, 'd'},
        {"broker", required_argument, NULL, 'b'},
        {"keys", required_argument, NULL, 'k'},
        {"on-receive", required_argument, NULL, 'r'},
        {"scenario", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'},
        {"until-done", no_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    shub_agent_opts_t opts = {.seed = 1};
    int c;
    while ((c = getopt_long(argc, argv, "o:c:d:b:k:r:s:S:uh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            opts.org = optarg;
            break;
        case 'c':
            opts.config_dir = optarg;
            break;
        case 'd':
            opts.db_path = optarg;
            break;
        case 'b':
            opts.endpoint = optarg;
            break;
        case 'k':
            opts.key_dir = optarg;
            break;
        case 'r':
            opts.on_receive = optarg;
            break;
        case 's':
            opts.scenario = optarg;
            break;
        case 'S': {
            char *end;
            errno = 0;
            opts.seed = strtoull(optarg, &end, 10);
            if (errno || *end || !*optarg) {
                fprintf(stderr, "sharehub-agent: --seed '%s' is not a number\n", optarg);
                return EX_USAGE;
            }
            break;
        }
        case 'u':
            opts.until_done = true;
            break;
        case 'h':
            run_usage(stdout);
            return 0;
        default:
            run_usage(stderr);
            return EX_USAGE;
        }
    }
    if (!opts.org || !opts.config_dir || optind != argc) {
        run_usage(stderr);
        return EX_USAGE;
    }
    if (!org_ok(opts.org))
        return EX_USAGE;

    struct sigaction sa = {0};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    shub_agent_t *agent = NULL;
    shub_err_t err;
    shub_err_clear(&err);
    int rc = shub_agent_new(&opts, &agent, &err);
    if (rc) {
        char line[1024];
        shub_error("cannot start: %s", shub_err_format(&err, line, sizeof line));
        return rc == SHUB_ECONFIG || rc == SHUB_ENOTFOUND ? EX_CONFIG : EX_UNAVAILABLE;
    }
    while (!stop_flag) {
        shub_agent_poll(agent, SHUB_AGENT_TICK_MS);
        if (opts.until_done && shub_agent_done(agent)) {
            shub_info("done: the profile has finished and every event is receipted");
            break;
        }
    }
    shub_agent_destroy(&agent);
    shub_info("stopped");
    return 0;
}

/* ---- submit ------------------------------------------------------------- */

/* Reads all of f, at most SHUB_JSON_MAX_INPUT + 1 bytes (so too much is seen). */
static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 8192, n = 0;
    char *buf = shub_malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0 || n > SHUB_JSON_MAX_INPUT)
            break;
        if (n == cap) {
            char *more = shub_realloc(buf, cap * 2);
            if (!more) {
                shub_free(buf);
                return NULL;
            }
            buf = more;
            cap *= 2;
        }
    }
    if (buf && ferror(f)) {
        shub_free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static int cmd_submit(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"org", required_argument, NULL, 'o'},
        {"config", required_argument, NULL, 'c'},
        {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *org = NULL, *config = NULL, *db_path = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "o:c:d:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            org = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'd':
            db_path = optarg;
            break;
        case 'h':
            submit_usage(stdout);
            return 0;
        default:
            submit_usage(stderr);
            return EX_USAGE;
        }
    }
    if (!org || argc - optind > 1) {
        submit_usage(stderr);
        return EX_USAGE;
    }
    if (!org_ok(org))
        return EX_USAGE;
    shub_err_t err;
    shub_err_clear(&err);
    char line[1024];
    if (config) {
        shub_agent_config_t *cfg = NULL;
        int rc = shub_agent_config_load(config, org, &cfg, &err);
        shub_agent_config_destroy(&cfg);
        if (rc) {
            fprintf(stderr, "submit: %s\n", shub_err_format(&err, line, sizeof line));
            return rc == SHUB_EIO ? EX_NOINPUT : EX_CONFIG;
        }
    }
    const char *file = optind < argc ? argv[optind] : "-";
    FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
    if (!in) {
        fprintf(stderr, "submit: cannot read '%s': %s\n", file, strerror(errno));
        return EX_NOINPUT;
    }
    size_t len = 0;
    char *text = read_all(in, &len);
    if (in != stdin)
        fclose(in);
    if (!text) {
        fprintf(stderr, "submit: cannot read '%s'\n", file);
        return EX_NOINPUT;
    }
    char *path = db_path ? NULL : default_db(org);
    shub_agentdb_t *db = NULL;
    int rc = path || db_path
                 ? shub_agentdb_open(db_path ? db_path : path, true, &db, &err)
                 : shub_err_set(&err, SHUB_ENOMEM, "out of memory");
    int code = 0;
    if (rc) {
        fprintf(stderr, "submit: %s\n", shub_err_format(&err, line, sizeof line));
        code = rc == SHUB_EIO ? EX_CANTCREAT : EX_IOERR;
        goto done;
    }
    shub_id_t id;
    rc = shub_agent_submit(db, text, len, shub_now_ms(), &id, &err);
    if (rc) {
        fprintf(stderr, "submit: %s\n", shub_err_format(&err, line, sizeof line));
        code = exit_code(rc);
        goto done;
    }
    char idt[SHUB_ID_TEXT];
    shub_id_format(&id, idt);
    printf("%s\n", idt);
done:
    shub_agentdb_close(&db);
    shub_free(path);
    shub_free(text);
    return code;
}

/* ---- inbox, outbox ------------------------------------------------------ */

static int open_existing(const char *org, const char *db_path, shub_agentdb_t **db,
                         const char *cmd)
{
    char *path = db_path ? NULL : default_db(org);
    shub_err_t err;
    shub_err_clear(&err);
    int rc = path || db_path
                 ? shub_agentdb_open(db_path ? db_path : path, false, db, &err)
                 : shub_err_set(&err, SHUB_ENOMEM, "out of memory");
    shub_free(path);
    if (rc) {
        char line[1024];
        fprintf(stderr, "%s: %s\n", cmd, shub_err_format(&err, line, sizeof line));
        return rc == SHUB_EIO ? EX_NOINPUT : EX_IOERR;
    }
    return 0;
}

static int cmd_list(int argc, char **argv, bool inbox)
{
    static const struct option longopts[] = {
        {"org", required_argument, NULL, 'o'},   {"db", required_argument, NULL, 'd'},
        {"since", required_argument, NULL, 's'}, {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    const char *org = NULL, *db_path = NULL, *cmd = inbox ? "inbox" : "outbox";
    int64_t since = 0;
    bool json = false;
    int c;
    while ((c = getopt_long(argc, argv, inbox ? "o:d:s:f:h" : "o:d:h", longopts, NULL)) !=
           -1) {
        switch (c) {
        case 'o':
            org = optarg;
            break;
        case 'd':
            db_path = optarg;
            break;
        case 's':
            if (!inbox || shub_json_time_parse(optarg, &since) != 0) {
                fprintf(stderr, "%s: --since '%s' is not an RFC 3339 time or ms\n", cmd,
                        optarg);
                return EX_USAGE;
            }
            break;
        case 'f':
            if (!inbox || (strcmp(optarg, "json") != 0 && strcmp(optarg, "table") != 0)) {
                fprintf(stderr, "%s: --format must be table or json\n", cmd);
                return EX_USAGE;
            }
            json = strcmp(optarg, "json") == 0;
            break;
        case 'h':
            (inbox ? inbox_usage : outbox_usage)(stdout);
            return 0;
        default:
            (inbox ? inbox_usage : outbox_usage)(stderr);
            return EX_USAGE;
        }
    }
    if (!org || optind != argc) {
        (inbox ? inbox_usage : outbox_usage)(stderr);
        return EX_USAGE;
    }
    if (!org_ok(org))
        return EX_USAGE;
    shub_agentdb_t *db = NULL;
    int code = open_existing(org, db_path, &db, cmd);
    if (code)
        return code;
    shub_err_t err;
    shub_err_clear(&err);
    int rc = inbox ? shub_agent_print_inbox(db, since, json, stdout, &err)
                   : shub_agent_print_outbox(db, stdout, &err);
    if (rc) {
        char line[1024];
        fprintf(stderr, "%s: %s\n", cmd, shub_err_format(&err, line, sizeof line));
        code = EX_IOERR;
    }
    shub_agentdb_close(&db);
    return code;
}

int main(int argc, char **argv)
{
    int level = SHUB_LOG_INFO, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0)
            return shub_cli_version("sharehub-agent");
        if ((strcmp(argv[i], "--log-level") == 0 || strcmp(argv[i], "-l") == 0) &&
            i + 1 < argc) {
            if ((level = shub_log_level_parse(argv[++i])) < 0) {
                fprintf(stderr, "sharehub-agent: unknown log level '%s'\n", argv[i]);
                return EX_USAGE;
            }
            continue;
        }
        usage(stderr);
        return EX_USAGE;
    }
    if (i >= argc) {
        usage(stderr);
        return EX_USAGE;
    }
    shub_log_init("sharehub-agent", (shub_log_level_t)level);
    const char *cmd = argv[i];
    /* getopt_long sees the command as argv[0] */
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    if (strcmp(cmd, "run") == 0)
        return cmd_run(sub_argc, sub_argv);
    if (strcmp(cmd, "submit") == 0)
        return cmd_submit(sub_argc, sub_argv);
    if (strcmp(cmd, "inbox") == 0)
        return cmd_list(sub_argc, sub_argv, true);
    if (strcmp(cmd, "outbox") == 0)
        return cmd_list(sub_argc, sub_argv, false);
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "sharehub-agent: unknown command '%s'\n", cmd);
    usage(stderr);
    return EX_USAGE;
}
