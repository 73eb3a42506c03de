/* The C semantics of every function libhakmem.so exports, checked from C.
 *
 *   api          under LD_PRELOAD=libhakmem.so: every check, and that the functions
 *                really resolve to libhakmem.so
 *   api glibc    without the preload: the checks glibc 2.36 also passes (a check of
 *                the test itself)
 *
 * Prints "api: N checks passed" and exits 0, or lists each failure and exits 1.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int checks, failures, glibc_mode;

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (cond) {                                                                   \
            checks++;                                                                 \
        } else {                                                                      \
            failures++;                                                               \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
        }                                                                             \
    } while (0)

/* Values the compiler cannot see through. */
static size_t v(size_t x) {
    volatile size_t y = x;
    return y;
}

/* A failed realloc leaves its block live: keep a copy the compiler cannot track, so that
 * -Wuse-after-free does not object to using it afterwards. */
static void *volatile kept;

static int aligned_to(void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

static int all_bytes(const void *p, int c, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)c) return 0;
    return 1;
}

static void fill(void *p, size_t n, unsigned seed) {
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(seed + i * 7);
}

static int check_fill(const void *p, size_t n, unsigned seed) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(seed + i * 7)) return 0;
    return 1;
}

static void resolves_to_hakmem(void) {
    static const char *names[] = {
        "malloc",  "free",    "calloc", "realloc", "reallocarray", "posix_memalign",
        "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size", "cfree",
        "free_sized", "free_aligned_sized", "malloc_trim", "malloc_stats", "mallinfo2",
        "mallinfo",
        /* glibc's own names: a block from them goes to hakmem's free, and back */
        "__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc",
        "__libc_memalign", "__libc_valloc", "__libc_pvalloc", "__posix_memalign",
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        void *f = dlsym(RTLD_DEFAULT, names[i]);
        Dl_info info;
        int ok = f && dladdr(f, &info) && info.dli_fname && strstr(info.dli_fname, "libhakmem");
        CHECK(ok, "%s resolves to %s", names[i], f && dladdr(f, &info) ? info.dli_fname : "?");
    }
}

static void malloc_and_free(void) {
    void *a = malloc(v(0)), *b = malloc(v(0));
    CHECK(a && b && a != b, "malloc(0) gives unique pointers: %p %p", a, b);
    free(a);
    free(b);
    free(NULL);
    errno = EDOM;
    free(NULL);
    CHECK(errno == EDOM, "free(NULL) keeps errno");

    size_t sizes[] = {1, 8, 15, 16, 17, 100, 127, 128, 129, 1000, 1024, 1025, 4096, 5000,
                      65536, 100000, 262144, 262145, 300000, 1 << 20, 5 << 20, 33 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = v(sizes[i]);
        errno = EDOM;
        char *p = malloc(n);
        CHECK(p != NULL, "malloc(%zu)", n);
        if (!p) continue;
        CHECK(errno == EDOM, "malloc(%zu) keeps errno", n);
        CHECK(aligned_to(p, 16), "malloc(%zu) = %p is 16-aligned", n, (void *)p);
        size_t u = malloc_usable_size(p);
        CHECK(u >= n, "usable %zu >= %zu", u, n);
        memset(p, 0x5A, u);
        CHECK(all_bytes(p, 0x5A, u), "all %zu usable bytes writable", u);
        errno = EDOM;
        free(p);
        CHECK(errno == EDOM, "free keeps errno (size %zu)", n);
    }
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) == 0");

    size_t huge[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX};
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        errno = 0;
        void *p = malloc(v(huge[i]));
        CHECK(p == NULL && errno == ENOMEM, "malloc(%zx) = %p, errno %d", huge[i], p, errno);
    }
}

static void many_blocks_do_not_overlap(void) {
    enum { N = 20000 };
    static char *ptrs[N];
    static size_t lens[N];
    unsigned x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        size_t n = (x >> 8) % (i % 50 == 0 ? 300000 : 2048);
        ptrs[i] = malloc(n);
        lens[i] = n;
        if (ptrs[i]) fill(ptrs[i], n, (unsigned)i);
    }
    int bad = 0;
    for (int i = 0; i < N; i++)
        if (!ptrs[i] || !check_fill(ptrs[i], lens[i], (unsigned)i)) bad++;
    CHECK(bad == 0, "%d of %d blocks corrupted or missing", bad, N);
    for (int i = 0; i < N; i += 2) free(ptrs[i]);
    for (int i = 1; i < N; i += 2) bad += !check_fill(ptrs[i], lens[i], (unsigned)i);
    CHECK(bad == 0, "%d blocks corrupted after freeing their neighbours", bad);
    for (int i = 1; i < N; i += 2) free(ptrs[i]);
}

