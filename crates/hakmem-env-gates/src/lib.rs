//! hakmem-env-gates: the table of every `HAKMEM_*` environment gate, and the one place
//! the allocator reads its environment.
//!
//! # What this box owns
//!
//! - The gate table: each gate written once, as one row of a declarative `gate_table!`
//!   (in `src/table.rs`): its [`GateId`], its [`Gates`] field, its [type](GateType), its
//!   environment variable, its own default, the [`Preset`]s that set it to something
//!   else, and a one-line doc. The macro derives [`GateId`], [`Gates`], [`GATES`],
//!   [`Gates::get`] / [`Gates::set`] and [`preset_defaults`] from those rows; the parser,
//!   the warnings, the start-up report ([`print_verbose`]) and `docs/env.md`
//!   ([`write_env_md`]) walk [`GATES`]. The gates and their defaults are listed in
//!   [`docs/env.md`](https://github.com/hakmem/hakmem/blob/main/docs/env.md).
//! - The decisions derived from several gates: [`Gates::prewarm_effective`] (read by
//!   `hakmem-hot-prewarm`), [`Gates::decommit_effective`].
//! - Reading the environment: once, lazily, by walking libc's `environ`.
//!
//! Printing (the warnings, the start-up report) goes through the one printer of hakmem,
//! [`hakmem_os_stats::writer`]: a stack buffer and `write(2)`.
//!
//! # Entry point
//!
//! [`gates()`] returns a plain, copyable [`Gates`] snapshot. The first call reads the
//! environment; later calls are one atomic load. Boxes resolve what they need into
//! their own state or constants at start-up; hot paths never call it.
//! [`gate_sources()`] tells where each value came from ([`Source`]), and [`resolved()`]
//! gives both plus the preset.
//!
//! ```
//! use hakmem_env_gates::{Decommit, GateId, Preset, Resolved, Source, gates, preset_defaults};
//!
//! // The process's gates: compiled-in preset defaults, overridden by the environment.
//! let g = gates();
//! println!("lean mode: {}, cache: {} superslabs", g.ss_mem_lean, g.ss_cache_max);
//!
//! // The same resolution, against an environment of our own.
//! let env = [&b"HAKMEM_SS_MEM_LEAN_DECOMMIT=dontneed"[..], b"HAKMEM_PREWARM_DEPTH=lots"];
//! let r = Resolved::from_vars(env, Preset::Lean);
//! assert_eq!(r.gates().ss_mem_lean_decommit, Decommit::DontNeed);
//! assert_eq!(r.source(GateId::SsMemLeanDecommit), Source::Environment);
//! // A malformed value keeps the default, and is reported.
//! assert_eq!(r.gates().prewarm_depth, preset_defaults(Preset::Lean).prewarm_depth);
//! assert_eq!(r.rejected(GateId::PrewarmDepth), Some(&b"lots"[..]));
//! ```
//!
//! # Presets and features
//!
//! A preset picks the default of each gate; the environment still overrides it at run
//! time (precedence: environment > [config](Config) > preset > default). It is chosen with one of the
//! features `preset-safe`, `preset-balanced`, `preset-lean` (the facade `hakmem` turns on
//! `preset-balanced` by default and forwards the others):
//!
//! | features enabled | [`PRESET`] |
//! |---|---|
//! | none, or `preset-balanced` | [`Preset::Balanced`] |
//! | `preset-safe` (with or without `preset-balanced`) | [`Preset::Safe`] |
//! | `preset-lean` (with any other) | [`Preset::Lean`] |
//!
//! Features are additive (two crates in one build asking for different presets both
//! build): LEAN > SAFE > BALANCED. SAFE and LEAN win over BALANCED so that
//! `--features preset-lean` works without `--no-default-features` on the facade; LEAN
//! wins over SAFE because it is the leaner. The crate has no other features.
//!
//! # Configuration from the program
//!
//! A program may also choose its settings in code: a [`Config`] (a preset and gate
//! values, built in `const` context) handed to [`set_config`] before the first
//! [`gates()`] call (the facade does it from `HakMem::with_config`). Precedence:
//! environment > config > preset > default, unless the config calls
//! [`Config::ignore_env`] (then the environment is not read at all).
//!
//! # Invariants
//!
//! - **Never allocates**: no `Vec`, `String`, `format!`, `std::env`; the crate is
//!   `#![no_std]` and does not link `alloc`. Printing goes through a stack buffer and
//!   `write(2)`. This code may run inside `malloc` before `main` (under `LD_PRELOAD`).
//! - **Reads `environ` once**: the first [`gates()`] call resolves the snapshot and
//!   publishes it; the environment is never read again, so `setenv` after start-up has
//!   no effect.
//! - **Never panics**: malformed values give a one-line warning on stderr and the
//!   default; no indexing that can fail at run time, no `unwrap`.
//! - **No lock**: up to four threads racing on the first call (or a signal handler
//!   re-entering it) each resolve into a slot of their own, and the first to finish
//!   publishes it with a compare-and-swap; none waits for another, so a `fork` in the
//!   middle cannot leave a held lock behind. Only a fifth simultaneous first caller
//!   spins, boundedly, and then publishes the preset's defaults rather than hang.
//! - The table is checked at compile time: every value has its gate's type (by
//!   construction), names are distinct `HAKMEM_*` words, and a preset column is written
//!   only where it differs from the gate's own default (so the table says exactly what
//!   each preset sets: [`Source::Preset`]).
//!
//! # Depends on
//!
//! `libc`, and `hakmem-os-stats` for its printer only (the two lowest boxes;
//! `hakmem-os-stats` reads no gate, so the layering stays acyclic).
#![deny(missing_docs)]
#![no_std]

