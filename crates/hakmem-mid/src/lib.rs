//! hakmem-mid (work in progress)
