//! A deadline kept by one long-lived timer, for limits applied to every request on a
//! connection (the time to send a request's headers, the time an upstream has to answer).
//! `tokio::time::timeout` per request registers a timer and removes it again each time; here
//! the timer is armed once, a deadline that moves later costs nothing, and when the timer
//! fires before the current deadline it is re-armed for the rest. So a connection that serves
//! requests faster than the limit touches the runtime's timer once per limit's length, not
//! once per request.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::time::{Instant, Sleep};

/// The deadline passed before the work finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// One deadline at a time, moved as each request begins.
pub struct Deadline {
    timer: Pin<Box<Sleep>>,
    at: Instant,
}

impl Deadline {
    /// A deadline at `at`; its timer is registered when first waited on.
    pub fn new(at: Instant) -> Self {
        Self {
            timer: Box::pin(tokio::time::sleep_until(at)),
            at,
        }
    }

    /// Moves the deadline to `at`. Later than the timer: nothing to do until the timer fires.
    /// Earlier: the timer is re-armed.
    pub fn set(&mut self, at: Instant) {
        self.at = at;
        if at < self.timer.deadline() {
            self.timer.as_mut().reset(at);
        }
    }

    /// Ready once the current deadline has passed.
    pub fn poll_passed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            ready!(self.timer.as_mut().poll(cx));
            if self.timer.deadline() >= self.at {
                return Poll::Ready(());
            }
            // Fired for an earlier deadline: wait for the rest.
            let at = self.at;
            self.timer.as_mut().reset(at);
        }
    }

    /// Runs `work` until it finishes or the deadline `at` passes.
    pub async fn run<F: Future>(&mut self, at: Instant, work: F) -> Result<F::Output, Elapsed> {
        self.set(at);
        let mut work = std::pin::pin!(work);
        poll_fn(|cx| {
            if let Poll::Ready(out) = work.as_mut().poll(cx) {
                return Poll::Ready(Ok(out));
            }
            self.poll_passed(cx).map(|()| Err(Elapsed))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn work_that_ends_in_time_is_answered_and_work_past_the_deadline_is_not() {
        let mut d = Deadline::new(Instant::now() + Duration::from_secs(10));
        let at = Instant::now() + Duration::from_secs(10);
        assert_eq!(d.run(at, async { 7 }).await, Ok(7));
        let at = Instant::now() + Duration::from_secs(1);
        let slow = tokio::time::sleep(Duration::from_secs(5));
        let started = Instant::now();
        assert_eq!(d.run(at, slow).await, Err(Elapsed));
        // The earlier deadline re-armed the timer: it ended at 1 s, not 10.
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_moved_later_is_waited_for_in_full() {
        let start = Instant::now();
        let mut d = Deadline::new(start + Duration::from_secs(2));
        // The timer first fires at 2 s, finds the deadline at 3 s and waits on.
        d.set(start + Duration::from_secs(3));
        let work = tokio::time::sleep(Duration::from_millis(2500));
        assert_eq!(d.run(start + Duration::from_secs(3), work).await, Ok(()));
        let never = std::future::pending::<()>();
        assert_eq!(
            d.run(start + Duration::from_secs(4), never).await,
            Err(Elapsed)
        );
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }
}
