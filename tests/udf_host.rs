//! The WebAssembly UDF host: registration checks, the registry surviving a
//! restart, batch calls with NULLs and strings, and every hostile fixture
//! contained (the calling instance fails with the function and the reason;
//! other instances keep working). The modules are built from
//! examples-udf/ by the test itself.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::Float64Type;
use eddy::types::SqlType;
use eddy::udf::registry::Registry;
use eddy::udf::{AddressSpace, UdfInstance, UdfKind, UdfLimits, UdfModule};

#[path = "support/lib.rs"]
#[allow(dead_code)]
mod support;

fn module(name: &str) -> Arc<UdfModule> {
    let bytes = std::fs::read(support::udf_wasm(name)).expect("module built");
    UdfModule::load(name, &bytes, UdfLimits::default()).expect("module loads")
}

#[test]
fn a_module_describes_its_functions() {
    let geo = module("geo");
    let sigs: Vec<String> = geo.functions.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        sigs,
        [
            "geo_fence(DOUBLE, DOUBLE) -> BOOLEAN",
            "in_region(DOUBLE, DOUBLE) -> BOOLEAN",
            "is_mobile(VARCHAR) -> BOOLEAN",
            "km_from_zurich(DOUBLE, DOUBLE) -> DOUBLE",
            "price_band(BIGINT) -> VARCHAR",
        ]
    );
    assert_eq!(
        geo.function("geo_fence").map(|f| f.kind),
        Some(UdfKind::Filter)
    );
    assert_eq!(
        geo.function("price_band").map(|f| f.nullable.clone()),
        Some(vec![true])
    );
    assert_eq!(geo.sha256.len(), 64);
}

#[test]
fn batches_go_through_in_one_call_with_nulls_and_strings() {
    let geo = module("geo");
    let mut i = UdfInstance::new(&geo).expect("instantiates");
    let lat: ArrayRef = Arc::new(Float64Array::from(vec![
        Some(47.4),
        Some(48.86),
        None,
        Some(47.0),
    ]));
    let lon: ArrayRef = Arc::new(Float64Array::from(vec![
        Some(8.5),
        Some(2.35),
        Some(8.5),
        None,
    ]));
    let inside = i
        .call(
            "geo_fence",
            &[lat.clone(), lon.clone()],
            4,
            SqlType::Boolean,
        )
        .expect("call");
    // NULL in a non-Option argument: the row does not pass
    assert_eq!(
        inside.as_boolean(),
        &BooleanArray::from(vec![true, false, false, false])
    );
    let km = i
        .call("km_from_zurich", &[lat, lon], 4, SqlType::Double)
        .expect("call");
    let km = km.as_primitive::<Float64Type>();
    assert!(km.value(0) < 10.0 && km.value(1) > 400.0);
    assert!(km.is_null(2) && km.is_null(3), "NULL in, NULL out");
    let cents: ArrayRef = Arc::new(Int64Array::from(vec![
        Some(5),
        None,
        Some(500_000),
        Some(-1),
    ]));
    let band = i
        .call("price_band", &[cents], 4, SqlType::Varchar)
        .expect("call");
    assert_eq!(
        band.as_string::<i32>(),
        &StringArray::from(vec![Some("cheap"), None, Some("dear"), None])
    );
    let channels: ArrayRef = Arc::new(StringArray::from(vec![Some("Apple"), Some("Baidu"), None]));
    let sliced = channels.slice(1, 2);
    let mobile = i
        .call("is_mobile", &[sliced], 2, SqlType::Boolean)
        .expect("call");
    assert_eq!(mobile.as_boolean(), &BooleanArray::from(vec![false, false]));
    // a large batch, reusing the instance (the argument region grows)
    let big: ArrayRef = Arc::new(Int64Array::from_iter_values(0..100_000));
    let band = i
        .call("price_band", &[big], 100_000, SqlType::Varchar)
        .expect("call");
    assert_eq!(band.len(), 100_000);
    assert_eq!(band.as_string::<i32>().value(99_999), "fair");
}

