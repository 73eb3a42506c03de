/* Allocation before main and after it: in the earliest constructor, from threads that a
 * constructor starts (racing with each other and with main on their first calls), in
 * atexit handlers and in destructors, which free blocks main allocated.
 *
 * Prints "init: ok ..." from a destructor, after everything ran, or exits 1.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NT 6

static char *early;
static pthread_t racers[NT];
static atomic_int go, done;
static void *from_main[16];
static int fails;

static void fail(const char *what) {
    /* No stdio here: it may run late in exit. */
    write(2, "init: FAILED: ", 14);
    write(2, what, strlen(what));
    write(2, "\n", 1);
    fails++;
    _exit(1);
}

__attribute__((constructor(101))) static void first(void) {
    early = malloc(100);
    if (!early) fail("malloc in the first constructor");
    strcpy(early, "early");
    void *p = calloc(1000, 10);
    char *q = realloc(NULL, 10);
    if (!p || !q) fail("calloc/realloc in the first constructor");
    free(p);
    free(q);
}

static void *racer(void *arg) {
    while (!atomic_load(&go)) {
    }
    uintptr_t id = (uintptr_t)arg;
    for (int i = 0; i < 2000; i++) {
        void *p = malloc((id * 131 + (size_t)i * 17) % 5000);
        if (!p) fail("malloc in a racing thread");
        free(p);
    }
    atomic_fetch_add(&done, 1);
    return NULL;
}

__attribute__((constructor(102))) static void start_threads(void) {
    for (uintptr_t i = 0; i < NT; i++)
        if (pthread_create(&racers[i], NULL, racer, (void *)i)) fail("pthread_create in a constructor");
    atomic_store(&go, 1);
}

static void at_exit(void) {
    void *p = malloc(300000);
    if (!p) fail("malloc in atexit");
    memset(p, 1, 300000);
    free(p);
    for (int i = 0; i < 8; i++) free(from_main[i]);
}

__attribute__((destructor)) static void last(void) {
    for (int i = 8; i < 16; i++) free(from_main[i]);
    if (strcmp(early, "early") != 0) fail("the constructor's block changed");
    free(early);
    char *p = malloc(50);
    free(p);
    if (!fails) {
        static const char ok[] = "init: ok, allocations in constructors, constructor threads, atexit and destructors\n";
        write(1, ok, sizeof ok - 1);
    }
}

int main(void) {
    for (int i = 0; i < 16; i++) {
        from_main[i] = malloc((size_t)i * 1000);
        if (!from_main[i]) fail("malloc in main");
    }
    for (int i = 0; i < NT; i++) pthread_join(racers[i], NULL);
    if (atomic_load(&done) != NT) fail("racers");
    atexit(at_exit);
    return 0;
}
