//! The `max_items` budget shared by the segment tasks of one stream.
//!
//! A task reserves up to a page of items before it fetches and gives back what the page
//! did not use (a segment's last page is usually short). A task that finds the budget
//! empty waits while other reservations are out, since they may give items back: a stream
//! stops short of `max_items` only when the table has no more.
//!
//! "Items left" and "reservations out" live under one lock, so deciding that the budget
//! is spent ("nothing left and nothing out") is one atomic step: a reservation given back
//! at that moment is seen either before the decision (and taken) or not at all (and then
//! it cannot exist). Two separate atomics allowed a give-back to slip between the two
//! reads, ending a stream with fewer than `max_items` items.

use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Items the segment tasks of one stream may still fetch.
#[derive(Debug)]
pub struct Budget {
    /// Items left and reservations out, decided on together.
    state: Mutex<State>,
    /// Wakes waiting tasks when a reservation is given back.
    settled: Notify,
}

#[derive(Debug)]
struct State {
    /// Items not yet reserved.
    remaining: u64,
    /// Reservations not yet given back.
    out: u64,
    /// A task found nothing left and nothing out: the stream stops for `max_items`.
    spent: bool,
}

/// Items reserved for one page. Dropping it unsettled (a task that panicked or was
/// aborted mid-fetch) gives every item back, so no other task waits on it forever.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    items: u32,
    settled: bool,
}

