//! Test support shared across modules: a deterministic pseudo-random generator for "random input
//! never panics" tests (same sequence every run, so failures reproduce).

/// xorshift64: fast, deterministic, good enough to shuffle test input.
pub(crate) fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed.max(1);
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
