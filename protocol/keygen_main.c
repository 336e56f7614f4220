/*
 * sharehub-keygen: writes key files, in three shapes.
 *
 *   --broker     the broker's own set where missing: broker.pub/.key (CURVE),
 *                checkpoint.pub/.key (signs the audit log), subject.key.
 *   --org ID     everything one organisation's agent needs, in one new
 *                directory (0700) to hand to that organisation: its key pair
 *                (the secret 0600), the broker's two public keys, a hub.yaml
 *                naming the broker's address, a copy of orgs.yaml, and
 *                agent.env, the systemd options ready to edit. The broker's
 *                key directory receives only ID.pub: it holds no
 *                organisation's secret.
 *   NAME...      a bare CURVE pair per NAME, for a partner that makes its own
 *                on its own host and sends only NAME.pub.
 *
 * Exit codes are include/sharehub/cli.h's.
 */
#include "sharehub/agent.h"
#include "sharehub/alloc.h"
#include "sharehub/cli.h"
#include "sharehub/file.h"
#include "sharehub/keys.h"
#include "sharehub/version.h"

#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

static const char prog[] = "sharehub-keygen";

#define MAX_COPY_BYTES (1024 * 1024) /* the broker's bound on one YAML file */

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: sharehub-keygen --broker [--dir DIR]\n"
        "       sharehub-keygen --org ID [--config DIR] [--keys DIR] [--out DIR]\n"
        "                       [--endpoint URL] [--force]\n"
        "       sharehub-keygen [--dir DIR] [--force] NAME...\n"
        "       sharehub-keygen --version | --help\n"
        "\n"
        "--broker writes the broker's keys where missing, in DIR "
        "(default\n" SHUB_CONFIG_DIR
        "/keys): broker.pub/.key, checkpoint.pub/.key (signs the\n"
        "audit log) and subject.key (keys the hash of subject references).\n"
        "\n"
        "--org ID makes the directory ID's agent needs, OUT (default ./ID, mode 0700):\n"
        "ID.key (its secret key, 0600), ID.pub, broker.pub, checkpoint.pub, hub.yaml\n"
        "(the broker's address, key_dir .), a copy of orgs.yaml, and agent.env (the\n"
        "options of sharehub-agent@ID.service, ready to edit). It writes ID.pub, and\n"
        "nothing secret, into the broker's key directory. ID must be in orgs.yaml.\n"
        "Install OUT on the agent's host as " SHUB_CONFIG_DIR "/agents/ID, then\n"
        "delete it here.\n"
        "\n"
        "NAME... writes a bare CURVE pair per NAME, DIR/NAME.pub and DIR/NAME.key\n"
        "(0600), for a partner that makes its own key and sends only NAME.pub.\n"
        "\n"
        "  -b, --broker        write the broker's key set\n"
        "  -o, --org ID        make ID's agent directory\n"
        "  -c, --config DIR    the broker's configuration, for --org (default\n"
        "                      " SHUB_CONFIG_DIR ")\n"
        "  -k, --keys DIR      the broker's key directory (default: hub.yaml's key_dir)\n"
        "  -O, --out DIR       the directory --org makes (default ./ID)\n"
        "  -e, --endpoint URL  the broker's address as the agent reaches it (default:\n"
        "                      hub.yaml's endpoint, if it is not a wildcard)\n"
        "  -d, --dir DIR       where --broker and NAME... write (default: see above, .)\n"
        "  -f, --force         replace existing keys\n"
        "  -V, --version       print the version and exit\n"
        "  -h, --help          this text\n"
        "\n");
    shub_cli_exit_help(out);
}

static int fail(int code, const shub_err_t *err)
{
    char line[1024];
    fprintf(stderr, "%s: %s\n", prog, shub_err_format(err, line, sizeof line));
    return code;
}

/* The exit code for a failed write: an existing file or a directory that
 * refuses it is "cannot create"; anything else is I/O. */
static int write_failed(const shub_err_t *err)
{
    return fail(
        err->code == SHUB_EEXIST || err->code == SHUB_EIO ? EX_CANTCREAT : EX_IOERR, err);
}

/* ---- --org ----------------------------------------------------------------- */

typedef struct bundle {
    const char *org, *config, *keys, *out, *endpoint;
    bool force;
} bundle_t;

/* What the bundle copies from the broker's key directory. */
static const struct {
    const char *name, *role;
} broker_public[] = {
    {"broker.pub", "the broker's public key; run sharehub-keygen --broker first"},
    {"checkpoint.pub", "the broker's checkpoint key; run sharehub-keygen --broker first"},
};

/* Copies DIR/name from the broker's side into the bundle. */
static int copy_in(const bundle_t *b, const char *dir, const char *name)
{
    char from[4200], to[4200];
    shub_err_t err;
    snprintf(from, sizeof from, "%s/%s", dir, name);
    snprintf(to, sizeof to, "%s/%s", b->out, name);
    char *text = NULL;
    size_t len = 0;
    int rc = shub_file_read(from, MAX_COPY_BYTES, &text, &len, &err);
    if (rc == 0)
        rc = shub_keys_write_file(to, text, len, 0644, true, &err);
    shub_free(text);
    return rc ? write_failed(&err) : 0;
}

