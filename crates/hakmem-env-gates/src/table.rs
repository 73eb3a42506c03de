//! The gate table: every `HAKMEM_*` gate, its type, its default per preset and its doc.
//!
//! [`GATES`] is the single source of truth. [`preset_defaults`](crate::preset_defaults),
//! the parser, the start-up report and `docs/env.md` are all derived from it; const
//! assertions at the bottom of this file check that it is well formed.

use core::fmt;

use crate::{Decommit, Gates, Preset};

/// Names one gate; its discriminant is the gate's row in [`GATES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum GateId {
    /// `HAKMEM_SS_MEM_LEAN`, field [`Gates::ss_mem_lean`].
    SsMemLean = 0,
    /// `HAKMEM_SS_MEM_LEAN_DECOMMIT`, field [`Gates::ss_mem_lean_decommit`].
    SsMemLeanDecommit = 1,
    /// `HAKMEM_SS_OS_STATS`, field [`Gates::ss_os_stats`].
    SsOsStats = 2,
    /// `HAKMEM_ALLOC_PASSDOWN_SSOT`, field [`Gates::alloc_passdown_ssot`].
    AllocPassdownSsot = 3,
    /// `HAKMEM_PREWARM`, field [`Gates::prewarm`].
    Prewarm = 4,
    /// `HAKMEM_PREWARM_DEPTH`, field [`Gates::prewarm_depth`].
    PrewarmDepth = 5,
    /// `HAKMEM_SS_CACHE_MAX`, field [`Gates::ss_cache_max`].
    SsCacheMax = 6,
    /// `HAKMEM_LARGE_CACHE_MIB`, field [`Gates::large_cache_mib`].
    LargeCacheMib = 7,
    /// `HAKMEM_VERBOSE`, field [`Gates::verbose`].
    Verbose = 8,
    /// `HAKMEM_LARGE_DECAY_MS`, field [`Gates::large_decay_ms`].
    LargeDecayMs = 9,
}

/// The number of gates (rows of [`GATES`]).
pub const GATE_COUNT: usize = 10;

impl GateId {
    /// Every gate, in table order.
    pub const ALL: [GateId; GATE_COUNT] = [
        GateId::SsMemLean,
        GateId::SsMemLeanDecommit,
        GateId::SsOsStats,
        GateId::AllocPassdownSsot,
        GateId::Prewarm,
        GateId::PrewarmDepth,
        GateId::SsCacheMax,
        GateId::LargeCacheMib,
        GateId::Verbose,
        GateId::LargeDecayMs,
    ];

    /// The gate's row in [`GATES`] (and in [`gate_sources`](crate::gate_sources)).
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The gate's row of the table.
    #[inline]
    pub const fn spec(self) -> &'static GateSpec {
        // Constant indices into a fixed-size array: an out-of-range one would not compile,
        // so there is no run-time panic path here.
        match self {
            GateId::SsMemLean => &GATES[0],
            GateId::SsMemLeanDecommit => &GATES[1],
            GateId::SsOsStats => &GATES[2],
            GateId::AllocPassdownSsot => &GATES[3],
            GateId::Prewarm => &GATES[4],
            GateId::PrewarmDepth => &GATES[5],
            GateId::SsCacheMax => &GATES[6],
            GateId::LargeCacheMib => &GATES[7],
            GateId::Verbose => &GATES[8],
            GateId::LargeDecayMs => &GATES[9],
        }
    }

    /// The environment variable, e.g. `"HAKMEM_SS_MEM_LEAN"`.
    #[inline]
    pub const fn name(self) -> &'static str {
        self.spec().name
    }
}

/// The type of a gate's value, and so how its environment variable is parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GateType {
    /// `0` or `1`.
    Bool,
    /// `FREE`, `DONTNEED` or `OFF`, in any case.
    Decommit,
    /// A decimal number in `0..=4294967295`.
    U32,
}

