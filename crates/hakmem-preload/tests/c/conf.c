/* Settings baked into a program, as jemalloc's malloc_conf: libhakmem reads the
 * program's `hakmem_conf` at its first allocation. The symbol must be exported (linked
 * with -rdynamic or -Wl,--export-dynamic-symbol=hakmem_conf, or against libhakmem.so).
 * The last entry is not a gate: it is left out, with one line on stderr. */
#include <stdio.h>
#include <stdlib.h>

const char *hakmem_conf = "HAKMEM_LARGE_CACHE_MIB=3,HAKMEM_SS_CACHE_MAX=2, HAKMEM_NOT_A_GATE=1";

int main(void) {
    void *p = malloc(100);
    void *q = malloc(1 << 20);
    free(q);
    free(p);
    printf("conf: ok\n");
    return 0;
}
