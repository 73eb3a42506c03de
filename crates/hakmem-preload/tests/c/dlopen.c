/* libhakmem.so loaded with dlopen (not preloaded): the process's malloc stays glibc's,
 * and hakmem's functions, found with dlsym, work as a second allocator: from the main
 * thread, from a thread that existed before the dlopen (its TLS for the library is
 * allocated on first use), and from threads started after it, which then exit (running
 * hakmem's thread-exit hook). dlclose is harmless: the library is linked with
 * -z nodelete, so it stays mapped while those hooks may still run.
 *
 *   dlopen /path/to/libhakmem.so
 *
 * Prints "dlopen: ok" or exits 1.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *(*hk_malloc)(size_t);
static void (*hk_free)(void *);
static void *(*hk_realloc)(void *, size_t);
static void *(*hk_calloc)(size_t, size_t);
static size_t (*hk_usable)(void *);
static atomic_int phase, bad;

static void work(unsigned seed) {
    void *v[200];
    for (int i = 0; i < 200; i++) {
        size_t n = (seed * 7919u + (unsigned)i * 131u) % (i % 20 == 0 ? 400000 : 3000);
        v[i] = i % 3 ? hk_malloc(n) : hk_calloc(1, n);
        if (!v[i] || hk_usable(v[i]) < n) atomic_fetch_add(&bad, 1);
        memset(v[i], i, n);
    }
    for (int i = 0; i < 200; i += 2) {
        v[i] = hk_realloc(v[i], 5000);
        if (!v[i]) atomic_fetch_add(&bad, 1);
    }
    for (int i = 0; i < 200; i++) hk_free(v[i]);
}

static void *early_thread(void *arg) {
    (void)arg;
    free(malloc(100)); /* glibc's malloc */
    while (atomic_load(&phase) == 0) {
    }
    work(1);
    return NULL;
}

static void *late_thread(void *arg) {
    work((unsigned)(uintptr_t)arg);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: dlopen /path/to/libhakmem.so\n");
        return 2;
    }
    pthread_t early;
    pthread_create(&early, NULL, early_thread, NULL);
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen: FAILED: %s\n", dlerror());
        return 1;
    }
    hk_malloc = (void *(*)(size_t))dlsym(h, "malloc");
    hk_free = (void (*)(void *))dlsym(h, "free");
    hk_realloc = (void *(*)(void *, size_t))dlsym(h, "realloc");
    hk_calloc = (void *(*)(size_t, size_t))dlsym(h, "calloc");
    hk_usable = (size_t(*)(void *))dlsym(h, "malloc_usable_size");
    if (!hk_malloc || !hk_free || !hk_realloc || !hk_calloc || !hk_usable || hk_malloc == malloc) {
        fprintf(stderr, "dlopen: FAILED: symbols missing or not hakmem's\n");
        return 1;
    }
    work(2);
    atomic_store(&phase, 1);
    pthread_t late[8];
    for (uintptr_t i = 0; i < 8; i++) pthread_create(&late[i], NULL, late_thread, (void *)(i + 3));
    for (int i = 0; i < 8; i++) pthread_join(late[i], NULL);
    pthread_join(early, NULL);
    /* dlclose is a no-op (-z nodelete): threads that used hakmem may still exit later. */
    void *h2 = dlopen(argv[1], RTLD_NOW | RTLD_NOLOAD);
    if (!h2) {
        fprintf(stderr, "dlopen: FAILED: RTLD_NOLOAD: %s\n", dlerror());
        return 1;
    }
    dlclose(h2);
    dlclose(h);
    pthread_t after;
    pthread_create(&after, NULL, late_thread, (void *)(uintptr_t)99);
    pthread_join(after, NULL);
    if (atomic_load(&bad)) {
        fprintf(stderr, "dlopen: FAILED: %d bad results\n", atomic_load(&bad));
        return 1;
    }
    printf("dlopen: ok\n");
    return 0;
}