static void calloc_semantics(void) {
    size_t sizes[] = {8, 100, 1000, 3000, 70000, 300000, 5 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        void *v8[8];
        for (int k = 0; k < 8; k++) {
            v8[k] = malloc(n);
            memset(v8[k], 0xAB, n);
        }
        for (int k = 0; k < 8; k++) free(v8[k]);
        int dirty = 0;
        for (int k = 0; k < 8; k++) {
            errno = EDOM;
            v8[k] = calloc(v(1), n);
            CHECK(errno == EDOM, "calloc keeps errno");
            dirty += !v8[k] || !all_bytes(v8[k], 0, n);
        }
        CHECK(dirty == 0, "calloc(1, %zu) zeroed (after reuse): %d dirty", n, dirty);
        for (int k = 0; k < 8; k++) free(v8[k]);
    }
    void *a = calloc(v(0), 10), *b = calloc(10, v(0));
    CHECK(a && b && a != b, "calloc with a zero count gives unique pointers");
    free(a);
    free(b);
    size_t over[][2] = {{SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 33, (size_t)1 << 33}, {SIZE_MAX, SIZE_MAX},
                        {(size_t)PTRDIFF_MAX, 2}};
    for (size_t i = 0; i < sizeof over / sizeof *over; i++) {
        errno = 0;
        void *p = calloc(v(over[i][0]), v(over[i][1]));
        CHECK(p == NULL && errno == ENOMEM, "calloc(%zx, %zx) overflow = %p, errno %d", over[i][0],
              over[i][1], p, errno);
    }
}

static void realloc_semantics(void) {
    errno = EDOM;
    char *p = realloc(NULL, v(100));
    CHECK(p != NULL && errno == EDOM, "realloc(NULL, 100) allocates");
    fill(p, 100, 1);
    size_t chain[] = {1000, 1024, 1025, 5000, 70000, 262144, 262145, 1 << 20, 10 << 20, 3 << 20,
                      100000, 2000, 100, 24, 1};
    size_t have = 100;
    for (size_t i = 0; i < sizeof chain / sizeof *chain; i++) {
        size_t n = v(chain[i]);
        errno = EDOM;
        char *q = realloc(p, n);
        CHECK(q != NULL, "realloc to %zu", n);
        if (!q) break;
        CHECK(errno == EDOM, "realloc to %zu keeps errno", n);
        size_t keep = have < n ? have : n;
        CHECK(check_fill(q, keep, 1), "realloc to %zu keeps %zu bytes", n, keep);
        CHECK(malloc_usable_size(q) >= n, "usable after realloc to %zu", n);
        fill(q, n, 1);
        have = n;
        p = q;
    }
    /* Failure: NULL, ENOMEM, the old block intact (small and large blocks). */
    size_t olds[] = {100, 5000, 1 << 20};
    for (size_t i = 0; i < sizeof olds / sizeof *olds; i++) {
        char *o = malloc(olds[i]);
        fill(o, olds[i], 9);
        size_t bad[] = {SIZE_MAX, (size_t)PTRDIFF_MAX + 1, SIZE_MAX - 100};
        kept = o;
        for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
            errno = 0;
            char *q = realloc(kept, v(bad[k]));
            CHECK(q == NULL && errno == ENOMEM, "realloc(%zu-byte block, %zx) fails with ENOMEM",
                  olds[i], bad[k]);
        }
        o = kept;
        CHECK(check_fill(o, olds[i], 9), "a failed realloc leaves the %zu-byte block intact", olds[i]);
        free(o);
    }
    /* realloc(p, 0) frees p and returns NULL (glibc), errno untouched. */
    errno = EDOM;
    char *z = realloc(p, v(0));
    CHECK(z == NULL && errno == EDOM, "realloc(p, 0) frees and returns NULL: %p", (void *)z);

    /* reallocarray */
    char *r = reallocarray(NULL, 10, 10);
    CHECK(r != NULL, "reallocarray(NULL, 10, 10)");
    fill(r, 100, 3);
    errno = 0;
    kept = r;
    char *r2 = reallocarray(kept, v(SIZE_MAX / 2), 3);
    CHECK(r2 == NULL && errno == ENOMEM, "reallocarray overflow: ENOMEM");
    r = kept;
    CHECK(check_fill(r, 100, 3), "reallocarray overflow leaves the block intact");
    r2 = reallocarray(r, 1000, 10);
    CHECK(r2 && check_fill(r2, 100, 3), "reallocarray grows keeping contents");
    free(r2);
}