#[test]
fn registration_rejects_bad_modules_with_clear_messages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut r = Registry::open(dir.path(), UdfLimits::default()).expect("opens");
    let err = r
        .register(&support::udf_wasm("wrong_abi"), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ABI version 2") && err.contains("version 1"),
        "{err}"
    );
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").expect("write");
    let err = r.register(&junk, None).unwrap_err().to_string();
    assert!(err.contains("not a valid WebAssembly module"), "{err}");
    let mut small = Registry::open(
        dir.path(),
        UdfLimits {
            module_bytes: 1000,
            ..UdfLimits::default()
        },
    )
    .expect("opens");
    let err = small
        .register(&support::udf_wasm("geo"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than the limit of 1000 bytes"), "{err}");
    r.register(&support::udf_wasm("geo"), None)
        .expect("registers");
    let err = r
        .register(&support::udf_wasm("geo"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("already registered"), "{err}");
    let err = r
        .register(&support::udf_wasm("geo"), Some("geo2"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("already defined by module 'geo'"), "{err}");
    let missing = r.remove("nope").unwrap_err().to_string();
    assert!(missing.contains("registered: geo"), "{missing}");
}

#[test]
fn the_registry_survives_a_restart_and_forgets_removed_modules() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let mut r = Registry::open(dir.path(), UdfLimits::default()).expect("opens");
        let m = r
            .register(&support::udf_wasm("geo"), Some("places"))
            .expect("registers");
        assert!(dir.path().join(format!("udf/{}.wasm", m.sha256)).exists());
    }
    let mut again = Registry::open(dir.path(), UdfLimits::default()).expect("reopens");
    assert_eq!(again.modules().len(), 1);
    let (m, sig) = again
        .function("GEO_FENCE")
        .expect("found case-insensitively");
    assert_eq!((m.name.as_str(), sig.kind), ("places", UdfKind::Filter));
    again.remove("places").expect("removes");
    assert!(
        Registry::open(dir.path(), UdfLimits::default())
            .expect("reopens")
            .modules()
            .is_empty()
    );
}

/// Calls `function` on a fresh instance; returns the error text.
fn failure(hostile: &Arc<UdfModule>, function: &str) -> String {
    let mut i = UdfInstance::new(hostile).expect("instantiates");
    let x: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
    i.call(function, &[x], 3, SqlType::BigInt)
        .expect_err("must fail")
        .to_string()
}

#[test]
fn hostile_functions_fail_their_call_and_nothing_else() {
    let bytes = std::fs::read(support::udf_wasm("hostile")).expect("built");
    let hostile = UdfModule::load("hostile", &bytes, UdfLimits::default()).expect("loads");
    // a short time limit for the endless loop only: on a loaded machine it
    // could interrupt the memory bomb before the cap is reached
    let impatient = UdfModule::load(
        "hostile",
        &bytes,
        UdfLimits {
            call_timeout: Duration::from_millis(300),
            ..UdfLimits::default()
        },
    )
    .expect("loads");
    // a healthy instance of the same module keeps answering on another
    // thread while the hostile calls run
    let healthy = hostile.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let worker = std::thread::spawn(move || {
        let mut i = UdfInstance::new(&healthy).expect("instantiates");
        let mut calls = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let x: ArrayRef = Arc::new(Int64Array::from_iter_values(0..1000));
            let y = i
                .call("double_it", &[x], 1000, SqlType::BigInt)
                .expect("healthy call");
            assert_eq!(
                y.as_primitive::<arrow::datatypes::Int64Type>().value(999),
                1998
            );
            calls += 1;
        }
        calls
    });
    let spin = failure(&impatient, "spin");
    assert!(
        spin.starts_with("UDF spin failed:") && spin.contains("time limit of 300 ms"),
        "{spin}"
    );
    let bomb = failure(&hostile, "bomb");
    assert!(bomb.contains("memory limit of 64 MiB"), "{bomb}");
    let huge = failure(&hostile, "huge");
    assert!(huge.contains("memory limit of 64 MiB"), "{huge}");
    let boom = failure(&hostile, "boom");
    assert!(boom.contains("panicked"), "{boom}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let calls = worker.join().expect("healthy thread");
    assert!(calls > 10, "only {calls} healthy calls meanwhile");
}

/// One owner of instances per worker thread: a thread keeps one instance
/// per module for every caller, drops it after a failure (the next call
/// gets a fresh one), and another thread has its own.
#[test]
fn each_thread_owns_one_instance_per_module_and_drops_a_failed_one() {
    use eddy::udf::runtime;
    let hostile = module("hostile");
    std::thread::spawn(move || {
        let call = |function: &str| {
            runtime::with_instance(&hostile, |i| {
                let x: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
                i.call(function, &[x], 3, SqlType::BigInt)
            })
        };
        assert_eq!(runtime::instances_on_this_thread(), 0);
        let first = runtime::instance(&hostile).expect("instantiates");
        call("double_it").expect("healthy call");
        let same = runtime::instance(&hostile).expect("kept");
        assert!(Arc::ptr_eq(&first, &same), "one instance per module");
        assert_eq!(runtime::instances_on_this_thread(), 1);
        // another thread: its own instance
        let elsewhere = {
            let h = hostile.clone();
            std::thread::spawn(move || {
                let i = runtime::instance(&h).expect("instantiates");
                Arc::as_ptr(&i) as usize
            })
            .join()
            .expect("other thread")
        };
        assert_ne!(elsewhere, Arc::as_ptr(&first) as usize);
        // a failure drops it; the next call works on a fresh one
        let boom = call("boom").expect_err("panics").to_string();
        assert!(boom.contains("panicked"), "{boom}");
        assert_eq!(runtime::instances_on_this_thread(), 0);
        call("double_it").expect("a fresh instance answers");
        let fresh = runtime::instance(&hostile).expect("kept");
        assert!(!Arc::ptr_eq(&first, &fresh));
    })
    .join()
    .expect("test thread");
}

/// The process's virtual size, from /proc (Linux).
fn vm_size_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib << 10)
}

/// Each instance once reserved about 4 GiB of address space whatever its
/// memory limit; with `AddressSpace::Limit` (the default under `ulimit -v`)
/// the limit and a guard region are what it reserves.
#[test]
fn an_instance_reserves_address_space_for_its_limit_only() {
    let bytes = std::fs::read(support::udf_wasm("geo")).expect("module built");
    let limits = UdfLimits {
        memory_bytes: 2 << 20,
        address_space: AddressSpace::Limit,
        ..UdfLimits::default()
    };
    let geo = UdfModule::load("geo", &bytes, limits).expect("module loads");
    let Some(before) = vm_size_bytes() else {
        eprintln!("skipped: no /proc/self/status");
        return;
    };
    let instances: Vec<UdfInstance> = (0..16)
        .map(|_| UdfInstance::new(&geo).expect("instantiates"))
        .collect();
    let grown = vm_size_bytes().expect("VmSize") - before;
    // 16 × (2 MiB + guard regions) is about 1 GiB; wasmtime's default would
    // have been 16 × 4 GiB (the margin is for other tests running meanwhile)
    assert!(
        grown < 8 << 30,
        "16 instances grew the address space by {} MiB",
        grown >> 20
    );
    drop(instances);
}
