//! hakmem-env-gates (work in progress)
