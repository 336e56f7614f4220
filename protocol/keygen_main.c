/*
 * sharehub-keygen: writes key files. An organisation's CURVE keypair
 * (NAME.pub, NAME.key with mode 0600), or with --broker the broker's full set
 * (CURVE pair, checkpoint signing pair, subject-hash key). Secret keys are
 * generated here and never leave the machine that made them.
 */
#include "sharehub/cli.h"
#include "sharehub/keys.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sharehub-keygen [--dir DIR] [--force] NAME...\n"
            "       sharehub-keygen --broker [--dir DIR]\n"
            "\n"
            "Writes a CURVE keypair for each NAME (an organisation id) as DIR/NAME.pub\n"
            "(z85 public key: put it in orgs.yaml or leave it in the key directory)\n"
            "and DIR/NAME.key (the secret key, mode 0600; give it only to that\n"
            "organisation's agent). With --broker, writes the broker's keys where\n"
            "missing: broker.pub/.key, checkpoint.pub/.key (signs the audit log)\n"
            "and subject.key (keys the hash of subject references).\n"
            "\n"
            "  -d, --dir DIR   where to write (default: .)\n"
            "  -f, --force     overwrite existing NAME keys\n"
            "  -b, --broker    write the broker's key set\n"
            "  -V, --version   print the version and exit\n"
            "  -h, --help      this text\n"
            "\n");
    shub_cli_exit_help(out);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'}, {"force", no_argument, NULL, 'f'},
        {"broker", no_argument, NULL, 'b'},    {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    const char *dir = ".";
    bool force = false, broker = false;
    int c;
    while ((c = getopt_long(argc, argv, "d:fbVh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'b':
            broker = true;
            break;
        case 'V':
            return shub_cli_version("sharehub-keygen");
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (broker == (optind < argc)) {
        usage(stderr);
        return EX_USAGE;
    }
    shub_err_t err;
    char msg[512];
    if (broker) {
        if (shub_keys_ensure_broker(dir, &err) != 0) {
            fprintf(stderr, "sharehub-keygen: %s\n", shub_err_format(&err, msg, sizeof msg));
            return err.code == SHUB_EIO ? EX_CANTCREAT : EX_IOERR;
        }
        printf("broker keys in %s\n", dir);
        return 0;
    }
    for (int i = optind; i < argc; i++) {
        shub_curve_keys_t keys;
        if (shub_keys_generate(&keys, &err) != 0 ||
            shub_keys_write(dir, argv[i], &keys, force, &err) != 0) {
            fprintf(stderr, "sharehub-keygen: %s\n", shub_err_format(&err, msg, sizeof msg));
            return err.code == SHUB_EEXIST || err.code == SHUB_EIO ? EX_CANTCREAT : EX_IOERR;
        }
        printf("%s %s\n", argv[i], keys.public_z85);
        memset(&keys, 0, sizeof keys);
    }
    return 0;
}
