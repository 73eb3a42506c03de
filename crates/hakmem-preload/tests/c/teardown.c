/* Threads whose first call to the allocator happens during their own teardown, from a
 * pthread key destructor in destructor round 1, 2, 3 or 4 (glibc runs at most
 * PTHREAD_DESTRUCTOR_ITERATIONS = 4 rounds). The program's key is created after hakmem
 * set itself up, so unless hakmem's exit key is visited last in a round, a thread whose
 * first allocation comes in round 4 sets hakmem's key too late: its cache would never be
 * drained, and its registry node would stay linked in memory that goes away with the
 * thread.
 *
 *   teardown MODE ROUND THREADS STACK
 *
 * MODE:    malloc (the first call is a malloc of a tiny and of a mid block, then frees),
 *          free   (the first call is the free of a block the main thread allocated).
 * ROUND:   1..4, the destructor round of that first call.
 * THREADS: how many such threads (one after the other).
 * STACK:   0: glibc's stacks; 1: stacks the program maps with mmap, hands over with
 *          pthread_attr_setstack and unmaps after pthread_join (the thread's TLS, which
 *          glibc puts on that stack, goes with it), then more threads are started. The
 *          hole is plugged with an inaccessible mapping, so that the next stack does not
 *          land on the same addresses: a pointer into a dead thread's TLS faults.
 *
 * The RSS may grow by at most 8 MiB over the threads (without the fix: about 46 KiB per
 * thread in MODE malloc, 4.4 KiB in MODE free, and a crash with STACK 1). Prints "teardown: ok ..." or exits 1 (or crashes).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define STACK_SIZE (256 * 1024)
#define HANDED_SIZE 16000

static pthread_key_t key;
static int target_round;
static int mode_free;
static void **handed; /* MODE free: blocks of the main thread, one per thread */
static long dtor_calls;

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (!f || fscanf(f, "%ld %ld", &size, &res) != 2) {
        fprintf(stderr, "teardown: cannot read /proc/self/statm\n");
        exit(1);
    }
    fclose(f);
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The value is the round number (1, 2, ...) or, in the last round, 1 + the index of
 * the thread's block (MODE free) in the high bits. */
static void dtor(void *v) {
    uintptr_t x = (uintptr_t)v;
    uintptr_t round = x & 0xff, idx = x >> 8;
    __atomic_fetch_add(&dtor_calls, 1, __ATOMIC_RELAXED);
    if ((int)round < target_round) {
        /* Not yet: be called again in the next round, without allocating. */
        pthread_setspecific(key, (void *)(((round + 1) & 0xff) | (idx << 8)));
        return;
    }
    if (mode_free) {
        /* The thread's first call: a free of another thread's block. */
        free(handed[idx]);
        return;
    }
    /* The thread's first calls: a tiny and a mid block (each refills a bin). */
    char *a = malloc(48);
    char *b = malloc(20000);
    if (!a || !b) abort();
    memset(a, 1, 48);
    memset(b, 2, 20000);
    free(a);
    free(b);
}

static void *body(void *arg) {
    /* No allocation here: the first one happens in the destructor. */
    pthread_setspecific(key, arg);
    return NULL;
}

static void run_threads(long from, long to, int own_stack) {
    for (long i = from; i < to; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        void *stack = NULL;
        if (own_stack) {
            stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (stack == MAP_FAILED) {
                perror("mmap");
                exit(1);
            }
            pthread_attr_setstack(&attr, stack, STACK_SIZE);
        }
        pthread_t t;
        if (pthread_create(&t, &attr, body, (void *)(uintptr_t)(1 | (i << 8))) != 0) {
            fprintf(stderr, "teardown: pthread_create failed\n");
            exit(1);
        }
        pthread_join(t, NULL);
        pthread_attr_destroy(&attr);
        if (own_stack) {
            munmap(stack, STACK_SIZE);
            void *plug = mmap(stack, STACK_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
            if (plug != MAP_FAILED && plug != stack) munmap(plug, STACK_SIZE);
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: teardown malloc|free ROUND THREADS STACK\n");
        return 2;
    }
    mode_free = strcmp(argv[1], "free") == 0;
    target_round = atoi(argv[2]);
    long n = atol(argv[3]);
    int own_stack = atoi(argv[4]);
    if (target_round < 1 || target_round > 4 || n < 1) return 2;
    if (pthread_key_create(&key, dtor) != 0) return 1;

    long warm = n / 10 + 10;
    handed = malloc(sizeof(void *) * (size_t)(n + warm));
    for (long i = 0; i < n + warm; i++) handed[i] = malloc(HANDED_SIZE);
    run_threads(0, warm, own_stack);
    long before = rss_kib();
    run_threads(warm, warm + n, own_stack);
    if (mode_free) {
        /* The freed blocks must be reusable: allocate as many again. */
        for (long i = 0; i < n + warm; i++) handed[i] = malloc(HANDED_SIZE);
    }
    /* And the program goes on: more threads (that allocate as usual), a stats walk. */
    run_threads(warm + n, warm + n + 10, own_stack);
    long after = rss_kib();
    if (mode_free)
        for (long i = 0; i < n + warm; i++) free(handed[i]);
    free(handed);
    long expected = (warm + n + 10) * target_round;
    if (dtor_calls != expected) {
        fprintf(stderr, "teardown: %ld destructor calls, expected %ld\n", dtor_calls, expected);
        return 1;
    }
    long grew = after - before;
    printf("teardown: %s round %d, %ld threads%s: RSS %ld -> %ld KiB (%+ld KiB)\n", argv[1],
           target_round, n, own_stack ? " on own stacks" : "", before, after, grew);
    if (grew > 8 * 1024) {
        fprintf(stderr, "teardown: RSS grew by %ld KiB over %ld threads\n", grew, n);
        return 1;
    }
    printf("teardown: ok\n");
    return 0;
}
