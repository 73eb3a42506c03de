// tests/c/exit_key.c as a C++ program: libstdc++'s own constructor allocates (its
// emergency exception pool) before libhakmem.so's constructor runs, so hakmem's first
// allocation comes from another library's constructor. The key must still wait for the
// first pthread_create (the deferral is decided at each thread's set-up, not by a
// constructor).
#include <string>

static std::string keep(100, 'x');

#include "../c/exit_key.c"
