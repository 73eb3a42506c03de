/* A shared object with thread-local storage (tests/c/tls_dlopen.c loads many copies). */
__thread long tls_var[4];

long tls_touch(void) { return ++tls_var[0]; }
