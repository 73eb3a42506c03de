//! The gate table: every `HAKMEM_*` gate, written once, in [`gate_table!`].
//!
//! Each row of the `gate_table!` invocation below names a gate's [`GateId`] variant, its
//! [`Gates`] field, its type, its environment variable, its own default, the presets
//! that *set* it (a preset column is written only where the preset's value differs from
//! the gate's own default, and a const assertion rejects one that does not), and its doc.
//! From that one row the macro derives: the [`GateId`] variant, the [`Gates`] field (with
//! the doc), the row of [`GATES`], [`Gates::get`] / [`Gates::set`], and
//! [`preset_defaults`]; the parser, the warnings, the `HAKMEM_VERBOSE` report
//! ([`Resolved`](crate::Resolved)) and `docs/env.md` ([`write_env_md`](crate::write_env_md))
//! walk [`GATES`]. Adding a gate is adding a row.

use core::fmt;

use crate::{Decommit, Preset, Thp};

/// The Rust type of a gate's field, from its [`GateType`] variant.
macro_rules! gate_rust_type {
    (Bool) => {
        bool
    };
    (U32) => {
        u32
    };
    (Decommit) => {
        Decommit
    };
    (Thp) => {
        Thp
    };
}

/// A preset column: the value written, or else the gate's own default.
macro_rules! preset_or_default {
    ([] $default:expr) => {
        $default
    };
    ([$preset:expr] $default:expr) => {
        $preset
    };
}

/// The gate table. One row per gate:
///
/// ```text
/// Id field: Type = "HAKMEM_NAME" {
///     default: <the gate's own default>,
///     safe: <SAFE's value>, balanced: <...>, lean: <...>,  // only the presets that set it
///     doc: "<one line>",
/// }
/// ```
///
/// `Type` is a [`GateType`] variant (`Bool`, `U32`, `Decommit`); attributes before a row
/// (`///` lines) are added to the [`Gates`] field's doc.
macro_rules! gate_table {
    ($(
        $(#[$field_attr:meta])*
        $id:ident $field:ident: $ty:ident = $name:literal {
            default: $default:expr,
            $(safe: $safe:expr,)?
            $(balanced: $balanced:expr,)?
            $(lean: $lean:expr,)?
            doc: $doc:literal $(,)?
        }
    )*) => {
        /// Names one gate; its discriminant is the gate's row in [`GATES`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum GateId {
            $(
                #[doc = concat!("`", $name, "`, field [`Gates::", stringify!($field), "`].")]
                $id,
            )*
        }

        impl GateId {
            /// Every gate, in table order.
            pub const ALL: [GateId; GATE_COUNT] = [$(GateId::$id),*];

            /// The gate's row of the table.
            #[inline]
            pub const fn spec(self) -> &'static GateSpec {
                // Constant indices into a fixed-size array (checked at compile time), so
                // there is no run-time panic path here.
                match self {
                    $(GateId::$id => &GATES[GateId::$id as usize],)*
                }
            }
        }

        /// The number of gates (rows of [`GATES`]).
        pub const GATE_COUNT: usize = [$(GateId::$id),*].len();

        /// A plain, copyable snapshot of every gate.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct Gates {
            $(
                #[doc = concat!("`", $name, "`: ", $doc)]
                $(#[$field_attr])*
                pub $field: gate_rust_type!($ty),
            )*
        }

        /// Every gate, in [`GateId`] order.
        pub static GATES: [GateSpec; GATE_COUNT] = [$(
            GateSpec {
                id: GateId::$id,
                name: $name,
                ty: GateType::$ty,
                default: GateValue::$ty($default),
                safe: GateValue::$ty(preset_or_default!([$($safe)?] $default)),
                balanced: GateValue::$ty(preset_or_default!([$($balanced)?] $default)),
                lean: GateValue::$ty(preset_or_default!([$($lean)?] $default)),
                doc: $doc,
            },
        )*];

        /// The defaults of preset `p`: each gate's own default, or the preset's value
        /// where the preset sets it.
        pub const fn preset_defaults(p: Preset) -> Gates {
            match p {
                Preset::Safe => Gates {
                    $($field: preset_or_default!([$($safe)?] $default),)*
                },
                Preset::Balanced => Gates {
                    $($field: preset_or_default!([$($balanced)?] $default),)*
                },
                Preset::Lean => Gates {
                    $($field: preset_or_default!([$($lean)?] $default),)*
                },
            }
        }

        impl Gates {
            /// Reads one gate's value.
            pub const fn get(&self, id: GateId) -> GateValue {
                match id {
                    $(GateId::$id => GateValue::$ty(self.$field),)*
                }
            }

            /// Sets one gate's value. Returns `false` (and changes nothing) when `v` is
            /// not of the gate's type.
            pub const fn set(&mut self, id: GateId, v: GateValue) -> bool {
                match (id, v) {
                    $((GateId::$id, GateValue::$ty(x)) => self.$field = x,)*
                    _ => return false,
                }
                true
            }
        }

        /// One setter per gate, generated from the gate table.
        impl crate::Config {
            $(
                #[doc = concat!("Sets `", $name, "` (field [`Gates::", stringify!($field), "`]): ", $doc)]
                #[must_use]
                pub const fn $field(self, v: gate_rust_type!($ty)) -> Self {
                    self.with(GateId::$id, GateValue::$ty(v))
                }
            )*
        }

        // A preset column is written only where the preset sets the gate (its value
        // differs from the gate's own default): the table says what each preset sets.
        $(
            $(const _: () = assert!(
                !GateValue::$ty($safe).const_eq(GateValue::$ty($default)),
                concat!("GATES: ", $name, ": the SAFE column equals the default; leave it out"),
            );)?
            $(const _: () = assert!(
                !GateValue::$ty($balanced).const_eq(GateValue::$ty($default)),
                concat!("GATES: ", $name, ": the BALANCED column equals the default; leave it out"),
            );)?
            $(const _: () = assert!(
                !GateValue::$ty($lean).const_eq(GateValue::$ty($default)),
                concat!("GATES: ", $name, ": the LEAN column equals the default; leave it out"),
            );)?
        )*
    };
}

