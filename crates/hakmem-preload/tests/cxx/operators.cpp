// The C++ allocation operators under LD_PRELOAD=libhakmem.so (tests/cxx_programs.rs),
// and the same checks without it (libstdc++'s own operators: a test of the test).
//
//   g++ -O1 -fno-allocation-dce -o operators tests/cxx/operators.cpp -ldl
//   LD_PRELOAD=.../libhakmem.so ./operators MODE [hakmem]
//
// Modes (each prints "MODE: ok" on success, exits non-zero with a message otherwise):
//   forms      every operator (new/new[], nothrow, aligned, aligned nothrow; every delete:
//              plain, nothrow, sized, aligned, aligned nothrow, sized aligned) over many
//              sizes and alignments, contents checked; sized delete of every size
//              0..=70000 by steps (every size class); aligned new's alignment checked.
//              With "hakmem": each operator symbol resolves to libhakmem.so (dladdr) and
//              malloc_usable_size accepts what operator new returned.
//   handler    a new-handler that raises RLIMIT_AS: called once, then the request succeeds.
//   handler2   a new-handler called twice, then it removes itself: std::bad_alloc.
//   throws     a new-handler that throws its own exception: it reaches the caller; the
//              nothrow forms return nullptr instead.
//   badalloc   no handler, a huge request: std::bad_alloc from every throwing form,
//              nullptr from every nothrow form; an alignment that is not a power of two
//              is std::bad_alloc too.
//   mismatch   sized delete with a wrong size (undefined behaviour in C++): the program
//              may be stopped with a report, but the heap is never corrupted: blocks of
//              the classes involved are allocated and checked afterwards.
//   baddelete  operator delete of a stack address: hakmem reports it and aborts.
#include <dlfcn.h>
#include <malloc.h>
#include <sys/resource.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#define CHECK(c)                                                                   \
    do {                                                                           \
        if (!(c)) {                                                                \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            std::exit(1);                                                          \
        }                                                                          \
    } while (0)

static const std::size_t HUGE_SIZE = (std::size_t)1 << 62;

static void fill(void *p, std::size_t n, unsigned char v) {
    if (n) std::memset(p, v, n);
}
static void check_fill(void *p, std::size_t n, unsigned char v) {
    const unsigned char *c = (const unsigned char *)p;
    for (std::size_t i = 0; i < n; i++) CHECK(c[i] == v);
}

// Every operator symbol must come from libhakmem.so.
static void check_ours() {
    static const char *syms[] = {
        "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t",
        "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
        "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
        "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t",
        "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t",
        "_ZdaPvmSt11align_val_t", "_ZdlPvSt11align_val_tRKSt9nothrow_t",
        "_ZdaPvSt11align_val_tRKSt9nothrow_t",
    };
    for (const char *s : syms) {
        void *f = dlsym(RTLD_DEFAULT, s);
        Dl_info info;
        if (!f || !dladdr(f, &info) || !info.dli_fname || !std::strstr(info.dli_fname, "libhakmem")) {
            std::fprintf(stderr, "%s resolves to %s, not libhakmem.so\n", s,
                         f && dladdr(f, &info) && info.dli_fname ? info.dli_fname : "(nothing)");
            std::exit(1);
        }
    }
    // And the block is hakmem's: malloc_usable_size (hakmem's, validating) accepts it.
    void *p = ::operator new(1000);
    CHECK(malloc_usable_size(p) >= 1000);
    ::operator delete(p, 1000);
}

