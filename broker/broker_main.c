/*
 * sharehub-broker: runs the hub in the foreground. Signal handlers only set
 * flags; the loop acts on them between turns: SIGTERM/SIGINT finish the batch
 * in hand, commit, sign a checkpoint and exit 0; SIGHUP reloads organisations
 * and agreements, keeping the old set if the new one does not load.
 */
#include "sharehub/config.h"
#include "sharehub/hub.h"
#include "sharehub/log.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;

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
            "usage: sharehub-broker --config DIR [--db FILE] [--endpoint URL] [--keys DIR]\n"
            "                       [--ready-file FILE] [--log-level LEVEL]\n"
            "       sharehub-broker --check --config DIR\n"
            "\n"
            "Routes events between partner organisations under the information-sharing\n"
            "agreements in DIR (hub.yaml, orgs.yaml, agreements/*.yaml), default deny,\n"
            "with a tamper-evident audit log. Runs in the foreground; logs to stderr.\n"
            "\n"
            "  -c, --config DIR      configuration directory (required)\n"
            "  -d, --db FILE         database (default: hub.yaml's `database`)\n"
            "  -e, --endpoint URL    bind here (default: hub.yaml's `endpoint`);\n"
            "                        tcp://127.0.0.1:* picks a free port\n"
            "  -k, --keys DIR        broker and organisation keys (default: hub.yaml's)\n"
            "  -r, --ready-file FILE write the bound endpoint here once listening\n"
            "  -l, --log-level L     debug, info (default), warn, error\n"
            "      --check           validate the configuration and exit\n"
            "  -h, --help            this text\n"
            "\n"
            "signals: TERM/INT stop cleanly (commit, sign a checkpoint); HUP reloads\n"
            "organisations and agreements (a config that fails keeps the old one)\n"
            "exit: 0 clean stop or valid config, 64 usage, 78 bad configuration,\n"
            "      69 cannot start (keys, database, endpoint)\n");
}

static void print_config_error(const shub_err_t *err, void *ctx)
{
    int *count = ctx;
    char line[1024];
    fprintf(stderr, "%s\n", shub_err_format(err, line, sizeof line));
    (*count)++;
}

static int check_config(const char *dir, const char *keys)
{
    shub_config_t *cfg = NULL;
    int errors = 0;
    shub_config_opts_t opts = {.key_dir = keys};
    int rc = shub_config_load(dir, &opts, &cfg, print_config_error, &errors);
    if (rc) {
        fprintf(stderr, "sharehub-broker: %d error%s in %s\n", errors, errors == 1 ? "" : "s",
                dir);
        return EX_CONFIG;
    }
    printf("%s: ok (%zu organisations, %zu agreements)\n", dir, shub_config_org_count(cfg),
           shub_config_agreement_count(cfg));
    shub_config_destroy(&cfg);
    return 0;
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
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    shub_hub_opts_t opts = {0};
    bool check = false;
    int level = SHUB_LOG_INFO, c;
    while ((c = getopt_long(argc, argv, "c:d:e:k:r:l:h", longopts, NULL)) != -1) {
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
                fprintf(stderr, "sharehub-broker: unknown log level '%s'\n", optarg);
                return EX_USAGE;
            }
            break;
        case 'C':
            check = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (!opts.config_dir || optind != argc) {
        usage(stderr);
        return EX_USAGE;
    }
    shub_log_init("sharehub-broker", (shub_log_level_t)level);
    if (check)
        return check_config(opts.config_dir, opts.key_dir);

    struct sigaction sa = {0};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_reload;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    shub_hub_t *hub = NULL;
    shub_err_t err;
    int rc = shub_hub_new(&opts, &hub, &err);
    if (rc) {
        char line[1024];
        shub_error("cannot start: %s", shub_err_format(&err, line, sizeof line));
        return rc == SHUB_ECONFIG ? EX_CONFIG : EX_UNAVAILABLE;
    }
    shub_info("ready endpoint=%s", shub_hub_endpoint(hub));
    while (!stop_flag) {
        if (reload_flag) {
            reload_flag = 0;
            shub_hub_reload(hub);
        }
        shub_hub_poll(hub, 100);
    }
    shub_info("stopping: committing and signing a checkpoint");
    shub_hub_destroy(&hub);
    shub_info("stopped");
    return 0;
}
