//! Misbehaving UDFs, each for a test that the host contains it: the query
//! that calls one fails with the function's name and the reason, and the
//! engine and other queries keep running.

use std::hint::black_box;

/// Never returns (an epoch deadline must interrupt it).
#[eddy_udf::scalar]
pub fn spin(x: i64) -> i64 {
    let mut n = x;
    loop {
        n = black_box(n.wrapping_mul(31).wrapping_add(7));
        if black_box(n) == i64::MIN && black_box(false) {
            return n;
        }
    }
}

/// Allocates until memory runs out (the memory cap must stop it).
#[eddy_udf::scalar]
pub fn bomb(x: i64) -> i64 {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![black_box(x as u8); 1 << 20]);
        if black_box(hoard.len()) == usize::MAX {
            return hoard.len() as i64;
        }
    }
}

/// Panics (a trap: `unreachable` under panic = "abort").
#[eddy_udf::scalar]
pub fn boom(x: i64) -> i64 {
    if black_box(x) != black_box(x).wrapping_add(1) {
        panic!("boom");
    }
    x
}

/// Asks for one allocation larger than any memory cap.
#[eddy_udf::scalar]
pub fn huge(x: i64) -> i64 {
    let mut v: Vec<u8> = Vec::with_capacity(black_box(1 << 30));
    v.push(x as u8);
    black_box(&v);
    v.capacity() as i64 + x
}

/// Behaves: doubles its argument (the module is otherwise valid).
#[eddy_udf::scalar]
pub fn double_it(x: i64) -> i64 {
    x * 2
}