static void forms(bool hakmem) {
    if (hakmem) check_ours();
    std::vector<std::size_t> sizes;
    for (std::size_t n = 0; n <= 70000; n += (n < 1100 ? 1 : n < 9000 ? 7 : 331)) sizes.push_back(n);
    for (std::size_t n : {(std::size_t)262144, (std::size_t)262145, (std::size_t)1 << 20, (std::size_t)5 << 20})
        sizes.push_back(n);
    unsigned char v = 1;
    for (std::size_t n : sizes) {
        v++;
        // new / sized delete, new[] / sized delete[]: every size (every class).
        void *a = ::operator new(n);
        void *b = ::operator new[](n);
        CHECK(a && b && ((std::uintptr_t)a % alignof(std::max_align_t)) == 0);
        fill(a, n, v);
        fill(b, n, v + 1);
        check_fill(a, n, v);
        check_fill(b, n, v + 1);
        ::operator delete(a, n);
        ::operator delete[](b, n);
        // Plain deletes and nothrow forms on a sample.
        if (n % 97 == 0 || n > 65536) {
            void *c = ::operator new(n, std::nothrow);
            void *d = ::operator new[](n, std::nothrow);
            CHECK(c && d);
            fill(c, n, v);
            fill(d, n, v);
            ::operator delete(c);
            ::operator delete[](d, std::nothrow);
            void *e = ::operator new(n);
            void *f = ::operator new[](n);
            fill(e, n, v);
            fill(f, n, v);
            ::operator delete(e, std::nothrow);
            ::operator delete[](f);
        }
    }
    // Aligned forms: alignment checked, every delete form.
    for (std::size_t al = 1; al <= ((std::size_t)1 << 21); al <<= 1) {
        for (std::size_t n : {(std::size_t)0, (std::size_t)1, al / 2, al, al + 1, 3 * al + 5, (std::size_t)100000}) {
            std::align_val_t a{al};
            void *p = ::operator new(n, a);
            void *q = ::operator new[](n, a);
            void *r = ::operator new(n, a, std::nothrow);
            void *s = ::operator new[](n, a, std::nothrow);
            for (void *x : {p, q, r, s}) {
                CHECK(x && (std::uintptr_t)x % al == 0);
                fill(x, n, (unsigned char)al);
            }
            check_fill(p, n, (unsigned char)al);
            ::operator delete(p, n, a);
            ::operator delete[](q, n, a);
            ::operator delete(r, a, std::nothrow);
            ::operator delete[](s, a);
            void *t = ::operator new(n, a);
            void *u = ::operator new[](n, a);
            ::operator delete(t, a);
            ::operator delete[](u, a, std::nothrow);
        }
    }
    // Objects through new-expressions (the compiler picks sized / aligned deletes).
    struct alignas(256) Over { char c[300]; };
    std::vector<Over *> os;
    for (int i = 0; i < 1000; i++) {
        os.push_back(new Over);
        CHECK((std::uintptr_t)os.back() % 256 == 0);
    }
    for (Over *o : os) delete o;
    for (int i = 0; i < 1000; i++) {
        std::string s(std::size_t(i * 13), 'x');
        std::vector<int> vec(std::size_t(i * 3), i);
        CHECK(s.size() == std::size_t(i * 13) && (vec.empty() || vec.back() == i));
    }
    // Null deletes do nothing.
    ::operator delete(nullptr);
    ::operator delete[](nullptr, std::size_t(16));
    ::operator delete(nullptr, std::align_val_t(64));
}

// handler: the limit on the address space makes a 1 GiB request fail; the handler lifts it.
static int calls;
static void lift_limit() {
    calls++;
    struct rlimit r;
    getrlimit(RLIMIT_AS, &r);
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_AS, &r);
}

static std::size_t vm_bytes() {
    FILE *f = std::fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (std::fscanf(f, "%lu", &pages) != 1) pages = 0;
        std::fclose(f);
    }
    return pages * 4096;
}

static void handler() {
    for (int form = 0; form < 3; form++) {
        // No cached block may serve the request without the handler: give cached memory
        // back, and ask for a bigger block each time.
        malloc_trim(0);
        struct rlimit r;
        CHECK(getrlimit(RLIMIT_AS, &r) == 0);
        r.rlim_cur = vm_bytes() + (256u << 20);
        CHECK(setrlimit(RLIMIT_AS, &r) == 0);
        std::set_new_handler(lift_limit);
        calls = 0;
        const std::size_t n = ((std::size_t)1 << 30) + (std::size_t)form * (512u << 20);
        void *p = form == 0   ? ::operator new(n)
                  : form == 1 ? ::operator new[](n, std::nothrow)
                              : ::operator new(n, std::align_val_t(4096));
        CHECK(p && calls == 1);
        std::memset(p, 1, 4096);
        if (form == 0)
            ::operator delete(p);
        else if (form == 1)
            ::operator delete[](p);
        else
            ::operator delete(p, std::align_val_t(4096));
        std::set_new_handler(nullptr);
    }
}

static void twice() {
    if (++calls == 2) std::set_new_handler(nullptr);
}

static void handler2() {
    for (int form = 0; form < 3; form++) {
        std::set_new_handler(twice);
        calls = 0;
        bool caught = false;
        try {
            void *p = form == 0   ? ::operator new(HUGE_SIZE)
                      : form == 1 ? ::operator new[](HUGE_SIZE)
                                  : ::operator new[](HUGE_SIZE, std::align_val_t(64));
            (void)p;
        } catch (const std::bad_alloc &) {
            caught = true;
        }
        CHECK(caught && calls == 2);
    }
    std::set_new_handler(twice);
    calls = 0;
    CHECK(::operator new(HUGE_SIZE, std::nothrow) == nullptr && calls == 2);
}