/* A wildcard is where the broker listens, not an address anyone can reach. */
static bool is_wildcard(const char *endpoint)
{
    return strchr(endpoint, '*') || strstr(endpoint, "://0.0.0.0") ||
           strstr(endpoint, "://[::]");
}

static int write_text(const bundle_t *b, const char *name, const char *text)
{
    char path[4200];
    shub_err_t err;
    snprintf(path, sizeof path, "%s/%s", b->out, name);
    if (shub_keys_write_file(path, text, strlen(text), 0644, true, &err))
        return write_failed(&err);
    return 0;
}

static int write_agent_files(const bundle_t *b, const char *endpoint)
{
    char text[4096];
    snprintf(
        text, sizeof text,
        "# %s's agent: where the broker is and where the keys are. Written by\n"
        "# sharehub-keygen %s from %s/hub.yaml; an agent reads only these two.\n"
        "endpoint: \"%s\"   # the broker, as this agent's host reaches it\n"
        "key_dir: \".\"   # this directory: %s.key, %s.pub, broker.pub, checkpoint.pub\n",
        b->org, SHUB_VERSION, b->config, endpoint, b->org, b->org);
    int code = write_text(b, "hub.yaml", text);
    if (code)
        return code;
    snprintf(
        text, sizeof text,
        "# Options of sharehub-agent@%s.service, which reads this file as its\n"
        "# EnvironmentFile. systemd splits the value at spaces, so each option and\n"
        "# its value are single words: a command with arguments goes in a script.\n"
        "#\n"
        "#   --on-receive /usr/local/bin/import-event   run for each event received,\n"
        "#                                              the event as JSON on stdin\n"
        "#   --broker tcp://HOST:PORT                   instead of hub.yaml's endpoint\n"
        "#   --log-level debug                          more detail in the journal\n"
        "#\n"
        "# The agent only relays: it sends what is submitted (sharehub-agent submit)\n"
        "# and stores what it receives. See sharehub-agent(1).\n"
        "SHAREHUB_AGENT_OPTS=\n",
        b->org);
    return write_text(b, "agent.env", text);
}

/* The broker's copy of the new public key: refused if another key is there
 * already, unless --force (the agent holding that key is then refused). */
static int check_broker_copy(const bundle_t *b, const char *keys, char *path, size_t size)
{
    shub_err_t err;
    snprintf(path, size, "%s/%s.pub", keys, b->org);
    if (!b->force && access(path, F_OK) == 0) {
        shub_err_set(
            &err, SHUB_EEXIST,
            "'%s' exists: %s has a key already; --force replaces it, and the agent "
            "holding the old one is refused from then on",
            path, b->org);
        return fail(EX_CANTCREAT, &err);
    }
    return 0;
}

