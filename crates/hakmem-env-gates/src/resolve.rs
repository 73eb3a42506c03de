//! Turning an environment (a list of `NAME=value` byte strings) into a [`Resolved`]
//! snapshot: each gate's value, where it came from, and any value that was rejected.
//!
//! Everything here is pure: it neither reads the process environment nor prints. The
//! once-only reading of `environ` and the printing live in `lib.rs`.

use core::ffi::{CStr, c_char};
use core::fmt;

use crate::table::{GATE_COUNT, GATES, GateId, GateSpec};
use crate::{Config, Gates, Preset, preset_defaults};

/// Where a gate's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The gate's own default ([`GateSpec::default`]): the compiled-in preset does not
    /// set the gate.
    Default,
    /// The compiled-in preset's value, which differs from the gate's own default (the
    /// preset sets the gate).
    Preset,
    /// The program's [`Config`] (given with [`set_config`](crate::set_config), e.g. by
    /// `HakMem::with_config` or libhakmem's `hakmem_conf`).
    Config,
    /// The environment variable (a valid value was set).
    Environment,
}

impl Source {
    /// `"default"`, `"preset"` or `"environment"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::Preset => "preset",
            Source::Config => "config",
            Source::Environment => "environment",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many bytes of a rejected value are kept for the warning.
const REJECTED_KEEP: usize = 40;

/// A malformed environment value, kept (a prefix of it) so that the warning can quote it.
#[derive(Clone, Copy)]
struct Rejected {
    bytes: [u8; REJECTED_KEEP],
    len: u8,
    truncated: bool,
}

impl Rejected {
    const NONE: Option<Rejected> = None;