mod config;
mod env_md;
mod resolve;
mod table;

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

use hakmem_os_stats::writer::{LineWriter, eprint_line};

pub use config::Config;
pub use env_md::write_env_md;
pub use resolve::{Resolved, Source};
pub use table::{GATE_COUNT, GATES, GateId, GateSpec, GateType, GateValue, Gates, preset_defaults};

/// The preset compiled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Speed first: prewarm on, no lean mode.
    Safe,
    /// Lean mode with decommit OFF, prewarm suppressed (the default).
    Balanced,
    /// Lean mode with decommit DONTNEED: lowest memory (the project's own preset).
    Lean,
}

impl Preset {
    /// `"SAFE"`, `"BALANCED"` or `"LEAN"`.
    pub const fn name(self) -> &'static str {
        match self {
            Preset::Safe => "SAFE",
            Preset::Balanced => "BALANCED",
            Preset::Lean => "LEAN",
        }
    }

    /// `SAFE`, `BALANCED` or `LEAN`, in any case; `None` for anything else.
    pub fn parse(s: &[u8]) -> Option<Preset> {
        let s = s.trim_ascii();
        [Preset::Safe, Preset::Balanced, Preset::Lean]
            .into_iter()
            .find(|p| s.eq_ignore_ascii_case(p.name().as_bytes()))
    }
}

/// The preset selected by Cargo features. Features are additive: when several preset
/// features are enabled (two dependents of the allocator asking for different ones), the
/// leaner explicit choice wins: LEAN > SAFE > BALANCED (BALANCED is the facade's default
/// feature, so naming another preset never needs `default-features = false`).
pub const PRESET: Preset = if cfg!(feature = "preset-lean") {
    Preset::Lean
} else if cfg!(feature = "preset-safe") {
    Preset::Safe
} else {
    Preset::Balanced
};

/// The preset features enabled in this build, SAFE, BALANCED, LEAN (several may be: see
/// [`PRESET`] for which wins).
pub const PRESET_FEATURES: [bool; 3] = [
    cfg!(feature = "preset-safe"),
    cfg!(feature = "preset-balanced"),
    cfg!(feature = "preset-lean"),
];

/// `HAKMEM_SS_MEM_LEAN_DECOMMIT`: how lean mode gives memory back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decommit {
    /// `MADV_FREE`: lazy reclaim.
    Free,
    /// `MADV_DONTNEED`: eager reclaim.
    DontNeed,
    /// No decommit.
    Off,
}

impl Decommit {
    /// The environment spelling: `"FREE"`, `"DONTNEED"` or `"OFF"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Decommit::Free => "FREE",
            Decommit::DontNeed => "DONTNEED",
            Decommit::Off => "OFF",
        }
    }
}

/// `HAKMEM_THP`: where hakmem lets transparent huge pages (2 MiB) back its memory.
/// *Sparse* ranges are those huge pages would make resident beyond what the program
/// uses (a superslab's header and its slabs, a large block's mapping outside the block's
/// whole 2 MiB pages, the registry's table); *dense* ones, those the program fills (a
/// large block's whole 2 MiB pages, the second half of the superslab of a class of
/// blocks up to 4 KiB, which a class reaches only once the first is in use, and the
/// whole of it once such a class has filled every superslab it had).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Thp {
    /// Follow the host (`/sys/kernel/mm/transparent_hugepage/enabled`), but never let
    /// huge pages back a sparse range: with `always`, sparse ranges are marked
    /// `MADV_NOHUGEPAGE`; with `madvise` or `never`, nothing is done (no system call).
    Auto,
    /// No huge pages anywhere hakmem maps (`MADV_NOHUGEPAGE` on everything when the host
    /// says `always`).
    Never,
    /// As `Auto`, and dense ranges are marked `MADV_HUGEPAGE` (when the host says
    /// `always` or `madvise`): fewer page faults, at the price of up to 2 MiB resident
    /// per dense range that is not full yet, and of the kernel's compaction stalls when
    /// no huge page is free.
    Dense,
}

impl Thp {
    /// The environment spelling: `"AUTO"`, `"NEVER"` or `"DENSE"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Thp::Auto => "AUTO",
            Thp::Never => "NEVER",
            Thp::Dense => "DENSE",
        }
    }
}

impl Gates {
    /// Whether to prewarm: `HAKMEM_PREWARM=1`, lean mode off (lean mode suppresses
    /// prewarm, as in the notes' "LEAN+OFF" profile) and a depth above 0. The one place
    /// this is decided (`hakmem-hot-prewarm` asks here).
    #[inline]
    pub const fn prewarm_effective(&self) -> bool {
        self.prewarm && !self.ss_mem_lean && self.prewarm_depth > 0
    }

