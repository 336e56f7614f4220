/*
 * sharehub-agent: the command line of the agent (include/sharehub/agent.h).
 * Arguments, exit codes and output only; everything else is in the agent
 * and agentdb modules so that tests reach it without a process.
 *
 *   run     the agent itself, in the foreground, until SIGTERM/SIGINT
 *   submit  queue one event (JSON) into an organisation's outbox
 *   inbox   list what was received
 *   outbox  list what was shared and each recipient's outcome
 *   checkpoints  list the broker's checkpoints this agent witnessed (and any
 *           fork it kept), or export them for an auditor
 *
 * An agent relays: it sends what its organisation submits and stores what
 * the broker delivers. Only with --scenario or --simulate does it run the
 * organisation's profile and originate synthetic events, and it says which
 * it is doing when it starts.
 *
 * Defaults are where sharehub-keygen --org and the Debian package put things:
 * the organisation's directory SHUB_CONFIG_DIR/agents/ORG, its store
 * SHUB_STATE_DIR/agents/ORG.db. Exit codes are include/sharehub/cli.h's.
 */
#include "sharehub/agent.h"
#include "sharehub/agentdb.h"
#include "sharehub/alloc.h"
#include "sharehub/api.h"
#include "sharehub/cli.h"
#include "sharehub/json.h"
#include "sharehub/log.h"
#include "sharehub/version.h"
#include "sharehub/witness.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

static const char prog[] = "sharehub-agent";

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
            "  run --org ID [--config DIR] [--db FILE] [--broker URL] [--keys DIR]\n"
            "      [--on-receive CMD [--hook-attempts N]] [--until-done [--give-up-after S]]\n"
            "      [--simulate | --scenario FILE [--seed N]]\n"
            "      [--api ADDR [--api-token FILE] [--api-ready-file FILE]]\n"
            "        connect to the broker as ID and relay events until SIGTERM: send\n"
            "        what is submitted (resent until receipted), commit each delivery\n"
            "        to the inbox before acknowledging it; originates nothing unless\n"
            "        asked to simulate\n"
            "  submit --org ID [--config DIR] [--db FILE] [FILE|-]\n"
            "        queue one event given as JSON into ID's outbox; prints its id\n"
            "  inbox --org ID [--db FILE] [--since T] [--format table|json]\n"
            "        list events received (T: RFC 3339 time or ms since 1970)\n"
            "  outbox --org ID [--db FILE]\n"
            "        list events shared, with each recipient's outcome\n"
            "  checkpoints --org ID [--db FILE] [--export FILE|-] [--format table|json]\n"
            "        list the broker's checkpoints ID witnessed and any fork it kept,\n"
            "        or export them for sharehub-audit verify --witness\n"
            "\n"
            "  --config DIR defaults to " SHUB_CONFIG_DIR "/agents/ID (what\n"
            "  `sharehub-keygen --org ID` makes), --db FILE to " SHUB_STATE_DIR
            "/agents/ID.db,\n"
            "  --broker to hub.yaml's brokers, else its endpoint.\n"
            "  'sharehub-agent COMMAND --help' describes one command.\n"
            "\n");
    shub_cli_exit_help(out);
}

