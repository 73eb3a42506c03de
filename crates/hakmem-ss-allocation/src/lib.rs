//! hakmem-ss-allocation (work in progress)
