//! How many calls run at once, shared by every slice: fewer after Lambda throttles.
//!
//! A Function URL answers 429 when the function can get no more concurrent environments
//! (a new account's quota, an account shared with production, reserved concurrency).
//! The calls already running hold their environments for minutes, so trying again at once
//! only meets another 429. The limit starts at the number of invocations, is halved on a
//! 429 (once per round: the 429s of calls that started before the last cut say nothing
//! new) and grows by one after as many whole calls as the limit (additive increase,
//! multiplicative decrease, as TCP does).

use std::sync::Mutex;
use std::sync::PoisonError;
use tokio::sync::Notify;

/// The shared limit.
#[derive(Debug)]
pub struct Concurrency {
    state: Mutex<State>,
    /// Wakes the slices waiting for a place when one is given back or the limit grows.
    freed: Notify,
}

#[derive(Debug)]
struct State {
    /// Calls allowed at once.
    limit: u32,
    /// The limit never grows past this (the invocations).
    max: u32,
    /// The lowest the limit went.
    lowest: u32,
    /// Calls running.
    running: u32,
    /// Whole calls since the limit last changed.
    whole: u32,
    /// Bumped at every cut: a 429 of a call from an earlier round does not cut again.
    round: u64,
}

/// A place among the calls running at once; given back when dropped.
#[derive(Debug)]
pub struct Permit<'a> {
    of: &'a Concurrency,
    /// The round the call started in.
    round: u64,
}

impl Concurrency {
    /// A limit of `max` calls at once (at least 1).
    pub fn new(max: u32) -> Self {
        let max = max.max(1);
        Self {
            state: Mutex::new(State {
                limit: max,
                max,
                lowest: max,
                running: 0,
                whole: 0,
                round: 0,
            }),
            freed: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a place.
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            // Registered before the check: a place given back between the check and the
            // wait still wakes this one.
            let freed = self.freed.notified();
            {
                let mut state = self.state();
                if state.running < state.limit {
                    state.running += 1;
                    return Permit {
                        of: self,
                        round: state.round,
                    };
                }
            }
            freed.await;
        }
    }

    /// Calls allowed at once now.
    pub fn limit(&self) -> u32 {
        self.state().limit
    }

    /// The lowest the limit went.
    pub fn lowest(&self) -> u32 {
        self.state().lowest
    }
}

impl Permit<'_> {
    /// The call was throttled (429): halve the limit, unless a call of this round did.
    pub fn throttled(self) {
        let mut state = self.of.state();
        if state.round == self.round {
            state.limit = (state.limit / 2).max(1);
            state.lowest = state.lowest.min(state.limit);
            state.round += 1;
            state.whole = 0;
        }
    }

    /// The call got through: after as many of these as the limit, one more at once.
    pub fn got_through(self) {
        let grew = {
            let mut state = self.of.state();
            state.whole += 1;
            if state.whole >= state.limit && state.limit < state.max {
                state.limit += 1;
                state.whole = 0;
                true
            } else {
                false
            }
        };
        if grew {
            self.of.freed.notify_waiters();
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.of.state().running -= 1;
        self.of.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_429_halves_the_limit_once_per_round_and_whole_calls_grow_it_back() {
        let limit = Concurrency::new(8);
        let permits: Vec<Permit<'_>> =
            futures::future::join_all((0..8).map(|_| limit.acquire())).await;
        let mut permits = permits.into_iter();
        // Three 429s of calls that all started before any cut: one halving.
        for permit in permits.by_ref().take(3) {
            permit.throttled();
        }
        assert_eq!(limit.limit(), 4);
        drop(permits);
        // A call of the new round throttled: halved again.
        limit.acquire().await.throttled();
        assert_eq!((limit.limit(), limit.lowest()), (2, 2));
        limit.acquire().await.throttled();
        limit.acquire().await.throttled();
        assert_eq!(limit.limit(), 1, "never below one");
        for _ in 0..(1 + 2 + 3) {
            limit.acquire().await.got_through();
        }
        assert_eq!((limit.limit(), limit.lowest()), (4, 1));
        for _ in 0..100 {
            limit.acquire().await.got_through();
        }
        assert_eq!(limit.limit(), 8, "never above the invocations");
    }

    #[tokio::test]
    async fn no_more_than_the_limit_run_at_once() {
        let limit = Arc::new(Concurrency::new(4));
        limit.acquire().await.throttled();
        assert_eq!(limit.limit(), 2);
        let running = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let most = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (limit, running, most) = (limit.clone(), running.clone(), most.clone());
            tasks.spawn(async move {
                let permit = limit.acquire().await;
                let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                drop(permit);
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("task");
        }
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
