/* Every slab class, under LD_PRELOAD=libhakmem.so: pointers that are not the start of a
 * live block must be refused by free() (one line on stderr, then SIGABRT), whichever
 * check of the free path's validation table catches them; and free_sized() with a wrong
 * size must free the block into its real class (the size is not trusted).
 *
 * For each class (one size per class, 16 B .. 256 KiB), with the block still live, a
 * forked child frees:
 *   - p + 8, p + 16, p + bs/2, p + bs - 16 (inside the block; skipped where that is
 *     another block's start): "not the start of a live block";
 *   - the superslab header (p rounded down to 4 MiB, plus 64), the last 16 bytes of its
 *     4 MiB unit (a slab not in use or past the last slab), and a block boundary far past
 *     the carved part of p's slab when the slab has one: the same message.
 * The parent reads the child's stderr and checks the line and the signal.
 *
 *   interior            runs every case; prints "interior: N cases ok"
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* C23's free_sized, from hakmem (glibc 2.36 has none: looked up at run time). */
static void (*free_sized)(void *, size_t);

static size_t block_size(int c) {
    if (c < 8) return 16 * (size_t)(c + 1);
    int k = c - 8;
    size_t base = (size_t)128 << (k / 4);
    return base + (base >> 2) * (size_t)(k % 4 + 1);
}

static int failures, cases;

/* Fork; the child frees q; the parent checks SIGABRT and the message. */
static void expect_refused(void *q, const char *what, size_t bs) {
    int fds[2];
    if (pipe(fds)) abort();
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) abort();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        free(q);
        _exit(0); /* survived: the parent reports it */
    }
    close(fds[1]);
    char buf[512];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = 0;
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    char want[128];
    snprintf(want, sizeof want, "hakmem: free(): invalid pointer %p (not the start of a live block)\n", q);
    cases++;
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT || strcmp(buf, want) != 0) {
        failures++;
        printf("FAIL block size %zu, %s (%p): status %d, stderr \"%s\"\n", bs, what, q, st, buf);
    }
}

int main(void) {
    free_sized = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
    if (!free_sized) {
        printf("interior: free_sized not found (not under hakmem?)\n");
        return 2;
    }
    for (int c = 0; c < 52; c++) {
        size_t bs = block_size(c);
        char *p = malloc(bs);
        if (!p) abort();
        memset(p, 0x5A, bs);
        size_t offs[4] = {8, 16, bs / 2 & ~(size_t)15, bs - 16};
        const char *names[4] = {"p + 8", "p + 16", "p + bs/2", "p + bs - 16"};
        for (int i = 0; i < 4; i++) {
            if (offs[i] == 0 || offs[i] >= bs || offs[i] % bs == 0) continue;
            if (i > 0 && offs[i] == offs[i - 1]) continue;
            expect_refused(p + offs[i], names[i], bs);
        }
        char *ss = (char *)((uintptr_t)p & ~(uintptr_t)((4u << 20) - 1));
        expect_refused(ss + 64, "superslab header", bs);
        expect_refused(ss + (4u << 20) - 16, "end of the 4 MiB unit", bs);
        /* A block boundary well past what a refill carves (at most 256 blocks), in the
         * same 64 KiB slab when it holds that many. */
        if (bs * 1024 < (64u << 10) && ((uintptr_t)p & 0xFFFF) + bs * 1000 < (64u << 10))
            expect_refused(p + bs * 1000, "uncarved block", bs);
        /* free_sized with a wrong size: the block goes back to its own class. */
        size_t wrong = bs <= 1024 ? 5000 : 16;
        free_sized(p, wrong);
        char *again = malloc(bs);
        char *other = malloc(wrong);
        if (again != p || other == p) {
            failures++;
            printf("FAIL block size %zu: free_sized(p, %zu) then malloc(%zu) = %p, malloc(%zu) = %p (p = %p)\n",
                   bs, wrong, bs, (void *)again, wrong, (void *)other, (void *)p);
        }
        free(other);
        free(again);
    }
    if (failures) {
        printf("interior: %d of %d cases failed\n", failures, cases);
        return 1;
    }
    printf("interior: %d cases ok\n", cases);
    return 0;
}
