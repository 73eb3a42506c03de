//! The workloads added with the realistic ones, each run once briefly in-process under
//! hakmem (this test binary's global allocator, default preset): every block freed, the
//! op counts, and the realistic workloads' checksums equal to the system allocator's
//! (`common::CHECKSUMS`, checked under the system allocator by `smoke.rs`).

mod common;

use common::{CHECKSUMS, tiny};
use hakmem_bench::measure::no_probe;
use hakmem_bench::run;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

#[test]
fn new_workloads_run_under_hakmem() {
    for name in [
        "json",
        "text",
        "btree",
        "arena",
        "prodcons",
        "large-mt",
        "burst-4k",
        "burst-300k",
        "burst-1m",
    ] {
        let p = tiny(name);
        let o = run(&p, no_probe);
        assert_eq!(o.ops, p.expected_ops(), "{name}: ops");
        assert_eq!(
            o.live(),
            0,
            "{name}: {} allocs, {} frees",
            o.allocs,
            o.frees
        );
        if let Some(&(_, want)) = CHECKSUMS.iter().find(|c| c.0 == name) {
            assert_eq!(o.checksum, Some(want), "{name}: checksum under hakmem");
        } else {
            assert!(o.allocs > 0, "{name}");
        }
        if name.starts_with("burst") {
            assert!(o.rss_after_free_kib.is_some() && o.rss_after_idle_kib.is_some());
        }
    }
}
