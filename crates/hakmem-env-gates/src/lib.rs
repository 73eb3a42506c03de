//! hakmem-env-gates (skeleton: the environment is not read yet; defaults only).
#![no_std]

/// The preset compiled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Speed first: prewarm on, no lean mode.
    Safe,
    /// Lean mode with decommit OFF, prewarm suppressed (the default).
    Balanced,
    /// Lean mode with decommit FREE: lowest memory.
    Lean,
}

/// The preset selected by Cargo features (SAFE or LEAN win over BALANCED).
pub const PRESET: Preset = if cfg!(feature = "preset-safe") {
    Preset::Safe
} else if cfg!(feature = "preset-lean") {
    Preset::Lean
} else {
    Preset::Balanced
};

/// `HAKMEM_SS_MEM_LEAN_DECOMMIT`: how lean mode gives memory back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decommit {
    /// `MADV_FREE`: lazy reclaim.
    Free,
    /// `MADV_DONTNEED`: eager reclaim.
    DontNeed,
    /// No decommit.
    Off,
}

/// A plain, copyable snapshot of every gate.
#[derive(Clone, Copy, Debug)]
pub struct Gates {
    /// `HAKMEM_SS_MEM_LEAN`
    pub ss_mem_lean: bool,
    /// `HAKMEM_SS_MEM_LEAN_DECOMMIT`
    pub ss_mem_lean_decommit: Decommit,
    /// `HAKMEM_SS_OS_STATS`
    pub ss_os_stats: bool,
    /// `HAKMEM_ALLOC_PASSDOWN_SSOT`
    pub alloc_passdown_ssot: bool,
    /// `HAKMEM_PREWARM`
    pub prewarm: bool,
    /// `HAKMEM_PREWARM_DEPTH`
    pub prewarm_depth: u32,
    /// `HAKMEM_SS_CACHE_MAX`
    pub ss_cache_max: u32,
    /// `HAKMEM_LARGE_CACHE_MIB`
    pub large_cache_mib: u32,
    /// `HAKMEM_VERBOSE`
    pub verbose: bool,
}

/// Defaults of the compiled-in preset.
pub const fn preset_defaults(p: Preset) -> Gates {
    let lean = !matches!(p, Preset::Safe);
    Gates {
        ss_mem_lean: lean,
        ss_mem_lean_decommit: if matches!(p, Preset::Lean) { Decommit::Free } else { Decommit::Off },
        ss_os_stats: false,
        alloc_passdown_ssot: false,
        prewarm: true,
        prewarm_depth: 16,
        ss_cache_max: if lean { 2 } else { 8 },
        large_cache_mib: if matches!(p, Preset::Lean) { 16 } else { 64 },
        verbose: false,
    }
}

static DEFAULTS: Gates = preset_defaults(PRESET);

/// The gate snapshot (skeleton: defaults only).
#[inline]
pub fn gates() -> &'static Gates {
    &DEFAULTS
}
