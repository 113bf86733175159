//! How the hub's writers (chat messages, inbound messages) take what waits for them into
//! one transaction: everything queued, and on SQLite, while busy, a moment more.

use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::mpsc;

use crate::store::Backend;

/// SQLite, while busy (the last batch ended less than [`GATHER_WHEN_BUSY`] ago) with
/// several senders (the last batch held more than one): a batch of fewer than
/// [`GATHER_UNDER`] waits [`GATHER_FOR`] for more before it is stored. A lone sender is
/// never held: its next message comes only after this one's ack, so waiting gathers
/// nothing and only slows it (`fanout`, one connection sending to a room of 1,000: 450
/// messages/s at most, against over 1,000 without the wait). Each
/// commit appends every page it touched to the write-ahead log, and a batch of two or
/// three messages touches nearly as many pages as one of eight. Inbound at 2,000
/// messages/s: the log grew by 70 MB/s and was started over every two seconds; gathered,
/// batches held about 7 messages instead of 2.4 and `inbound` p99 went from 43–148 ms to
/// 17–32 ms. Chat sends at 5,000/s into rooms with a history (larger indexes, about five
/// pages a message): the writer was busy 80% of the time with batches of 4. PostgreSQL's
/// writers do not wait: a commit there costs a round trip, not a rewrite of shared pages.
const GATHER_UNDER: usize = 8;
/// See [`GATHER_UNDER`].
const GATHER_WHEN_BUSY: Duration = Duration::from_millis(5);
/// See [`GATHER_UNDER`].
const GATHER_FOR: Duration = Duration::from_millis(1);

/// Fills batches for one writer.
pub(crate) struct Batcher {
    gather: bool,
    max: usize,
    last_end: Instant,
    /// How many the last batch held.
    last_len: usize,
}

impl Batcher {
    /// Batches of at most `max`; gathered on SQLite.
    pub(crate) fn new(backend: Backend, max: usize) -> Self {
        Self {
            gather: backend == Backend::Sqlite,
            max,
            last_end: Instant::now() - Duration::from_secs(1),
            last_len: 0,
        }
    }

    /// Waits for the next item, then takes what else is waiting into `batch` (empty on
    /// entry); `false` when the channel is closed and drained.
    pub(crate) async fn fill<T>(&mut self, rx: &mut mpsc::Receiver<T>, batch: &mut Vec<T>) -> bool {
        let Some(first) = rx.recv().await else {
            return false;
        };
        batch.push(first);
        self.take_waiting(rx, batch);
        if self.gather
            && self.last_len > 1
            && batch.len() < GATHER_UNDER
            && self.last_end.elapsed() < GATHER_WHEN_BUSY
        {
            tokio::time::sleep(GATHER_FOR).await;
            self.take_waiting(rx, batch);
        }
        self.last_len = batch.len();
        true
    }

    /// The batch taken last is stored: the writer is busy until now.
    pub(crate) fn stored(&mut self) {
        self.last_end = Instant::now();
    }

    fn take_waiting<T>(&self, rx: &mut mpsc::Receiver<T>, batch: &mut Vec<T>) {
        while batch.len() < self.max {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_busy_sqlite_writer_waits_a_moment_for_more_and_postgres_does_not() {
        for (backend, expected) in [(Backend::Sqlite, 3), (Backend::Postgres, 2)] {
            let (tx, mut rx) = mpsc::channel(16);
            let mut batcher = Batcher::new(backend, 4);
            let mut batch = Vec::new();
            // Idle: the first batch is taken at once, whatever the backend (what comes
            // after it waits for the next).
            tx.send(0).await.unwrap();
            let late = tx.clone();
            tokio::spawn(async move {
                late.send(9).await.unwrap();
            });
            assert!(batcher.fill(&mut rx, &mut batch).await);
            assert_eq!(batch, [0], "{backend:?}");
            batch.clear();
            assert!(batcher.fill(&mut rx, &mut batch).await);
            assert_eq!(batch, [9], "{backend:?}");
            batch.clear();
            // Two senders at once.
            tx.send(10).await.unwrap();
            tx.send(11).await.unwrap();
            assert!(batcher.fill(&mut rx, &mut batch).await);
            assert_eq!(batch, [10, 11], "{backend:?}");
            batcher.stored();
            batch.clear();
            // Busy (a batch of several just ended): one more arrives while the SQLite
            // writer waits.
            tx.send(1).await.unwrap();
            tx.send(2).await.unwrap();
            let late = tx.clone();
            // Runs once the writer waits (SQLite), or too late (PostgreSQL, which does not).
            tokio::spawn(async move {
                late.send(3).await.unwrap();
            });
            assert!(batcher.fill(&mut rx, &mut batch).await);
            assert_eq!(batch.len(), expected, "{backend:?}: {batch:?}");
            batch.clear();
            while rx.try_recv().is_ok() {}
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_sender_is_not_held() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut batcher = Batcher::new(Backend::Sqlite, 4);
        let mut batch = Vec::new();
        // One sender, each message after the last one's ack: batches of one, back to back.
        for i in 0..3 {
            tx.send(i).await.unwrap();
            let late = tx.clone();
            // Would be taken along if the writer waited.
            let other = tokio::spawn(async move {
                late.send(100 + i).await.unwrap();
            });
            assert!(batcher.fill(&mut rx, &mut batch).await);
            assert_eq!(batch, [i], "batch {i} was held for more");
            batcher.stored();
            batch.clear();
            other.await.unwrap();
            assert_eq!(rx.try_recv().unwrap(), 100 + i);
        }
    }

    #[tokio::test]
    async fn a_batch_holds_at_most_max_and_a_closed_channel_ends() {
        let (tx, mut rx) = mpsc::channel(16);
        for i in 0..10 {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        let mut batcher = Batcher::new(Backend::Postgres, 4);
        let mut sizes = Vec::new();
        let mut batch = Vec::new();
        while batcher.fill(&mut rx, &mut batch).await {
            sizes.push(batch.len());
            batch.clear();
        }
        assert_eq!(sizes, [4, 4, 2]);
    }
}
