/* hakmem's thread-exit key under LD_PRELOAD: one key, at a low index, and no sweep of
 * the pthread key indices, ever.
 *
 * libhakmem.so wraps pthread_create: each new thread runs hakmem's set-up before the
 * program's start routine, so it is armed from its first instruction, and hakmem's key
 * need not be the last one visited in a destructor round. Checked here:
 * - a single-threaded process holds one hakmem key, at a low index (the main thread's
 *   cache is armed on it), and can create every other key (PTHREAD_KEYS_MAX - 1);
 * - a thread made by pthread_create is armed on that same key before it allocates
 *   anything (checked first thing in its start routine), and after it has;
 * - after threads ran, the main thread is still on that key and the program can still
 *   create PTHREAD_KEYS_MAX - 1 keys (no second key, no sweep);
 * - the start routine's argument and result reach it and pthread_join unchanged, and a
 *   thread ending with pthread_exit or cancelled still ends cleanly;
 * - threads with a stack of PTHREAD_STACK_MIN bytes (hakmem's set-up runs on it first)
 *   run, whether they allocate or not.
 *
 * hakmem's keys are found as the keys whose value this program never set, with
 * pthread_getspecific over every index (glibc returns NULL for an index that is not a
 * live key).
 *
 * With the argument "timer", a timer_create(SIGEV_THREAD) first makes glibc start a
 * helper thread of its own (not through pthread_create), armed at its first allocation
 * on the same low key; threads made by pthread_create afterwards are armed on it too.
 *
 * Prints "exit_key: ok" or the first check that failed (exit status 1).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FAIL(...)                                  \
    do {                                           \
        fprintf(stderr, "exit_key: " __VA_ARGS__); \
        fputc('\n', stderr);                       \
        exit(1);                                   \
    } while (0)

static long keys_max;

/* Indices whose value is set on the calling thread: count, first and last. */
static int set_keys(long *first, long *last) {
    int n = 0;
    *first = *last = -1;
    for (long i = 0; i < keys_max; i++)
        if (pthread_getspecific((pthread_key_t)i) != NULL) {
            if (n++ == 0) *first = i;
            *last = i;
        }
    return n;
}

/* How many keys the program can create now (all deleted again). */
static long creatable(void) {
    static pthread_key_t k[PTHREAD_KEYS_MAX];
    long n = 0;
    while (n < PTHREAD_KEYS_MAX && pthread_key_create(&k[n], NULL) == 0) n++;
    for (long i = 0; i < n; i++) pthread_key_delete(k[i]);
    return n;
}

static long thread_first, thread_last, early_first, early_last;
static int thread_n, early_n;

/* Allocate and free for real (a compiler may drop a malloc whose block is unused). */
static void *volatile sink;
static void churn(size_t n) {
    sink = malloc(n);
    free(sink);
}

static void *body(void *arg) {
    /* Before this thread's first allocation: armed already, by the wrapper. */
    early_n = set_keys(&early_first, &early_last);
    churn(100);
    thread_n = set_keys(&thread_first, &thread_last);
    return (char *)arg + 1;
}

static void *body_nothing(void *arg) { return arg; }

static void *body_exit(void *arg) {
    churn(50);
    pthread_exit((char *)arg + 2);
    return NULL;
}

static void *body_cancel(void *arg) {
    churn(70);
    for (;;) {
        pthread_testcancel();
        usleep(100);
    }
    return arg;
}

/* A thread made by pthread_create: armed before and after its first allocation, on key
 * `low`; its result comes back through pthread_join. */
static void check_thread(const char *what, long low) {
    static char token[4];
    pthread_t t;
    void *res = NULL;
    early_n = thread_n = -1;
    if (pthread_create(&t, NULL, body, token) != 0) FAIL("%s: pthread_create failed", what);
    if (pthread_join(t, &res) != 0 || res != token + 1) FAIL("%s: pthread_join gave %p, not %p", what, res, (void *)(token + 1));
    if (early_n != 1 || early_first != low)
        FAIL("%s: new thread before its first allocation: %d keys set (first %ld), expected 1 at %ld", what, early_n,
             early_first, low);
    if (thread_n != 1 || thread_first != low)
        FAIL("%s: new thread: %d keys set (first %ld), expected 1 at %ld", what, thread_n, thread_first, low);
}

