//! hakmem-os-stats (work in progress)
