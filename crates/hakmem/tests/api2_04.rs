//! `allocator_api2::alloc::Allocator for HakMem` with allocator-api2 0.4, the current
//! release (feature `allocator-api2-04`): collections of that release allocate in hakmem.
#![cfg(feature = "allocator-api2-04")]

use allocator_api2_04::alloc::{Allocator, Layout};
use allocator_api2_04::boxed::Box;
use allocator_api2_04::vec::Vec;

#[test]
fn vec_and_box_of_the_current_release() {
    let mut v: Vec<u64, hakmem::HakMem> = Vec::new_in(hakmem::HakMem);
    for i in 0..100_000u64 {
        v.push(i);
    }
    assert_eq!(v.iter().sum::<u64>(), 100_000 * 99_999 / 2);
    let b = Box::new_in([7u8; 3000], hakmem::HakMem);
    assert!(b.iter().all(|&x| x == 7));
    let l = Layout::from_size_align(100, 8).unwrap();
    let block = hakmem::HakMem.allocate(l).unwrap();
    assert!(block.len() >= 100);
    // SAFETY: a live block from `HakMem` with layout `l`.
    unsafe { hakmem::HakMem.deallocate(block.cast(), l) };
}