static void run_usage(FILE *out)
{
    fprintf(
        out,
        "usage: sharehub-agent run --org ID [--config DIR] [--db FILE] [--broker URL]\n"
        "                          [--keys DIR] [--on-receive CMD [--hook-attempts N]]\n"
        "                          [--until-done [--give-up-after S]]\n"
        "                          [--simulate | --scenario FILE [--seed N]]\n"
        "                          [--api ADDR [--api-token FILE] [--api-ready-file F]]\n"
        "\n"
        "Relays: sends what is submitted to ID's outbox, stores what the broker\n"
        "delivers, and originates nothing by itself. The log says when it is\n"
        "connecting, welcomed, refused, or cannot reach the broker; it keeps\n"
        "trying until stopped.\n"
        "\n"
        "  -o, --org ID           the organisation to run as\n"
        "  -c, --config DIR       its directory: hub.yaml, orgs.yaml, its keys\n"
        "                         (default " SHUB_CONFIG_DIR "/agents/ID)\n"
        "  -d, --db FILE          the local store\n"
        "                         (default " SHUB_STATE_DIR "/agents/ID.db)\n"
        "  -b, --broker URL       the broker (default: hub.yaml's brokers, else its\n"
        "                         endpoint); repeat it for an active broker and its\n"
        "                         standbys: the agent tries them in turn and talks to\n"
        "                         whichever welcomes it\n"
        "  -k, --keys DIR         key directory (default: hub.yaml's key_dir)\n"
        "  -r, --on-receive CMD   run CMD via /bin/sh -c for each new inbox event,\n"
        "                         the event as JSON on its stdin; a failure is run\n"
        "                         again later (1 s, doubling to 5 min), and after\n"
        "  -a, --hook-attempts N  N runs (default %d, 1 to 1000) is marked dead in\n"
        "                         the inbox\n"
        "  -u, --until-done       exit 0 once nothing is pending and nothing has\n"
        "                         arrived for a few seconds (in a simulation: once its\n"
        "                         period is over and the profile is done); exit 69\n"
        "                         after --give-up-after seconds without a session\n"
        "  -g, --give-up-after S  with --until-done (default %d)\n"
        "  -m, --simulate         run the organisation's profile in real time: it\n"
        "                         originates synthetic events (tests, demonstrations)\n"
        "  -s, --scenario FILE    simulate, driven by this scenario\n"
        "  -S, --seed N           the simulation's random seed (default 1)\n"
        "  -A, --api ADDR         serve the local HTTP/JSON API for a case system on\n"
        "                         HOST:PORT (an IP address; PORT 0 picks one), PORT\n"
        "                         (127.0.0.1), or unix:PATH (a socket of mode 0600);\n"
        "                         never every interface unless given 0.0.0.0\n"
        "  -t, --api-token FILE   the bearer token every API request must carry, from\n"
        "                         a file of mode 0600 (required except on unix:PATH)\n"
        "  -R, --api-ready-file F write the API's address here once it listens\n"
        "  -l, --log-level L      debug, info (default), warn, error; as before run\n"
        "  -h, --help             this text\n"
        "signals: TERM/INT stop cleanly\n",
        SHUB_AGENT_HOOK_ATTEMPTS, SHUB_AGENT_GIVE_UP_MS / 1000);
}

static void submit_usage(FILE *out)
{
    fprintf(
        out,
        "usage: sharehub-agent submit --org ID [--config DIR] [--db FILE] [FILE|-]\n"
        "\n"
        "Queues one event into ID's outbox, whether or not the agent is running; a\n"
        "running agent sends it within a fraction of a second. The event is JSON:\n"
        "  {\"event\": \"marac.referral\", \"occurred\": \"2026-07-01T10:00:00Z\",\n"
        "   \"case\": \"...\", \"subject\": \"...\", \"area\": \"coventry\",\n"
        "   \"purpose\": \"...\", \"basis\": \"...\", \"consent\": \"given\",\n"
        "   \"to\": [\"marac@coventry\"], \"payload\": {...}}\n"
        "optional: \"id\" (generated if absent), \"override\", \"reply_to\".\n"
        "\"occurred\" is RFC 3339 or ms since 1970, not before 2000-01-01; the area and\n"
        "the areas in \"to\" must be orgs.yaml's. Prints the event id. Exit 65 for bad\n"
        "JSON or a bad field (named), nothing queued.\n"
        "\n"
        "  -o, --org ID       the organisation\n"
        "  -c, --config DIR   its directory, with orgs.yaml\n"
        "                     (default " SHUB_CONFIG_DIR "/agents/ID)\n"
        "  -d, --db FILE      the store, created if missing\n"
        "                     (default " SHUB_STATE_DIR "/agents/ID.db)\n"
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
        "  -d, --db FILE       the store (default " SHUB_STATE_DIR "/agents/ID.db)\n"
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
        "  -d, --db FILE       the store (default " SHUB_STATE_DIR "/agents/ID.db)\n"
        "  -h, --help          this text\n");
}