    /// The decommit lean mode applies: [`Decommit::Off`] when lean mode is off.
    #[inline]
    pub const fn decommit_effective(&self) -> Decommit {
        if self.ss_mem_lean {
            self.ss_mem_lean_decommit
        } else {
            Decommit::Off
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading the environment once.

unsafe extern "C" {
    /// libc's environment block: a null-terminated array of `NAME=value` C strings.
    static environ: *const *const core::ffi::c_char;
}

/// How many threads may resolve the first snapshot concurrently, each in its own slot.
const SLOTS: usize = 4;

/// Storage for snapshots; slot `i` is written only by the caller that claimed `i`.
struct SlotPool([UnsafeCell<MaybeUninit<Resolved>>; SLOTS]);

// SAFETY: a slot is written only by the one thread that claimed its index from `CLAIMED`
// (fetch_add hands each index out once), and read by other threads only after its pointer
// was published through `PUBLISHED` with Release and loaded with Acquire; once published
// it is never written again.
unsafe impl Sync for SlotPool {}

static POOL: SlotPool = SlotPool([const { UnsafeCell::new(MaybeUninit::uninit()) }; SLOTS]);
static CLAIMED: AtomicUsize = AtomicUsize::new(0);
/// Null until the snapshot is ready; then a pointer to a fully written slot.
static PUBLISHED: AtomicPtr<Resolved> = AtomicPtr::new(ptr::null_mut());
/// Published only if more than `SLOTS` threads race on the first call and none of the
/// first `SLOTS` finishes within the wait (see `wait_for_published`).
static FALLBACK: Resolved = Resolved::defaults(PRESET);

/// The program's [`Config`]: 0 none, 1 being written, 2 written (never written again).
static CONFIG_STATE: AtomicU8 = AtomicU8::new(0);

/// Storage for the program's [`Config`], written once by the [`set_config`] caller that
/// moved `CONFIG_STATE` from 0 to 1.
struct ConfigSlot(UnsafeCell<MaybeUninit<Config>>);

// SAFETY: the slot is written only by the one thread that moved `CONFIG_STATE` from 0 to 1
// (a compare-and-swap), and read only after `CONFIG_STATE` was seen at 2 (Acquire, paired
// with the writer's Release store); it is never written again.
unsafe impl Sync for ConfigSlot {}

static CONFIG: ConfigSlot = ConfigSlot(UnsafeCell::new(MaybeUninit::uninit()));

/// Hands the program's configuration to the gates' resolution: the first [`gates()`] call
/// resolves `cfg`'s preset, then `cfg`'s values, then (unless `cfg` ignores it) the
/// environment over them. Precedence: environment > config > preset > default.
///
/// Only the first config offered is kept, and only if offered before the gates are
/// resolved. Returns whether this call's config was kept and the gates were not yet
/// resolved (a resolution racing with this call may still miss it; it then behaves as
/// if no config had been given, and [`Resolved::has_config`] says so). Never allocates,
/// takes no lock. The facade calls it on its first allocation
/// (`hakmem::HakMem::with_config`); libhakmem calls it with its `hakmem_conf` string.
pub fn set_config(cfg: &Config) -> bool {
    if !PUBLISHED.load(Ordering::Acquire).is_null() {
        return false;
    }
    if CONFIG_STATE
        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    // SAFETY: this thread moved the state from 0 to 1, so it alone writes the slot, and no
    // one reads it before the Release store of 2 below.
    unsafe { CONFIG.0.get().cast::<Config>().write(*cfg) };
    CONFIG_STATE.store(2, Ordering::Release);
    PUBLISHED.load(Ordering::Acquire).is_null()
}

/// The config given with [`set_config`], if any. A config being written by another
/// thread is waited for, boundedly (it is a copy of a few dozen bytes; a writer
/// interrupted by a signal handler that allocates would otherwise deadlock it).
fn offered_config() -> Config {
    for _ in 0..(1u32 << 16) {
        match CONFIG_STATE.load(Ordering::Acquire) {
            0 => return Config::DEFAULT,
            // SAFETY: state 2 was stored with Release after the slot was written; it is
            // never written again.
            2 => return unsafe { CONFIG.0.get().cast::<Config>().read() },
            _ => core::hint::spin_loop(),
        }
    }
    Config::DEFAULT
}

// ---------------------------------------------------------------------------------------
// `hakmem_conf`: settings baked into a program, as jemalloc's `malloc_conf`.
//
// A program (C or Rust) may define `const char *hakmem_conf = "HAKMEM_X=1,...";` (an
// exported symbol). The allocator reads it at the gates' resolution through a weak
// undefined reference: its address is 0 when no one defines it. The reference is made in
// assembly (stable Rust has no weak extern), by a tiny local function that loads the
// symbol's address from the GOT; no `dlsym` (which may allocate), no lock.

hakmem_os_stats::weak_symbol_address! {
    /// The address of the program's `hakmem_conf` (a `const char *`), or null when the
    /// program defines none.
    fn hakmem_env_gates_conf_addr_v0() = "hakmem_conf";
}

/// The bytes of the program's `hakmem_conf` string, if it defines one (and it is not
/// null). Targets other than x86_64 and aarch64 Linux have no `hakmem_conf`.
pub fn program_conf() -> Option<&'static [u8]> {
    let slot = hakmem_env_gates_conf_addr_v0().cast::<*const core::ffi::c_char>();
    if slot.is_null() {
        return None;
    }
    // SAFETY: a defined `hakmem_conf` is, by its documented contract, a `const char *`
    // variable: a readable pointer-sized slot.
    let s = unsafe { slot.read() };
    if s.is_null() {
        return None;
    }
    // SAFETY: by the same contract, a non-null `hakmem_conf` points to a NUL-terminated
    // string that lives (unmodified) for the whole process.
    Some(unsafe { core::ffi::CStr::from_ptr(s) }.to_bytes())
}

/// The gate snapshot. The first call reads the environment (lock-free, no allocation,
/// warnings for malformed values on stderr); later calls are one atomic load.
#[inline]
pub fn gates() -> &'static Gates {
    resolved().gates()
}

/// Each gate's [`Source`] in the snapshot, indexed by [`GateId::index`].
#[inline]
pub fn gate_sources() -> &'static [Source; GATE_COUNT] {
    resolved().sources()
}

