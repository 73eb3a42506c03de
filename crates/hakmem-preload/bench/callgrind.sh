#!/usr/bin/env bash
# Instructions per operation of bench/mixed.c (1 thread, WS=400, sizes 16..=1024) under
# valgrind --tool=callgrind, for libhakmem.so and the peers' shared libraries under
# LD_PRELOAD, in the same run. Deterministic (instruction counts, not time): a run of
# OPS1 and one of OPS2 operations, (Ir(OPS2) - Ir(OPS1)) / (OPS2 - OPS1), so start-up and
# exit cancel out.
#
#   crates/hakmem-preload/bench/callgrind.sh                  # hakmem (release build), mimalloc, glibc
#   HAKMEM_SO=/path/libhakmem.so crates/hakmem-preload/bench/callgrind.sh
#   PEERS="mimalloc jemalloc tcmalloc" OPS1=1000000 OPS2=3000000 crates/hakmem-preload/bench/callgrind.sh
#
# Peers are Debian's shared libraries, used when installed (apt-get install
# libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4); a missing one is skipped. hakmem
# is built with `cargo build --release -p hakmem-preload-so` unless HAKMEM_SO is set
# (EXTRA_SO="name=/path.so ..." adds more variants, e.g. another preset).
set -euo pipefail
cd "$(dirname "$0")/../../.."
OPS1=${OPS1:-1000000}
OPS2=${OPS2:-3000000}
PEERS=${PEERS:-mimalloc}
T=${BENCH_TARGET_DIR:-target/preload-bench}
mkdir -p "$T"
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 2; }
if [ -z "${HAKMEM_SO:-}" ]; then
    cargo build --release -q -p hakmem-preload-so
    HAKMEM_SO=$PWD/target/release/libhakmem.so
fi
${CC:-cc} -O2 -o "$T/mixed" crates/hakmem-preload/bench/mixed.c
LIB=/usr/lib/x86_64-linux-gnu
declare -A SO=([mimalloc]=$LIB/libmimalloc.so.2 [jemalloc]=$LIB/libjemalloc.so.2
    [tcmalloc]=$LIB/libtcmalloc_minimal.so.4)
VARIANTS=("hakmem=$HAKMEM_SO")
for e in ${EXTRA_SO:-}; do VARIANTS+=("$e"); done
for p in $PEERS; do
    if [ -e "${SO[$p]:-/nonexistent}" ]; then VARIANTS+=("$p=${SO[$p]}"); else echo "SKIPPED $p (not installed)" >&2; fi
done
VARIANTS+=("glibc=")
ir() { # ir SO OPS -> total instructions of the run
    local out
    out=$(mktemp)
    if [ -n "$1" ]; then
        env LD_PRELOAD="$1" valgrind --tool=callgrind --callgrind-out-file="$out" "$T/mixed" "$2" >/dev/null 2>&1
    else
        valgrind --tool=callgrind --callgrind-out-file="$out" "$T/mixed" "$2" >/dev/null 2>&1
    fi
    awk '/^summary:/ {print $2}' "$out"
    rm -f "$out"
}
printf '%-12s %10s\n' variant Ir/op
for v in "${VARIANTS[@]}"; do
    name=${v%%=*} so=${v#*=}
    a=$(ir "$so" "$OPS1") b=$(ir "$so" "$OPS2")
    awk -v n="$name" -v a="$a" -v b="$b" -v o1="$OPS1" -v o2="$OPS2" \
        'BEGIN { printf "%-12s %10.1f\n", n, (b - a) / (o2 - o1) }'
done