static void aligned_functions(void) {
    void *sentinel = (void *)0x1234, *out;
    size_t bad[] = {0, 1, 2, 4, 3, 12, 24, 48, 100, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        out = sentinel;
        errno = EDOM;
        int rc = posix_memalign(&out, v(bad[i]), 10);
        CHECK(rc == EINVAL && out == sentinel && errno == EDOM,
              "posix_memalign(align %zu) = %d, out %p, errno %d", bad[i], rc, out, errno);
    }
    out = sentinel;
    errno = EDOM;
    int rc = posix_memalign(&out, 64, v(SIZE_MAX));
    /* glibc 2.36 sets errno here too; POSIX says nothing, hakmem leaves it alone. */
    CHECK(rc == ENOMEM && out == sentinel && (glibc_mode || errno == EDOM),
          "posix_memalign OOM = %d, errno %d", rc, errno);
    size_t sizes[] = {0, 1, 100, 5000, 300000};
    for (size_t a = 8; a <= ((size_t)1 << 23); a <<= 1) {
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            out = NULL;
            errno = EDOM;
            rc = posix_memalign(&out, a, v(sizes[i]));
            CHECK(rc == 0 && out && aligned_to(out, a) && errno == EDOM,
                  "posix_memalign(%zu, %zu) = %d %p", a, sizes[i], rc, out);
            if (rc) continue;
            CHECK(malloc_usable_size(out) >= sizes[i], "usable of an aligned block");
            memset(out, 0x11, sizes[i]);
            free(out);

            void *p = aligned_alloc(a, v(sizes[i]));
            CHECK(p && aligned_to(p, a), "aligned_alloc(%zu, %zu) = %p", a, sizes[i], p);
            free(p);
            p = memalign(a, v(sizes[i]));
            CHECK(p && aligned_to(p, a), "memalign(%zu, %zu) = %p", a, sizes[i], p);
            free(p);
        }
    }
    /* memalign rounds an alignment that is not a power of two up to the next one. */
    size_t odd[][2] = {{3, 4}, {24, 32}, {100, 128}, {4095, 4096}, {70000, 131072}};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        void *p = memalign(v(odd[i][0]), 77);
        CHECK(p && aligned_to(p, odd[i][1]), "memalign(%zu) aligned to %zu: %p", odd[i][0], odd[i][1], p);
        free(p);
    }
    errno = 0;
    void *p = memalign(v(SIZE_MAX / 2 + 2), 10);
    CHECK(p == NULL && errno == EINVAL, "memalign(huge alignment) = EINVAL, errno %d", errno);
    errno = 0;
    p = memalign(v(SIZE_MAX / 2 + 1), 10);
    CHECK(p == NULL && errno == ENOMEM, "memalign(2^63) = ENOMEM, errno %d", errno);
    if (!glibc_mode) {
        /* glibc >= 2.38: aligned_alloc refuses an alignment that is not a power of two. */
        size_t bad_aa[] = {0, 3, 24, 1000};
        for (size_t i = 0; i < sizeof bad_aa / sizeof *bad_aa; i++) {
            errno = 0;
            p = aligned_alloc(v(bad_aa[i]), 64);
            CHECK(p == NULL && errno == EINVAL, "aligned_alloc(%zu) = %p, errno %d", bad_aa[i], p, errno);
        }
    }
    long page = sysconf(_SC_PAGESIZE);
    p = valloc(v(10));
    CHECK(p && aligned_to(p, (size_t)page), "valloc page-aligned: %p", p);
    free(p);
    size_t pv[] = {0, 1, (size_t)page, (size_t)page + 1, 3 * (size_t)page - 5};
    for (size_t i = 0; i < sizeof pv / sizeof *pv; i++) {
        p = pvalloc(v(pv[i]));
        size_t rounded = (pv[i] + page - 1) / page * page;
        CHECK(p && aligned_to(p, (size_t)page) && malloc_usable_size(p) >= rounded,
              "pvalloc(%zu) = %p, usable %zu", pv[i], p, p ? malloc_usable_size(p) : 0);
        if (p) memset(p, 1, rounded);
        free(p);
    }
    errno = 0;
    p = pvalloc(v(SIZE_MAX));
    CHECK(p == NULL && errno == ENOMEM, "pvalloc(SIZE_MAX) = ENOMEM");
}