impl GateId {
    /// The gate's row in [`GATES`] (and in [`gate_sources`](crate::gate_sources)).
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
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
    /// `AUTO`, `NEVER` or `DENSE`, in any case.
    Thp,
}

impl GateType {
    /// What a valid value looks like, for warnings and docs (e.g. `"0 or 1"`).
    pub const fn expected(self) -> &'static str {
        match self {
            GateType::Bool => "0 or 1",
            GateType::Decommit => "FREE, DONTNEED or OFF",
            GateType::U32 => "a decimal number 0..=4294967295",
            GateType::Thp => "AUTO, NEVER or DENSE",
        }
    }

    /// The type as `docs/env.md` shows it.
    pub const fn markdown(self) -> &'static str {
        match self {
            GateType::Bool => "`0`/`1`",
            GateType::Decommit => "`FREE`, `DONTNEED`, `OFF`",
            GateType::U32 => "u32",
            GateType::Thp => "`AUTO`, `NEVER`, `DENSE`",
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
            GateType::Thp => [Thp::Auto, Thp::Never, Thp::Dense]
                .into_iter()
                .find(|t| v.eq_ignore_ascii_case(t.as_str().as_bytes()))
                .map(GateValue::Thp),
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
    /// Of a [`GateType::Thp`] gate.
    Thp(Thp),
}

impl GateValue {
    /// The type this value belongs to.
    pub const fn ty(self) -> GateType {
        match self {
            GateValue::Bool(_) => GateType::Bool,
            GateValue::Decommit(_) => GateType::Decommit,
            GateValue::U32(_) => GateType::U32,
            GateValue::Thp(_) => GateType::Thp,
        }
    }