impl GateType {
    /// What a valid value looks like, for warnings and docs (e.g. `"0 or 1"`).
    pub const fn expected(self) -> &'static str {
        match self {
            GateType::Bool => "0 or 1",
            GateType::Decommit => "FREE, DONTNEED or OFF",
            GateType::U32 => "a decimal number 0..=4294967295",
        }
    }

    /// The type as `docs/env.md` shows it.
    pub const fn markdown(self) -> &'static str {
        match self {
            GateType::Bool => "`0`/`1`",
            GateType::Decommit => "`FREE`, `DONTNEED`, `OFF`",
            GateType::U32 => "u32",
        }
    }

    /// Parses a raw environment value (the bytes after `=`).
    ///
    /// Leading and trailing ASCII whitespace is ignored and words are matched without
    /// regard to case. `None` means malformed; the caller keeps the default. Never
    /// allocates, never panics.
    pub fn parse(self, raw: &[u8]) -> Option<GateValue> {
        let v = raw.trim_ascii();
        match self {
            GateType::Bool => match v {
                b"0" => Some(GateValue::Bool(false)),
                b"1" => Some(GateValue::Bool(true)),
                _ => None,
            },
            GateType::Decommit => {
                if v.eq_ignore_ascii_case(b"FREE") {
                    Some(GateValue::Decommit(Decommit::Free))
                } else if v.eq_ignore_ascii_case(b"DONTNEED") {
                    Some(GateValue::Decommit(Decommit::DontNeed))
                } else if v.eq_ignore_ascii_case(b"OFF") {
                    Some(GateValue::Decommit(Decommit::Off))
                } else {
                    None
                }
            }
            GateType::U32 => parse_u32(v).map(GateValue::U32),
        }
    }
}

/// Decimal digits only (no sign, no separators), at most `u32::MAX`.
fn parse_u32(v: &[u8]) -> Option<u32> {
    if v.is_empty() {
        return None;
    }
    let mut n: u32 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
    }
    Some(n)
}

/// A gate's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GateValue {
    /// Of a [`GateType::Bool`] gate.
    Bool(bool),
    /// Of a [`GateType::Decommit`] gate.
    Decommit(Decommit),
    /// Of a [`GateType::U32`] gate.
    U32(u32),
}

impl GateValue {
    /// The type this value belongs to.
    pub const fn ty(self) -> GateType {
        match self {
            GateValue::Bool(_) => GateType::Bool,
            GateValue::Decommit(_) => GateType::Decommit,
            GateValue::U32(_) => GateType::U32,
        }
    }

    /// Equality usable in `const` contexts.
    pub const fn const_eq(self, other: GateValue) -> bool {
        match (self, other) {
            (GateValue::Bool(a), GateValue::Bool(b)) => a == b,
            (GateValue::Decommit(a), GateValue::Decommit(b)) => a as u8 == b as u8,
            (GateValue::U32(a), GateValue::U32(b)) => a == b,
            _ => false,
        }
    }
}

/// Written as the environment spells it: `0`/`1`, `FREE`/`DONTNEED`/`OFF`, decimal.
impl fmt::Display for GateValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GateValue::Bool(b) => f.write_str(if b { "1" } else { "0" }),
            GateValue::Decommit(d) => f.write_str(d.as_str()),
            GateValue::U32(n) => fmt::Display::fmt(&n, f),
        }
    }
}

/// One row of the gate table.
#[derive(Clone, Copy, Debug)]
pub struct GateSpec {
    /// Which gate (its discriminant is this row's index).
    pub id: GateId,
    /// The environment variable.
    pub name: &'static str,
    /// How the value is parsed.
    pub ty: GateType,
    /// The gate's own default: the seed's for the seed's gates (`HAKMEM_SS_MEM_LEAN` off,
    /// `HAKMEM_SS_MEM_LEAN_DECOMMIT` `FREE`, ...), BALANCED's for the project's own. A
    /// preset whose value differs from it *sets* the gate
    /// ([`Source::Preset`](crate::Source::Preset)); the others leave it alone.
    pub default: GateValue,
    /// Default under preset SAFE.
    pub safe: GateValue,
    /// Default under preset BALANCED.
    pub balanced: GateValue,
    /// Default under preset LEAN.
    pub lean: GateValue,
    /// One line: what the gate does.
    pub doc: &'static str,
}

impl GateSpec {
    /// The default under preset `p`.
    #[inline]
    pub const fn default_for(&self, p: Preset) -> GateValue {
        match p {
            Preset::Safe => self.safe,
            Preset::Balanced => self.balanced,
            Preset::Lean => self.lean,
        }
    }
}

const fn b(v: bool) -> GateValue {
    GateValue::Bool(v)
}
const fn n(v: u32) -> GateValue {
    GateValue::U32(v)
}
const fn d(v: Decommit) -> GateValue {
    GateValue::Decommit(v)
}

