/* C workloads of `cargo xtask cbench` (docs/benchmarks.md, "C-ABI bench"): programs
 * that call malloc/free, run under LD_PRELOAD of libhakmem.so and of other allocators'
 * shared libraries, and under glibc's malloc.
 *
 *   cc -O2 -pthread -o cbench crates/hakmem-preload/bench/cbench.c
 *   LD_PRELOAD=/abs/path/libhakmem.so ./cbench WORKLOAD [threads] [ops] [seed]
 *
 * Workloads (an op is one malloc and its free):
 *   simple    1 thread, small-block churn as glibc's bench-malloc-simple: for each size
 *             16..1024 (powers of two) and each count 25/100/400/1600, allocate that
 *             many blocks (first byte written) and free them all, in order.
 *   thread    glibc's bench-malloc-thread: each thread keeps 1024 slots; each op frees
 *             a random slot and allocates a new block there, sizes 4..32768 with small
 *             sizes most frequent (a geometric choice of the power of two).
 *   prodcons  producer/consumer: half the threads allocate 64-byte blocks and pass them
 *             through a single-producer ring to a consumer thread, which reads and frees
 *             them (every free is remote, in a steady stream).
 *   large     large blocks under threads: each thread keeps 8 slots and replaces a random
 *             one per op with a block of 64 KiB..4 MiB (log-uniform), one byte written per
 *             page; the peak RSS is the figure of interest.
 * (larson with C++ sized delete is larson.cpp beside this file.)
 *
 * Prints one line:
 *   cbench workload=W threads=T ops=N secs=S peak_rss_kib=K checksum=C
 * The checksum depends only on the workload, threads, ops and seed, never on the
 * allocator (the smoke test compares it with glibc's).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peak_rss.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct {
    uint64_t s;
} rng_t;

static void rng_seed(rng_t *r, uint64_t seed, uint64_t stream) {
    uint64_t s = splitmix64(seed ^ splitmix64(stream + 0x5851F42D4C957F2Dull));
    r->s = s ? s : 0x2545F4914F6CDD1Dull;
}

static inline uint64_t rng_next(rng_t *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* 32 random bits to 0..n-1 without a division. */
static inline uint64_t below(uint64_t r32, uint64_t n) { return ((r32 & 0xFFFFFFFFull) * n) >> 32; }

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "cbench: malloc(%zu) failed\n", n);
        abort();
    }
    return p;
}

static uint64_t g_ops, g_seed;
static int g_threads;

/* ---- simple ---------------------------------------------------------------------- */

static uint64_t simple(uint64_t ops) {
    static const int counts[] = {25, 100, 400, 1600};
    char *blocks[1600];
    uint64_t done = 0, sum = 0;
    while (done < ops) {
        for (size_t size = 16; size <= 1024; size *= 2)
            for (int c = 0; c < 4; c++) {
                int n = counts[c];
                for (int i = 0; i < n; i++) {
                    blocks[i] = xmalloc(size);
                    *(volatile char *)blocks[i] = (char)i;
                }
                for (int i = 0; i < n; i++) {
                    sum += (unsigned char)*(volatile char *)blocks[i];
                    free(blocks[i]);
                }
                done += n;
            }
    }
    g_ops = done;
    return sum;
}

/* ---- thread ---------------------------------------------------------------------- */

typedef struct {
    int id;
    uint64_t ops;
    uint64_t sum;
} targ_t;

static void *thread_main(void *arg) {
    targ_t *t = arg;
    enum { WS = 1024 };
    char **slots = calloc(WS, sizeof *slots);
    if (!slots) abort();
    rng_t r;
    rng_seed(&r, g_seed, (uint64_t)t->id);
    uint64_t sum = 0;
    for (uint64_t k = 0; k < t->ops; k++) {
        uint64_t x = rng_next(&r);
        uint64_t i = below(x, WS);
        if (slots[i]) {
            sum += (unsigned char)slots[i][0];
            free(slots[i]);
        }
        /* power of two 4 << k with probability 2^-(k+1) (k <= 12), then uniform below it */
        int pow = __builtin_ctzll((x >> 32) | (1ull << 12));
        size_t hi = (size_t)4 << pow;
        size_t size = hi / 2 + 1 + below(x >> 16, hi / 2);
        if (size < 4) size = 4;
        slots[i] = xmalloc(size);
        slots[i][0] = (char)(k + (uint64_t)pow);
    }
    for (int i = 0; i < WS; i++)
        if (slots[i]) {
            sum += (unsigned char)slots[i][0];
            free(slots[i]);
        }
    free(slots);
    t->sum = sum;
    return 0;
}

/* ---- prodcons -------------------------------------------------------------------- */

enum { RING = 1024 };
typedef struct {
    _Alignas(64) _Atomic uint64_t head; /* written by the producer */
    _Alignas(64) _Atomic uint64_t tail; /* written by the consumer */
    _Alignas(64) uint64_t *slots[RING];
    uint64_t n;
    uint64_t sum;
    int id;
} ring_t;

static void *producer(void *arg) {
    ring_t *q = arg;
    rng_t r;
    rng_seed(&r, g_seed, (uint64_t)q->id);
    uint64_t head = 0;
    for (uint64_t k = 0; k < q->n; k++) {
        uint64_t *b = xmalloc(64);
        b[0] = rng_next(&r) & 0xFFFF;
        b[7] = b[0];
        while (head - atomic_load_explicit(&q->tail, memory_order_acquire) >= RING) sched_yield();
        q->slots[head % RING] = b;
        atomic_store_explicit(&q->head, ++head, memory_order_release);
    }
    return 0;
}

