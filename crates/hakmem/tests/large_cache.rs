//! The large-block cache holds no more resident memory than its bound (issue 12, bug 4),
//! in every preset. Its own test binary with a single test, so that nothing else
//! allocates or frees meanwhile and the resident set can be compared before and after.
//!
//! Two ways a freed mapping can hold far more than its block's last requested size:
//! - a 64 MiB block shrunk in place by `realloc` to 300 KiB keeps the 64 MiB it touched;
//! - a 300 KiB block written up to its usable size (the end of its 4 MiB mapping).
//!
//! After 16 of the first and (separately) 64 of the second are freed, the cache must
//! count at most `HAKMEM_LARGE_CACHE_MIB` ([`hakmem::stats`]' `large_cached_bytes`), and
//! the resident memory it holds (the process's RSS growth) must be within what it counts,
//! so within the bound. Then, one large call after the decay time retires every cached
//! mapping at once.
//!
//! Slack: [`slack`] covers what the process touches besides the cache while it runs (the
//! registry's lazily touched pages for new address ranges, the test's own vectors, the
//! harness), and what a `DONTNEED` leaves (nothing).

use hakmem::raw;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

const MIB: u64 = 1 << 20;
/// Resident bytes not held by the cache that may appear during a phase (see the module
/// doc): a few registry pages, the vectors of pointers, stdout's buffer. With
/// transparent huge pages forced on ("always"), a touch of the registry or of a new
/// superslab may fault a whole 2 MiB page: two more of those.
fn slack() -> u64 {
    let thp_always = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .map(|s| s.contains("[always]"))
        .unwrap_or(false);
    if thp_always { 8 * MIB } else { 4 * MIB }
}

fn rss() -> u64 {
    hakmem::stats().resident_bytes
}

fn limit() -> u64 {
    u64::from(hakmem_env_gates::gates().large_cache_mib) * MIB
}

/// Judge the cache after a phase that started at resident `before`; what is wrong goes
/// into `failures` (so that every case is judged, even when an earlier one failed).
fn check(what: &str, before: u64, failures: &mut Vec<String>) {
    let after = rss();
    let s = hakmem::stats();
    let held = after.saturating_sub(before);
    let counted = s.large_cached_bytes;
    let (entries, _) = hakmem_release_policy::LARGE.usage();
    eprintln!(
        "preset {:?}, {what}: RSS {} -> {} MiB (held {} MiB), cache counts {} MiB in {entries} \
         mappings, bound {} MiB, live large {} KiB",
        hakmem::PRESET,
        before / MIB,
        after / MIB,
        held / MIB,
        counted / MIB,
        limit() / MIB,
        s.large_live_bytes >> 10
    );
    if counted > limit() {
        failures.push(format!(
            "{what}: the cache counts {} MiB, over its bound {} MiB",
            counted / MIB,
            limit() / MIB
        ));
    }
    if held > counted + slack() {
        failures.push(format!(
            "{what}: the cache holds {} MiB resident but counts {} MiB",
            held / MIB,
            counted / MIB
        ));
    }
    if held > limit() + slack() {
        failures.push(format!(
            "{what}: the cache holds {} MiB resident, over its bound {} MiB",
            held / MIB,
            limit() / MIB
        ));
    }
}

/// Sixteen 64 MiB blocks, written, shrunk in place to 300 KiB, freed.
fn shrunk_blocks(failures: &mut Vec<String>) {
    let before = rss();
    let blocks: Vec<*mut u8> = (0..16)
        .map(|i| {
            let p = raw::malloc(64 << 20);
            assert!(!p.is_null());
            // SAFETY: a live block of 64 MiB.
            unsafe { p.write_bytes(i as u8 + 1, 64 << 20) };
            p
        })
        .collect();
    let blocks: Vec<*mut u8> = blocks
        .into_iter()
        .map(|p| {
            // SAFETY: `p` is live; shrinking keeps its first 300 KiB.
            let q = unsafe { raw::realloc(p, 300 << 10) }.unwrap();
            assert!(!q.is_null());
            q
        })
        .collect();
    for (i, &p) in blocks.iter().enumerate() {
        // SAFETY: `p` is live, 300 KiB, written with `i + 1`.
        unsafe {
            assert_eq!(*p.add((300 << 10) - 1), i as u8 + 1);
            raw::free(p).unwrap();
        }
    }
    drop(blocks);
    check("16 x 64 MiB shrunk to 300 KiB", before, failures);
}

/// Sixty-four 300 KiB blocks, written up to their usable size, freed.
fn filled_blocks(failures: &mut Vec<String>) {
    let before = rss();
    let blocks: Vec<*mut u8> = (0..64)
        .map(|i| {
            let p = raw::malloc(300 << 10);
            assert!(!p.is_null());
            // SAFETY: `p` is live; its usable size is writable.
            unsafe {
                let n = raw::usable_size(p).unwrap();
                assert!(n >= 300 << 10);
                p.write_bytes(i as u8, n);
            }
            p
        })
        .collect();
    for &p in &blocks {
        // SAFETY: live, freed once.
        unsafe { raw::free(p).unwrap() };
    }
    drop(blocks);
    check("64 x 300 KiB filled to their usable size", before, failures);
}

/// After the decay time, the next large call (or the background thread, when
/// `HAKMEM_BG_PURGE_MS` starts one) retires every cached mapping, not a few.
fn one_call_retires_all_decayed(failures: &mut Vec<String>) {
    let decay = hakmem_env_gates::gates().large_decay_ms;
    let (entries, _) = hakmem_release_policy::LARGE.usage();
    if decay == 0 || entries == 0 {
        eprintln!("no decay ({decay} ms) or nothing cached ({entries}): skipped");
        return;
    }
    // Counted from before the sleep: with `HAKMEM_BG_PURGE_MS` set, the background
    // thread may retire them first.
    let retired = hakmem_os_stats::stats::snapshot().retired;
    std::thread::sleep(std::time::Duration::from_millis(u64::from(decay) + 100));
    let p = raw::malloc(300 << 10);
    assert!(!p.is_null());
    let retired = hakmem_os_stats::stats::snapshot().retired - retired;
    let left = hakmem_release_policy::LARGE.usage();
    // SAFETY: live, freed once.
    unsafe { raw::free(p).unwrap() };
    eprintln!("one large call after {decay} ms retired {retired} of {entries}");
    if left != (0, 0) || retired < entries as u64 {
        failures.push(format!(
            "one large call after the decay retired {retired} of {entries} mappings; \
             {left:?} (mappings, bytes) left"
        ));
    }
}

#[test]
fn the_large_cache_holds_no_more_resident_than_its_bound() {
    let mut failures = Vec::new();
    hakmem::trim();
    shrunk_blocks(&mut failures);
    hakmem::trim();
    filled_blocks(&mut failures);
    one_call_retires_all_decayed(&mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
