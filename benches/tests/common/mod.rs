//! What the smoke tests share: tiny parameters for every workload, and the checksums the
//! realistic workloads must compute with them (the same under every allocator).

#![allow(dead_code)]

use hakmem_bench::{Kind, Params, spec};

/// Tiny parameters for `name` on 2 threads.
pub fn tiny(name: &str) -> Params {
    let mut p = Params::of(spec(name).expect("known workload"), 2);
    p.ops = match p.kind {
        Kind::Mixed => 20_000,
        Kind::Large => 200,
        Kind::Realloc => 2_000,
        Kind::Json => 300,
        Kind::Text => 3_000,
        Kind::Btree => 5_000,
        Kind::Arena => 50,
        Kind::LargeMt => 100,
        Kind::Burst => 1,
        _ => 10_000,
    };
    p.lifetimes = 8;
    p.epoch = 500;
    p.idle_ms = 10;
    match p.kind {
        Kind::Larson => p.ws = 100,
        Kind::Json => p.ws = 100,
        Kind::Text => p.ws = 1_000,
        Kind::Btree => p.ws = 500,
        Kind::LargeMt => p.max = 1 << 20,
        Kind::Burst => p.ws = 16,
        _ => {}
    }
    p
}

/// The checksum of each realistic workload run with [`tiny`] parameters.
pub const CHECKSUMS: &[(&str, u64)] = &[
    ("json", 8_918_553_921_596_777_366),
    ("text", 16_192_167_143_030_090_663),
    ("btree", 18_156_584_326_332_109_117),
    ("arena", 121_381_330_712_950_119),
];