/// The whole snapshot: preset, values, sources, rejected values. Reads the environment
/// on the first call, like [`gates()`].
#[inline]
pub fn resolved() -> &'static Resolved {
    let p = PUBLISHED.load(Ordering::Acquire);
    if p.is_null() {
        return resolve_once();
    }
    // SAFETY: a non-null `PUBLISHED` points to a slot of `POOL` (a static) that was fully
    // written before the Release store we synchronized with, or to `FALLBACK`; neither is
    // ever written again.
    unsafe { &*p }
}

#[cold]
#[inline(never)]
fn resolve_once() -> &'static Resolved {
    let idx = CLAIMED.fetch_add(1, Ordering::Relaxed);
    let Some(cell) = POOL.0.get(idx) else {
        return wait_for_published();
    };
    // SAFETY: reading the `environ` pointer itself; libc initializes it before any code
    // of ours runs, and we read it as any `getenv` does.
    let envp = unsafe { environ };
    // SAFETY: `environ` is a null-terminated array of NUL-terminated strings. Like
    // `getenv`, this assumes no thread modifies the environment concurrently.
    let mut cfg = offered_config();
    let mut conf_bad = 0;
    if let Some(conf) = program_conf() {
        (cfg, conf_bad) = cfg.parse_conf(conf);
        cfg = cfg.given_by_program();
    }
    // SAFETY: as above.
    let snapshot = unsafe { Resolved::from_environ_config(envp, &cfg) };
    let slot: *mut Resolved = cell.get().cast();
    // SAFETY: `idx` came from fetch_add, so this thread alone owns slot `idx` and no one
    // else reads it until it is published below.
    unsafe { slot.write(snapshot) };
    match PUBLISHED.compare_exchange(ptr::null_mut(), slot, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // SAFETY: just written and published; never written again.
            let r = unsafe { &*slot };
            if conf_bad > 0 {
                eprint_line(format_args!(
                    "hakmem: hakmem_conf: {conf_bad} entr{} not understood and left out \
                     (expected NAME=VALUE of a HAKMEM_* gate, preset=NAME or ignore_env=1, \
                     separated by commas)",
                    if conf_bad == 1 { "y" } else { "ies" }
                ));
            }
            if r.has_warnings() {
                // Only the winner prints, so each warning appears once.
                let mut w = LineWriter::<256>::new(libc::STDERR_FILENO);
                let _ = r.write_warnings(&mut w);
                w.finish();
            }
            r
        }
        // SAFETY: `winner` is the published slot: fully written, never written again.
        Err(winner) => unsafe { &*winner },
    }
}

/// The fifth and later threads to race on the first call wait for one of the first four
/// to publish. Should none do so in time (they were lost to a `fork` half-way, say), the
/// preset's defaults are published instead, with a warning, so that no caller waits
/// twice.
#[cold]
fn wait_for_published() -> &'static Resolved {
    for _ in 0..(1u32 << 20) {
        let p = PUBLISHED.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: as in `resolved`.
            return unsafe { &*p };
        }
        core::hint::spin_loop();
    }
    // `FALLBACK` is never written through this pointer (nothing writes a published
    // snapshot); the `*mut` is only what `AtomicPtr` stores.
    let fallback = ptr::from_ref(&FALLBACK).cast_mut();
    match PUBLISHED.compare_exchange(
        ptr::null_mut(),
        fallback,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => {
            eprint_line(format_args!(
                "hakmem: environment not read (first-call race); using the {} defaults",
                PRESET.name()
            ));
            &FALLBACK
        }
        // SAFETY: as in `resolved`.
        Err(winner) => unsafe { &*winner },
    }
}

/// Writes the start-up report to stderr: the preset, `boxes` (the compiled-in boxes, as
/// the facade lists them), and every gate with its value and source, one `write(2)` per
/// line, from a stack buffer. Prints unconditionally: the caller checks
/// [`Gates::verbose`].
///
/// ```
/// let g = hakmem_env_gates::gates();
/// if g.verbose {
///     hakmem_env_gates::print_verbose("os-stats ss-allocation tiny-fast");
/// }
/// ```
pub fn print_verbose(boxes: &str) {
    let mut w = LineWriter::<512>::new(libc::STDERR_FILENO);
    let _ = resolved().write_verbose(boxes, &mut w);
    w.finish();
}

#[cfg(test)]
mod tests {
    extern crate std;

    use core::ffi::c_char;
    use std::ffi::CString;
    use std::string::String;
    use std::vec::Vec;

    use super::*;

    fn env(vars: &[&str], p: Preset) -> Resolved {
        Resolved::from_vars(vars.iter().map(|v| v.as_bytes()), p)
    }

    fn warnings(r: &Resolved) -> String {
        let mut s = String::new();
        r.write_warnings(&mut s).unwrap();
        s
    }

