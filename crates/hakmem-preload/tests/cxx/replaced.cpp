// A program that replaces only the basic `operator new(std::size_t)` and
// `operator delete(void*)` (allowed by [new.delete]): every other form (new[], nothrow,
// sized delete, which g++ emits for `delete obj` since C++14) must reach them, as
// libstdc++'s other forms do. Under LD_PRELOAD=libhakmem.so, hakmem's exports of those
// forms must then hand over to libstdc++'s instead of calling hakmem's free on the
// program's blocks (tests/cxx_programs.rs).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

static const unsigned long MAGIC = 0x5245504c41434544ul;  // "REPLACED"
static long news, deletes;

void *operator new(std::size_t n) {
    // The program's own heap: a header with a magic word before each block.
    unsigned long *h = (unsigned long *)std::malloc(n + 16);
    if (!h) throw std::bad_alloc();
    h[0] = MAGIC;
    h[1] = n;
    news++;
    return h + 2;
}

void operator delete(void *p) noexcept {
    if (!p) return;
    unsigned long *h = (unsigned long *)p - 2;
    if (h[0] != MAGIC) {
        std::fprintf(stderr, "replaced: operator delete(%p): not from our operator new\n", p);
        std::abort();
    }
    h[0] = 0;
    deletes++;
    std::free(h);
}

struct Obj {
    char c[40];
};

int main() {
    for (int i = 0; i < 1000; i++) {
        Obj *o = new Obj;            // _Znwm: ours
        delete o;                    // _ZdlPvm (sized): must reach ours
        int *a = new int[i + 1];     // _Znam: must reach ours
        a[i] = i;
        delete[] a;                  // _ZdaPv: must reach ours
        Obj *b = new (std::nothrow) Obj;  // nothrow: must reach ours
        delete b;
        void *c = ::operator new[](100, std::nothrow);
        ::operator delete[](c, std::nothrow);
        ::operator delete(::operator new(24), std::size_t(24));
        ::operator delete[](::operator new[](24), std::size_t(24));
    }
    if (news != 6000 || deletes != 6000) {
        std::fprintf(stderr, "replaced: %ld news, %ld deletes (expected 6000 each)\n", news, deletes);
        return 1;
    }
    std::printf("replaced: ok\n");
    return 0;
}
