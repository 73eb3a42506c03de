//! hakmem-large (work in progress)
