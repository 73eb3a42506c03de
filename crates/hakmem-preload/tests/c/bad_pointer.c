/* Hand a pointer hakmem never gave out to free, realloc or malloc_usable_size: hakmem
 * must print one line on stderr and abort (SIGABRT).
 *
 *   bad_pointer MODE      MODE: free-stack free-global free-interior free-large-interior
 *                               realloc-stack usable-stack
 *
 * Prints the bad pointer ("ptr=0x...") on stdout first, so the test can match it.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long global_var[4];

static void *show(void *p) {
    printf("ptr=%p\n", p);
    fflush(stdout);
    return p;
}

int main(int argc, char **argv) {
    long local[4] = {0};
    const char *m = argc > 1 ? argv[1] : "";
    void *volatile sink;
    if (!strcmp(m, "free-stack")) {
        free(show(local));
    } else if (!strcmp(m, "free-global")) {
        free(show(global_var));
    } else if (!strcmp(m, "free-interior")) {
        char *p = malloc(100);
        free(show(p + 16));
    } else if (!strcmp(m, "free-large-interior")) {
        char *p = malloc(1 << 20);
        free(show(p + 4096));
    } else if (!strcmp(m, "realloc-stack")) {
        sink = realloc(show(local), 10);
    } else if (!strcmp(m, "usable-stack")) {
        printf("%zu\n", malloc_usable_size(show(local)));
    } else {
        fprintf(stderr, "bad_pointer: unknown mode '%s'\n", m);
        return 2;
    }
    (void)sink;
    printf("bad_pointer: survived\n");
    return 0;
}
