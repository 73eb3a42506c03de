/* A program that uses many pthread keys: 40 created by its constructor and 40 by main
 * before its first allocation, each with a destructor that allocates and frees. glibc
 * stores the values of keys past the 32nd in blocks it allocates with calloc, from
 * inside pthread_setspecific: hakmem's own thread-exit key has the highest index, so
 * setting up a thread re-enters hakmem's calloc (the thread's bounds are on by then).
 * Threads then allocate, set every key, and exit.
 *
 * Prints "many_keys: ok" or crashes.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define NK 80

static pthread_key_t keys[NK];
static atomic_int dtors;

static void dtor(void *v) {
    free(v);
    free(malloc(64));
    atomic_fetch_add(&dtors, 1);
}

__attribute__((constructor)) static void early_keys(void) {
    for (int i = 0; i < NK / 2; i++) pthread_key_create(&keys[i], dtor);
}

static void *body(void *arg) {
    for (int i = 0; i < NK; i++) pthread_setspecific(keys[i], malloc(16 + i));
    void *p = malloc(1000);
    free(p);
    return arg;
}

int main(void) {
    for (int i = NK / 2; i < NK; i++) pthread_key_create(&keys[i], dtor);
    free(malloc(10));
    pthread_t t[8];
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, body, NULL);
        for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    }
    if (atomic_load(&dtors) != 80 * NK) {
        fprintf(stderr, "many_keys: %d destructor calls, expected %d\n", atomic_load(&dtors), 80 * NK);
        return 1;
    }
    printf("many_keys: ok\n");
    return 0;
}
