/* Misuse probes: one heap misuse per MODE, run under LD_PRELOAD=libhakmem.so (of each
 * build: BALANCED, SAFE, hardened) by tests/misuse_probes.rs, which asserts what each
 * build does with it (docs/security.md has the table).
 *
 *   misuse MODE
 *
 * Before the misuse the program prints "ptr=0x..." (the pointer hakmem's report is
 * expected to name) and flushes stdout. A misuse that goes unnoticed prints "note: ..."
 * lines about what it led to, then "misuse: survived", and exits 0. Exit 2: unknown
 * mode; exit 3: the probe could not set itself up (no adjacent blocks found, ...).
 *
 * Every pointer goes through launder() so that the compiler can neither warn about nor
 * optimize the misuse (the test also compiles with -fno-builtin).
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static long global_var[4];

static void *launder(void *p) {
    void *volatile v = p;
    return v;
}

static void *show(void *p) {
    printf("ptr=%p\n", p);
    fflush(stdout);
    return launder(p);
}

static void note(const char *what, void *p) {
    printf("note: %s %p\n", what, p);
    fflush(stdout);
}

static int survived(void) {
    printf("misuse: survived\n");
    return 0;
}

/* Allocate `n` more blocks of `size` and note whether any comes out twice (a sign that
 * the free list now holds a block twice or loops). */
static void check_duplicates(size_t size, int n) {
    void *v[512];
    if (n > 512) n = 512;
    for (int i = 0; i < n; i++) {
        v[i] = malloc(size);
        for (int j = 0; j < i; j++) {
            if (v[j] == v[i]) {
                note("the same block was handed out twice:", v[i]);
                return;
            }
        }
    }
}

/* Double free of a block of `size` right after the first free. */
static int double_free(size_t size) {
    char *p = malloc(size);
    memset(p, 1, size);
    free(show(p));
    free(launder(p));
    check_duplicates(size, 8);
    return survived();
}

/* The block is freed, then thousands of other blocks of its class are freed (pushing it
 * out of the thread cache to the central lists) and thousands of allocations and frees
 * happen (none of which gets it back), then it is freed again. */
static int delayed_double_free(void) {
    enum { N = 4000, ROUNDS = 1000, BATCH = 32 };
    static char *a[N];
    char *b[BATCH];
    for (int i = 0; i < N; i++) a[i] = malloc(64);
    char *p = malloc(64);
    free(show(p));
    for (int i = 0; i < N; i++) free(a[i]);
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < BATCH; i++) {
            b[i] = malloc(64);
            if (b[i] == p) {
                /* The block came back: a second free would be a legitimate one. */
                printf("delayed-double-free: the block was handed out again\n");
                return 3;
            }
        }
        for (int i = 0; i < BATCH; i++) free(b[i]);
    }
    free(launder(p));
    return survived();
}

/* Free (or realloc) `p + off` for a block `p` of `size`. */
static int interior(size_t size, size_t off, int use_realloc) {
    char *p = malloc(size);
    memset(p, 1, size);
    char *q = show(p + off);
    if (use_realloc) {
        void *volatile r = realloc(q, size * 2);
        (void)r;
    } else {
        free(q);
    }
    return survived();
}

/* The start of a block of 100 bytes (class 112) that was carved into the thread cache
 * with `a`'s batch but never handed out: the block next to `a` in its slab, on the side
 * that is surely carved (slabs are carved from their start). Relies on hakmem's layout:
 * 4 MiB superslabs whose first 64 KiB are the header, then 64 KiB slabs for this class.
 * Then free (or realloc to another class) that block, and allocate the class again. */
static int never_handed_out(int use_realloc) {
    const size_t size = 100, bs = 112;
    char *a = malloc(size);
    uintptr_t ss = (uintptr_t)a & ~(uintptr_t)((4u << 20) - 1);
    uintptr_t in_slab = ((uintptr_t)a - ss - 65536) % 65536;
    char *c = show(in_slab >= bs ? a - bs : a + bs);
    if (use_realloc) {
        note("realloc returned", realloc(c, 4000));
    } else {
        free(c);
    }
    check_duplicates(size, 300);
    return survived();
}

/* Two blocks of `size` whose addresses are adjacent (b == a + usable size), out of a
 * batch of allocations (hardened builds shuffle the order). Frees the rest of the batch.
 * Returns 0 if none are found. */