/// Every gate. Add a gate here (and a field to [`Gates`], a variant to [`GateId`]); the
/// const assertions below and `tests/env_md.rs` point out whatever else must follow.
pub static GATES: [GateSpec; GATE_COUNT] = [
    GateSpec {
        id: GateId::SsMemLean,
        name: "HAKMEM_SS_MEM_LEAN",
        ty: GateType::Bool,
        default: b(false),
        safe: b(false),
        balanced: b(true),
        lean: b(true),
        doc: "Memory-lean mode: empty superslabs are released as `HAKMEM_SS_MEM_LEAN_DECOMMIT` says, and prewarm is suppressed.",
    },
    GateSpec {
        id: GateId::SsMemLeanDecommit,
        name: "HAKMEM_SS_MEM_LEAN_DECOMMIT",
        ty: GateType::Decommit,
        default: d(Decommit::Free),
        safe: d(Decommit::Free),
        balanced: d(Decommit::Off),
        lean: d(Decommit::DontNeed),
        doc: "How lean mode decommits empty slabs, empty superslabs and freed large mappings in the caches: `FREE` = `MADV_FREE` (lazy: the kernel takes the pages only under memory pressure, so RSS does not drop; the gate's own default, as the seed's), `DONTNEED` = `MADV_DONTNEED` (eager: RSS drops at once), `OFF` = no decommit. SAFE leaves the default (so `HAKMEM_SS_MEM_LEAN=1` alone decommits with `FREE`), BALANCED sets `OFF` (the seed's LEAN+OFF), LEAN sets `DONTNEED` (docs/results/002-idle-release.md).",
    },
    GateSpec {
        id: GateId::SsOsStats,
        name: "HAKMEM_SS_OS_STATS",
        ty: GateType::Bool,
        default: b(false),
        safe: b(false),
        balanced: b(false),
        lean: b(false),
        doc: "Print the allocator's syscall counters (mmap, munmap, madvise, mprotect, mremap) and the release-policy counters at exit. (They are always counted, off the fast path; `hakmem::stats()` reads them.)",
    },
    GateSpec {
        id: GateId::AllocPassdownSsot,
        name: "HAKMEM_ALLOC_PASSDOWN_SSOT",
        ty: GateType::Bool,
        default: b(false),
        safe: b(false),
        balanced: b(false),
        lean: b(false),
        doc: "The seed's size-class pass-down experiment (Phase 60). Read by no box: hakmem computes the size class once and passes it down by construction, so both values run the same code (kept for A/B parity with the seed).",
    },
    GateSpec {
        id: GateId::Prewarm,
        name: "HAKMEM_PREWARM",
        ty: GateType::Bool,
        default: b(true),
        safe: b(true),
        balanced: b(true),
        lean: b(true),
        doc: "Fill each new thread's tiny-class caches (mapping their superslabs as a side effect) on its first allocation; lean mode (`HAKMEM_SS_MEM_LEAN=1`) suppresses it.",
    },
    GateSpec {
        id: GateId::PrewarmDepth,
        name: "HAKMEM_PREWARM_DEPTH",
        ty: GateType::U32,
        default: n(16),
        safe: n(16),
        balanced: n(16),
        lean: n(16),
        doc: "Blocks per size class that prewarm puts in a thread's cache.",
    },
    GateSpec {
        id: GateId::SsCacheMax,
        name: "HAKMEM_SS_CACHE_MAX",
        ty: GateType::U32,
        default: n(8),
        safe: n(16),
        balanced: n(8),
        lean: n(4),
        doc: "Empty superslabs (4 MiB each) kept in the LRU cache before they are unmapped; lean mode decommits the cached ones.",
    },
    GateSpec {
        id: GateId::LargeCacheMib,
        name: "HAKMEM_LARGE_CACHE_MIB",
        ty: GateType::U32,
        default: n(1024),
        safe: n(4096),
        balanced: n(1024),
        lean: n(64),
        doc: "MiB of freed large blocks kept mapped for reuse, 64 mappings at most, counted by the bytes they may hold resident: a mapping's whole length (a block may be written up to its usable size, and one shrunk by `realloc` keeps what it touched), nothing once decommitted (`DONTNEED`); the oldest go at once when a free needs room. See also `HAKMEM_LARGE_DECAY_MS`.",
    },
    GateSpec {
        id: GateId::Verbose,
        name: "HAKMEM_VERBOSE",
        ty: GateType::Bool,
        default: b(false),
        safe: b(false),
        balanced: b(false),
        lean: b(false),
        doc: "Print the preset, the compiled-in boxes and every gate's value and source at start-up.",
    },
    GateSpec {
        id: GateId::LargeDecayMs,
        name: "HAKMEM_LARGE_DECAY_MS",
        ty: GateType::U32,
        default: n(1000),
        safe: n(1000),
        balanced: n(1000),
        lean: n(250),
        doc: "A freed large mapping left unused this long (milliseconds) is unmapped at the next large allocation or free (all such mappings at once; no background thread); 0 keeps them until the cache bound.",
    },
];

