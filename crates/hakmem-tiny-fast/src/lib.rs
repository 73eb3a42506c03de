//! hakmem-tiny-fast (work in progress)