static int make_bundle(const bundle_t *b)
{
    shub_err_t err;
    char path[4200];
    snprintf(path, sizeof path, "%s/orgs.yaml", b->config);
    int code = shub_cli_need(b->config, SHUB_CLI_DIR, "the broker's configuration", &err);
    if (!code)
        code =
            shub_cli_need(path, SHUB_CLI_FILE, "the partnership's organisations", &err);
    if (code)
        return fail(code, &err);
    shub_agent_config_t *cfg = NULL;
    shub_err_clear(&err);
    int rc = shub_agent_config_load(b->config, b->org, &cfg, &err);
    if (rc == SHUB_ENOTFOUND) { /* the organisation is not in orgs.yaml */
        fail(EX_CONFIG, &err);
        fprintf(stderr, "%s: add %s to orgs.yaml first\n", prog, b->org);
        return EX_CONFIG;
    }
    if (rc)
        return fail(shub_cli_exit(rc), &err);
    const char *keys = b->keys ? b->keys : cfg->key_dir;
    const char *endpoint = b->endpoint ? b->endpoint : cfg->endpoint;
    shub_curve_keys_t pair;
    memset(&pair, 0, sizeof pair);
    if (!endpoint || is_wildcard(endpoint)) {
        fprintf(
            stderr,
            "%s: %s%s%s is where the broker listens, not an address %s can reach; give "
            "--endpoint tcp://HOST:PORT\n",
            prog, endpoint ? "hub.yaml's endpoint '" : "hub.yaml has no endpoint",
            endpoint ? endpoint : "", endpoint ? "'" : "", b->org);
        code = EX_USAGE;
        goto done;
    }
    /* Everything it copies must be there before anything is made. */
    for (size_t i = 0; i < sizeof broker_public / sizeof broker_public[0]; i++) {
        char from[4200];
        snprintf(from, sizeof from, "%s/%s", keys, broker_public[i].name);
        if ((code = shub_cli_need(from, SHUB_CLI_FILE, broker_public[i].role, &err))) {
            fail(code, &err);
            goto done;
        }
    }
    if ((code = check_broker_copy(b, keys, path, sizeof path)))
        goto done;
    if (mkdir(b->out, 0700) != 0 && errno != EEXIST) {
        shub_err_set(&err, SHUB_EIO, "cannot create '%s': %s", b->out, strerror(errno));
        code = fail(EX_CANTCREAT, &err);
        goto done;
    }
    if (chmod(b->out, 0700) != 0) {
        shub_err_set(&err, SHUB_EIO, "cannot make '%s' private: %s", b->out,
                     strerror(errno));
        code = fail(EX_CANTCREAT, &err);
        goto done;
    }
    if (shub_keys_generate(&pair, &err))
        code = fail(EX_OSERR, &err);
    else if (shub_keys_write(b->out, b->org, &pair, b->force, &err))
        code = write_failed(&err);
    for (size_t i = 0; !code && i < sizeof broker_public / sizeof broker_public[0]; i++)
        code = copy_in(b, keys, broker_public[i].name);
    if (code || (code = copy_in(b, b->config, "orgs.yaml")) ||
        (code = write_agent_files(b, endpoint)))
        goto done;
    char text[SHUB_KEY_Z85 + 1];
    snprintf(text, sizeof text, "%s\n", pair.public_z85);
    if (shub_keys_write_file(path, text, strlen(text), 0644, true, &err)) {
        code = write_failed(&err);
        goto done;
    }
    printf(
        "%s %s\n"
        "  %s/ (0700): %s.key (0600) %s.pub broker.pub checkpoint.pub hub.yaml orgs.yaml "
        "agent.env\n"
        "  %s: the broker's copy of the public key (reload the broker to admit it)\n"
        "  next: install %s/ on %s's agent host as " SHUB_CONFIG_DIR "/agents/%s, owned\n"
        "  by the user the agent runs as, then delete it here\n",
        b->org, pair.public_z85, b->out, b->org, b->org, path, b->out, b->org, b->org);
done:
    sodium_memzero(&pair, sizeof pair);
    shub_agent_config_destroy(&cfg);
    return code;
}

/* ---- --broker and NAME... ------------------------------------------------- */

static int make_pairs(const char *dir, bool force, char **names, int n)
{
    shub_err_t err;
    for (int i = 0; i < n; i++) {
        shub_curve_keys_t keys;
        int rc = shub_keys_generate(&keys, &err);
        if (rc == 0)
            rc = shub_keys_write(dir, names[i], &keys, force, &err);
        if (rc) {
            sodium_memzero(&keys, sizeof keys);
            return rc == SHUB_ECRYPTO ? fail(EX_OSERR, &err) : write_failed(&err);
        }
        printf("%s %s\n", names[i], keys.public_z85);
        sodium_memzero(&keys, sizeof keys);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"force", no_argument, NULL, 'f'},
        {"broker", no_argument, NULL, 'b'},
        {"org", required_argument, NULL, 'o'},
        {"config", required_argument, NULL, 'c'},
        {"keys", required_argument, NULL, 'k'},
        {"out", required_argument, NULL, 'O'},
        {"endpoint", required_argument, NULL, 'e'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    bool broker = false;
    bundle_t b = {.config = SHUB_CONFIG_DIR};
    int c;
    while ((c = getopt_long(argc, argv, "d:fbo:c:k:O:e:Vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'f':
            b.force = true;
            break;
        case 'b':
            broker = true;
            break;
        case 'o':
            b.org = optarg;
            break;
        case 'c':
            b.config = optarg;
            break;
        case 'k':
            b.keys = optarg;
            break;
        case 'O':
            b.out = optarg;
            break;
        case 'e':
            b.endpoint = optarg;
            break;
        case 'V':
            return shub_cli_version(prog);
        case 'h':
        default:
            return shub_cli_usage(usage, c == 'h');
        }
    }
    int shapes = broker + (b.org != NULL) + (optind < argc);
    const char *wrong = shapes != 1 ? "give one of --broker, --org ID or NAME..."
                        : b.org && dir
                            ? "--dir does not apply to --org; see --out and --keys"
                        : b.org && !shub_is_name(b.org) ? "--org: not an organisation id"
                                                        : NULL;
    if (wrong) {
        fprintf(stderr, "%s: %s\n", prog, wrong);
        usage(stderr);
        return EX_USAGE;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "%s: libsodium failed to initialise\n", prog);
        return EX_OSERR;
    }
    if (b.org) {
        char out[4096];
        snprintf(out, sizeof out, "./%s", b.org);
        b.out = b.out ? b.out : out;
        return make_bundle(&b);
    }
    if (broker) {
        shub_err_t err;
        dir = dir ? dir : SHUB_CONFIG_DIR "/keys";
        if (shub_keys_ensure_broker(dir, &err) != 0)
            return write_failed(&err);
        printf("broker keys in %s\n", dir);
        return 0;
    }
    return make_pairs(dir ? dir : ".", b.force, argv + optind, argc - optind);
}
