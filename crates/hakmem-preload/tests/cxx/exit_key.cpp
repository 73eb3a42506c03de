// tests/c/exit_key.c as a C++ program: libstdc++'s own constructor allocates (its
// emergency exception pool) before libhakmem.so's constructor runs, so hakmem's first
// allocation comes from another library's constructor. The key must still be the one
// low key, with no sweep (the choice is made at each thread's set-up, from the marker
// symbol, not by a constructor).
#include <string>

static std::string keep(100, 'x');

#include "../c/exit_key.c"