/* The process's threads (the 20th field of /proc/self/stat). */
static int process_threads(void) {
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return -1;
    char b[1024];
    size_t n = fread(b, 1, sizeof b - 1, f);
    fclose(f);
    b[n] = 0;
    char *p = strrchr(b, ')');
    if (!p) return -1;
    int field = 2;
    for (char *t = strtok(p + 1, " "); t; t = strtok(NULL, " "))
        if (++field == 20) return atoi(t);
    return -1;
}

static void tick(union sigval v) {
    (void)v;
    churn(32);
}

/* A glibc helper thread first, then pthread_create: no sweep. */
static int timer_first(void) {
    churn(10);
    long low, last;
    if (set_keys(&low, &last) != 1 || low >= 32) FAIL("timer: main not armed on a low key (%ld)", low);
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = tick;
    timer_t tm;
    if (timer_create(CLOCK_MONOTONIC, &ev, &tm) != 0) FAIL("timer_create failed");
    struct itimerspec its = {{0, 0}, {0, 1000000}};
    timer_settime(tm, 0, &its, NULL);
    for (int i = 0; i < 1000 && process_threads() < 2; i++) usleep(1000);
    int nt = process_threads();
    if (nt < 2) {
        printf("exit_key: ok (skipped: no glibc helper thread seen, %d threads)\n", nt);
        return 0;
    }
    check_thread("timer", low);
    long c = creatable();
    if (c != keys_max - 1) FAIL("timer: %ld keys creatable, expected %ld (no sweep)", c, keys_max - 1);
    timer_delete(tm);
    printf("exit_key: ok (%d threads at the first pthread_create: no sweep, all on key %ld)\n", nt, low);
    return 0;
}

int main(int argc, char **argv) {
    keys_max = sysconf(_SC_THREAD_KEYS_MAX);
    if (argc > 1 && strcmp(argv[1], "timer") == 0) return timer_first();
    if (keys_max <= 0 || keys_max > PTHREAD_KEYS_MAX) FAIL("sysconf(_SC_THREAD_KEYS_MAX) = %ld", keys_max);
    churn(10);
    long first, last;
    int n = set_keys(&first, &last);
    if (n != 1 || first >= 32) FAIL("before any thread: %d keys set (first %ld), expected 1 below 32", n, first);
    long low = first;
    long c = creatable();
    if (c != keys_max - 1) FAIL("before any thread: %ld keys creatable, expected %ld", c, keys_max - 1);

    for (int i = 0; i < 5; i++) check_thread("pthread_create", low);

    /* pthread_exit and cancellation unwind through the wrapper's start. */
    static char token[4];
    pthread_t t;
    void *res = NULL;
    if (pthread_create(&t, NULL, body_exit, token) != 0) FAIL("pthread_create failed");
    if (pthread_join(t, &res) != 0 || res != token + 2) FAIL("pthread_exit: pthread_join gave %p", res);
    if (pthread_create(&t, NULL, body_cancel, token) != 0) FAIL("pthread_create failed");
    usleep(1000);
    if (pthread_cancel(t) != 0 || pthread_join(t, &res) != 0 || res != PTHREAD_CANCELED)
        FAIL("cancel: pthread_join gave %p", res);

    /* hakmem's set-up now runs first on every new thread, on the thread's own stack:
     * threads with the smallest stack glibc allows, which allocate or not. */
    for (int i = 0; i < 64; i++) {
        pthread_attr_t at;
        pthread_attr_init(&at);
        if (pthread_attr_setstacksize(&at, PTHREAD_STACK_MIN) != 0) FAIL("pthread_attr_setstacksize failed");
        if (pthread_create(&t, &at, (i & 1) ? body : body_nothing, token) != 0) FAIL("small stack: pthread_create failed");
        if (pthread_join(t, &res) != 0) FAIL("small stack: pthread_join failed");
        pthread_attr_destroy(&at);
    }

    n = set_keys(&first, &last);
    if (n != 1 || first != low)
        FAIL("main after threads: %d keys set (first %ld), expected 1 at %ld", n, first, low);
    c = creatable();
    if (c != keys_max - 1) FAIL("after threads: %ld keys creatable, expected %ld (no sweep)", c, keys_max - 1);
    printf("exit_key: ok (hakmem's one key: %ld, no sweep)\n", low);
    return 0;
}
