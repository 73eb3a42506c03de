/* Threads that come and go: thousands of short-lived threads (joined and detached), each
 * allocating blocks, freeing some, handing the rest to the main thread (which frees them
 * after their allocator exited), and allocating again from its own thread-exit hooks: a
 * C++-style thread_local destructor (runs before pthread key destructors) and a pthread
 * key destructor that runs after hakmem's own (it re-arms itself once, for a second
 * round). The process RSS must stay bounded: an exiting thread's cached blocks are
 * reused, never stranded.
 *
 *   churn [threads] [concurrent]
 *
 * Prints "churn: ok ..." or exits 1.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HANDED 64

extern int __cxa_thread_atexit_impl(void (*)(void *), void *, void *);
extern void *__dso_handle;

static pthread_key_t key;
static atomic_long key_dtors, tls_dtors, bad;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void **handed;
static size_t nhanded, cap_handed;

static void key_dtor(void *v) {
    /* Runs after hakmem's destructor flushed this thread's cache. */
    char *p = v;
    if (p[0] != 'k') atomic_fetch_add(&bad, 1);
    free(p);
    void *q = malloc(2000);
    memset(q, 1, 2000);
    free(q);
    long n = atomic_fetch_add(&key_dtors, 1);
    if (n % 2 == 0) {
        /* Re-arm: glibc runs destructors again while values are set. */
        char *again = malloc(24);
        again[0] = 'k';
        pthread_setspecific(key, again);
    }
}

static void tls_dtor(void *v) {
    free(v);
    void *q = calloc(10, 100);
    free(q);
    atomic_fetch_add(&tls_dtors, 1);
}

static uint64_t next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void *body(void *arg) {
    uint64_t s = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    void *mine[256];
    for (int i = 0; i < 256; i++) {
        uint64_t r = next(&s);
        size_t n = r % 16 == 0 ? 1025 + (r >> 8) % 30000 : (r >> 8) % 1025;
        mine[i] = malloc(n);
        if (n) ((char *)mine[i])[0] = (char)i;
    }
    for (int i = 0; i < 256; i += 2) free(mine[i]);
    pthread_mutex_lock(&lock);
    for (int i = 1; i < 256 && i / 2 < HANDED; i += 2) {
        if (nhanded == cap_handed) {
            cap_handed = cap_handed ? cap_handed * 2 : 1024;
            handed = realloc(handed, cap_handed * sizeof *handed);
        }
        handed[nhanded++] = mine[i];
    }
    pthread_mutex_unlock(&lock);
    for (int i = 2 * HANDED + 1; i < 256; i += 2) free(mine[i]);
    char *k = malloc(24);
    k[0] = 'k';
    pthread_setspecific(key, k);
    __cxa_thread_atexit_impl(tls_dtor, malloc(48), &__dso_handle);
    return NULL;
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void free_handed(void) {
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nhanded; i++) free(handed[i]);
    nhanded = 0;
    pthread_mutex_unlock(&lock);
}

int main(int argc, char **argv) {
    int total = argc > 1 ? atoi(argv[1]) : 2000;
    int conc = argc > 2 ? atoi(argv[2]) : 8;
    free(malloc(1)); /* hakmem's thread-exit key exists before ours */
    if (pthread_key_create(&key, key_dtor)) return 1;
    pthread_t t[256];
    if (conc > 256) conc = 256;
    long rss_warm = 0;
    int started = 0, detached = 0;
    for (int round = 0; started < total; round++) {
        int n = 0;
        for (; n < conc && started < total; n++, started++) {
            if (pthread_create(&t[n], NULL, body, (void *)(uintptr_t)started)) {
                fprintf(stderr, "churn: pthread_create failed\n");
                return 1;
            }
        }
        /* Every fourth round, detach instead of joining. */
        for (int i = 0; i < n; i++) {
            if (round % 4 == 3) {
                pthread_detach(t[i]);
                detached++;
            } else {
                pthread_join(t[i], NULL);
            }
        }
        free_handed();
        if (!rss_warm && started >= total / 4) rss_warm = rss_kib();
    }
    /* Wait for detached threads to finish their exit hooks. */
    for (int i = 0; i < 500 && atomic_load(&tls_dtors) < total; i++) usleep(10000);
    usleep(20000);
    free_handed();
    long rss_end = rss_kib();
    if (atomic_load(&bad) || atomic_load(&tls_dtors) != total || atomic_load(&key_dtors) < total) {
        fprintf(stderr, "churn: FAILED: bad %ld, tls dtors %ld, key dtors %ld of %d threads\n", atomic_load(&bad),
                atomic_load(&tls_dtors), atomic_load(&key_dtors), total);
        return 1;
    }
    if (rss_end - rss_warm > 64 * 1024) {
        fprintf(stderr, "churn: FAILED: RSS grew from %ld KiB to %ld KiB over the churn\n", rss_warm, rss_end);
        return 1;
    }
    printf("churn: ok, %d threads (%d detached), RSS %ld KiB after a quarter, %ld KiB at the end\n", total,
           detached, rss_warm, rss_end);
    return 0;
}
