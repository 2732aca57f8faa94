//! Helper threads that spin between jobs, for work split into parts of a few microseconds
//! (batch-1 inference's matrix-vector products): the calling thread computes part 0 while
//! each helper computes one other part, and everyone spins, rather than sleeps, while waiting.
//!
//! rayon's pool lets an idle worker yield a few dozen times and then sleep; the next job then
//! waits for a futex wake-up, which on a virtual machine with an idle vCPU costs as much as
//! the part itself (the 784-512-512-10 MLP at batch 1: ~39 us through the pool against ~20 us
//! for its two large products with spinning threads, in a throwaway timing loop). Helpers here
//! keep spinning for [`IDLE_SPIN`] after each job and only then park on a condition variable.
//! There is one helper fewer than rayon's global pool has threads, the caller being the other:
//! the same number of busy threads as cores, as with OpenMP's team.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, TryLockError};
use std::time::{Duration, Instant};

/// How long a helper keeps spinning for the next job before it parks.
const IDLE_SPIN: Duration = Duration::from_micros(200);

/// A job as the helpers see it: `(*f)(part)`, the closure's lifetime erased.
#[derive(Clone, Copy)]
struct JobRef {
    f: *const (dyn Fn(usize) + Sync + 'static),
    part: usize,
}

// SAFETY: the closure behind `f` is `Sync`, so calling it from another thread is sound; the
// pointer stays valid while the helper uses it because `run` does not return (nor unwind past
// its `WaitAll` guard) before every helper has reported the job finished.
unsafe impl Send for JobRef {}

/// One helper's mailbox.
struct Helper {
    /// The posted job (taken by the helper) and whether the helper is parked.
    state: Mutex<(Option<JobRef>, bool)>,
    /// Wakes a parked helper.
    wake: Condvar,
    /// Jobs posted and jobs finished so far: equal when the helper is free.
    posted: AtomicU64,
    finished: AtomicU64,
}

/// The helpers, started on first use, and the lock that gives them to one caller at a time.
struct Helpers {
    helpers: Vec<Arc<Helper>>,
    busy: Mutex<()>,
}

/// How many parts [`run`] calls its job for: the helpers' count plus one (starts them).
pub(crate) fn parts() -> usize {
    helpers().map_or(1, |h| h.helpers.len() + 1)
}

/// Runs `job(0)`, `job(1)`, … `job(parts() - 1)`, each part on its own thread (part 0 on the
/// calling thread), and returns when all have finished. With no helpers (a one-thread pool,
/// threads that could not start) or while another caller holds them, the parts run one after
/// the other on the calling thread. A part that panics on a helper is dropped (the panic is
/// reported by the panic hook); on the calling thread it unwinds as usual.
pub(crate) fn run(job: &(dyn Fn(usize) + Sync)) {
    let Some(pool) = helpers() else {
        job(0);
        return;
    };
    // One caller at a time; another (or a part calling back in) runs its parts itself. A
    // poisoned lock (a part 0 that panicked) still hands the helpers out.
    let _busy = match pool.busy.try_lock() {
        Ok(busy) => busy,
        Err(TryLockError::Poisoned(busy)) => busy.into_inner(),
        Err(TryLockError::WouldBlock) => {
            (0..=pool.helpers.len()).for_each(job);
            return;
        }
    };
    // SAFETY: only the lifetime changes (same layout); the `WaitAll` guard below returns, also
    // when unwinding, only once every helper has finished the posted job, so `job` outlives it.
    let f: *const (dyn Fn(usize) + Sync + 'static) =
        unsafe { std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), _>(job as *const _) };
    let guard = WaitAll(&pool.helpers);
    for (i, helper) in pool.helpers.iter().enumerate() {
        helper.post(JobRef { f, part: i + 1 });
    }
    job(0);
    drop(guard);
}

/// Waits (spinning, then yielding) until every helper has finished its posted job.
struct WaitAll<'a>(&'a [Arc<Helper>]);