    /// Equality usable in `const` contexts.
    pub const fn const_eq(self, other: GateValue) -> bool {
        match (self, other) {
            (GateValue::Bool(a), GateValue::Bool(b)) => a == b,
            (GateValue::Decommit(a), GateValue::Decommit(b)) => a as u8 == b as u8,
            (GateValue::U32(a), GateValue::U32(b)) => a == b,
            (GateValue::Thp(a), GateValue::Thp(b)) => a as u8 == b as u8,
            _ => false,
        }
    }
}

/// Written as the environment spells it: `0`/`1`, `FREE`/`DONTNEED`/`OFF`, decimal,
/// `AUTO`/`NEVER`/`DENSE`.
impl fmt::Display for GateValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GateValue::Bool(b) => f.write_str(if b { "1" } else { "0" }),
            GateValue::Decommit(d) => f.write_str(d.as_str()),
            GateValue::U32(n) => fmt::Display::fmt(&n, f),
            GateValue::Thp(t) => f.write_str(t.as_str()),
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

gate_table! {
    SsMemLean ss_mem_lean: Bool = "HAKMEM_SS_MEM_LEAN" {
        default: false,
        balanced: true,
        lean: true,
        doc: "Memory-lean mode: empty superslabs are released as `HAKMEM_SS_MEM_LEAN_DECOMMIT` says, and prewarm is suppressed.",
    }
    SsMemLeanDecommit ss_mem_lean_decommit: Decommit = "HAKMEM_SS_MEM_LEAN_DECOMMIT" {
        default: Decommit::Free,
        balanced: Decommit::Off,
        lean: Decommit::DontNeed,
        doc: "How lean mode decommits empty slabs, empty superslabs and freed large mappings in the caches: `FREE` = `MADV_FREE` (lazy: the kernel takes the pages only under memory pressure, so RSS does not drop; the gate's own default, as the seed's), `DONTNEED` = `MADV_DONTNEED` (eager: RSS drops at once), `OFF` = no decommit. SAFE leaves the default (so `HAKMEM_SS_MEM_LEAN=1` alone decommits with `FREE`), BALANCED sets `OFF` (the seed's LEAN+OFF), LEAN sets `DONTNEED` (docs/results/002-idle-release.md).",
    }
    SsOsStats ss_os_stats: Bool = "HAKMEM_SS_OS_STATS" {
        default: false,
        doc: "Print the allocator's syscall counters (mmap, munmap, madvise, mprotect, mremap) and the release-policy counters at exit. (They are always counted, off the fast path; `hakmem::stats()` reads them.)",
    }
    AllocPassdownSsot alloc_passdown_ssot: Bool = "HAKMEM_ALLOC_PASSDOWN_SSOT" {
        default: false,
        doc: "The seed's size-class pass-down experiment (Phase 60). With the facade feature `passdown-ssot` (off by default), `1` passes the class the fast path computed down to the refill on a tiny cache miss instead of re-deriving it; without the feature the gate is read by nothing (`HAKMEM_VERBOSE` says so). Measured NO-GO, as in the seed (docs/results/104-ab-passdown-ssot.md).",
    }
    /// Prewarm runs only when [`Gates::prewarm_effective`] says so.
    Prewarm prewarm: Bool = "HAKMEM_PREWARM" {
        default: true,
        doc: "Fill each new thread's tiny-class caches (mapping their superslabs as a side effect) on its first allocation; lean mode (`HAKMEM_SS_MEM_LEAN=1`) suppresses it.",
    }
    PrewarmDepth prewarm_depth: U32 = "HAKMEM_PREWARM_DEPTH" {
        default: 16,
        doc: "Blocks per size class that prewarm puts in a thread's cache (at most the class's bin bound); 0 turns prewarm off.",
    }
    SsCacheMax ss_cache_max: U32 = "HAKMEM_SS_CACHE_MAX" {
        default: 8,
        safe: 16,
        lean: 4,
        doc: "Empty superslabs (4 MiB each) the cache keeps past its decay interval (`HAKMEM_SS_DECAY_MS`; and at most a quarter of the recent peak of slab memory in use), or at all times when that interval is 0; within the interval it keeps up to 64. Lean mode decommits the cached ones.",
    }
    LargeCacheMib large_cache_mib: U32 = "HAKMEM_LARGE_CACHE_MIB" {
        default: 1024,
        safe: 4096,
        lean: 64,
        doc: "MiB of freed large blocks kept mapped for reuse, 64 mappings at most and none longer than 32 MiB (a longer one is unmapped at its `free`), counted by the bytes they may hold resident: a mapping's whole length (a block may be written up to its usable size, and one shrunk by `realloc` keeps what it touched), nothing once decommitted (`DONTNEED`); the oldest go at once when a free needs room. See also `HAKMEM_LARGE_DECAY_MS`.",
    }
    Verbose verbose: Bool = "HAKMEM_VERBOSE" {
        default: false,
        doc: "Print the preset, the compiled-in boxes and every gate's value and source at start-up.",
    }
    LargeDecayMs large_decay_ms: U32 = "HAKMEM_LARGE_DECAY_MS" {
        default: 250,
        doc: "A freed large mapping left unused this long (milliseconds) is unmapped at the next slow-path purge (a large allocation or free, a superslab taken or released, `trim`/`thread_flush`) or by the background thread (`HAKMEM_BG_PURGE_MS`), all such mappings at once; 0 keeps them until the cache bound.",
    }
    SsDecayMs ss_decay_ms: U32 = "HAKMEM_SS_DECAY_MS" {
        default: 250,
        doc: "The decay interval of empty superslab memory (milliseconds): an empty superslab is kept (up to 64, committed, or decommitted in lean mode) this long, so a program that frees its working set and builds it again maps nothing; past it, at most `HAKMEM_SS_CACHE_MAX` stay and no more than a quarter of the recent (decaying) peak of slab memory in use. An empty slab inside a live superslab whose pages stayed resident (every one unless lean mode decommits; a lean class's spares) gives them back (`MADV_DONTNEED`, or lean mode's advice) once it stays empty this long, and a class's transfer cache that no refill took from for this long goes back to its slabs (whose pages then go too), checked on slow paths (every allocation slow path, a class growing, a flush that empties a slab, `trim`, `thread_flush`, the background purge; at most once per quarter interval). 0: `HAKMEM_SS_CACHE_MAX` at all times and empty slabs kept resident (the seed's rule).",
    }
    BgPurgeMs bg_purge_ms: U32 = "HAKMEM_BG_PURGE_MS" {
        default: 0,
        doc: "Opt-in background purge: every this many milliseconds one thread (started at the first allocation, on a stack mapped by hakmem; none when 0, the default) retires what stayed unused past its decay interval in the superslab and large caches, asks every thread to flush its cache at its next slow path, and drains the transfer caches, so an idle process returns to its idle target within the decay interval plus this period. A forked child restarts it at its first allocation.",
    }
    Thp thp: Thp = "HAKMEM_THP" {
        default: Thp::Auto,
        doc: "Transparent huge pages (2 MiB): `AUTO` follows the host (`/sys/kernel/mm/transparent_hugepage/enabled`) but keeps huge pages off the sparse ranges (a superslab, a large block's mapping outside the block's whole 2 MiB pages, the registry's table), with `MADV_NOHUGEPAGE` where the host says `always` and nothing otherwise; `NEVER` keeps them off everything hakmem maps; `DENSE` also asks for them (`MADV_HUGEPAGE`) on the dense ranges (a large block's whole 2 MiB pages, the second half of the superslab of a class of blocks up to 4 KiB, and the whole of it once such a class has filled every superslab it had, outside lean mode) where the host says `always` or `madvise`: fewer page faults, up to 2 MiB more resident per dense range not yet full, and the kernel's compaction stalls when no huge page is free (docs/results/205-thp.md).",
    }
}

// The table is well formed: names are distinct `HAKMEM_*` words and every gate has a doc
// (types are checked by construction: each value is built as `GateValue::<Type>(..)`).
const _: () = {
    let mut i = 0;
    while i < GATE_COUNT {
        let s = &GATES[i];
        assert!(
            s.id as usize == i && GateId::ALL[i] as usize == i,
            "GATES and GateId::ALL are in discriminant order"
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
