//! hakmem-release-policy (work in progress)
