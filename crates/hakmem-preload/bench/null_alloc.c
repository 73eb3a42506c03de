/* The cost of calling an allocator in a shared object, without an allocator: blocks come
 * from a static ring of 16-byte cells, free does nothing. mixed.c built with
 * -DNULL_ALLOC calls these instead of malloc/free (through the PLT, as a preloaded
 * malloc is called), which gives the "call floor" of the comparison in compare.sh.
 *
 *   cc -O2 -fPIC -shared -o libnull_alloc.so null_alloc.c
 */
#include <stddef.h>

static char ring[4096][16] __attribute__((aligned(16)));
static size_t next_cell;

void *null_malloc(size_t n) {
    (void)n;
    return ring[next_cell++ & 4095];
}

void null_free(void *p) { (void)p; }