impl Drop for WaitAll<'_> {
    fn drop(&mut self) {
        for helper in self.0 {
            let target = helper.posted.load(Ordering::Acquire);
            let mut spins = 0u32;
            while helper.finished.load(Ordering::Acquire) != target {
                spins = spins.saturating_add(1);
                if spins < 1 << 16 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }
}

impl Helper {
    /// Hands the helper a job (it has none: the caller waited for the last one).
    fn post(&self, job: JobRef) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0 = Some(job);
        self.posted.fetch_add(1, Ordering::Release);
        if state.1 {
            self.wake.notify_one();
        }
    }

    /// The helper thread's loop: spin for a job, park after [`IDLE_SPIN`], run it.
    fn serve(&self) {
        let mut seen = 0;
        loop {
            let idle_since = Instant::now();
            let mut spins = 0u32;
            while self.posted.load(Ordering::Acquire) == seen {
                std::hint::spin_loop();
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(256) && idle_since.elapsed() > IDLE_SPIN {
                    let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                    state.1 = true;
                    while self.posted.load(Ordering::Acquire) == seen {
                        state = self
                            .wake
                            .wait(state)
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                    state.1 = false;
                }
            }
            seen += 1;
            let job = self
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .0
                .take();
            if let Some(job) = job {
                // SAFETY: `run` keeps the closure alive until `finished` reaches `seen` (see
                // `JobRef`'s `Send`); a panic is caught so that `finished` is still updated.
                let _ = catch_unwind(AssertUnwindSafe(|| unsafe { (*job.f)(job.part) }));
            }
            self.finished.store(seen, Ordering::Release);
        }
    }
}

/// The helpers, one fewer than rayon's global pool has threads (`None` for none).
fn helpers() -> Option<&'static Helpers> {
    static HELPERS: OnceLock<Option<Helpers>> = OnceLock::new();
    HELPERS
        .get_or_init(|| {
            let wanted = rayon::current_num_threads().saturating_sub(1);
            let helpers: Vec<Arc<Helper>> = (0..wanted)
                .map_while(|i| {
                    let helper = Arc::new(Helper {
                        state: Mutex::new((None, false)),
                        wake: Condvar::new(),
                        posted: AtomicU64::new(0),
                        finished: AtomicU64::new(0),
                    });
                    let served = Arc::clone(&helper);
                    std::thread::Builder::new()
                        .name(format!("sinew-spin-{i}"))
                        .spawn(move || served.serve())
                        .ok()?;
                    Some(helper)
                })
                .collect();
            (!helpers.is_empty()).then(|| Helpers {
                helpers,
                busy: Mutex::new(()),
            })
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Every part runs exactly once per call, over many calls in a row and from two threads
    /// at once (one of them then runs all parts itself).
    #[test]
    fn every_part_runs_once() {
        let n = parts();
        assert!(n >= 1);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(move || {
                    for _ in 0..200 {
                        let counts: Vec<AtomicUsize> =
                            (0..n).map(|_| AtomicUsize::new(0)).collect();
                        run(&|part| {
                            counts[part].fetch_add(1, Ordering::Relaxed);
                        });
                        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
                    }
                });
            }
        });
    }

    /// A part that panics on a helper does not hang the caller and the other parts still run;
    /// where the parts ran on the calling thread (helpers busy), the panic reaches the caller.
    #[test]
    fn a_panicking_part_does_not_hang() {
        let n = parts();
        let ran = AtomicUsize::new(0);
        let result = catch_unwind(|| {
            run(&|part| {
                ran.fetch_add(1, Ordering::Relaxed);
                if part == 1 {
                    panic!("part 1 fails on purpose");
                }
            })
        });
        match result {
            Ok(()) => assert_eq!(ran.load(Ordering::Relaxed), n),
            Err(_) => assert_eq!(ran.load(Ordering::Relaxed), 2),
        }
    }
}
