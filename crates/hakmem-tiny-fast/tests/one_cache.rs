//! One thread cache per thread: a thread that uses tiny and mid classes has one state,
//! one registry node (for all its bins) and one exit hook, and `cached()` counts all its
//! blocks. (Its own test binary: the registry is process-wide, so no other test may
//! start or end threads that use the box meanwhile.)

use hakmem_ss_allocation::class::{NCLASS, NTINY, block_size, class_for};
use hakmem_tiny_fast::{
    State, cache_alloc, cache_free, cached, registered_caches, thread_cached_blocks, thread_state,
    tiny_alloc, tiny_free,
};

#[test]
fn one_node_one_state_for_tiny_and_mid_classes() {
    assert_eq!(registered_caches(), 0, "nobody used the box yet");
    let mid = class_for(20_000, 16).unwrap();
    assert!((NTINY..NCLASS).contains(&mid));

    // A thread whose first call is a mid allocation, then tiny ones.
    let handed = std::thread::spawn(move || {
        assert_eq!(thread_state(), State::Uninit);
        let m = cache_alloc(mid);
        assert!(!m.is_null());
        assert_eq!(thread_state(), State::Active, "a mid call starts the cache");
        assert_eq!(registered_caches(), 1);
        let t = tiny_alloc(48);
        assert!(!t.is_null());
        assert_eq!(registered_caches(), 1, "one node for tiny and mid bins");
        let m2 = cache_alloc(mid);
        // SAFETY: `t` from tiny_alloc(48), `m2` from cache_alloc(mid); freed once.
        unsafe {
            tiny_free(t, 48);
            cache_free(m2, mid);
        }
        // The registry sees every bin of the thread, tiny and mid.
        let (blocks, bytes) = cached();
        assert_eq!(blocks, thread_cached_blocks());
        assert!(blocks >= 2);
        assert!(
            bytes >= (block_size(mid) + 48) as u64,
            "the registry must count the mid bins too: {bytes} bytes"
        );
        m as usize
    })
    .join()
    .unwrap();
    assert_eq!(
        registered_caches(),
        0,
        "the exit hook unregistered the one node"
    );
    assert_eq!(cached(), (0, 0), "the exit hook drained every bin");

    // A thread whose first call is the free of another thread's mid block.
    std::thread::spawn(move || {
        // SAFETY: allocated by the thread above with class `mid`, freed once.
        unsafe { cache_free(handed as *mut u8, mid) };
        assert_eq!(thread_state(), State::Active);
        assert_eq!(registered_caches(), 1);
        assert_eq!(thread_cached_blocks(), 1);
    })
    .join()
    .unwrap();
    assert_eq!(registered_caches(), 0);
    assert_eq!(cached(), (0, 0));
}
