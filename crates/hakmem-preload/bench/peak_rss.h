/* The peak resident set of this program in KiB, for the result lines of cbench.c and
 * larson.cpp: VmHWM of /proc/self/status, the high-water mark of the program's memory
 * since its exec.
 *
 * Not getrusage's ru_maxrss: a process started by vfork, posix_spawn or fork (cargo
 * xtask, Python's subprocess, a shell) holds there its parent's peak at the spawn, so a
 * program that needs 2 MiB reported the 3.12 MiB of the cargo xtask that started it
 * (docs/results/235). Read with open/read into a stack buffer: no malloc of the
 * allocator under test. ru_maxrss only where /proc cannot be read. */
#ifndef HAKMEM_BENCH_PEAK_RSS_H
#define HAKMEM_BENCH_PEAK_RSS_H

#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static long peak_rss_kib(void) {
    char buf[8192];
    size_t n = 0;
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t r;
        while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
        close(fd);
    }
    buf[n] = 0;
    const char *l = strstr(buf, "\nVmHWM:");
    if (l) {
        long v = 0;
        int digits = 0;
        for (l += 7; *l == ' ' || *l == '\t'; l++) {
        }
        for (; *l >= '0' && *l <= '9'; l++, digits++) v = v * 10 + (*l - '0');
        if (digits) return v;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

#endif