static void checkpoints_usage(FILE *out)
{
    fprintf(
        out,
        "usage: sharehub-agent checkpoints --org ID [--db FILE]\n"
        "                                  [--export FILE|- | --format table|json]\n"
        "\n"
        "Lists the checkpoints of the broker's audit log that ID's agent checked and\n"
        "keeps: `witnessed` (signed by the broker's checkpoint key, consistent with\n"
        "every one kept before, and countersigned) and `fork` (signed by the broker\n"
        "but contradicting one kept: rows up to the same seq with another head, or\n"
        "fewer rows than one already kept; kept as evidence, never countersigned).\n"
        "With --export, writes them in the format `sharehub-audit verify --witness`\n"
        "reads: the line '%s', then one line per checkpoint:\n"
        "ORG STATE SEQ AT HEAD KEY SIG (seq and at in decimal, at in ms since 1970,\n"
        "head and key 64 lowercase hex digits, sig 128).\n"
        "\n"
        "  -o, --org ID        the organisation\n"
        "  -d, --db FILE       the store (default " SHUB_STATE_DIR "/agents/ID.db)\n"
        "  -e, --export FILE   write the export to FILE (replaced whole, or left as\n"
        "                      it was if writing fails), or to stdout with -\n"
        "  -f, --format F      table (default), or json: one object per line\n"
        "  -h, --help          this text\n"
        "exit: 0 done, 64 usage, 66 no such store, 73 the export file cannot be\n"
        "      created, 74 the store or the output cannot be read or written\n",
        SHUB_CP_EXPORT_HEADER);
}

/* The default path of something that belongs to one organisation:
 * BASE/ORG plus ext. The caller frees it. */
static char *org_path(const char *base, const char *org, const char *ext)
{
    size_t n = strlen(base) + strlen(org) + strlen(ext) + 2;
    char *p = shub_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s", base, org, ext);
    return p;
}

static char *default_db(const char *org)
{
    return org_path(SHUB_STATE_DIR "/agents", org, ".db");
}

/* Loads the organisation's view of the partnership from its directory,
 * naming what is missing (66) or wrong (78) before anything else runs. */
static int load_config(const char *cmd, const char *dir, const char *org,
                       shub_agent_config_t **cfg)
{
    shub_err_t err;
    char path[4096], line[1024];
    snprintf(path, sizeof path, "%s/orgs.yaml", dir);
    int code = shub_cli_need(dir, SHUB_CLI_DIR,
                             "the organisation's directory; give --config", &err);
    if (!code)
        code =
            shub_cli_need(path, SHUB_CLI_FILE, "the partnership's organisations", &err);
    if (code) {
        fprintf(stderr, "%s: %s\n", cmd, shub_err_format(&err, line, sizeof line));
        return code;
    }
    shub_err_clear(&err);
    int rc = shub_agent_config_load(dir, org, cfg, &err);
    if (rc) {
        fprintf(stderr, "%s: %s\n", cmd, shub_err_format(&err, line, sizeof line));
        /* an organisation missing from orgs.yaml is the configuration's fault */
        return rc == SHUB_ENOTFOUND ? EX_CONFIG : shub_cli_exit(rc);
    }
    return 0;
}

/* The key files the agent opens, named when missing: its own pair and the
 * broker's public key, as sharehub-keygen --org writes them. */
static int check_keys(const char *dir, const char *org)
{
    static const struct {
        const char *ext;
        const char *role;
    } need[] = {
        {".key", "this organisation's secret key"},
        {".pub", "this organisation's public key"},
    };
    shub_err_t err;
    char path[4200], line[1024];
    int code = 0;
    for (size_t i = 0; i < sizeof need / sizeof need[0] && !code; i++) {
        snprintf(path, sizeof path, "%s/%s%s", dir, org, need[i].ext);
        code = shub_cli_need(path, SHUB_CLI_FILE, need[i].role, &err);
    }
    snprintf(path, sizeof path, "%s/broker.pub", dir);
    if (!code)
        code = shub_cli_need(path, SHUB_CLI_FILE, "the broker's public key", &err);
    if (code) {
        fprintf(stderr, "%s: %s\n", prog, shub_err_format(&err, line, sizeof line));
        fprintf(stderr,
                "%s: `sharehub-keygen --org %s`, on the broker's host, makes a "
                "directory with all of them\n",
                prog, org);
    }
    return code;
}

