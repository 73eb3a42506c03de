// larson-like server churn in C++ with sized delete, for `cargo xtask cbench`
// (docs/benchmarks.md, "C-ABI bench"): each thread keeps 1000 blocks of 16..1024 bytes
// and replaces a random one per op (`::operator delete(p, size)` then
// `::operator new(size)`, as a delete-expression of a sized class compiles to); every
// epoch the threads pass their blocks on to the next thread (a barrier, then a
// rotation), so most frees of the next epoch are of blocks another thread allocated.
//
//   g++ -O2 -pthread -o larson crates/hakmem-preload/bench/larson.cpp
//   LD_PRELOAD=/abs/path/libhakmem.so ./larson larson [threads] [ops] [seed]
//
// Prints the same line as cbench.c:
//   cbench workload=larson threads=T ops=N secs=S peak_rss_kib=K checksum=C
#include <pthread.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "peak_rss.h"

namespace {

constexpr int SLOTS = 1000;
constexpr std::uint64_t EPOCH = 20000;

struct Block {
    unsigned char *p;
    std::size_t size;
};

std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

struct Rng {
    std::uint64_t s;
    Rng(std::uint64_t seed, std::uint64_t stream) {
        s = splitmix64(seed ^ splitmix64(stream + 0x5851F42D4C957F2Dull));
        if (!s) s = 0x2545F4914F6CDD1Dull;
    }
    std::uint64_t next() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 0x2545F4914F6CDD1Dull;
    }
};

std::uint64_t below(std::uint64_t r32, std::uint64_t n) { return ((r32 & 0xFFFFFFFFull) * n) >> 32; }

int threads;
std::uint64_t per_thread, seed;
std::vector<std::vector<Block>> sets;
pthread_barrier_t barrier;
std::vector<std::uint64_t> sums;

Block make(Rng &r, std::uint64_t k) {
    std::uint64_t x = r.next();
    std::size_t size = 16 + below(x, 1024 - 16 + 1);
    auto *p = static_cast<unsigned char *>(::operator new(size));
    p[0] = static_cast<unsigned char>(k);
    p[size - 1] = static_cast<unsigned char>(size);
    return {p, size};
}

void *worker(void *arg) {
    int id = static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
    Rng r(seed, static_cast<std::uint64_t>(id));
    std::uint64_t sum = 0;
    for (std::uint64_t k = 0; k < per_thread; k++) {
        if (k % EPOCH == 0 && k) {
            // Hand this thread's blocks to the next thread.
            pthread_barrier_wait(&barrier);
            if (id == 0) {
                std::vector<Block> last = std::move(sets[threads - 1]);
                for (int t = threads - 1; t > 0; t--) sets[t] = std::move(sets[t - 1]);
                sets[0] = std::move(last);
            }
            pthread_barrier_wait(&barrier);
        }
        std::vector<Block> &mine = sets[id];
        Block &b = mine[below(r.next() >> 32, SLOTS)];
        if (b.p[b.size - 1] != static_cast<unsigned char>(b.size)) std::abort();
        sum += b.p[0];
        ::operator delete(b.p, b.size);
        b = make(r, k);
    }
    sums[id] = sum;
    return nullptr;
}

double now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

}  // namespace

int main(int argc, char **argv) {
    threads = argc > 2 ? std::atoi(argv[2]) : 2;
    if (threads < 1) threads = 1;
    std::uint64_t ops = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 2000000;
    seed = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 42;
    per_thread = ops / static_cast<std::uint64_t>(threads);
    sets.resize(static_cast<std::size_t>(threads));
    sums.assign(static_cast<std::size_t>(threads), 0);
    for (int t = 0; t < threads; t++) {
        Rng r(seed, 1000 + static_cast<std::uint64_t>(t));
        for (int i = 0; i < SLOTS; i++) sets[t].push_back(make(r, static_cast<std::uint64_t>(i)));
    }
    pthread_barrier_init(&barrier, nullptr, static_cast<unsigned>(threads));
    std::vector<pthread_t> th(static_cast<std::size_t>(threads));
    double t0 = now();
    for (int t = 0; t < threads; t++)
        if (pthread_create(&th[t], nullptr, worker, reinterpret_cast<void *>(static_cast<std::intptr_t>(t))))
            std::abort();
    for (auto &t : th) pthread_join(t, nullptr);
    double secs = now() - t0;
    std::uint64_t sum = 0;
    for (auto s : sums) sum += s;
    for (auto &set : sets)
        for (Block &b : set) {
            sum += b.p[0];
            ::operator delete(b.p, b.size);
        }
    std::printf("cbench workload=larson threads=%d ops=%llu secs=%.6f peak_rss_kib=%ld checksum=%llu\n", threads,
                static_cast<unsigned long long>(per_thread * static_cast<std::uint64_t>(threads)), secs, peak_rss_kib(),
                static_cast<unsigned long long>(sum));
    return 0;
}