static void *consumer(void *arg) {
    ring_t *q = arg;
    uint64_t tail = 0, sum = 0;
    while (tail < q->n) {
        while (atomic_load_explicit(&q->head, memory_order_acquire) == tail) sched_yield();
        uint64_t *b = q->slots[tail % RING];
        atomic_store_explicit(&q->tail, ++tail, memory_order_release);
        if (b[0] != b[7]) abort();
        sum += b[0];
        free(b);
    }
    q->sum = sum;
    return 0;
}

/* ---- large ----------------------------------------------------------------------- */

static void *large_main(void *arg) {
    targ_t *t = arg;
    enum { SLOTS = 8 };
    unsigned char *slots[SLOTS] = {0};
    size_t sizes[SLOTS] = {0};
    rng_t r;
    rng_seed(&r, g_seed, 1000 + (uint64_t)t->id);
    uint64_t sum = 0;
    for (uint64_t k = 0; k < t->ops; k++) {
        uint64_t x = rng_next(&r);
        uint64_t i = below(x, SLOTS);
        if (slots[i]) {
            sum += slots[i][0] + slots[i][sizes[i] - 1];
            free(slots[i]);
        }
        /* 64 KiB << (0..6), times 1..2: 64 KiB to 8 MiB, log-uniform-ish */
        size_t base = (size_t)65536 << below(x >> 32, 6);
        size_t size = base + below(x >> 8, base);
        unsigned char *p = xmalloc(size);
        for (size_t o = 0; o < size; o += 4096) p[o] = (unsigned char)(o >> 12);
        p[0] = (unsigned char)k;
        p[size - 1] = (unsigned char)i;
        slots[i] = p;
        sizes[i] = size;
    }
    for (int i = 0; i < SLOTS; i++)
        if (slots[i]) {
            sum += slots[i][0] + slots[i][sizes[i] - 1];
            free(slots[i]);
        }
    t->sum = sum;
    return 0;
}

/* ---- main ------------------------------------------------------------------------ */

static uint64_t run_threads(void *(*f)(void *), uint64_t ops) {
    int n = g_threads;
    pthread_t *th = xmalloc(sizeof *th * (size_t)n);
    targ_t *a = xmalloc(sizeof *a * (size_t)n);
    for (int i = 0; i < n; i++) {
        a[i].id = i;
        a[i].ops = ops / (uint64_t)n;
        a[i].sum = 0;
        if (pthread_create(&th[i], 0, f, &a[i])) abort();
    }
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], 0);
        sum += a[i].sum;
    }
    g_ops = ops / (uint64_t)n * (uint64_t)n;
    free(th);
    free(a);
    return sum;
}

static uint64_t prodcons(uint64_t ops) {
    int pairs = g_threads / 2 > 0 ? g_threads / 2 : 1;
    pthread_t *th = xmalloc(sizeof *th * 2 * (size_t)pairs);
    ring_t **q = xmalloc(sizeof *q * (size_t)pairs);
    for (int i = 0; i < pairs; i++) {
        if (posix_memalign((void **)&q[i], 64, sizeof(ring_t))) abort();
        memset(q[i], 0, sizeof(ring_t));
        q[i]->n = ops / (uint64_t)pairs;
        q[i]->id = i;
    }
    for (int i = 0; i < pairs; i++) {
        if (pthread_create(&th[2 * i], 0, consumer, q[i])) abort();
        if (pthread_create(&th[2 * i + 1], 0, producer, q[i])) abort();
    }
    uint64_t sum = 0;
    for (int i = 0; i < 2 * pairs; i++) pthread_join(th[i], 0);
    for (int i = 0; i < pairs; i++) {
        sum += q[i]->sum;
        free(q[i]);
    }
    g_ops = ops / (uint64_t)pairs * (uint64_t)pairs;
    free(q);
    free(th);
    return sum;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: cbench simple|thread|prodcons|large [threads] [ops] [seed]\n");
        return 2;
    }
    const char *w = argv[1];
    g_threads = argc > 2 ? atoi(argv[2]) : 2;
    if (g_threads < 1) g_threads = 1;
    uint64_t ops = argc > 3 ? strtoull(argv[3], 0, 10) : 1000000;
    g_seed = argc > 4 ? strtoull(argv[4], 0, 10) : 42;
    uint64_t sum;
    double t0 = now();
    if (!strcmp(w, "simple")) {
        g_threads = 1;
        sum = simple(ops);
    } else if (!strcmp(w, "thread")) {
        sum = run_threads(thread_main, ops);
    } else if (!strcmp(w, "prodcons")) {
        sum = prodcons(ops);
    } else if (!strcmp(w, "large")) {
        sum = run_threads(large_main, ops);
    } else {
        fprintf(stderr, "cbench: unknown workload %s\n", w);
        return 2;
    }
    double secs = now() - t0;
    printf("cbench workload=%s threads=%d ops=%llu secs=%.6f peak_rss_kib=%ld checksum=%llu\n", w,
           g_threads, (unsigned long long)g_ops, secs, peak_rss_kib(), (unsigned long long)sum);
    return 0;
}
