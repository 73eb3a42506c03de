/* dlopen of many shared objects with thread-local storage, then allocation from a thread
 * that existed before: its TLS vector (DTV) is out of date and too small, and glibc grows
 * it with malloc from inside __tls_get_addr. A preloaded malloc whose own TLS access
 * calls __tls_get_addr (the general-dynamic model) then re-enters glibc's update and
 * recurses until the stack overflows (seen with glibc 2.39; 2.36 only updates the module
 * asked for). libhakmem.so must not reach __tls_get_addr on its allocation paths.
 *
 *   tls_dlopen DIR N      loads DIR/libtlsmod1.so .. DIR/libtlsmodN.so
 *
 * Prints "tls_dlopen: ok" or crashes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_int go;

static void *waiter(void *arg) {
    free(malloc(10));
    while (!atomic_load(&go)) {
    }
    /* The first allocation (hence TLS access) after the dlopens. */
    for (int i = 0; i < 100; i++) free(malloc((size_t)i * 40));
    return arg;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: tls_dlopen DIR N\n");
        return 2;
    }
    int n = atoi(argv[2]);
    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    char name[4096];
    for (int i = 1; i <= n; i++) {
        snprintf(name, sizeof name, "%s/libtlsmod%d.so", argv[1], i);
        void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "tls_dlopen: %s\n", dlerror());
            return 1;
        }
        long (*touch)(void) = (long (*)(void))dlsym(h, "tls_touch");
        if (!touch || touch() != 1) return 1;
    }
    atomic_store(&go, 1);
    pthread_join(t, NULL);
    free(malloc(100));
    printf("tls_dlopen: ok, %d modules with TLS\n", n);
    return 0;
}
