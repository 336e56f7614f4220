/*
 * exit_table: writes SHUB_EXIT_CODES (include/sharehub/cli.h) as a Markdown
 * table into the file named by its argument, for the man pages' EXIT STATUS
 * sections (scripts/md2man.awk puts it where a page says
 * <!-- exit-status -->). Run by the build; the header stays the one list.
 */
#include "sharehub/cli.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    FILE *out = argc == 2 ? fopen(argv[1], "w") : NULL;
    if (!out) {
        fprintf(stderr, "usage: exit_table FILE\n");
        return 64;
    }
    fprintf(out, "| status | name | meaning |\n| --- | --- | --- |\n");
#define ROW(code, name, meaning) fprintf(out, "| %d | %s | %s |\n", code, name, meaning);
    SHUB_EXIT_CODES(ROW)
#undef ROW
    return fclose(out) == 0 ? 0 : 74;
}