struct Mine {
    int v;
};
static void throw_mine() { throw Mine{42}; }

static void throws_() {
    std::set_new_handler(throw_mine);
    int got = 0;
    try {
        (void)::operator new(HUGE_SIZE);
    } catch (const Mine &m) {
        got += m.v == 42;
    }
    try {
        (void)::operator new[](HUGE_SIZE, std::align_val_t(32));
    } catch (const Mine &m) {
        got += m.v == 42;
    }
    CHECK(got == 2);
    // libstdc++'s nothrow operators catch anything and return nullptr.
    CHECK(::operator new(HUGE_SIZE, std::nothrow) == nullptr);
    CHECK(::operator new[](HUGE_SIZE, std::nothrow) == nullptr);
    CHECK(::operator new(HUGE_SIZE, std::align_val_t(128), std::nothrow) == nullptr);
    CHECK(::operator new[](HUGE_SIZE, std::align_val_t(128), std::nothrow) == nullptr);
    std::set_new_handler(nullptr);
}

template <class F> static bool throws_bad_alloc(F f) {
    try {
        f();
    } catch (const std::bad_alloc &) {
        return true;
    }
    return false;
}

static void badalloc() {
    CHECK(std::get_new_handler() == nullptr);
    CHECK(throws_bad_alloc([] { (void)::operator new(HUGE_SIZE); }));
    CHECK(throws_bad_alloc([] { (void)::operator new[](HUGE_SIZE); }));
    CHECK(throws_bad_alloc([] { (void)::operator new(HUGE_SIZE, std::align_val_t(64)); }));
    CHECK(throws_bad_alloc([] { (void)::operator new[](HUGE_SIZE, std::align_val_t(8192)); }));
    CHECK(throws_bad_alloc([] { (void)::operator new(64, std::align_val_t(48)); }));
    CHECK(throws_bad_alloc([] { (void)::operator new[](64, std::align_val_t(3)); }));
    CHECK(::operator new(HUGE_SIZE, std::nothrow) == nullptr);
    CHECK(::operator new[](HUGE_SIZE, std::nothrow) == nullptr);
    CHECK(::operator new(HUGE_SIZE, std::align_val_t(64), std::nothrow) == nullptr);
    CHECK(::operator new[](HUGE_SIZE, std::align_val_t(64), std::nothrow) == nullptr);
    CHECK(::operator new(64, std::align_val_t(48), std::nothrow) == nullptr);
    // Still working afterwards.
    void *p = ::operator new(100);
    ::operator delete(p, 100);
}

static void mismatch() {
    // A 100-byte block deleted as 5000 bytes, a 5000-byte one as 24, a 300000-byte one
    // as 16, an aligned one with a wrong size.
    void *a = ::operator new(100);
    void *b = ::operator new(5000);
    void *c = ::operator new(300000);
    void *d = ::operator new(200, std::align_val_t(512));
    std::fprintf(stdout, "mismatch: deleting\n");
    std::fflush(stdout);
    ::operator delete(a, 5000);
    ::operator delete(b, 24);
    ::operator delete(c, 16);
    ::operator delete(d, 64, std::align_val_t(512));
    // The heap is intact: blocks of every size involved, written and checked.
    std::vector<std::pair<unsigned char *, std::size_t>> v;
    for (int i = 0; i < 2000; i++) {
        std::size_t n = (std::size_t[]){16, 24, 100, 200, 5000, 300000}[i % 6];
        unsigned char *p = (unsigned char *)::operator new(n);
        fill(p, n, (unsigned char)i);
        v.push_back({p, n});
    }
    for (std::size_t i = 0; i < v.size(); i++) check_fill(v[i].first, v[i].second, (unsigned char)i);
    for (auto &x : v) ::operator delete(x.first, x.second);
}

static void baddelete() {
    char local[64];
    void *volatile p = local + 16;
    std::fprintf(stdout, "baddelete: deleting\n");
    std::fflush(stdout);
    ::operator delete(p, 48);
    std::fprintf(stderr, "baddelete: not stopped\n");
    std::exit(1);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: operators MODE [hakmem]\n");
        return 2;
    }
    std::string mode = argv[1];
    bool hakmem = argc > 2 && std::string(argv[2]) == "hakmem";
    if (mode == "forms") forms(hakmem);
    else if (mode == "handler") handler();
    else if (mode == "handler2") handler2();
    else if (mode == "throws") throws_();
    else if (mode == "badalloc") badalloc();
    else if (mode == "mismatch") mismatch();
    else if (mode == "baddelete") baddelete();
    else {
        std::fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
    }
    std::printf("%s: ok\n", argv[1]);
    return 0;
}
