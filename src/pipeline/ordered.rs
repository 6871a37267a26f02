//! Work on every core, results in the order of the input: the compose step of a run spread
//! over threads while the recipients file is read on one and the letters come out in row
//! order, as if one thread had done it all.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::ops::ControlFlow;
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, PoisonError};
use std::thread;

/// Items go to a thread, and come back, this many at a time: each hand-over can wake a
/// thread, a system call and a context switch, which one at a time cost as much as a fifth
/// of composing a short letter.
const CHUNK: usize = 4;

/// Items handed out ahead of the one the sink waits for, per thread: two chunks, so that a
/// thread has the next while the sink takes the last; few enough that memory stays flat.
const AHEAD_PER_THREAD: usize = 2 * CHUNK;

/// What a worker reports.
enum Done<R> {
    /// The results of the chunk whose first item is number `.0`.
    Results(usize, Vec<R>),
    /// The worker panicked; its item will never come.
    Panicked,
}

/// Tells the calling thread when a worker dies by panic, so that it stops waiting for the
/// item that worker held (the scope then re-raises the panic).
struct PanicNotice<R>(Sender<Done<R>>);

impl<R> Drop for PanicNotice<R> {
    fn drop(&mut self) {
        if thread::panicking() {
            let _ = self.0.send(Done::Panicked);
        }
    }
}

/// Gives `sink` `work(item)` for every item of `items`, in the order of `items`, with the
/// work done on `threads` threads. `items` is read, and `sink` called, on the calling thread
/// only. At most `threads × AHEAD_PER_THREAD` items are taken ahead of the sink. Ends at the
/// first error or `Break` of the sink (no item is read after that); a panic in `work` is
/// re-raised here once every thread has ended.
pub(super) fn map_in_order<T, R, E>(
    threads: NonZeroUsize,
    items: impl Iterator<Item = T>,
    work: impl Fn(T) -> R + Sync,
    mut sink: impl FnMut(R) -> Result<ControlFlow<()>, E>,
) -> Result<(), E>
where
    T: Send,
    R: Send,
{
    let threads = threads.get();
    if threads == 1 {
        for item in items {
            if sink(work(item))?.is_break() {
                break;
            }
        }
        return Ok(());
    }
    let window = threads * AHEAD_PER_THREAD;
    // Both channels are unbounded, but never hold more than `window` items: this thread
    // hands out a new item only when one has left through the sink. Nothing can block a
    // worker, so nothing can deadlock.
    let (to_work, jobs) = mpsc::channel::<(usize, Vec<T>)>();
    let jobs = Mutex::new(jobs);
    thread::scope(|scope| {
        // Moved in, so that any return drops it and the workers waiting for an item end.
        let to_work = to_work;
        let (report, results) = mpsc::channel::<Done<R>>();
        for _ in 0..threads {
            let notice = PanicNotice(report.clone());
            let (jobs, work) = (&jobs, &work);
            scope.spawn(move || {
                loop {
                    // The lock is held only while waiting for an item, not while working.
                    let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok((first, chunk)) = job else { break };
                    let results = chunk.into_iter().map(work).collect();
                    if notice.0.send(Done::Results(first, results)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(report);

        let mut items = items.fuse();
        let (mut handed_out, mut next) = (0usize, 0usize);
        let mut waiting: BTreeMap<usize, R> = BTreeMap::new();
        loop {
            while handed_out - next + CHUNK <= window {
                let chunk: Vec<T> = items.by_ref().take(CHUNK).collect();
                if chunk.is_empty() {
                    break;
                }
                let taken = chunk.len();
                // Fails only when every worker has gone, which a panic notice reports below.
                let _ = to_work.send((handed_out, chunk));
                handed_out += taken;
            }
            if handed_out == next {
                return Ok(());
            }
            match results.recv() {
                Ok(Done::Results(first, results)) => {
                    waiting.extend((first..).zip(results));
                }
                // Returning drops the channels, so the other workers end; the scope then
                // re-raises the panic.
                Ok(Done::Panicked) | Err(_) => return Ok(()),
            }
            while let Some(result) = waiting.remove(&next) {
                next += 1;
                if sink(result)?.is_break() {
                    return Ok(());
                }
            }
        }
    })
}

/// The threads a run composes on: one per core.
pub fn default_threads() -> NonZeroUsize {
    thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threads(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    /// Later items finish first (they sleep less), and still come out in order.
    #[test]
    fn results_come_in_the_order_of_the_items() {
        for n in [1, 2, 3, 8] {
            let mut seen = Vec::new();
            let result: Result<(), ()> = map_in_order(
                threads(n),
                0..200u64,
                |i| {
                    thread::sleep(std::time::Duration::from_micros((200 - i) % 7 * 50));
                    i * 2
                },
                |r| {
                    seen.push(r);
                    Ok(ControlFlow::Continue(()))
                },
            );
            assert_eq!(result, Ok(()));
            assert_eq!(
                seen,
                (0..200).map(|i| i * 2).collect::<Vec<_>>(),
                "{n} threads"
            );
        }
    }

    #[test]
    fn an_error_of_the_sink_stops_the_reading() {
        let read = std::cell::Cell::new(0);
        let items = (0..10_000).inspect(|_| read.set(read.get() + 1));
        let result = map_in_order(
            threads(4),
            items,
            |i| i,
            |i| match i {
                10 => Err(format!("item {i}")),
                _ => Ok(ControlFlow::Continue(())),
            },
        );
        assert_eq!(result, Err("item 10".to_owned()));
        assert!(
            read.get() <= 11 + 4 * AHEAD_PER_THREAD,
            "read {}",
            read.get()
        );
    }

    #[test]
    fn a_break_stops_the_reading() {
        let mut seen = Vec::new();
        let result: Result<(), ()> = map_in_order(
            threads(2),
            0..100,
            |i| i,
            |i| {
                seen.push(i);
                Ok(if i == 5 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            },
        );
        assert_eq!(result, Ok(()));
        assert_eq!(seen, vec![0, 1, 2, 3, 4, 5]);
    }

    /// A worker's panic reaches the caller instead of leaving it waiting for that item.
    #[test]
    fn a_panic_in_the_work_is_raised_not_waited_for() {
        let outcome = std::panic::catch_unwind(|| {
            let _: Result<(), ()> = map_in_order(
                threads(3),
                0..1000,
                |i| {
                    assert!(i != 37, "row 37 breaks the work");
                    i
                },
                |_| Ok(ControlFlow::Continue(())),
            );
        });
        assert!(outcome.is_err());
    }
}
