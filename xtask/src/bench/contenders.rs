//! The contenders: one table, from which everything is built, run and reported.

/// What a contender is, for ratios and applicability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// hakmem in one preset.
    Hakmem,
    /// A peer allocator: counts for "best peer".
    Peer,
    /// The ideal single-threaded allocator: the cost of the loop itself.
    Floor,
}

/// One binary built from the `hakmem-bench` source.
#[derive(Clone, Copy, Debug)]
pub struct Contender {
    /// Name in tables, file names and `--alloc`.
    pub name: &'static str,
    /// Cargo features of `hakmem-bench` (with `--no-default-features`).
    pub features: &'static [&'static str],
    /// Its group.
    pub group: Group,
    /// What it is.
    pub about: &'static str,
}

/// The reference every throughput is divided by.
pub const REFERENCE: &str = "mimalloc";

/// Every contender, in report order.
pub const CONTENDERS: &[Contender] = &[
    Contender {
        name: "hakmem-safe",
        features: &["alloc-hakmem", "hakmem/preset-safe"],
        group: Group::Hakmem,
        about: "hakmem, preset SAFE (speed first: prewarm on, no lean mode)",
    },
    Contender {
        name: "hakmem-balanced",
        features: &["alloc-hakmem", "hakmem/preset-balanced"],
        group: Group::Hakmem,
        about: "hakmem, preset BALANCED (default: lean mode, decommit OFF)",
    },
    Contender {
        name: "hakmem-lean",
        features: &["alloc-hakmem", "hakmem/preset-lean"],
        group: Group::Hakmem,
        about: "hakmem, preset LEAN (lean mode, decommit MADV_DONTNEED)",
    },
    Contender {
        name: "mimalloc",
        features: &["alloc-mimalloc"],
        group: Group::Peer,
        about: "mimalloc v3 (crate mimalloc 0.1.52, C sources 3.x)",
    },
    Contender {
        name: "mimalloc-v2",
        features: &["alloc-mimalloc-v2"],
        group: Group::Peer,
        about: "mimalloc v2 (crate mimalloc 0.1.52, feature v2)",
    },
    Contender {
        name: "jemalloc",
        features: &["alloc-jemalloc"],
        group: Group::Peer,
        about: "jemalloc (crate tikv-jemallocator 0.7)",
    },
    Contender {
        name: "snmalloc",
        features: &["alloc-snmalloc"],
        group: Group::Peer,
        about: "snmalloc (crate snmalloc-rs 0.7, built with cc)",
    },
    Contender {
        name: "rpmalloc",
        features: &["alloc-rpmalloc"],
        group: Group::Peer,
        about: "rpmalloc (crate rpmalloc 0.2)",
    },
    Contender {
        name: "system",
        features: &["alloc-system"],
        group: Group::Peer,
        about: "glibc malloc (std::alloc::System)",
    },
    Contender {
        name: "floor",
        features: &["alloc-floor"],
        group: Group::Floor,
        about: "ideal single-threaded allocator (LIFO per power-of-two class, no metadata): the loop's own cost",
    },
];

/// Looks up `name` (`glibc` is `system`; `hakmem` is every preset, filtered by `presets`;
/// a preset's name as [`crate::preset::find`] reads it is that preset's contender).
pub fn select(name: &str, presets: &[String]) -> Result<Vec<&'static Contender>, String> {
    let name = if name == "glibc" { "system" } else { name };
    if name == "hakmem" {
        return Ok(hakmem_presets(presets));
    }
    CONTENDERS
        .iter()
        .find(|c| c.name == name)
        .map(|c| vec![c])
        // A preset's name (`safe`, the seed's `MIXED_TINYV3_C7_SAFE`, ...) names its binary.
        .or_else(|| crate::preset::find(name).ok().map(|p| vec![p.contender()]))
        .ok_or_else(|| {
            let names: Vec<_> = CONTENDERS.iter().map(|c| c.name).collect();
            format!(
                "unknown allocator {name:?} (known: hakmem, {})",
                names.join(", ")
            )
        })
}

/// The hakmem contenders of the given presets (all when empty).
pub fn hakmem_presets(presets: &[String]) -> Vec<&'static Contender> {
    CONTENDERS
        .iter()
        .filter(|c| c.group == Group::Hakmem)
        .filter(|c| presets.is_empty() || presets.iter().any(|p| c.name == format!("hakmem-{p}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection() {
        assert_eq!(select("glibc", &[]).unwrap()[0].name, "system");
        assert_eq!(select("hakmem", &[]).unwrap().len(), 3);
        let lean = select("hakmem", &["lean".into()]).unwrap();
        assert_eq!(lean.len(), 1);
        assert_eq!(lean[0].name, "hakmem-lean");
        assert!(select("tcmalloc", &[]).is_err());
        assert_eq!(
            select("MIXED_TINYV3_C7_SAFE", &[]).unwrap()[0].name,
            "hakmem-safe"
        );
        assert!(CONTENDERS.iter().any(|c| c.name == REFERENCE));
    }
}
