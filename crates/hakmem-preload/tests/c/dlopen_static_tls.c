/* libhakmem.so uses the initial-exec TLS model for its thread cache (docs/c-abi.md, "The
 * TLS model"), so a dlopen after start-up takes its TLS block from glibc's static TLS
 * surplus, which runs out. Loading several copies of the library (each its own module
 * with its own block) must each either work (malloc/free through dlsym, from this thread
 * and from a new one) or fail cleanly with glibc's "cannot allocate memory in static TLS
 * block"; the process and its own malloc carry on.
 *
 *   dlopen_static_tls COPY...
 *
 * Prints "dlopen_static_tls: N loaded, M refused" and exits 0, or exits 1.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *(*hk_malloc)(size_t);
static void (*hk_free)(void *);

static int use(void) {
    for (int i = 0; i < 1000; i++) {
        char *p = hk_malloc(16 + (size_t)i % 500);
        if (!p) return 1;
        memset(p, i, 16);
        hk_free(p);
    }
    return 0;
}

static void *thread_main(void *arg) {
    (void)arg;
    return (void *)(long)use();
}

int main(int argc, char **argv) {
    int loaded = 0, refused = 0;
    for (int i = 1; i < argc; i++) {
        void *h = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *e = dlerror();
            if (!e || !strstr(e, "cannot allocate memory in static TLS block")) {
                printf("dlopen_static_tls: %s: unexpected failure: %s\n", argv[i], e ? e : "?");
                return 1;
            }
            refused++;
            continue;
        }
        hk_malloc = (void *(*)(size_t))dlsym(h, "malloc");
        hk_free = (void (*)(void *))dlsym(h, "free");
        if (!hk_malloc || !hk_free || use()) {
            printf("dlopen_static_tls: %s: loaded but does not work\n", argv[i]);
            return 1;
        }
        pthread_t t;
        void *r;
        if (pthread_create(&t, 0, thread_main, 0) || pthread_join(t, &r) || r) {
            printf("dlopen_static_tls: %s: does not work in a new thread\n", argv[i]);
            return 1;
        }
        loaded++;
    }
    char *q = malloc(100);
    if (!q) return 1;
    free(q);
    if (loaded == 0) {
        printf("dlopen_static_tls: no copy could be loaded\n");
        return 1;
    }
    printf("dlopen_static_tls: %d loaded, %d refused\n", loaded, refused);
    return 0;
}