static bool org_ok(const char *org)
{
    if (shub_is_name(org))
        return true;
    fprintf(stderr, "%s: '%s' is not an organisation id\n", prog, org);
    return false;
}

/* ---- run ---------------------------------------------------------------- */

/* ---- the local API ------------------------------------------------------- */

typedef struct {
    const char *listen, *token_file, *ready_file;
    char *token;
    shub_api_t *api;
    shub_api_server_t *server;
} api_run_t;

static void wake_agent(void *agent)
{
    shub_agent_wake(agent);
}

/* Serves the API for a running agent: its own connection to the store, its
 * own threads; the agent tells it of changes. An exit code on failure. */
static int api_start(api_run_t *r, const char *db_path, const shub_agent_config_t *cfg,
                     shub_agent_t *agent)
{
    shub_err_t err;
    shub_err_clear(&err);
    shub_api_opts_t o = {.db_path = db_path,
                         .cfg = cfg,
                         .token = r->token,
                         .wake = wake_agent,
                         .wake_ctx = agent};
    int rc = shub_api_new(&o, &r->api, &err);
    if (rc == 0)
        rc = shub_api_server_start(r->api, r->listen, r->token != NULL, r->ready_file,
                                   &r->server, &err);
    if (rc) {
        char line[1024];
        shub_error("cannot serve the API: %s", shub_err_format(&err, line, sizeof line));
        return rc == SHUB_EIO ? EX_UNAVAILABLE : shub_cli_exit(rc);
    }
    shub_agent_observe(agent, shub_api_observe, r->api);
    return 0;
}

static void api_stop(api_run_t *r)
{
    shub_api_server_stop(&r->server);
    shub_api_destroy(&r->api);
    shub_free(r->token);
    r->token = NULL;
}

