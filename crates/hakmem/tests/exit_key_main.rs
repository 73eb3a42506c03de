//! The exit key of a Rust program (hakmem as `#[global_allocator]`), in a test with its
//! own `main` (no test harness, whose tests run on threads of their own): the main
//! thread is armed on a key at a low index, with one `pthread_key_create` and no sweep
//! of the key table, so a program that never starts a thread pays nothing for the
//! sweep; the first other thread to allocate makes the swept key, near the top of the
//! table, and is armed on it; keys the program makes afterwards come below it, and the
//! top two indices are still free.

use hakmem_ss_allocation::bins::THREAD_EXIT;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn value_of(k: usize) -> *const libc::c_void {
    // SAFETY: glibc returns null for an index that is not a live key.
    unsafe { libc::pthread_getspecific(k as libc::pthread_key_t) }
}

fn main() {
    let me = &THREAD_EXIT as *const _ as *const libc::c_void;
    // The main thread has allocated (std's start-up, and this box).
    let b = std::hint::black_box(Box::new([7u8; 100]));
    assert_eq!(b[99], 7);
    let low = THREAD_EXIT
        .low_index()
        .expect("main thread armed on the low key");
    assert!(low < 32, "low key at index {low}");
    assert_eq!(value_of(low), me, "main thread's value on the low key");
    assert_eq!(
        THREAD_EXIT.index(),
        None,
        "a sweep before any thread started"
    );

    // The first other thread sweeps and is armed on the swept key.
    let high = std::thread::spawn(move || {
        let v = std::hint::black_box(vec![1u32; 1000]);
        assert_eq!(v.iter().sum::<u32>(), 1000);
        let high = THREAD_EXIT
            .index()
            .expect("swept key made by the first thread");
        assert_eq!(
            value_of(high),
            &THREAD_EXIT as *const _ as *const libc::c_void
        );
        assert!(value_of(low).is_null(), "a thread armed on both keys");
        high
    })
    .join()
    .unwrap();
    // SAFETY: sysconf has no preconditions.
    let max = unsafe { libc::sysconf(libc::_SC_THREAD_KEYS_MAX) } as usize;
    assert_eq!(high, max - 3, "the swept key's index");

    // Later threads: the same key, no second sweep.
    for _ in 0..4 {
        std::thread::spawn(move || {
            let s = std::hint::black_box(String::from("later"));
            assert_eq!(
                value_of(high),
                &THREAD_EXIT as *const _ as *const libc::c_void
            );
            s.len()
        })
        .join()
        .unwrap();
    }
    assert_eq!(THREAD_EXIT.index(), Some(high));

    // Every key the program can make now is below the swept one or one of the two
    // spare top indices.
    let mut made = Vec::new();
    loop {
        let mut k = 0;
        // SAFETY: a valid out-parameter.
        if unsafe { libc::pthread_key_create(&mut k, None) } != 0 {
            break;
        }
        made.push(k as usize);
    }
    let above: Vec<usize> = made.iter().copied().filter(|&k| k > high).collect();
    assert_eq!(above, [max - 2, max - 1], "keys above the swept one");
    for &k in &made {
        // SAFETY: created just above.
        unsafe { libc::pthread_key_delete(k as libc::pthread_key_t) };
    }
    println!("exit_key_main: main on key {low}, threads on key {high}: ok");
}
