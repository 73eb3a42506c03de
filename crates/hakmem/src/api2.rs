//! `allocator_api2::alloc::Allocator` for `HakMem` (placeholder, being written).