    fn new(raw: &[u8]) -> Self {
        let mut bytes = [0u8; REJECTED_KEEP];
        let take = raw.len().min(REJECTED_KEEP);
        if let (Some(dst), Some(src)) = (bytes.get_mut(..take), raw.get(..take)) {
            dst.copy_from_slice(src);
        }
        Rejected {
            bytes,
            len: u8::try_from(take).unwrap_or(0),
            truncated: raw.len() > REJECTED_KEEP,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

/// Printable ASCII as is, anything else as `\xNN`, then `...` when cut short.
struct Escaped<'a>(&'a [u8], bool);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            if (0x20..0x7f).contains(&b) && b != b'\\' {
                fmt::Write::write_char(f, char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if self.1 {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// A resolved snapshot: every gate's value, its [`Source`], and the malformed values
/// that were ignored. [`crate::resolved()`] holds the process's; tests build their own
/// with [`Resolved::from_vars`].
#[derive(Clone, Copy)]
pub struct Resolved {
    preset: Preset,
    /// Whether a [`Config`] other than the default was applied, and whether it ignored
    /// the environment.
    config: bool,
    ignore_env: bool,
    gates: Gates,
    sources: [Source; GATE_COUNT],
    rejected: [Option<Rejected>; GATE_COUNT],
}

impl Resolved {
    /// The defaults of `preset`, nothing read from any environment.
    #[inline]
    pub const fn defaults(preset: Preset) -> Self {
        // Computed at compile time: no run-time loop or indexing.
        match preset {
            Preset::Safe => Self::DEFAULTS_SAFE,
            Preset::Balanced => Self::DEFAULTS_BALANCED,
            Preset::Lean => Self::DEFAULTS_LEAN,
        }
    }

    const DEFAULTS_SAFE: Resolved = Resolved::compute_defaults(Preset::Safe);
    const DEFAULTS_BALANCED: Resolved = Resolved::compute_defaults(Preset::Balanced);
    const DEFAULTS_LEAN: Resolved = Resolved::compute_defaults(Preset::Lean);

    /// Only evaluated in the constants above.
    const fn compute_defaults(preset: Preset) -> Self {
        let mut sources = [Source::Default; GATE_COUNT];
        let mut i = 0;
        while i < GATE_COUNT {
            let s = &GATES[i];
            if !s.default_for(preset).const_eq(s.default) {
                sources[i] = Source::Preset;
            }
            i += 1;
        }
        Resolved {
            preset,
            config: false,
            ignore_env: false,
            gates: preset_defaults(preset),
            sources,
            rejected: [Rejected::NONE; GATE_COUNT],
        }
    }

    /// The defaults of `cfg`'s preset with `cfg`'s values over them, nothing read from
    /// any environment.
    pub fn from_config(cfg: &Config) -> Self {
        let mut r = Resolved::defaults(cfg.effective_preset());
        r.config = !cfg.is_default();
        r.ignore_env = cfg.ignores_env();
        for spec in &GATES {
            if let Some(v) = cfg.get(spec.id) {
                r.gates.set(spec.id, v);
                if let Some(src) = r.sources.get_mut(spec.id.index()) {
                    *src = Source::Config;
                }
            }
        }
        r
    }

    /// Resolves the gates of `preset` against an environment given as `NAME=value` byte
    /// strings (entries without `=` and names that are not gates are ignored).
    ///
    /// As with `getenv`, the first entry for a name wins. A malformed value keeps the
    /// default and is recorded for [`write_warnings`](Self::write_warnings). Never
    /// allocates, never panics.
    pub fn from_vars<'a, I>(vars: I, preset: Preset) -> Self
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut r = Self::from_vars_config(vars, &Config::DEFAULT.preset(preset));
        r.config = false; // a preset chosen by the caller, not a program's config
        r
    }

    /// As [`from_vars`](Self::from_vars), over a [`Config`]: the config's preset and
    /// values first, then the environment over them (unless the config ignores it).
    pub fn from_vars_config<'a, I>(vars: I, cfg: &Config) -> Self
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut r = Resolved::from_config(cfg);
        if cfg.ignores_env() {
            return r;
        }
        let mut seen = [false; GATE_COUNT];
        for var in vars {
            if !var.starts_with(b"HAKMEM_") {
                continue;
            }
            r.apply_entry(var, &mut seen);
        }
        r
    }

    /// Resolves the gates of `preset` against a C environment block such as libc's
    /// `environ`. Only entries that start with `HAKMEM_` are measured.
    ///
    /// # Safety
    ///
    /// `envp` is null or points to an array of pointers terminated by a null pointer, each
    /// pointing to a NUL-terminated string; the array and the strings stay valid and
    /// unmodified for the duration of the call (no concurrent `setenv`/`putenv`).
    pub unsafe fn from_environ(envp: *const *const c_char, preset: Preset) -> Self {
        // SAFETY: forwarded caller contract.
        let mut r = unsafe { Self::from_environ_config(envp, &Config::DEFAULT.preset(preset)) };
        r.config = false; // a preset chosen by the caller, not a program's config
        r
    }

    /// As [`from_environ`](Self::from_environ), over a [`Config`] (see
    /// [`from_vars_config`](Self::from_vars_config)).
    ///
    /// # Safety
    ///
    /// As for [`from_environ`](Self::from_environ).
    pub unsafe fn from_environ_config(envp: *const *const c_char, cfg: &Config) -> Self {
        let mut r = Resolved::from_config(cfg);
        let mut seen = [false; GATE_COUNT];
        let mut cur = envp;
        if cur.is_null() || cfg.ignores_env() {
            return r;
        }
        loop {
            // SAFETY: by the caller's contract `cur` points into the null-terminated array,
            // at or before its terminator (we stop at the terminator below).
            let entry = unsafe { *cur };
            if entry.is_null() {
                break;
            }
            // SAFETY: `entry` is a valid NUL-terminated string (caller's contract);
            // `starts_with_hakmem` reads no further than its NUL.
            if unsafe { starts_with_hakmem(entry) } {
                // SAFETY: as above, and it stays valid and unmodified during this call.
                let var = unsafe { CStr::from_ptr(entry) }.to_bytes();
                r.apply_entry(var, &mut seen);
            }
            // SAFETY: `cur` was not the terminator, so the next element is still in the array.
            cur = unsafe { cur.add(1) };
        }
        r
    }

    /// Applies one `NAME=value` entry (ignored without `=`).
    fn apply_entry(&mut self, var: &[u8], seen: &mut [bool; GATE_COUNT]) {
        let Some(eq) = var.iter().position(|&c| c == b'=') else {
            return;
        };
        let Some((name, eq_value)) = var.split_at_checked(eq) else {
            return;
        };
        self.apply(name, eq_value.get(1..).unwrap_or(&[]), seen);
    }

    fn apply(&mut self, name: &[u8], value: &[u8], seen: &mut [bool; GATE_COUNT]) {
        let rows = GATES
            .iter()
            .zip(seen.iter_mut())
            .zip(self.sources.iter_mut())
            .zip(self.rejected.iter_mut());
        for (((spec, seen), source), rejected) in rows {
            if spec.name.as_bytes() != name {
                continue;
            }
            if *seen {
                return; // getenv semantics: the first entry wins
            }
            *seen = true;
            match spec.ty.parse(value) {
                Some(v) => {
                    self.gates.set(spec.id, v);
                    *source = Source::Environment;
                }
                None => *rejected = Some(Rejected::new(value)),
            }
            return;
        }
    }

    /// The preset these defaults came from (the compiled-in one, or the config's).
    #[inline]
    pub const fn preset(&self) -> Preset {
        self.preset
    }

    /// Whether a [`Config`] (other than [`Config::DEFAULT`]) was applied.
    #[inline]
    pub const fn has_config(&self) -> bool {
        self.config
    }

    /// Whether the applied [`Config`] ignored the environment.
    #[inline]
    pub const fn ignored_env(&self) -> bool {
        self.ignore_env
    }

    /// The gate values.
    #[inline]
    pub const fn gates(&self) -> &Gates {
        &self.gates
    }

    /// Every gate's source, indexed by [`GateId::index`] (table order).
    #[inline]
    pub const fn sources(&self) -> &[Source; GATE_COUNT] {
        &self.sources
    }

    /// One gate's source.
    #[inline]
    pub fn source(&self, id: GateId) -> Source {
        self.sources
            .get(id.index())
            .copied()
            .unwrap_or(Source::Default)
    }

    /// The malformed value that was ignored for gate `id` (at most its first 40 bytes),
    /// if any.
    pub fn rejected(&self, id: GateId) -> Option<&[u8]> {
        self.rejected
            .get(id.index())
            .and_then(|r| r.as_ref())
            .map(Rejected::as_bytes)
    }

    /// Whether any value was rejected.
    pub fn has_warnings(&self) -> bool {
        self.rejected.iter().any(Option::is_some)
    }

    /// One line per rejected value, e.g.
    /// `hakmem: ignoring HAKMEM_SS_MEM_LEAN=maybe (expected 0 or 1); using default 1`.
    pub fn write_warnings<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        for (spec, rejected) in GATES.iter().zip(self.rejected.iter()) {
            if let Some(r) = rejected {
                writeln!(
                    w,
                    "hakmem: ignoring {}={} (expected {}); using default {}",
                    spec.name,
                    Escaped(r.as_bytes(), r.truncated),
                    spec.ty.expected(),
                    self.gates.get(spec.id),
                )?;
            }
        }
        Ok(())
    }

    /// The start-up report: the preset, the compiled-in boxes (`boxes`, as the caller
    /// lists them), then one line per gate with its value and source.
    pub fn write_verbose<W: fmt::Write + ?Sized>(&self, boxes: &str, w: &mut W) -> fmt::Result {
        writeln!(w, "hakmem: preset {}", self.preset.name())?;
        if self.config {
            writeln!(
                w,
                "hakmem: config from the program{}",
                if self.ignore_env {
                    " (environment ignored)"
                } else {
                    " (the environment overrides it)"
                }
            )?;
        }
        writeln!(w, "hakmem: boxes: {boxes}")?;
        for (spec, source) in GATES.iter().zip(self.sources.iter()) {
            self.write_gate_line(spec, *source, w)?;
        }
        Ok(())
    }

    fn write_gate_line<W: fmt::Write + ?Sized>(
        &self,
        spec: &GateSpec,
        source: Source,
        w: &mut W,
    ) -> fmt::Result {
        let value = self.gates.get(spec.id);
        write!(w, "hakmem:   {}={} ({}", spec.name, value, source)?;
        if source == Source::Preset {
            write!(w, " {}", self.preset.name())?;
        }
        let default = spec.default_for(self.preset);
        if matches!(source, Source::Environment | Source::Config) && !value.const_eq(default) {
            write!(w, "; default {default}")?;
        }
        if spec.id == GateId::Prewarm && self.gates.prewarm && self.gates.ss_mem_lean {
            w.write_str("; suppressed by HAKMEM_SS_MEM_LEAN=1")?;
        }
        if self.rejected(spec.id).is_some() {
            w.write_str("; malformed value ignored")?;
        }
        w.write_str(")\n")
    }
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("preset", &self.preset)
            .field("config", &self.config)
            .field("ignore_env", &self.ignore_env)
            .field("gates", &self.gates)
            .field("sources", &self.sources)
            .field("has_warnings", &self.has_warnings())
            .finish()
    }
}

/// Whether the C string at `s` begins with `HAKMEM_`, reading no byte past its NUL.
///
/// # Safety
///
/// `s` points to a valid NUL-terminated string.
unsafe fn starts_with_hakmem(s: *const c_char) -> bool {
    let prefix = b"HAKMEM_";
    let mut p = s.cast::<u8>();
    for &want in prefix {
        // SAFETY: every byte before this one matched a non-NUL prefix byte, so the string
        // has not ended and `p` is still inside it (at worst at its NUL).
        let got = unsafe { *p };
        if got != want {
            return false;
        }
        // SAFETY: `got` was not NUL, so the byte after it is still part of the string.
        p = unsafe { p.add(1) };
    }
    true
}