/* Reads a whole number of seconds for --give-up-after: 1 to a day. */
static bool parse_seconds(const char *text, int64_t *ms)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || end == text || v < 1 || v > 86400)
        return false;
    *ms = v * 1000;
    return true;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"org", required_argument, NULL, 'o'},
        {"config", required_argument, NULL, 'c'},
        {"db", required_argument, NULL, 'd'},
        {"broker", required_argument, NULL, 'b'},
        {"keys", required_argument, NULL, 'k'},
        {"on-receive", required_argument, NULL, 'r'},
        {"hook-attempts", required_argument, NULL, 'a'},
        {"simulate", no_argument, NULL, 'm'},
        {"scenario", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'},
        {"until-done", no_argument, NULL, 'u'},
        {"give-up-after", required_argument, NULL, 'g'},
        {"api", required_argument, NULL, 'A'},
        {"api-token", required_argument, NULL, 't'},
        {"api-ready-file", required_argument, NULL, 'R'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    shub_agent_opts_t opts = {.seed = 1};
    api_run_t api = {0};
    const char *brokers[SHUB_AGENT_MAX_BROKERS];
    int64_t give_up_ms = SHUB_AGENT_GIVE_UP_MS;
    bool give_up_given = false;
    int c;
    while ((c = getopt_long(argc, argv, "o:c:d:b:k:r:a:ms:S:ug:A:t:R:l:h", longopts,
                            NULL)) != -1) {
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
            if (opts.n_endpoints == SHUB_AGENT_MAX_BROKERS) {
                fprintf(stderr, "%s: more than %d --broker endpoints\n", prog,
                        SHUB_AGENT_MAX_BROKERS);
                return EX_USAGE;
            }
            brokers[opts.n_endpoints++] = optarg;
            opts.endpoints = brokers;
            break;
        case 'k':
            opts.key_dir = optarg;
            break;
        case 'r':
            opts.on_receive = optarg;
            break;
        case 'a': {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 1 || v > 1000) {
                fprintf(stderr, "%s: --hook-attempts '%s' is not a number from 1 to 1000\n",
                        prog, optarg);
                return EX_USAGE;
            }
            opts.hook_attempts = (uint32_t)v;
            break;
        }
        case 'm':
            opts.simulate = true;
            break;
        case 's':
            opts.scenario = optarg;
            break;
        case 'S': {
            char *end;
            errno = 0;
            opts.seed = strtoull(optarg, &end, 10);
            if (errno || *end || !*optarg) {
                fprintf(stderr, "%s: --seed '%s' is not a number\n", prog, optarg);
                return EX_USAGE;
            }
            break;
        }
        case 'u':
            opts.until_done = true;
            break;
        case 'A':
            api.listen = optarg;
            break;
        case 't':
            api.token_file = optarg;
            break;
        case 'R':
            api.ready_file = optarg;
            break;
        case 'g':
            if (!parse_seconds(optarg, &give_up_ms)) {
                fprintf(stderr,
                        "%s: --give-up-after '%s' is not a number of seconds "
                        "from 1 to 86400\n",
                        prog, optarg);
                return EX_USAGE;
            }
            give_up_given = true;
            break;
        case 'l': {
            int level = shub_log_level_parse(optarg);
            if (level < 0) {
                fprintf(stderr, "%s: unknown log level '%s'\n", prog, optarg);
                return EX_USAGE;
            }
            shub_log_init(prog, (shub_log_level_t)level);
            break;
        }
        case 'h':
        default:
            return shub_cli_usage(run_usage, c == 'h');
        }
    }
    const char *missing = !opts.org ? "--org ID is required"
                          : give_up_given && !opts.until_done
                              ? "--give-up-after applies only with --until-done"
                          : opts.hook_attempts && !opts.on_receive
                              ? "--hook-attempts applies only with --on-receive"
                          : (api.token_file || api.ready_file) && !api.listen
                              ? "--api-token and --api-ready-file apply only with --api"
                          : api.listen && !api.token_file && strncmp(api.listen, "unix:", 5)
                              ? "--api on an address needs --api-token FILE (only a "
                                "unix:PATH socket may go without one)"
                              : NULL;
    if (missing || optind != argc) {
        if (missing)
            fprintf(stderr, "%s: %s\n", prog, missing);
        else
            fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        run_usage(stderr);
        return EX_USAGE;
    }
    if (!org_ok(opts.org))
        return EX_USAGE;

    char *config_dir =
        opts.config_dir ? NULL : org_path(SHUB_CONFIG_DIR "/agents", opts.org, "");
    char *db_path = opts.db_path ? NULL : default_db(opts.org);
    shub_agent_config_t *cfg = NULL;
    shub_agent_t *agent = NULL;
    int code = 0;
    if ((!opts.config_dir && !config_dir) || (!opts.db_path && !db_path)) {
        fprintf(stderr, "%s: out of memory\n", prog);
        code = EX_OSERR;
        goto done;
    }
    opts.config_dir = opts.config_dir ? opts.config_dir : config_dir;
    opts.db_path = opts.db_path ? opts.db_path : db_path;
    shub_err_t err;
    int rc;
    if ((code = load_config(prog, opts.config_dir, opts.org, &cfg)) ||
        (code = check_keys(opts.key_dir ? opts.key_dir : cfg->key_dir, opts.org)))
        goto done;
    if (opts.scenario && (code = shub_cli_need(opts.scenario, SHUB_CLI_FILE,
                                               "the simulation's scenario", &err))) {
        char line[1024];
        fprintf(stderr, "%s: %s\n", prog, shub_err_format(&err, line, sizeof line));
        goto done;
    }
    if (api.token_file && (rc = shub_api_token_load(api.token_file, &api.token, &err))) {
        char line[1024];
        fprintf(stderr, "%s: %s\n", prog, shub_err_format(&err, line, sizeof line));
        code = rc == SHUB_EIO || rc == SHUB_ENOTFOUND ? EX_NOINPUT : shub_cli_exit(rc);
        goto done;
    }

    shub_cli_on_signal(SIGTERM, on_stop);
    shub_cli_on_signal(SIGINT, on_stop);
    signal(SIGPIPE, SIG_IGN);

    shub_err_clear(&err);
    rc = shub_agent_new(&opts, &agent, &err);
    if (rc) {
        char line[1024];
        shub_error("cannot start: %s", shub_err_format(&err, line, sizeof line));
        code = shub_cli_exit(rc);
        goto done;
    }
    if (api.listen && (code = api_start(&api, opts.db_path, cfg, agent)))
        stop_flag = 1;
    while (!stop_flag) {
        shub_agent_poll(agent, SHUB_AGENT_TICK_MS);
        if (!opts.until_done)
            continue;
        if (shub_agent_done(agent)) {
            shub_info("done: every event is receipted%s",
                      opts.simulate || opts.scenario ? " and the profile has finished"
                                                     : "");
            break;
        }
        int64_t offline = shub_agent_offline_ms(agent);
        if (offline >= give_up_ms) {
            shub_error("giving up: no session with the broker for %lld s (--until-done)",
                       (long long)(offline / 1000));
            code = EX_UNAVAILABLE;
            break;
        }
    }
    api_stop(&api);
    shub_agent_destroy(&agent);
    shub_info("stopped");
