//! hakmem-hot-prewarm (work in progress)
