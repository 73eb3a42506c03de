//! `HAKMEM_THP`: the transparent-huge-page advice on each kind of range hakmem maps, read
//! back from the kernel (`VmFlags` in `/proc/self/smaps`: `hg` for `MADV_HUGEPAGE`, `nh`
//! for `MADV_NOHUGEPAGE`), in a child process per gate value, for the host's THP mode
//! (`/sys/kernel/mm/transparent_hugepage/enabled`). The table the kernel must show is
//! written out here, not derived from the code under test (results/205):
//!
//! | host | gate | sparse | dense | proven dense |
//! |---|---|---|---|---|
//! | `never` (or unreadable) | any | - | - | - |
//! | `madvise` | `AUTO` | - | - | - |
//! | `madvise` | `NEVER` | - | - | - |
//! | `madvise` | `DENSE` | - | `hg` | `hg` |
//! | `always` | `AUTO` | `nh` | - | `nh` / - |
//! | `always` | `NEVER` | `nh` | `nh` | `nh` |
//! | `always` | `DENSE` | `nh` | `hg` | `hg` |
//!
//! Sparse: a superslab's first 2 MiB, the whole superslab of a class of blocks above
//! 4 KiB, a large mapping outside its block's whole 2 MiB pages (past the last, and
//! before the header of a block aligned to 2 MiB). Dense: the second half of a superslab
//! of a class of blocks up to 4 KiB, a large block's whole 2 MiB pages. Proven dense:
//! the whole superslab a class of blocks up to 4 KiB gets once it filled every one it
//! had, dense under `DENSE` only; under the other gates, and in lean mode (which trades
//! faults for resident bytes), it is advised as any superslab of its class, first half
//! sparse and second half dense (hence `nh` / - in the table).

use std::process::Command;

use hakmem_os_stats::os::{ThpHost, thp_host};

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

const MIB: usize = 1 << 20;
const UNIT: usize = 4 * MIB;

/// The `VmFlags` of the mapping that holds `addr`.
fn flags_at(addr: usize) -> Vec<String> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            inside = (a..b).contains(&addr);
            continue;
        }
        if inside && let Some(f) = line.strip_prefix("VmFlags:") {
            return f.split_whitespace().map(str::to_string).collect();
        }
    }
    panic!("no mapping holds {addr:#x}");
}

/// `"hg"`, `"nh"` or `"-"`: the advice the kernel holds for the mapping at `addr`.
fn advice_at(addr: usize) -> &'static str {
    let f = flags_at(addr);
    match (f.iter().any(|x| x == "hg"), f.iter().any(|x| x == "nh")) {
        (true, false) => "hg",
        (false, true) => "nh",
        (false, false) => "-",
        (true, true) => panic!("both hg and nh at {addr:#x}: {f:?}"),
    }
}

/// In the child: allocate a block of a class up to 4 KiB, one above, and a 5 MiB large
/// block; print the advice at each range as `name=advice`.
fn child() {
    let small = Box::new([1u8; 64]);
    let mid = vec![2u8; 20_000];
    let large = vec![3u8; 5 * MIB];
    // A 4 KiB block aligned to 2 MiB: its header is the last 64 bytes of its mapping's
    // first 2 MiB, which it leaves empty.
    let al = std::alloc::Layout::from_size_align(4096, 2 * MIB).unwrap();
    // SAFETY: a non-zero layout.
    let aligned = unsafe { std::alloc::alloc(al) };
    assert!(!aligned.is_null() && (aligned as usize).is_multiple_of(2 * MIB));
    // SAFETY: the block holds 4096 bytes.
    unsafe { aligned.write_bytes(4, 4096) };
    let ss = |p: *const u8| p as usize & !(UNIT - 1);
    let s = ss(small.as_ptr());
    let m = ss(mid.as_ptr());
    // The large block's mapping starts at its header, 64 bytes before it, on a unit.
    let l = ss(large.as_ptr().wrapping_sub(64));
    // A class of 256-byte blocks grown past one superslab (4 MiB holds about 16,000):
    // the next superslab of the class is proven dense.
    let mut fill: Vec<Box<[u8; 256]>> = Vec::with_capacity(40_000);
    fill.push(Box::new([5u8; 256]));
    let first = ss(fill[0].as_ptr());
    let next = loop {
        assert!(
            fill.len() < 40_000,
            "no second superslab after 10 MiB of blocks"
        );
        let b = Box::new([5u8; 256]);
        let u = ss(b.as_ptr());
        fill.push(b);
        if u != first {
            break u;
        }
    };
    let out = [
        ("proven_first_half", advice_at(next)),
        ("proven_second_half", advice_at(next + 2 * MIB)),
        ("small_first_half", advice_at(s)),
        ("small_second_half", advice_at(s + 2 * MIB)),
        ("mid_first_half", advice_at(m)),
        ("mid_second_half", advice_at(m + 2 * MIB)),
        ("large_whole_pages", advice_at(l)),
        ("large_tail", advice_at(l + 4 * MIB)),
        ("aligned_before_header", advice_at(ss(aligned))),
        ("aligned_block", advice_at(aligned as usize)),
    ];
    for (k, v) in out {
        println!("THP {k}={v}");
    }
    drop((small, mid, large, fill));
    // SAFETY: from `alloc` with `al`, freed once.
    unsafe { std::alloc::dealloc(aligned, al) };
}

