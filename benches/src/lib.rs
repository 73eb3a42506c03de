//! bench workloads (work in progress)