/* malloc_stats() writes the allocator's statistics on standard error (glibc's arenas;
 * hakmem's counters and one line per class in use, with a live block of class 100). */
static void stats_on_stderr(void) {
    char path[] = "/tmp/hakmem-api-stats-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    unlink(path);
    kept = malloc(100);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    malloc_stats();
    dup2(saved, 2);
    close(saved);
    char buf[8192];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    free(kept);
    CHECK(n > 0, "malloc_stats wrote nothing");
    if (n <= 0) return;
    buf[n] = 0;
    if (!glibc_mode) {
        CHECK(strncmp(buf, "hakmem: ", 8) == 0, "malloc_stats output: %.60s", buf);
        CHECK(strstr(buf, "hakmem: class block_size") != NULL, "malloc_stats has the class table");
        CHECK(strstr(buf, "        112      1 ") != NULL,
              "malloc_stats lists the class of a live 100-byte block: %s", buf);
    }
}

/* mallinfo2() and mallinfo() describe the heap the program uses (under hakmem: slab
 * blocks as glibc's chunks, large blocks as its mmapped regions, thread caches as its
 * fastbins; before, glibc's own unused arena: all zero). */
static void mallinfo_sees_the_heap(void) {
    enum { N = 1000, SZ = 100, BIG = 4 << 20 };
    static void *blocks[N];
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(SZ);
        CHECK(blocks[i] != NULL, "malloc(%d)", SZ);
        if (blocks[i]) memset(blocks[i], i, SZ);
    }
    char *big = malloc(BIG);
    CHECK(big != NULL, "malloc(4 MiB)");
    if (big) memset(big, 1, 4096);
    struct mallinfo2 during = mallinfo2();
    CHECK(during.uordblks >= before.uordblks + (size_t)N * SZ,
          "mallinfo2 counts %d live blocks of %d bytes: uordblks %zu -> %zu", N, SZ,
          before.uordblks, during.uordblks);
    /* (glibc maps a block this big on its own only below its dynamic threshold, which
     * the frees of big blocks earlier in this program raised: then it is a chunk.) */
    CHECK((during.hblks >= before.hblks + 1 && during.hblkhd >= before.hblkhd + BIG) ||
              (glibc_mode && during.uordblks >= before.uordblks + (size_t)N * SZ + BIG),
          "mallinfo2 counts a live 4 MiB block: hblks %zu -> %zu, hblkhd %zu -> %zu",
          before.hblks, during.hblks, before.hblkhd, during.hblkhd);
    CHECK(during.arena >= during.uordblks && during.fordblks >= during.fsmblks,
          "mallinfo2 arena %zu >= uordblks %zu, fordblks %zu >= fsmblks %zu", during.arena,
          during.uordblks, during.fordblks, during.fsmblks);
    if (!glibc_mode) {
        CHECK(during.arena == during.uordblks + during.fordblks,
              "hakmem's arena is its blocks in use and free: %zu = %zu + %zu", during.arena,
              during.uordblks, during.fordblks);
        CHECK(during.usmblks == 0, "usmblks is 0");
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo old = mallinfo();
#pragma GCC diagnostic pop
    CHECK(old.uordblks > 0 && (size_t)old.uordblks <= during.uordblks + (size_t)N * SZ &&
              (size_t)old.uordblks + (size_t)N * SZ >= during.uordblks,
          "mallinfo's uordblks %d agrees with mallinfo2's %zu", old.uordblks, during.uordblks);
    for (int i = 0; i < N; i++) free(blocks[i]);
    free(big);
    struct mallinfo2 after = mallinfo2();
    CHECK(after.uordblks + (size_t)N * SZ <= during.uordblks,
          "freed blocks are no longer in use: uordblks %zu -> %zu", during.uordblks,
          after.uordblks);
    CHECK(after.hblks + 1 <= during.hblks || (glibc_mode && during.hblks == before.hblks),
          "a freed large block: hblks %zu -> %zu", during.hblks, after.hblks);
}

