/* A thread pool's phase ends; the program goes on with its main thread.
 *
 *   cc -O2 -pthread -o pool_end crates/hakmem-preload/bench/pool_end.c
 *   LD_PRELOAD=/abs/path/libhakmem.so ./pool_end [threads=32] [blocks=2000]
 *
 * Each thread churns `blocks` blocks of 48, 112, 320 and 960 bytes (20 rounds: all
 * allocated and written, then all freed) and exits. The main thread then wakes every
 * 0.5 s, churns 64 blocks of 200 bytes and, every second wake, a 1 MiB block (a slow
 * path of every allocator). Prints the resident set in KiB at the start, right after the
 * joins, and after each wake: what the allocator keeps of a finished phase
 * (docs/results/215-phase-end.md).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_THREADS = 256, ROUNDS = 20, WAKES = 8 };

static int g_blocks;

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void *worker(void *arg) {
    static const size_t sizes[4] = {48, 112, 320, 960};
    (void)arg;
    void **v = malloc(sizeof *v * (size_t)g_blocks);
    if (!v) abort();
    for (int round = 0; round < ROUNDS; round++)
        for (int c = 0; c < 4; c++) {
            for (int i = 0; i < g_blocks; i++) {
                v[i] = malloc(sizes[c]);
                if (!v[i]) abort();
                memset(v[i], round, 16);
            }
            for (int i = 0; i < g_blocks; i++) free(v[i]);
        }
    free(v);
    return 0;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 32;
    g_blocks = argc > 2 ? atoi(argv[2]) : 2000;
    if (n < 1 || n > MAX_THREADS || g_blocks < 1) {
        fprintf(stderr, "usage: pool_end [threads 1..%d] [blocks]\n", MAX_THREADS);
        return 2;
    }
    pthread_t t[MAX_THREADS];
    long start = rss_kib();
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], 0, worker, 0)) abort();
    for (int i = 0; i < n; i++) pthread_join(t[i], 0);
    printf("start %ld joined %ld then", start, rss_kib());
    void *keep[64];
    for (int k = 0; k < WAKES; k++) {
        usleep(500000);
        for (int j = 0; j < 64; j++) keep[j] = malloc(200);
        for (int j = 0; j < 64; j++) free(keep[j]);
        if (k % 2 == 0) {
            /* volatile: a compiler may drop a malloc/free pair whose memory is unused */
            char *volatile big = malloc(1 << 20);
            if (!big) abort();
            memset(big, 1, 4096);
            free(big);
        }
        printf(" %ld", rss_kib());
    }
    printf(" KiB\n");
    return 0;
}