    #[test]
    fn parse_good_values() {
        assert_eq!(GateType::Bool.parse(b"0"), Some(GateValue::Bool(false)));
        assert_eq!(GateType::Bool.parse(b"1"), Some(GateValue::Bool(true)));
        assert_eq!(GateType::Bool.parse(b" 1\n"), Some(GateValue::Bool(true)));
        assert_eq!(GateType::U32.parse(b"0"), Some(GateValue::U32(0)));
        assert_eq!(GateType::U32.parse(b"0016"), Some(GateValue::U32(16)));
        assert_eq!(
            GateType::U32.parse(b"4294967295"),
            Some(GateValue::U32(u32::MAX))
        );
        assert_eq!(
            GateType::Decommit.parse(b"FREE"),
            Some(GateValue::Decommit(Decommit::Free))
        );
        assert_eq!(
            GateType::Decommit.parse(b"DONTNEED"),
            Some(GateValue::Decommit(Decommit::DontNeed))
        );
        assert_eq!(
            GateType::Decommit.parse(b"OFF"),
            Some(GateValue::Decommit(Decommit::Off))
        );
    }

    #[test]
    fn parse_is_case_insensitive() {
        for v in [&b"free"[..], b"Free", b"fReE"] {
            assert_eq!(
                GateType::Decommit.parse(v),
                Some(GateValue::Decommit(Decommit::Free))
            );
        }
        assert_eq!(
            GateType::Decommit.parse(b"dontNeed"),
            Some(GateValue::Decommit(Decommit::DontNeed))
        );
        assert_eq!(
            GateType::Decommit.parse(b"off"),
            Some(GateValue::Decommit(Decommit::Off))
        );
    }

    #[test]
    fn parse_rejects_malformed() {
        for v in [
            &b""[..],
            b" ",
            b"2",
            b"01",
            b"true",
            b"yes",
            b"-1",
            b"1 1",
            b"\xff",
        ] {
            assert_eq!(GateType::Bool.parse(v), None, "{v:?}");
        }
        for v in [
            &b""[..],
            b"-1",
            b"+5",
            b"1e3",
            b"12x",
            b"4294967296",
            b"99999999999999999999",
            b"0x10",
        ] {
            assert_eq!(GateType::U32.parse(v), None, "{v:?}");
        }
        for v in [
            &b""[..],
            b"FREEE",
            b"DONT_NEED",
            b"MADV_FREE",
            b"0",
            b"O F F",
        ] {
            assert_eq!(GateType::Decommit.parse(v), None, "{v:?}");
        }
    }

    #[test]
    fn table_rows_match_ids() {
        for (i, (spec, id)) in GATES.iter().zip(GateId::ALL).enumerate() {
            assert_eq!(spec.id, id);
            assert_eq!(id.index(), i);
            assert_eq!(id.spec().name, spec.name);
            assert_eq!(id.name(), spec.name);
        }
    }

    #[test]
    fn preset_defaults_match_table() {
        for p in [Preset::Safe, Preset::Balanced, Preset::Lean] {
            let g = preset_defaults(p);
            for spec in &GATES {
                assert_eq!(
                    g.get(spec.id),
                    spec.default_for(p),
                    "{} under {p:?}",
                    spec.name
                );
            }
        }
    }

    const PRESETS: [Preset; 3] = [Preset::Safe, Preset::Balanced, Preset::Lean];

    #[test]
    fn presets_keep_their_profiles() {
        // What each preset is for (the features' docs), not the table's numbers.
        let [s, b, l] = PRESETS.map(preset_defaults);
        // SAFE: speed first: no lean mode, so no decommit, and prewarm on.
        assert!(!s.ss_mem_lean && s.prewarm_effective());
        assert_eq!(s.decommit_effective(), Decommit::Off);
        // BALANCED: lean mode with decommit OFF (the seed's LEAN+OFF): prewarm suppressed.
        assert!(b.ss_mem_lean && !b.prewarm_effective());
        assert_eq!(b.decommit_effective(), Decommit::Off);
        // LEAN: lean mode with eager decommit.
        assert!(l.ss_mem_lean && !l.prewarm_effective());
        assert_eq!(l.decommit_effective(), Decommit::DontNeed);
        // Each preset keeps at most as much memory cached as the one before it.
        for (more, less) in [(s, b), (b, l)] {
            assert!(less.ss_cache_max <= more.ss_cache_max);
            assert!(less.large_cache_mib <= more.large_cache_mib);
            assert!(less.large_decay_ms <= more.large_decay_ms);
            assert!(less.ss_decay_ms <= more.ss_decay_ms);
        }
        // Diagnostics are off unless asked for; so is the background purge thread.
        for g in [s, b, l] {
            assert!(!g.verbose && !g.ss_os_stats);
            assert_eq!(g.bg_purge_ms, 0, "no thread unless asked for");
        }
    }

    #[test]
    fn safe_leaves_the_seed_lean_defaults() {
        // SAFE sets no lean gate, so lean mode turned on alone decommits with the gate's
        // own default, as the seed's did.
        let r = env(&["HAKMEM_SS_MEM_LEAN=1"], Preset::Safe);
        let own = GateId::SsMemLeanDecommit.spec().default;
        assert_eq!(GateValue::Decommit(r.gates().decommit_effective()), own);
        assert_eq!(r.source(GateId::SsMemLeanDecommit), Source::Default);
    }

