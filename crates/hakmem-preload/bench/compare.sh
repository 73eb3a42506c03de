#!/usr/bin/env bash
# The reference workload (1 thread, WS=400, sizes 16..=1024, first byte written) side by
# side: the Rust global-allocator build, the same calls statically linked with C
# semantics, libhakmem.so under LD_PRELOAD in three TLS variants, and glibc. Interleaved
# rounds; prints the median and the minimum ns/op of each, and the ratio of medians to
# the Rust global-allocator build.
#
#   crates/hakmem-preload/bench/compare.sh            # ROUNDS=11 OPS=20000000 by default
#   ROUNDS=21 OPS=50000000 crates/hakmem-preload/bench/compare.sh
#
# Variants (see docs/c-abi.md, "TLS model"):
#   rust-global   examples/mixed.rs global: #[global_allocator] HakMem, alloc/dealloc with a Layout
#   rust-c        examples/mixed.rs c: hakmem_preload::malloc/free linked statically (no .so)
#   so-gd         libhakmem.so as `cargo build --release` makes it (general-dynamic TLS:
#                 __tls_get_addr on every malloc and free)
#   so-tlsdesc    built with `cargo rustc ... -- -C llvm-args=-enable-tlsdesc` (stable)
#   so-ie         built with RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Z tls-model=initial-exec" (an
#                 unstable flag: measured for reference only; skipped if it fails to build)
#   glibc         bench/mixed.c without LD_PRELOAD
#   call-floor    bench/mixed.c -DNULL_ALLOC: the loop plus a call through the PLT to a
#                 do-nothing allocator in a shared object (bench/null_alloc.c): what any
#                 preloaded malloc pays before doing any work
#   floor         bench/mixed.c floor: the loop alone, blocks from a static pool
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROUNDS=${ROUNDS:-11}
OPS=${OPS:-20000000}
T=${BENCH_TARGET_DIR:-target/preload-bench}
mkdir -p "$T"
q() { "$@" 2>&1 | grep -E '^(error|warning: unused)' || true; }

echo "building (target dirs under $T) ..." >&2
q cargo build --release -p hakmem-preload --example mixed
q cargo build --release -p hakmem-preload-so
q cargo rustc --release -p hakmem-preload-so --lib --target-dir "$T/tlsdesc" -- -C llvm-args=-enable-tlsdesc
IE=1
RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Z tls-model=initial-exec" cargo build --release -p hakmem-preload-so \
    --target-dir "$T/ie" >/dev/null 2>&1 || IE=0
${CC:-cc} -O2 -o "$T/mixed" crates/hakmem-preload/bench/mixed.c
${CC:-cc} -O2 -fPIC -shared -o "$T/libnull_alloc.so" crates/hakmem-preload/bench/null_alloc.c
${CC:-cc} -O2 -DNULL_ALLOC -o "$T/mixed-null" crates/hakmem-preload/bench/mixed.c -L"$T" -lnull_alloc \
    -Wl,-rpath,"$PWD/$T"

RUST=target/release/examples/mixed
declare -A CMD=(
    [rust-global]="$RUST global $OPS"
    [rust-c]="$RUST c $OPS"
    [so-gd]="env LD_PRELOAD=$PWD/target/release/libhakmem.so $T/mixed $OPS"
    [so-tlsdesc]="env LD_PRELOAD=$PWD/$T/tlsdesc/release/libhakmem.so $T/mixed $OPS"
    [so-ie]="env LD_PRELOAD=$PWD/$T/ie/release/libhakmem.so $T/mixed $OPS"
    [glibc]="$T/mixed $OPS"
    [call-floor]="$T/mixed-null $OPS"
    [floor]="$T/mixed $OPS 400 42 floor"
)
ORDER=(rust-global rust-c so-gd so-tlsdesc so-ie glibc call-floor floor)
[ "$IE" = 1 ] || ORDER=(rust-global rust-c so-gd so-tlsdesc glibc call-floor floor)

declare -A RES
for ((r = 1; r <= ROUNDS; r++)); do
    for v in "${ORDER[@]}"; do
        ns=$(${CMD[$v]} | sed -n 's/.*ns_per_op=\([0-9.]*\).*/\1/p')
        RES[$v]="${RES[$v]:-} $ns"
    done
    echo "round $r/$ROUNDS done" >&2
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
minimum() { tr ' ' '\n' | grep . | sort -g | head -n 1; }
base=$(echo "${RES[rust-global]}" | median)
echo "reference workload, $OPS ops x $ROUNDS interleaved rounds ($(uname -m), $(nproc) cpus)"
printf '%-12s %12s %10s %16s\n' variant "median ns/op" "min ns/op" "median / global"
for v in "${ORDER[@]}"; do
    m=$(echo "${RES[$v]}" | median)
    printf '%-12s %12.3f %10.3f %16.3f\n' "$v" "$m" "$(echo "${RES[$v]}" | minimum)" \
        "$(awk -v a="$m" -v b="$base" 'BEGIN {print a / b}')"
done