done:
    api_stop(&api);
    shub_agent_config_destroy(&cfg);
    shub_free(config_dir);
    shub_free(db_path);
    return code;
}

/* ---- submit ------------------------------------------------------------- */

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
        default:
            return shub_cli_usage(submit_usage, c == 'h');
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
    char *config_dir = config ? NULL : org_path(SHUB_CONFIG_DIR "/agents", org, "");
    char *path = db_path ? NULL : default_db(org);
    shub_agent_config_t *cfg = NULL;
    shub_agentdb_t *db = NULL;
    char *text = NULL;
    int code = 0;
    if ((!config && !config_dir) || (!db_path && !path)) {
        fprintf(stderr, "submit: out of memory\n");
        code = EX_OSERR;
        goto done;
    }
    if ((code = load_config("submit", config ? config : config_dir, org, &cfg)))
        goto done;
    const char *file = optind < argc ? argv[optind] : "-";
    FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
    if (!in) {
        fprintf(stderr, "submit: cannot read '%s': %s\n", file, strerror(errno));
        code = EX_NOINPUT;
        goto done;
    }
    /* reading stops past SHUB_JSON_MAX_INPUT; submit then says it is too long */
    size_t len = 0;
    int read_rc = shub_cli_read_all(in, SHUB_JSON_MAX_INPUT, &text, &len);
    if (in != stdin)
        fclose(in);
    if (read_rc) {
        fprintf(stderr, "submit: cannot read '%s'\n", file);
        code = EX_NOINPUT;
        goto done;
    }
    int rc = shub_agentdb_open(db_path ? db_path : path, true, &db, &err);
    if (rc) {
        fprintf(stderr, "submit: %s\n", shub_err_format(&err, line, sizeof line));
        code = rc == SHUB_EIO ? EX_CANTCREAT : shub_cli_exit(rc);
        goto done;
    }
    shub_id_t id;
    rc = shub_agent_submit(db, cfg, text, len, shub_now_ms(), &id, &err);
    if (rc) {
        fprintf(stderr, "submit: %s\n", shub_err_format(&err, line, sizeof line));
        /* an id already queued is a fault of the input, like any other field */
        code = rc == SHUB_EEXIST ? EX_DATAERR : shub_cli_exit(rc);
        goto done;
    }
    char idt[SHUB_ID_TEXT];
    shub_id_format(&id, idt);
    printf("%s\n", idt);
done:
    shub_agentdb_close(&db);
    shub_agent_config_destroy(&cfg);
    shub_free(config_dir);
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
        return rc == SHUB_EIO ? EX_NOINPUT : shub_cli_exit(rc);
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
        default:
            return shub_cli_usage(inbox ? inbox_usage : outbox_usage, c == 'h');
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

/* ---- checkpoints ---------------------------------------------------------- */

/* Writes the export to path through a temporary file renamed over it once
 * complete and synced, so an auditor never gets half a file. */
