//! Allocator housekeeping: glibc keeps freed memory in its per-thread heaps, so after a flood
//! (logins, connections, calls) the process stays large unless it is asked to give it back.
//! The one place the engine talks to the allocator.

/// Large allocations (an Argon2 hash's 19 MiB, big response bodies) get their own mapping,
/// returned to the system when freed. glibc otherwise raises its mmap threshold after the first
/// such free, so later ones come from per-thread arenas that keep the memory: 500 concurrent
/// logins left 8.4 GB resident, 42 MB with this (benches/login_flood.sh). Call it at start,
/// before other threads run.
pub fn return_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Asks glibc to return the free pages of its heaps to the system (blocking: call it off the
/// async workers, e.g. with `spawn_blocking`).
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}