    #[test]
    fn prewarm_effective_needs_the_gate_no_lean_mode_and_a_depth() {
        let mut g = preset_defaults(Preset::Safe);
        g.prewarm = true;
        g.ss_mem_lean = false;
        g.prewarm_depth = 1;
        assert!(g.prewarm_effective());
        assert!(
            !Gates {
                prewarm: false,
                ..g
            }
            .prewarm_effective()
        );
        assert!(
            !Gates {
                ss_mem_lean: true,
                ..g
            }
            .prewarm_effective()
        );
        assert!(
            !Gates {
                prewarm_depth: 0,
                ..g
            }
            .prewarm_effective()
        );
    }

    #[test]
    fn decommit_effective_is_off_without_lean_mode() {
        let mut g = preset_defaults(Preset::Balanced);
        for d in [Decommit::Free, Decommit::DontNeed, Decommit::Off] {
            g.ss_mem_lean_decommit = d;
            g.ss_mem_lean = true;
            assert_eq!(g.decommit_effective(), d);
            g.ss_mem_lean = false;
            assert_eq!(g.decommit_effective(), Decommit::Off);
        }
    }

    #[test]
    fn set_rejects_wrong_type() {
        let mut g = preset_defaults(Preset::Balanced);
        assert!(!g.set(GateId::SsCacheMax, GateValue::Bool(true)));
        assert!(!g.set(GateId::SsMemLean, GateValue::U32(1)));
        assert_eq!(g, preset_defaults(Preset::Balanced));
        assert!(g.set(GateId::SsCacheMax, GateValue::U32(5)));
        assert_eq!(g.ss_cache_max, 5);
    }

    #[test]
    fn sources_without_environment() {
        // A gate's source is "preset" exactly where the preset changes its value from the
        // gate's own default.
        for p in PRESETS {
            let r = Resolved::defaults(p);
            assert_eq!(*r.gates(), preset_defaults(p));
            for spec in &GATES {
                let set = !r.gates().get(spec.id).const_eq(spec.default);
                let want = if set { Source::Preset } else { Source::Default };
                assert_eq!(r.source(spec.id), want, "{} under {p:?}", spec.name);
            }
        }
        // The presets that are not SAFE set lean mode (SAFE sets no lean gate).
        assert_eq!(
            Resolved::defaults(Preset::Safe).source(GateId::SsMemLean),
            Source::Default
        );
        for p in [Preset::Balanced, Preset::Lean] {
            assert_eq!(
                Resolved::defaults(p).source(GateId::SsMemLean),
                Source::Preset
            );
        }
    }

    #[test]
    fn environment_overrides_preset() {
        let r = env(
            &[
                "PATH=/usr/bin",
                "HAKMEM_SS_MEM_LEAN=0",
                "HAKMEM_SS_MEM_LEAN_DECOMMIT=DontNeed",
                "HAKMEM_SS_CACHE_MAX=32",
                "HAKMEM_VERBOSE=1",
                "HAKMEM_UNKNOWN_GATE=7",
                "HAKMEM_PREWARM_DEPTH", // no '=': ignored
            ],
            Preset::Lean,
        );
        let g = r.gates();
        assert!(!g.ss_mem_lean);
        assert_eq!(g.ss_mem_lean_decommit, Decommit::DontNeed);
        assert_eq!(g.ss_cache_max, 32);
        assert!(g.verbose);
        let set = [
            GateId::SsMemLean,
            GateId::SsMemLeanDecommit,
            GateId::SsCacheMax,
            GateId::Verbose,
        ];
        let lean = Resolved::defaults(Preset::Lean);
        for id in GateId::ALL {
            if set.contains(&id) {
                assert_eq!(r.source(id), Source::Environment, "{}", id.name());
            } else {
                // Untouched gates (HAKMEM_PREWARM_DEPTH had no '='): as without environment.
                assert_eq!(r.source(id), lean.source(id), "{}", id.name());
                assert_eq!(r.gates().get(id), lean.gates().get(id), "{}", id.name());
            }
        }
        assert!(!r.has_warnings());
        assert_eq!(r.preset(), Preset::Lean);
    }

    #[test]
    fn names_match_exactly_and_first_entry_wins() {
        // A prefix of another gate's name is not that gate.
        let r = env(&["HAKMEM_SS_MEM_LEAN_DECOMMIT=OFF"], Preset::Safe);
        assert!(!r.gates().ss_mem_lean);
        assert_eq!(r.source(GateId::SsMemLean), Source::Default);
        assert_eq!(r.source(GateId::SsMemLeanDecommit), Source::Environment);
        let r = env(&["HAKMEM_SS_MEM_LEANX=1", "HAKMEM_SS_MEM=1"], Preset::Safe);
        assert!(!r.gates().ss_mem_lean);
        // Like getenv: the first entry for a name wins, even a malformed one.
        let r = env(
            &["HAKMEM_SS_CACHE_MAX=3", "HAKMEM_SS_CACHE_MAX=9"],
            Preset::Safe,
        );
        assert_eq!(r.gates().ss_cache_max, 3);
        let safe = preset_defaults(Preset::Safe).ss_cache_max;
        let r = env(
            &["HAKMEM_SS_CACHE_MAX=x", "HAKMEM_SS_CACHE_MAX=9"],
            Preset::Safe,
        );
        assert_eq!(r.gates().ss_cache_max, safe);
        assert_eq!(r.rejected(GateId::SsCacheMax), Some(&b"x"[..]));
        // Names are case-sensitive, as in the environment.
        let r = env(&["hakmem_ss_cache_max=3"], Preset::Safe);
        assert_eq!(r.gates().ss_cache_max, safe);
    }