static int adjacent_pair(size_t size, char **pa, char **pb) {
    enum { N = 256 };
    char *v[N];
    int ia = -1, ib = -1;
    for (int i = 0; i < N; i++) v[i] = malloc(size);
    size_t us = malloc_usable_size(v[0]);
    for (int i = 0; i < N && ia < 0; i++)
        for (int j = 0; j < N; j++)
            if (v[j] == v[i] + us) {
                ia = i;
                ib = j;
                break;
            }
    if (ia < 0) return 0;
    for (int i = 0; i < N; i++)
        if (i != ia && i != ib) free(v[i]);
    *pa = v[ia];
    *pb = v[ib];
    return 1;
}

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "";
    long local[4] = {0};
    /* stdout's buffer is allocated here, before any misuse. */
    printf("misuse: %s\n", m);
    fflush(stdout);

    if (!strcmp(m, "double-free-tiny")) {
        return double_free(48);
    } else if (!strcmp(m, "double-free-mid")) {
        return double_free(5000);
    } else if (!strcmp(m, "double-free-large")) {
        return double_free(1 << 20);
    } else if (!strcmp(m, "delayed-double-free")) {
        return delayed_double_free();
    } else if (!strcmp(m, "free-stack")) {
        free(show(local));
    } else if (!strcmp(m, "free-global")) {
        free(show(global_var));
    } else if (!strcmp(m, "free-mmap")) {
        void *p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (p == MAP_FAILED) return 3;
        free(show(p));
    } else if (!strcmp(m, "free-interior-tiny")) {
        return interior(100, 16, 0);
    } else if (!strcmp(m, "free-interior-mid")) {
        return interior(5000, 64, 0);
    } else if (!strcmp(m, "free-interior-large")) {
        return interior(1 << 20, 4096, 0);
    } else if (!strcmp(m, "free-never-handed-out")) {
        return never_handed_out(0);
    } else if (!strcmp(m, "realloc-never-handed-out")) {
        return never_handed_out(1);
    } else if (!strcmp(m, "realloc-stack")) {
        void *volatile r = realloc(show(local), 10);
        (void)r;
    } else if (!strcmp(m, "realloc-interior")) {
        return interior(100, 16, 1);
    } else if (!strcmp(m, "realloc-freed")) {
        /* To another size class: the old block is freed a second time. */
        char *p = malloc(48);
        free(show(p));
        char *q = realloc(launder(p), 4000);
        note("realloc returned", q);
        return survived();
    } else if (!strcmp(m, "realloc-freed-same-class")) {
        /* Within the block's size class realloc returns the pointer as it is. */
        char *p = malloc(48);
        free(show(p));
        char *q = realloc(launder(p), 40);
        note("realloc returned", q);
        return survived();
    } else if (!strcmp(m, "write-after-free")) {
        /* 16 bytes over the start of a freed block (its free-list link and mark), then
         * the same size allocated a few times. */
        char *p = malloc(64), *q = malloc(64);
        free(q);
        free(show(p));
        memset(launder(p), 0x41, 16);
        for (int i = 0; i < 4; i++) note("malloc returned", malloc(64));
        return survived();
    } else if (!strcmp(m, "write-after-free-tail")) {
        /* Over a freed block's bytes 16..64 only (past the link and the mark). */
        char *p = malloc(64), *q = malloc(64);
        free(q);
        free(show(p));
        memset((char *)launder(p) + 16, 0x41, 48);
        for (int i = 0; i < 4; i++) note("malloc returned", malloc(64));
        return survived();
    } else if (!strcmp(m, "overflow-into-free")) {
        /* One byte past a's usable size lands on the first byte of the free block b
         * (its free-list link); the byte written differs from the old one in every bit
         * (a zero byte, the classic off-by-one, would change the link only when its
         * low byte is not already zero). Then the class is allocated again. */
        char *a, *b;
        if (!adjacent_pair(32, &a, &b)) return 3;
        size_t us = malloc_usable_size(a);
        free(b);
        show(b);
        a[us] = (char)~a[us];
        for (int i = 0; i < 3; i++) {
            char *q = malloc(32);
            if ((uintptr_t)q & 15) {
                note("malloc returned a misaligned pointer", q);
                return survived();
            }
        }
        return survived();
    } else if (!strcmp(m, "overflow-into-live")) {
        /* One byte past a's usable size lands in the live block b. */
        char *a, *b;
        if (!adjacent_pair(32, &a, &b)) return 3;
        size_t us = malloc_usable_size(a);
        memset(b, 0, 32);
        show(b);
        a[us] = 0x41;
        if (b[0] == 0x41) note("the neighbour's first byte was overwritten:", b);
        free(a);
        free(b);
        for (int i = 0; i < 3; i++) free(malloc(32));
        return survived();
    } else if (!strcmp(m, "usable-size-freed")) {
        char *p = malloc(48);
        free(show(p));
        printf("note: malloc_usable_size of the freed block: %zu\n",
               malloc_usable_size(launder(p)));
        return survived();
    } else if (!strcmp(m, "usable-size-freed-large")) {
        char *p = malloc(1 << 20);
        free(show(p));
        printf("note: malloc_usable_size of the freed block: %zu\n",
               malloc_usable_size(launder(p)));
        return survived();
    } else {
        fprintf(stderr, "misuse: unknown mode '%s'\n", m);
        return 2;
    }
    return survived();
}