impl Gates {
    /// Reads one gate's value.
    pub const fn get(&self, id: GateId) -> GateValue {
        match id {
            GateId::SsMemLean => GateValue::Bool(self.ss_mem_lean),
            GateId::SsMemLeanDecommit => GateValue::Decommit(self.ss_mem_lean_decommit),
            GateId::SsOsStats => GateValue::Bool(self.ss_os_stats),
            GateId::AllocPassdownSsot => GateValue::Bool(self.alloc_passdown_ssot),
            GateId::Prewarm => GateValue::Bool(self.prewarm),
            GateId::PrewarmDepth => GateValue::U32(self.prewarm_depth),
            GateId::SsCacheMax => GateValue::U32(self.ss_cache_max),
            GateId::LargeCacheMib => GateValue::U32(self.large_cache_mib),
            GateId::Verbose => GateValue::Bool(self.verbose),
            GateId::LargeDecayMs => GateValue::U32(self.large_decay_ms),
        }
    }

    /// Sets one gate's value. Returns `false` (and changes nothing) when `v` is not of
    /// the gate's type.
    pub const fn set(&mut self, id: GateId, v: GateValue) -> bool {
        match (id, v) {
            (GateId::SsMemLean, GateValue::Bool(x)) => self.ss_mem_lean = x,
            (GateId::SsMemLeanDecommit, GateValue::Decommit(x)) => self.ss_mem_lean_decommit = x,
            (GateId::SsOsStats, GateValue::Bool(x)) => self.ss_os_stats = x,
            (GateId::AllocPassdownSsot, GateValue::Bool(x)) => self.alloc_passdown_ssot = x,
            (GateId::Prewarm, GateValue::Bool(x)) => self.prewarm = x,
            (GateId::PrewarmDepth, GateValue::U32(x)) => self.prewarm_depth = x,
            (GateId::SsCacheMax, GateValue::U32(x)) => self.ss_cache_max = x,
            (GateId::LargeCacheMib, GateValue::U32(x)) => self.large_cache_mib = x,
            (GateId::Verbose, GateValue::Bool(x)) => self.verbose = x,
            (GateId::LargeDecayMs, GateValue::U32(x)) => self.large_decay_ms = x,
            _ => return false,
        }
        true
    }
}

// The table is well formed: row i is gate i, names are distinct `HAKMEM_*` words, and
// every default has the row's type.
const _: () = {
    let mut i = 0;
    while i < GATE_COUNT {
        let s = &GATES[i];
        assert!(
            s.id as usize == i,
            "GATES: row i must describe GateId with discriminant i"
        );
        assert!(
            GateId::ALL[i] as usize == i,
            "GateId::ALL must be in discriminant order"
        );
        assert!(
            s.default.ty() as u8 == s.ty as u8,
            "GATES: the gate's own default has the wrong type"
        );
        assert!(
            s.safe.ty() as u8 == s.ty as u8,
            "GATES: SAFE default has the wrong type"
        );
        assert!(
            s.balanced.ty() as u8 == s.ty as u8,
            "GATES: BALANCED default has the wrong type"
        );
        assert!(
            s.lean.ty() as u8 == s.ty as u8,
            "GATES: LEAN default has the wrong type"
        );
        assert!(!s.doc.is_empty(), "GATES: every gate needs a one-line doc");
        let name = s.name.as_bytes();
        assert!(name.len() > 7, "GATES: gate names start with HAKMEM_");
        let prefix = b"HAKMEM_";
        let mut k = 0;
        while k < prefix.len() {
            assert!(name[k] == prefix[k], "GATES: gate names start with HAKMEM_");
            k += 1;
        }
        let mut j = 0;
        while j < i {
            assert!(
                !bytes_eq(GATES[j].name.as_bytes(), name),
                "GATES: duplicate gate name"
            );
            j += 1;
        }
        i += 1;
    }
};

const fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