    #[test]
    fn malformed_values_keep_default_and_warn() {
        let r = env(
            &[
                "HAKMEM_SS_MEM_LEAN=maybe",
                "HAKMEM_SS_MEM_LEAN_DECOMMIT=sometimes",
                "HAKMEM_LARGE_CACHE_MIB=-5",
                "HAKMEM_VERBOSE=",
            ],
            Preset::Balanced,
        );
        assert_eq!(*r.gates(), preset_defaults(Preset::Balanced));
        assert_eq!(r.sources(), Resolved::defaults(Preset::Balanced).sources());
        assert_eq!(r.rejected(GateId::SsMemLean), Some(&b"maybe"[..]));
        assert_eq!(r.rejected(GateId::Verbose), Some(&b""[..]));
        assert_eq!(r.rejected(GateId::Prewarm), None);
        let d = preset_defaults(Preset::Balanced);
        assert_eq!(
            warnings(&r),
            std::format!(
                "hakmem: ignoring HAKMEM_SS_MEM_LEAN=maybe (expected 0 or 1); using default {}\n\
                 hakmem: ignoring HAKMEM_SS_MEM_LEAN_DECOMMIT=sometimes (expected FREE, DONTNEED or OFF); using default {}\n\
                 hakmem: ignoring HAKMEM_LARGE_CACHE_MIB=-5 (expected a decimal number 0..=4294967295); using default {}\n\
                 hakmem: ignoring HAKMEM_VERBOSE= (expected 0 or 1); using default {}\n",
                u8::from(d.ss_mem_lean),
                d.ss_mem_lean_decommit.as_str(),
                d.large_cache_mib,
                u8::from(d.verbose),
            )
        );
    }

    #[test]
    fn warnings_escape_and_shorten_odd_values() {
        let long = "HAKMEM_PREWARM_DEPTH=1234567890123456789012345678901234567890123";
        let r = Resolved::from_vars(
            [long.as_bytes(), b"HAKMEM_PREWARM=\x1b[31m\\\xff"],
            Preset::Safe,
        );
        let w = warnings(&r);
        assert!(
            w.contains("HAKMEM_PREWARM=\\x1b[31m\\x5c\\xff (expected"),
            "{w}"
        );
        assert!(
            w.contains("HAKMEM_PREWARM_DEPTH=1234567890123456789012345678901234567890... ("),
            "{w}"
        );
        assert_eq!(w.lines().count(), 2);
    }

    #[test]
    fn from_environ_walks_a_fake_environ() {
        let owned: Vec<CString> = [
            "HOME=/root",
            "HAKMEM_SS_MEM_LEAN_DECOMMIT=free",
            "HAKMEM",
            "HAKMEM_",
            "HAKMEM_PREWARM_DEPTH=64",
            "HAKMEM_SS_OS_STATS=2",
            "",
        ]
        .iter()
        .map(|s| CString::new(*s).unwrap())
        .collect();
        let mut ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(core::ptr::null());
        // SAFETY: `ptrs` is a null-terminated array of pointers to the live C strings in
        // `owned`, neither modified during the call.
        let r = unsafe { Resolved::from_environ(ptrs.as_ptr(), Preset::Balanced) };
        assert_eq!(r.gates().ss_mem_lean_decommit, Decommit::Free);
        assert_eq!(r.gates().prewarm_depth, 64);
        assert!(!r.gates().ss_os_stats);
        assert_eq!(r.rejected(GateId::SsOsStats), Some(&b"2"[..]));
        assert_eq!(r.source(GateId::PrewarmDepth), Source::Environment);

        // The same entries through the safe interface give the same snapshot.
        let same = Resolved::from_vars(owned.iter().map(|c| c.as_bytes()), Preset::Balanced);
        assert_eq!(same.gates(), r.gates());
        assert_eq!(same.sources(), r.sources());

        // An empty environment and a null one give the defaults.
        let empty = [core::ptr::null::<c_char>()];
        // SAFETY: a null-terminated array with no entries.
        let r = unsafe { Resolved::from_environ(empty.as_ptr(), Preset::Safe) };
        assert_eq!(*r.gates(), preset_defaults(Preset::Safe));
        // SAFETY: null is allowed.
        let r = unsafe { Resolved::from_environ(core::ptr::null(), Preset::Safe) };
        assert_eq!(*r.gates(), preset_defaults(Preset::Safe));
    }

