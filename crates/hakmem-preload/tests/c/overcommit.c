/* Requests the kernel would refuse glibc are refused (issue 12, bug 3): for sizes 2^33..2^46,
 * malloc, calloc, realloc (growing a small block), posix_memalign and aligned_alloc under
 * hakmem must succeed exactly where glibc's own malloc (`__libc_malloc`, reached directly)
 * succeeds on this machine under its overcommit policy, fail with ENOMEM where it fails,
 * and leave nothing mapped after a failure (VmSize from /proc/self/statm). Also: 64 blocks
 * of 1 TiB requested at once are held only as far as glibc would hold them.
 *
 *   overcommit        under LD_PRELOAD=libhakmem.so
 *
 * Prints "overcommit: ok ..." or the first difference and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

static long vm_pages(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = -1;
    if (f) {
        if (fscanf(f, "%ld", &size) != 1) size = -1;
        fclose(f);
    }
    return size;
}

static int fails;

static void expect(const char *what, int k, void *p, int glibc_ok, int err, long before) {
    int ok = p != NULL;
    if (ok != glibc_ok) {
        printf("%s(2^%d): hakmem %s, glibc %s\n", what, k, ok ? "succeeded" : "failed",
               glibc_ok ? "succeeded" : "failed");
        fails++;
    }
    if (!ok) {
        if (err != ENOMEM) {
            printf("%s(2^%d): failed with errno %d, not ENOMEM\n", what, k, err);
            fails++;
        }
        long after = vm_pages();
        /* A failed request leaves no mapping behind (a few pages of slack for stdio). */
        if (after > before + 64) {
            printf("%s(2^%d): VmSize grew by %ld pages after a failure\n", what, k, after - before);
            fails++;
        }
    }
}

int main(void) {
    int refused = 0, granted = 0;
    for (int k = 33; k <= 46; k++) {
        size_t n = (size_t)1 << k;
        void *g = __libc_malloc(n);
        int glibc_ok = g != NULL;
        __libc_free(g);
        glibc_ok ? granted++ : refused++;

        long before = vm_pages();
        errno = 0;
        void *p = malloc(n);
        expect("malloc", k, p, glibc_ok, errno, before);
        free(p);

        before = vm_pages();
        errno = 0;
        p = calloc(n / 8, 8);
        expect("calloc", k, p, glibc_ok, errno, before);
        free(p);

        void *small = malloc(1 << 20);
        memset(small, 7, 1 << 20);
        before = vm_pages();
        errno = 0;
        p = realloc(small, n);
        expect("realloc", k, p, glibc_ok, errno, before);
        if (p) {
            free(p);
        } else if (((char *)small)[(1 << 20) - 1] != 7) {
            printf("realloc(2^%d) failed and damaged the old block\n", k);
            fails++;
            free(small);
        } else {
            free(small);
        }

        before = vm_pages();
        void *q = NULL;
        int r = posix_memalign(&q, (size_t)1 << 22, n);
        expect("posix_memalign", k, r == 0 ? q : NULL, glibc_ok, r, before);
        free(r == 0 ? q : NULL);

        before = vm_pages();
        errno = 0;
        p = aligned_alloc(4096, n);
        expect("aligned_alloc", k, p, glibc_ok, errno, before);
        free(p);
    }

    /* 64 blocks of 1 TiB at once: hakmem holds no more of them than glibc would. */
    static void *tib[64];
    int held_glibc = 0, held = 0;
    for (int i = 0; i < 64; i++) {
        tib[i] = __libc_malloc((size_t)1 << 40);
        held_glibc += tib[i] != NULL;
    }
    for (int i = 0; i < 64; i++) __libc_free(tib[i]);
    for (int i = 0; i < 64; i++) {
        tib[i] = malloc((size_t)1 << 40);
        held += tib[i] != NULL;
    }
    for (int i = 0; i < 64; i++) free(tib[i]);
    if (held > held_glibc) {
        printf("1 TiB blocks held at once: hakmem %d, glibc %d\n", held, held_glibc);
        fails++;
    }

    if (fails) {
        printf("overcommit: %d differences from glibc\n", fails);
        return 1;
    }
    printf("overcommit: ok (2^33..2^46: glibc granted %d sizes, refused %d; hakmem agreed on "
           "malloc, calloc, realloc, posix_memalign, aligned_alloc; 1 TiB blocks at once: %d)\n",
           granted, refused, held);
    return 0;
}