/* malloc_trim gives back the pages of the empty slabs a phase left inside superslabs that
 * still hold a block: 1 (glibc: 1 when it advised the free chunks' pages away). Before
 * results/215 hakmem said 0 unless address space was unmapped. */
static void trim_reports_decommitted_slabs(void) {
    enum { N = 40000, SZ = 200, KEEP = 4000 };
    void **v = malloc(N * sizeof *v);
    CHECK(v != NULL, "malloc of the block table");
    if (!v) return;
    /* Nothing cached before the phase: what the next trim gives back is the phase's. */
    malloc_trim(0);
    for (int i = 0; i < N; i++) {
        v[i] = malloc(SZ);
        if (v[i]) memset(v[i], i, SZ);
    }
    for (int i = 0; i < N; i++)
        if (i % KEEP) free(v[i]);
    int t = malloc_trim(0);
    CHECK(t == 1, "malloc_trim after %d of %d blocks of %d bytes were freed: %d", N - N / KEEP,
          N, SZ, t);
    for (int i = 0; i < N; i += KEEP) free(v[i]);
    free(v);
}

static void c23_and_extras(void) {
    void (*fs)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
    void (*fas)(void *, size_t, size_t) =
        (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
    void (*cf)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
    if (!glibc_mode) CHECK(fs && fas && cf, "free_sized, free_aligned_sized and cfree exported");
    if (fs) {
        fs(malloc(100), 100);
        fs(NULL, 0);
    }
    if (fas) fas(aligned_alloc(256, 1000), 256, 1000);
    if (cf) cf(malloc(10));
    /* glibc's own names, mixed with the standard ones (each block freed by the other
     * family): under LD_PRELOAD both are hakmem's. */
    void *(*lm)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_malloc");
    void (*lf)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "__libc_free");
    void *(*lc)(size_t, size_t) = (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_calloc");
    void *(*lr)(void *, size_t) = (void *(*)(void *, size_t))dlsym(RTLD_DEFAULT, "__libc_realloc");
    void *(*lma)(size_t, size_t) = (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_memalign");
    CHECK(lm && lf && lc && lr && lma, "glibc's __libc_* names resolve");
    if (lm && lf && lc && lr && lma) {
        char *a = lm(100);
        CHECK(a != NULL, "__libc_malloc(100)");
        memset(a, 7, 100);
        free(a);
        char *b = malloc(50);
        memset(b, 8, 50);
        b = lr(b, 5000);
        CHECK(b != NULL && b[49] == 8, "__libc_realloc of a malloc'd block keeps its bytes");
        lf(b);
        unsigned char *z = lc(10, 10);
        int zero = z != NULL;
        for (int i = 0; zero && i < 100; i++) zero = z[i] == 0;
        CHECK(zero, "__libc_calloc zeroes");
        z = realloc(z, 300);
        free(z);
        void *m = lma(64, 100);
        CHECK(m != NULL && (uintptr_t)m % 64 == 0, "__libc_memalign(64, 100) = %p", m);
        free(m);
    }
    int t = malloc_trim(0);
    CHECK(t == 0 || t == 1, "malloc_trim returns 0 or 1: %d", t);
    void *p = malloc(100);
    CHECK(p != NULL, "malloc after malloc_trim");
    free(p);
    stats_on_stderr();
}

int main(int argc, char **argv) {
    glibc_mode = argc > 1 && strcmp(argv[1], "glibc") == 0;
    if (!glibc_mode) resolves_to_hakmem();
    malloc_and_free();
    many_blocks_do_not_overlap();
    calloc_semantics();
    realloc_semantics();
    aligned_functions();
    c23_and_extras();
    mallinfo_sees_the_heap();
    trim_reports_decommitted_slabs();
    if (failures) {
        fprintf(stderr, "api: %d of %d checks FAILED\n", failures, checks + failures);
        return 1;
    }
    printf("api: %d checks passed\n", checks);
    return 0;
}
