/* fork() in a multi-threaded program: worker threads allocate and free without pause
 * (tiny, mid and large blocks, so every lock of the allocator is busy) while other
 * threads fork; each child allocates, starts a thread that allocates, forks a grandchild
 * once in a while, and exits. A child that deadlocks is killed by its alarm and counts
 * as a failure (the test harness also has a timeout).
 *
 *   fork [forks] [workers]
 *
 * Prints "fork: ok ..." or exits 1.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int stop;

static uint64_t next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static size_t pick(uint64_t r) {
    switch (r % 64) {
    case 0: return 300000 + (r >> 8) % 300000;
    case 1: case 2: case 3: return 1025 + (r >> 8) % 100000;
    default: return (r >> 8) % 1025;
    }
}

/* Allocate and free `n` blocks in a small working set; 0 on success. */
static int churn(uint64_t seed, long n) {
    enum { WS = 64 };
    unsigned char *slots[WS] = {0};
    size_t sizes[WS] = {0};
    uint64_t s = seed | 1;
    int bad = 0;
    for (long k = 0; k < n; k++) {
        uint64_t r = next(&s);
        size_t i = (r >> 50) % WS;
        if (slots[i]) {
            if (sizes[i] && (slots[i][0] != (unsigned char)i || slots[i][sizes[i] - 1] != (unsigned char)i)) bad = 1;
            free(slots[i]);
            slots[i] = NULL;
        } else {
            size_t n2 = pick(r);
            slots[i] = r & 1 ? malloc(n2) : calloc(1, n2);
            if (!slots[i]) return 1;
            sizes[i] = n2;
            if (n2) {
                slots[i][0] = (unsigned char)i;
                slots[i][n2 - 1] = (unsigned char)i;
            }
        }
    }
    for (size_t i = 0; i < WS; i++) free(slots[i]);
    return bad;
}

static void *worker(void *arg) {
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (churn(seed++, 2000)) {
            fprintf(stderr, "fork: corruption in a worker\n");
            exit(1);
        }
    }
    return NULL;
}

static void *child_thread(void *arg) {
    return (void *)(intptr_t)churn((uint64_t)(uintptr_t)arg, 3000);
}

/* The child's work: allocate, on this thread and on a new one; sometimes fork again. */
static int child(uint64_t seed, int depth) {
    alarm(20);
    if (churn(seed, 5000)) return 2;
    /* Threads in the child: the parent's other threads do not exist here, and glibc
     * reuses or unmaps their stacks (and TLS). Big stacks push glibc's stack cache over
     * its limit, so the parent's thread stacks really get unmapped: nothing of hakmem
     * may still point into them. */
    for (int k = 0; k < 3; k++) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, (size_t)(k + 2) * 8 << 20);
        pthread_t t;
        if (pthread_create(&t, &a, child_thread, (void *)(uintptr_t)(seed + 1 + k))) return 3;
        pthread_attr_destroy(&a);
        void *r;
        pthread_join(t, &r);
        if (r) return 4;
    }
    if (depth == 0 && seed % 4 == 0) {
        pid_t g = fork();
        if (g < 0) return 5;
        if (g == 0) _exit(child(seed + 2, 1));
        int st;
        if (waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "fork: grandchild failed: %s %d\n", WIFSIGNALED(st) ? "signal" : "status",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            return 6;
        }
    }
    char *s = malloc(64);
    snprintf(s, 64, "child %llu", (unsigned long long)seed);
    free(s);
    return 0;
}

static atomic_int failures;

/* Fork `n` times from the calling thread. */
static void forker(int n, uint64_t seed) {
    for (int k = 0; k < n; k++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            atomic_fetch_add(&failures, 1);
            return;
        }
        if (pid == 0) _exit(child(seed + (uint64_t)k * 8, 0));
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "fork: child %d failed: %s %d\n", k, WIFSIGNALED(st) ? "signal" : "status",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            atomic_fetch_add(&failures, 1);
        }
    }
}

static int forks;

static void *forking_thread(void *arg) {
    forker(forks / 2, (uint64_t)(uintptr_t)arg);
    return NULL;
}

int main(int argc, char **argv) {
    forks = argc > 1 ? atoi(argv[1]) : 60;
    int workers = argc > 2 ? atoi(argv[2]) : 4;
    pthread_t w[64], f;
    if (workers > 64) workers = 64;
    for (int i = 0; i < workers; i++) pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    /* Half the forks from the main thread, half from another thread, at the same time. */
    pthread_create(&f, NULL, forking_thread, (void *)(uintptr_t)1000);
    forker(forks - forks / 2, 2000);
    pthread_join(f, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < workers; i++) pthread_join(w[i], NULL);
    if (atomic_load(&failures)) {
        fprintf(stderr, "fork: %d children FAILED\n", atomic_load(&failures));
        return 1;
    }
    printf("fork: ok, %d forks with %d busy threads\n", forks, workers);
    return 0;
}
