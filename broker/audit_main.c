/*
 * sharehub-audit: what an auditor or data-protection officer runs against a
 * broker's database. It opens the database read-only, so it works while the
 * broker runs. Each subcommand is one function in the table at the bottom;
 * the checking itself lives in the store (shub_store_verify), so tests reach
 * it without this program.
 */
#include "sharehub/keys.h"
#include "sharehub/store.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#define EXIT_TAMPERED 1 /* the log does not verify: distinct from usage and I/O errors */

static void usage_verify(FILE *out)
{
    fprintf(out,
            "usage: sharehub-audit verify --db FILE [--key CHECKPOINT.pub]\n"
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
    char line[1024];
    uint8_t pub[SHUB_SIGN_PUBLIC];
    if (key && shub_keys_read_hex(key, pub, sizeof pub, false, &err) != 0) {
        fprintf(stderr, "sharehub-audit: %s\n", shub_err_format(&err, line, sizeof line));
        return EX_NOINPUT;
    }
    shub_verify_result_t res;
    int rc = shub_store_verify(db, key ? pub : NULL, &res, &err);
    if (rc) {
        fprintf(stderr, "sharehub-audit: %s\n", shub_err_format(&err, line, sizeof line));
        return rc == SHUB_ENOTFOUND || rc == SHUB_EIO ? EX_NOINPUT : EX_DATAERR;
    }
    if (!res.ok) {
        printf("FAILED at row %lld: %s\n", (long long)res.bad_seq, res.problem);
        printf("checked %lld rows, %lld checkpoints\n", (long long)res.rows,
               (long long)res.checkpoints);
        return EXIT_TAMPERED;
    }
    printf("ok: %lld rows, %lld checkpoints verified\n", (long long)res.rows,
           (long long)res.checkpoints);
    return 0;
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"verify", cmd_verify, "check the hash chain and signed checkpoints"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: sharehub-audit COMMAND [OPTIONS]\n\n"
                 "Reads a sharehub broker's audit log (read-only; safe while it runs).\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`sharehub-audit COMMAND --help` describes each command.\n");
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
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "sharehub-audit: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EX_USAGE;
}