#[test]
fn thp_child() {
    if std::env::var_os("HAKMEM_THP_TEST_CHILD").is_some() {
        child();
    }
}

/// What the kernel must show, by host mode and gate: (sparse, dense, proven dense).
fn expected(host: ThpHost, gate: &str) -> (&'static str, &'static str, &'static str) {
    match (host, gate) {
        (ThpHost::Never, _) => ("-", "-", "-"),
        (ThpHost::Madvise, "DENSE") => ("-", "hg", "hg"),
        (ThpHost::Madvise, _) => ("-", "-", "-"),
        (ThpHost::Always, "AUTO") => ("nh", "-", "-"),
        (ThpHost::Always, "NEVER") => ("nh", "nh", "nh"),
        (ThpHost::Always, "DENSE") => ("nh", "hg", "hg"),
        _ => unreachable!(),
    }
}

#[test]
fn each_range_gets_the_advice_of_its_kind() {
    let host = thp_host();
    // Outside lean mode (BALANCED's decommit `OFF`, whatever the preset), then in it.
    for (gate, lean) in [
        ("AUTO", false),
        ("NEVER", false),
        ("DENSE", false),
        ("AUTO", true),
        ("DENSE", true),
    ] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "thp_child", "--nocapture", "--test-threads=1"])
            .env("HAKMEM_THP_TEST_CHILD", "1")
            .env("HAKMEM_THP", gate)
            .env("HAKMEM_SS_MEM_LEAN", "1")
            .env(
                "HAKMEM_SS_MEM_LEAN_DECOMMIT",
                if lean { "DONTNEED" } else { "OFF" },
            )
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{gate}: child failed: {stdout}");
        let got = |k: &str| -> String {
            // (The harness may print its own words before the child's first line.)
            let pat = format!("THP {k}=");
            stdout
                .lines()
                .find_map(|l| l.find(&pat).map(|i| &l[i + pat.len()..]))
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or_else(|| panic!("{gate}: no {k} in {stdout}"))
                .to_string()
        };
        let (sparse, dense, proven) = expected(host, gate);
        // A proven superslab is dense as a whole under `DENSE` outside lean mode; else it
        // is advised as any of its class.
        let (proven_first, proven_second) = if gate == "DENSE" && !lean {
            (proven, proven)
        } else {
            (sparse, dense)
        };
        println!("host {host:?}, HAKMEM_THP={gate}, lean {lean}: {stdout}");
        for (k, want) in [
            ("proven_first_half", proven_first),
            ("proven_second_half", proven_second),
            ("small_first_half", sparse),
            ("small_second_half", dense),
            ("mid_first_half", sparse),
            ("mid_second_half", sparse),
            ("large_whole_pages", dense),
            ("large_tail", sparse),
            // No whole 2 MiB page inside the aligned block: all of its mapping sparse.
            ("aligned_before_header", sparse),
            ("aligned_block", sparse),
        ] {
            assert_eq!(
                got(k),
                want,
                "host {host:?}, HAKMEM_THP={gate}, lean {lean}: {k}"
            );
        }
    }
}
