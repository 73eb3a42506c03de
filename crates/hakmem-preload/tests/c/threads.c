/* Many threads allocating, checking and freeing, with blocks freed by other threads.
 *
 *   threads [nthreads] [iterations]
 *
 * Each thread keeps a private set of slots (random malloc / calloc / realloc /
 * posix_memalign / free of tiny, mid and occasionally large blocks, each block filled
 * with a pattern checked before it is freed) and passes blocks to the next thread
 * through a ring; the receiver checks and frees them (or grows them with realloc first).
 * Prints "threads: ok ..." or reports the first corruption and exits 1.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>

#define SLOTS 512
#define RING 256

struct block {
    uint32_t owner, seq;
    size_t size; /* bytes of pattern after the header */
    unsigned char data[];
};

struct ring {
    _Atomic size_t head, tail;
    struct block *items[RING];
};

static int nthreads;
static long iterations;
static struct ring *rings;
static atomic_long passed, received, corrupt;

static uint64_t next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static size_t pick_size(uint64_t r) {
    switch (r % 64) {
    case 0: return 262144 + (r >> 8) % 2000000; /* large */
    case 1: case 2: case 3: case 4: return 1025 + (r >> 8) % 60000; /* mid */
    default: return (r >> 8) % 1025; /* tiny */
    }
}

static unsigned char pat(const struct block *b, size_t i) { return (unsigned char)(b->owner * 31 + b->seq + i); }

static struct block *make(uint32_t owner, uint32_t seq, size_t size, uint64_t r) {
    struct block *b;
    size_t total = sizeof *b + size;
    switch (r % 8) {
    case 0: b = calloc(1, total); break;
    case 1: {
        void *p = NULL;
        if (posix_memalign(&p, (size_t)64 << (r >> 3) % 6, total)) p = NULL;
        b = p;
        break;
    }
    default: b = malloc(total);
    }
    if (!b) {
        fprintf(stderr, "threads: allocation of %zu bytes failed\n", total);
        exit(1);
    }
    b->owner = owner;
    b->seq = seq;
    b->size = size;
    /* Write the pattern at the start, the end and a few places between (whole blocks
     * for small ones). */
    if (size <= 4096) {
        for (size_t i = 0; i < size; i++) b->data[i] = pat(b, i);
    } else {
        for (size_t i = 0; i < size; i += 997) b->data[i] = pat(b, i);
        b->data[size - 1] = pat(b, size - 1);
    }
    return b;
}

static int ok(const struct block *b) {
    if (b->size <= 4096) {
        for (size_t i = 0; i < b->size; i++)
            if (b->data[i] != pat(b, i)) return 0;
        return 1;
    }
    for (size_t i = 0; i < b->size; i += 997)
        if (b->data[i] != pat(b, i)) return 0;
    return b->data[b->size - 1] == pat(b, b->size - 1);
}

static void check_free(struct block *b, const char *where) {
    if (!ok(b)) {
        atomic_fetch_add(&corrupt, 1);
        fprintf(stderr, "threads: corrupt block %p (owner %u seq %u size %zu) in %s\n", (void *)b, b->owner,
                b->seq, b->size, where);
    }
    if (malloc_usable_size(b) < sizeof *b + b->size) {
        atomic_fetch_add(&corrupt, 1);
        fprintf(stderr, "threads: usable size too small\n");
    }
    free(b);
}

static int push(struct ring *q, struct block *b) {
    size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    size_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    if (t - h == RING) return 0;
    q->items[t % RING] = b;
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return 1;
}

static struct block *pop(struct ring *q) {
    size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    size_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (h == t) return NULL;
    struct block *b = q->items[h % RING];
    atomic_store_explicit(&q->head, h + 1, memory_order_release);
    return b;
}

static void receive(struct block *b) {
    atomic_fetch_add(&received, 1);
    if (b->seq % 4 == 0 && ok(b)) {
        /* Grow it on this thread, keeping the pattern. */
        size_t old = b->size;
        struct block *g = realloc(b, sizeof *b + old + 3000);
        if (!g) {
            fprintf(stderr, "threads: realloc failed\n");
            exit(1);
        }
        b = g;
        if (!ok(b)) {
            atomic_fetch_add(&corrupt, 1);
            fprintf(stderr, "threads: realloc lost contents\n");
        }
    }
    check_free(b, "receiver");
}

static void *worker(void *arg) {
    uint32_t id = (uint32_t)(uintptr_t)arg;
    uint64_t s = 0x9E3779B97F4A7C15ull * (id + 1);
    struct block *slots[SLOTS] = {0};
    struct ring *out = &rings[(id + 1) % nthreads], *in = &rings[id];
    uint32_t seq = 0;
    for (long it = 0; it < iterations; it++) {
        uint64_t r = next(&s);
        size_t i = (r >> 40) % SLOTS;
        if (slots[i]) {
            check_free(slots[i], "owner");
            slots[i] = NULL;
        } else {
            slots[i] = make(id, seq++, pick_size(r), r >> 20);
        }
        if (r % 3 == 0) {
            struct block *b = make(id, seq++, pick_size(r >> 7), r >> 13);
            if (push(out, b))
                atomic_fetch_add(&passed, 1);
            else
                check_free(b, "owner (ring full)");
        }
        struct block *b = pop(in);
        if (b) receive(b);
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (slots[i]) check_free(slots[i], "owner at exit");
    return NULL;
}

int main(int argc, char **argv) {
    nthreads = argc > 1 ? atoi(argv[1]) : 8;
    iterations = argc > 2 ? atol(argv[2]) : 200000;
    if (nthreads < 2) nthreads = 2;
    rings = calloc((size_t)nthreads, sizeof *rings);
    pthread_t *t = malloc(sizeof *t * (size_t)nthreads);
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i)) {
            fprintf(stderr, "threads: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
    /* Blocks still in the rings: freed by the main thread (yet another thread). */
    for (int i = 0; i < nthreads; i++) {
        struct block *b;
        while ((b = pop(&rings[i]))) receive(b);
    }
    free(t);
    free(rings);
    if (atomic_load(&corrupt) || atomic_load(&passed) != atomic_load(&received)) {
        fprintf(stderr, "threads: FAILED: %ld corrupt, %ld passed, %ld received\n", atomic_load(&corrupt),
                atomic_load(&passed), atomic_load(&received));
        return 1;
    }
    printf("threads: ok, %d threads x %ld iterations, %ld blocks freed by another thread\n", nthreads,
           iterations, atomic_load(&received));
    return 0;
}