static int export_to_file(shub_agentdb_t *db, const char *org, const char *path,
                          size_t *witnessed, size_t *forks)
{
    size_t n = strlen(path) + 32;
    char *tmp = shub_malloc(n);
    if (!tmp) {
        fprintf(stderr, "checkpoints: out of memory\n");
        return EX_OSERR;
    }
    snprintf(tmp, n, "%s.tmp-%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wx");
    if (!f) {
        fprintf(stderr, "checkpoints: cannot create '%s': %s\n", tmp, strerror(errno));
        shub_free(tmp);
        return EX_CANTCREAT;
    }
    shub_err_t err;
    shub_err_clear(&err);
    int code = 0;
    int rc = shub_agent_print_checkpoints(db, org, SHUB_AGENT_CP_EXPORT, f, witnessed,
                                          forks, &err);
    bool written = rc == 0 && fflush(f) == 0 && !ferror(f) && fsync(fileno(f)) == 0;
    int saved = errno;
    if (fclose(f) != 0)
        written = false;
    if (rc) {
        char line[1024];
        fprintf(stderr, "checkpoints: %s\n", shub_err_format(&err, line, sizeof line));
        code = EX_IOERR;
    } else if (!written || rename(tmp, path) != 0) {
        fprintf(stderr, "checkpoints: cannot write '%s': %s\n", path,
                strerror(written ? errno : saved));
        code = EX_IOERR;
    }
    if (code)
        unlink(tmp);
    shub_free(tmp);
    return code;
}

static int cmd_checkpoints(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"org", required_argument, NULL, 'o'},
        {"db", required_argument, NULL, 'd'},
        {"export", required_argument, NULL, 'e'},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *org = NULL, *db_path = NULL, *export = NULL, *format = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "o:d:e:f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            org = optarg;
            break;
        case 'd':
            db_path = optarg;
            break;
        case 'e':
            export = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case 'h':
        default:
            return shub_cli_usage(checkpoints_usage, c == 'h');
        }
    }
    const char *wrong =
        !org               ? "--org ID is required"
        : optind != argc   ? "unexpected argument"
        : export && format ? "--export and --format do not go together"
        : format && strcmp(format, "table") != 0 && strcmp(format, "json") != 0
            ? "--format must be table or json"
            : NULL;
    if (wrong) {
        fprintf(stderr, "checkpoints: %s\n", wrong);
        checkpoints_usage(stderr);
        return EX_USAGE;
    }
    if (!org_ok(org))
        return EX_USAGE;
    shub_agentdb_t *db = NULL;
    int code = open_existing(org, db_path, &db, "checkpoints");
    if (code)
        return code;
    size_t witnessed = 0, forks = 0;
    if (export && strcmp(export, "-") != 0) {
        code = export_to_file(db, org, export, &witnessed, &forks);
        if (code == 0)
            printf("exported %zu witnessed checkpoint%s and %zu fork%s to %s\n",
                   witnessed, witnessed == 1 ? "" : "s", forks, forks == 1 ? "" : "s",
                   export);
    } else {
        shub_agent_cp_format_t fmt = export ? SHUB_AGENT_CP_EXPORT
                                     : format && strcmp(format, "json") == 0
                                         ? SHUB_AGENT_CP_JSON
                                         : SHUB_AGENT_CP_TABLE;
        shub_err_t err;
        shub_err_clear(&err);
        if (shub_agent_print_checkpoints(db, org, fmt, stdout, &witnessed, &forks,
                                         &err)) {
            char line[1024];
            fprintf(stderr, "checkpoints: %s\n",
                    shub_err_format(&err, line, sizeof line));
            code = EX_IOERR;
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "checkpoints: writing output: %s\n", strerror(errno));
        code = code ? code : EX_IOERR;
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
            return shub_cli_version(prog);
        if ((strcmp(argv[i], "--log-level") == 0 || strcmp(argv[i], "-l") == 0) &&
            i + 1 < argc) {
            if ((level = shub_log_level_parse(argv[++i])) < 0) {
                fprintf(stderr, "%s: unknown log level '%s'\n", prog, argv[i]);
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
    shub_log_init(prog, (shub_log_level_t)level);
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
    if (strcmp(cmd, "checkpoints") == 0)
        return cmd_checkpoints(sub_argc, sub_argv);
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
    usage(stderr);
    return EX_USAGE;
}
