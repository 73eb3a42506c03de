/* The reference workload ("MIXED") through the C allocation functions, to compare
 * libhakmem.so under LD_PRELOAD with glibc and with the Rust global-allocator build
 * (crates/hakmem-preload/examples/mixed.rs runs the very same loop and RNG).
 *
 * One thread, WS slots; each op picks a random slot: an occupied slot is freed, an empty
 * one gets malloc(size) with size uniform in 16..=1024 and its first byte written.
 *
 *   cc -O2 -o mixed crates/hakmem-preload/bench/mixed.c
 *   LD_PRELOAD=target/release/libhakmem.so ./mixed [ops] [ws] [seed] [floor]
 *
 * Prints one line: "mixed ops=N ws=W ns_per_op=X mops=Y checksum=Z".
 * With a fourth argument "floor", blocks come from a static pool instead of malloc: the
 * cost of the loop itself. Built with -DNULL_ALLOC (and linked with libnull_alloc.so from
 * null_alloc.c), it calls null_malloc/null_free in that shared object instead: the cost
 * of the loop and of calling an allocator through the PLT, without an allocator.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef NULL_ALLOC
void *null_malloc(size_t);
void null_free(void *);
#define MALLOC null_malloc
#define FREE null_free
#else
#define MALLOC malloc
#define FREE free
#endif

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rng_state;

static void rng_seed(uint64_t seed, uint64_t stream) {
    uint64_t s = splitmix64(seed ^ splitmix64(stream + 0x5851F42D4C957F2Dull));
    rng_state = s ? s : 0x2545F4914F6CDD1Dull;
}

static inline uint64_t rng_next(void) {
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* 32 random bits to 0..n without a division. */
static inline uint64_t below(uint64_t r32, uint64_t n) { return ((r32 & 0xFFFFFFFFull) * n) >> 32; }

struct slot {
    char *ptr;
    size_t size;
};

static char pool[1 << 20][16] __attribute__((aligned(16)));

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    uint64_t ops = argc > 1 ? strtoull(argv[1], 0, 10) : 20000000ull;
    uint64_t ws = argc > 2 ? strtoull(argv[2], 0, 10) : 400;
    uint64_t seed = argc > 3 ? strtoull(argv[3], 0, 10) : 42;
    int floor_mode = argc > 4 && strcmp(argv[4], "floor") == 0;
    if (ws == 0 || ws > (1 << 20)) {
        fprintf(stderr, "mixed: ws must be in 1..=%d\n", 1 << 20);
        return 2;
    }
    struct slot *slots = calloc(ws, sizeof *slots);
    if (!slots) return 1;
    rng_seed(seed, 0);
    uint64_t allocs = 0, checksum = 0;
    double t0 = now();
    for (uint64_t k = 0; k < ops; k++) {
        uint64_t r = rng_next();
        uint64_t i = below(r, ws);
        struct slot *s = &slots[i];
        if (!s->ptr) {
            size_t size = 16 + below(r >> 32, 1024 - 16 + 1);
            char *p = floor_mode ? pool[i] : MALLOC(size);
            if (!p) abort();
            *(volatile char *)p = (char)i;
            s->ptr = p;
            s->size = size;
            allocs++;
        } else {
            checksum += (unsigned char)*(volatile char *)s->ptr;
            if (!floor_mode) FREE(s->ptr);
            s->ptr = 0;
        }
    }
    double t1 = now();
    for (uint64_t i = 0; i < ws; i++)
        if (slots[i].ptr && !floor_mode) FREE(slots[i].ptr);
    free(slots);
    double ns = (t1 - t0) * 1e9 / (double)ops;
    printf("mixed ops=%llu ws=%llu allocs=%llu ns_per_op=%.3f mops=%.2f checksum=%llu\n",
           (unsigned long long)ops, (unsigned long long)ws, (unsigned long long)allocs, ns,
           1e3 / ns, (unsigned long long)checksum);
    return 0;
}