impl Budget {
    /// A budget of `max_items`, or without a limit.
    pub fn new(max_items: Option<u64>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                remaining: max_items.unwrap_or(u64::MAX),
                out: 0,
                spent: false,
            }),
            settled: Notify::new(),
        })
    }

    /// Reserves up to `limit` items; `None` once the budget is spent for good.
    pub async fn take(self: &Arc<Self>, limit: u32) -> Option<Reservation> {
        loop {
            // Registered before the check, so a give-back right after it still wakes us.
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            {
                let mut state = self.lock();
                if state.remaining > 0 {
                    let items = state.remaining.min(u64::from(limit));
                    state.remaining -= items;
                    state.out += 1;
                    return Some(Reservation {
                        budget: self.clone(),
                        // At most `limit`, a u32.
                        items: u32::try_from(items).unwrap_or(limit),
                        settled: false,
                    });
                }
                if state.out == 0 {
                    state.spent = true;
                    drop(state);
                    // Other waiters must see the same verdict.
                    self.settled.notify_waiters();
                    return None;
                }
            }
            settled.await;
        }
    }

    /// Whether a task stopped because nothing was left and nothing was out.
    pub fn is_spent(&self) -> bool {
        self.lock().spent
    }

    fn give_back(&self, unused: u64) {
        {
            let mut state = self.lock();
            state.remaining = state.remaining.saturating_add(unused);
            state.out = state.out.saturating_sub(1);
        }
        self.settled.notify_waiters();
    }

    /// The lock is held for a few arithmetic steps and never across an await; a poisoned
    /// lock (a panic inside those steps) still holds consistent numbers.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Reservation {
    /// How many items the page may hold.
    pub fn items(&self) -> u32 {
        self.items
    }

    /// Adds up to `more` items to this reservation from what nobody has reserved, without
    /// waiting, and returns how many it got. A page that matched more than it reserved
    /// takes them rather than be cut while the budget sits unused. It never waits, so it
    /// cannot deadlock against tasks waiting on this reservation, and it only takes items
    /// no one holds, so the reservations still add up to at most `max_items`.
    pub fn top_up(&mut self, more: u32) -> u32 {
        let mut state = self.budget.lock();
        let room = u64::from(u32::MAX - self.items);
        let got = state.remaining.min(u64::from(more)).min(room);
        state.remaining -= got;
        // At most `more`, a u32.
        let got = u32::try_from(got).unwrap_or(0);
        self.items += got;
        got
    }

    /// Gives back what a page of `used` items did not use.
    pub fn settle(mut self, used: u64) {
        self.settled = true;
        self.budget
            .give_back(u64::from(self.items).saturating_sub(used));
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            self.budget.give_back(u64::from(self.items));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::pin::pin;

    #[tokio::test]
    async fn a_waiter_gets_what_a_short_page_gives_back() {
        let budget = Budget::new(Some(10));
        let first = budget.take(10).await.expect("items left");
        assert_eq!(first.items(), 10);
        // The interleaving that broke the two-atomics budget: a task finds nothing left
        // while a reservation is out...
        let mut waiter = pin!(budget.take(10));
        assert!((&mut waiter).now_or_never().is_none(), "waits, not spent");
        // ...and the reservation comes back short at that moment.
        first.settle(4);
        let second = waiter.await.expect("the six given back");
        assert_eq!(second.items(), 6);
        assert!(!budget.is_spent());
        second.settle(6);
        assert!(budget.take(10).await.is_none());
        assert!(budget.is_spent());
    }

    #[tokio::test]
    async fn a_full_page_spends_the_budget_for_every_waiter() {
        let budget = Budget::new(Some(5));
        let only = budget.take(10).await.expect("items left");
        let mut a = pin!(budget.take(3));
        let mut b = pin!(budget.take(3));
        assert!((&mut a).now_or_never().is_none());
        assert!((&mut b).now_or_never().is_none());
        only.settle(5);
        assert!(a.await.is_none());
        assert!(b.await.is_none());
        assert!(budget.is_spent());
    }

    #[tokio::test]
    async fn a_top_up_takes_only_what_nobody_holds_and_never_waits() {
        let budget = Budget::new(Some(10));
        let mut first = budget.take(3).await.expect("items left");
        let second = budget.take(4).await.expect("items left");
        assert_eq!(first.top_up(5), 3, "only the 3 nobody reserved");
        assert_eq!(first.items(), 6);
        assert_eq!(first.top_up(5), 0, "nothing left: no wait, nothing");
        first.settle(6);
        second.settle(1);
        // The 3 the second gave back are there for the next.
        assert_eq!(budget.take(10).await.map(|r| r.items()), Some(3));
    }

    #[tokio::test]
    async fn a_reservation_dropped_unsettled_gives_everything_back() {
        let budget = Budget::new(Some(8));
        let lost = budget.take(8).await.expect("items left");
        let mut waiter = pin!(budget.take(8));
        assert!((&mut waiter).now_or_never().is_none());
        drop(lost); // as when its task panics mid-fetch
        assert_eq!(waiter.await.map(|r| r.items()), Some(8));
    }

    #[tokio::test]
    async fn without_a_limit_the_budget_never_runs_out() {
        let budget = Budget::new(None);
        for _ in 0..1000 {
            budget.take(1000).await.expect("unlimited").settle(1000);
        }
        assert!(!budget.is_spent());
    }

    #[test]
    fn racing_segments_with_short_last_pages_deliver_exactly_max_items() {
        // Real threads, segments of different sizes whose last pages come back short and
        // whose tasks then end: whatever the interleaving, min(max, table) items are used.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .expect("runtime");
        for round in 0..300u64 {
            let sizes: Vec<u64> = (0..6)
                .map(|task| 1 + (round * 7 + task * 13) % 23)
                .collect();
            let table: u64 = sizes.iter().sum();
            let max = 1 + round % table;
            let budget = Budget::new(Some(max));
            let used = Arc::new(std::sync::atomic::AtomicU64::new(0));
            runtime.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for mut left in sizes {
                    let budget = budget.clone();
                    let used = used.clone();
                    tasks.spawn(async move {
                        while let Some(reservation) = budget.take(5).await {
                            let got = u64::from(reservation.items()).min(left);
                            left -= got;
                            used.fetch_add(got, std::sync::atomic::Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            reservation.settle(got);
                            if left == 0 {
                                break; // the segment is done
                            }
                        }
                    });
                }
                while tasks.join_next().await.is_some() {}
            });
            let used = used.load(std::sync::atomic::Ordering::SeqCst);
            assert_eq!(
                used,
                max.min(table),
                "round {round}: max {max}, table {table}"
            );
        }
    }
}
