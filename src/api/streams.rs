//! Open `/api/events` streams, counted in total and per user: each holds a
//! connection and a broadcast receiver for as long as the client stays.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;

use super::error::ApiError;

pub struct StreamSlots {
    max_total: usize,
    max_per_user: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_user: HashMap<i64, usize>,
}

/// One open stream; its slot frees when this drops (the client went away,
/// its session ended, or the server is stopping).
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    user: i64,
}

impl StreamSlots {
    pub fn new(max_total: usize, max_per_user: usize) -> Arc<StreamSlots> {
        Arc::new(StreamSlots { max_total, max_per_user, open: Mutex::new(Open::default()) })
    }

    /// A slot for `user`, or 429 `too_many_streams` when either cap is full.
    pub fn acquire(self: &Arc<Self>, user: i64) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mine = open.per_user.get(&user).copied().unwrap_or(0);
        let refuse = |message: String| {
            let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_streams", message);
            e.retry_after = Some(5);
            Err(e)
        };
        if mine >= self.max_per_user {
            return refuse(format!("this user already has {mine} open event streams (the limit); close one first"));
        }
        if open.total >= self.max_total {
            return refuse(format!("the server has {} open event streams (the limit); try again later", open.total));
        }
        open.total += 1;
        *open.per_user.entry(user).or_default() += 1;
        Ok(StreamSlot { slots: self.clone(), user })
    }

    /// (total, this user's) open streams.
    pub fn open(&self, user: i64) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        (open.total, open.per_user.get(&user).copied().unwrap_or(0))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total -= 1;
        if let Some(n) = open.per_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.per_user.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_user_and_in_total() {
        let slots = StreamSlots::new(3, 2);
        let a1 = slots.acquire(1).unwrap();
        let _a2 = slots.acquire(1).unwrap();
        let e = slots.acquire(1).err().unwrap();
        assert_eq!((e.status, e.code), (StatusCode::TOO_MANY_REQUESTS, "too_many_streams"));
        let _b1 = slots.acquire(2).unwrap();
        assert_eq!(slots.acquire(2).err().unwrap().code, "too_many_streams");
        drop(a1);
        assert_eq!(slots.open(1), (2, 1));
        let _b2 = slots.acquire(2).unwrap();
        assert_eq!(slots.open(2), (3, 2));
    }

    #[test]
    fn slots_free_on_drop() {
        let slots = StreamSlots::new(1, 1);
        for _ in 0..3 {
            let s = slots.acquire(7).unwrap();
            drop(s);
        }
        assert_eq!(slots.open(7), (0, 0));
        assert!(slots.open.lock().unwrap().per_user.is_empty());
    }
}