    #[test]
    fn verbose_report_lists_every_gate() {
        let r = env(
            &[
                "HAKMEM_SS_CACHE_MAX=4000000",
                "HAKMEM_PREWARM_DEPTH=zz",
                "HAKMEM_SS_MEM_LEAN=1",
                "HAKMEM_PREWARM=1",
            ],
            Preset::Lean,
        );
        let mut s = String::new();
        r.write_verbose("os-stats tiny-fast", &mut s).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 2 + GATE_COUNT);
        assert_eq!(lines[0], "hakmem: preset LEAN");
        assert_eq!(lines[1], "hakmem: boxes: os-stats tiny-fast");
        // One line per gate, in table order.
        for (line, spec) in lines[2..].iter().zip(&GATES) {
            let head = std::format!("hakmem:   {}={} (", spec.name, r.gates().get(spec.id));
            assert!(line.starts_with(&head), "{line}");
        }
        let line = |id: GateId| lines[2 + id.index()];
        let d = preset_defaults(Preset::Lean);
        assert_eq!(
            line(GateId::SsCacheMax),
            std::format!(
                "hakmem:   HAKMEM_SS_CACHE_MAX=4000000 (environment; default {})",
                d.ss_cache_max
            )
        );
        assert!(
            line(GateId::Prewarm).ends_with("; suppressed by HAKMEM_SS_MEM_LEAN=1)"),
            "{s}"
        );
        assert_eq!(
            line(GateId::PrewarmDepth),
            std::format!(
                "hakmem:   HAKMEM_PREWARM_DEPTH={} ({}; malformed value ignored)",
                d.prewarm_depth,
                r.source(GateId::PrewarmDepth)
            )
        );
        // A gate the preset sets says so.
        let preset_set = GateId::ALL
            .into_iter()
            .find(|&id| r.source(id) == Source::Preset)
            .expect("LEAN sets some gate");
        assert!(line(preset_set).ends_with(" (preset LEAN)"), "{s}");
        // Without lean mode nothing is suppressed.
        let mut s = String::new();
        env(&["HAKMEM_SS_MEM_LEAN=0"], Preset::Lean)
            .write_verbose("", &mut s)
            .unwrap();
        assert!(!s.contains("suppressed"), "{s}");
    }

    #[test]
    fn gates_is_stable_across_calls_and_threads() {
        let first: *const Gates = gates();
        let handles: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(|| gates() as *const Gates as usize))
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), first as usize);
        }
        assert!(core::ptr::eq(first, gates()));
        assert!(core::ptr::eq(gate_sources(), resolved().sources()));
        assert_eq!(resolved().preset(), PRESET);
    }

    #[test]
    fn config_sits_between_preset_and_environment() {
        const CFG: Config = Config::LEAN.large_cache_mib(7).ss_cache_max(3);
        let r =
            Resolved::from_vars_config([&b"HAKMEM_SS_CACHE_MAX=9"[..], b"HAKMEM_VERBOSE=1"], &CFG);
        assert_eq!(r.preset(), Preset::Lean);
        assert!(r.has_config() && !r.ignored_env());
        assert_eq!(r.gates().large_cache_mib, 7);
        assert_eq!(r.source(GateId::LargeCacheMib), Source::Config);
        // The environment overrides the config.
        assert_eq!(r.gates().ss_cache_max, 9);
        assert_eq!(r.source(GateId::SsCacheMax), Source::Environment);
        // Gates the config leaves alone keep the config's preset's defaults.
        let lean = Resolved::defaults(Preset::Lean);
        assert_eq!(r.gates().ss_mem_lean_decommit, Decommit::DontNeed);
        assert_eq!(
            r.source(GateId::SsMemLeanDecommit),
            lean.source(GateId::SsMemLeanDecommit)
        );
        // ignore_env: the environment is not read at all.
        let r = Resolved::from_vars_config([&b"HAKMEM_SS_CACHE_MAX=9"[..]], &CFG.ignore_env());
        assert_eq!(r.gates().ss_cache_max, 3);
        assert!(r.ignored_env() && !r.has_warnings());
        // The default config is the compiled-in preset and nothing else.
        let r = Resolved::from_vars_config([], &Config::DEFAULT);
        assert!(!r.has_config());
        assert_eq!(*r.gates(), preset_defaults(PRESET));
        // A caller-chosen preset is not a program's config.
        assert!(!env(&[], Preset::Safe).has_config());
    }

    #[test]
    fn config_verbose_names_the_config() {
        let r = Resolved::from_vars_config([], &Config::SAFE.large_cache_mib(5));
        let mut s = String::new();
        r.write_verbose("", &mut s).unwrap();
        assert!(
            s.contains("hakmem: config from the program (the environment overrides it)\n"),
            "{s}"
        );
        let d = preset_defaults(Preset::Safe).large_cache_mib;
        assert!(
            s.contains(&std::format!(
                "HAKMEM_LARGE_CACHE_MIB=5 (config; default {d})"
            )),
            "{s}"
        );
    }

    #[test]
    fn conf_strings_parse_like_the_environment() {
        let (c, bad) = Config::DEFAULT.parse_conf(
            b"HAKMEM_LARGE_CACHE_MIB=64,HAKMEM_SS_MEM_LEAN=1 HAKMEM_SS_MEM_LEAN_DECOMMIT=dontneed,,",
        );
        assert_eq!(bad, 0);
        assert_eq!(
            c,
            Config::DEFAULT
                .large_cache_mib(64)
                .ss_mem_lean(true)
                .ss_mem_lean_decommit(Decommit::DontNeed)
        );
        let (c, bad) =
            Config::DEFAULT.parse_conf(b"HAKMEM_SS_MEM_LEAN=2,junk,preset=tiny,ignore_env=1");
        assert_eq!(bad, 3);
        assert_eq!(c, Config::DEFAULT.ignore_env());
        assert_eq!(Preset::parse(b" Balanced "), Some(Preset::Balanced));
    }

    #[test]
    fn env_md_mentions_every_gate() {
        let mut s = String::new();
        write_env_md(&mut s).unwrap();
        for spec in &GATES {
            assert!(s.contains(&std::format!("| `{}` |", spec.name)));
        }
    }
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
