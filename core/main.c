/* lodge: the command-line entry point. Subcommands live in their own files. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        printf("usage: lodge COMMAND [OPTIONS]\n");
        return argc < 2 ? 2 : 0;
    }
    fprintf(stderr, "lodge: unknown command '%s' (try lodge --help)\n", argv[1]);
    return 2;
}
