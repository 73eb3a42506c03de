//! [`Config`]: gate values chosen by the program itself (at compile time, on the global
//! allocator's static, or from a C string such as libhakmem's `hakmem_conf`), handed to
//! the one resolution of the gates before it runs ([`set_config`](crate::set_config)).
//!
//! **Precedence** (highest first): environment > config > preset > the gate's own
//! default. A config that calls [`Config::ignore_env`] is not overridden: the
//! environment is then not read at all (`HAKMEM_VERBOSE` included).

use crate::table::{GATE_COUNT, GATES, GateId, GateValue, Gates, preset_defaults};
use crate::{PRESET, Preset};

const _: () = assert!(GATE_COUNT <= 64, "Config keeps its set gates in a u64 mask");

/// Gate values chosen by the program, applied over a preset's defaults.
///
/// Built in `const` context, so it fits a `static`:
///
/// ```
/// use hakmem_env_gates::{Config, Decommit, GateId, Preset, Resolved, Source};
///
/// const CFG: Config = Config::BALANCED.large_cache_mib(64).ss_mem_lean_decommit(Decommit::DontNeed);
/// let r = Resolved::from_vars_config([&b"HAKMEM_LARGE_CACHE_MIB=8"[..]], &CFG);
/// assert_eq!(r.preset(), Preset::Balanced);
/// // The environment overrides the config...
/// assert_eq!(r.gates().large_cache_mib, 8);
/// assert_eq!(r.source(GateId::LargeCacheMib), Source::Environment);
/// assert_eq!(r.source(GateId::SsMemLeanDecommit), Source::Config);
/// // ...unless the config ignores it.
/// let r = Resolved::from_vars_config([&b"HAKMEM_LARGE_CACHE_MIB=8"[..]], &CFG.ignore_env());
/// assert_eq!(r.gates().large_cache_mib, 64);
/// ```
///
/// One `const fn` setter per gate, named after its [`Gates`] field, is generated from the
/// gate table (e.g. [`Config::large_cache_mib`], [`Config::ss_mem_lean`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The preset whose defaults the config starts from; `None`: the compiled-in one.
    preset: Option<Preset>,
    /// The values set (meaningful only where `set` has the gate's bit).
    values: Gates,
    /// Bit `i`: gate `i` (table order) is set by this config.
    set: u64,
    /// Whether the environment is not read at all.
    ignore_env: bool,
    /// Whether the program gave it (`set_config` or `hakmem_conf`) even if it sets
    /// nothing (so `HAKMEM_VERBOSE` says a config was given).
    given: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Config {
    /// Nothing set: the compiled-in preset ([`PRESET`]), the environment read as usual.
    pub const DEFAULT: Config = Config {
        preset: None,
        values: preset_defaults(PRESET),
        set: 0,
        ignore_env: false,
        given: false,
    };
    /// Preset SAFE's defaults, whatever preset is compiled in.
    pub const SAFE: Config = Config::DEFAULT.preset(Preset::Safe);
    /// Preset BALANCED's defaults, whatever preset is compiled in.
    pub const BALANCED: Config = Config::DEFAULT.preset(Preset::Balanced);
    /// Preset LEAN's defaults, whatever preset is compiled in.
    pub const LEAN: Config = Config::DEFAULT.preset(Preset::Lean);

    /// [`Config::DEFAULT`].
    pub const fn new() -> Self {
        Self::DEFAULT
    }

    /// Start from preset `p`'s defaults instead of the compiled-in preset's.
    #[must_use]
    pub const fn preset(mut self, p: Preset) -> Self {
        self.preset = Some(p);
        self
    }

    /// Do not read the environment: the config (over its preset) is final.
    #[must_use]
    pub const fn ignore_env(mut self) -> Self {
        self.ignore_env = true;
        self
    }

    /// Sets gate `id` to `v`. A value of another type than the gate's is ignored (the
    /// generated setters such as [`Config::large_cache_mib`] cannot get it wrong).
    #[must_use]
    pub const fn with(mut self, id: GateId, v: GateValue) -> Self {
        if self.values.set(id, v) {
            self.set |= 1u64 << id.index();
        }
        self
    }

    /// Whether this config changes nothing (no preset, no gate, environment read).
    pub const fn is_default(&self) -> bool {
        self.preset.is_none() && self.set == 0 && !self.ignore_env && !self.given
    }

    /// Marked as the program's (internal: `hakmem_conf` was read).
    pub(crate) const fn given_by_program(mut self) -> Self {
        self.given = true;
        self
    }

    /// The preset the resolution starts from.
    pub const fn effective_preset(&self) -> Preset {
        match self.preset {
            Some(p) => p,
            None => PRESET,
        }
    }

    /// Whether the environment is ignored ([`Config::ignore_env`]).
    pub const fn ignores_env(&self) -> bool {
        self.ignore_env
    }

    /// The value this config sets for gate `id`, if it sets one.
    pub const fn get(&self, id: GateId) -> Option<GateValue> {
        if self.set & (1u64 << id.index()) != 0 {
            Some(self.values.get(id))
        } else {
            None
        }
    }

    /// Applies a configuration string of `NAME=value` entries separated by `,` (or
    /// blanks): `"HAKMEM_LARGE_CACHE_MIB=64,HAKMEM_SS_MEM_LEAN=1"`, the format of
    /// libhakmem's `hakmem_conf`. Values are parsed as in the environment. Two words are
    /// also understood: `preset=SAFE|BALANCED|LEAN` and `ignore_env=1`. Returns the config
    /// and the number of entries that were not understood (left out). Never allocates.
    ///
    /// ```
    /// use hakmem_env_gates::{Config, Preset};
    /// let (c, bad) = Config::DEFAULT.parse_conf(b"preset=lean, HAKMEM_SS_CACHE_MAX=2,HAKMEM_X=1");
    /// assert_eq!((c.effective_preset(), bad), (Preset::Lean, 1));
    /// assert_eq!(c, Config::LEAN.ss_cache_max(2));
    /// ```
    pub fn parse_conf(mut self, conf: &[u8]) -> (Config, usize) {
        let mut bad = 0;
        let entries = conf.split(|&b| b == b',' || b.is_ascii_whitespace());
        for entry in entries.filter(|e| !e.is_empty()) {
            let Some(eq) = entry.iter().position(|&b| b == b'=') else {
                bad += 1;
                continue;
            };
            let (name, value) = (
                entry.get(..eq).unwrap_or(&[]),
                entry.get(eq + 1..).unwrap_or(&[]),
            );
            if name.eq_ignore_ascii_case(b"preset") {
                match Preset::parse(value) {
                    Some(p) => self = self.preset(p),
                    None => bad += 1,
                }
                continue;
            }
            if name.eq_ignore_ascii_case(b"ignore_env") {
                match value {
                    b"1" => self.ignore_env = true,
                    b"0" => self.ignore_env = false,
                    _ => bad += 1,
                }
                continue;
            }
            match GATES.iter().find(|s| s.name.as_bytes() == name) {
                Some(spec) => match spec.ty.parse(value) {
                    Some(v) => self = self.with(spec.id, v),
                    None => bad += 1,
                },
                None => bad += 1,
            }
        }
        (self, bad)
    }
}
