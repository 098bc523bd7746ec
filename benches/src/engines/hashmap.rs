//! The in-memory limit: a `std::collections::HashMap` with foldhash holding the same records. It is not durable, so
//! it answers only the read, scan, memory and "reopen" (built from the records in memory) steps.

use std::collections::HashMap;
use std::time::Instant;

use foldhash::fast::FixedState;

use super::{check, read_steps, scan_step};
use crate::workload::{proc_status_kib, secs, time, touch, Key, Out, Recs, Res, Workload};

type Map = HashMap<Key, Vec<u8>, FixedState>;

fn build(recs: Recs<'_>) -> Map {
    let mut m = Map::with_capacity_and_hasher(recs.len(), FixedState::default());
    for (k, v) in recs.iter() {
        m.insert(*k, v.to_vec());
    }
    m
}

fn read(m: &Map, keys: &[Key]) -> Res<u64> {
    let mut acc = 0;
    for k in keys {
        acc += touch(m.get(k).ok_or("hashmap: a written key is missing")?);
    }
    Ok(std::hint::black_box(acc))
}

pub fn run(w: &Workload) -> Res<()> {
    let out = Out { engine: "hashmap" };
    const MEM: &str = "in-memory limit: not durable";
    let base_rss = proc_status_kib("VmRSS");
    let (mut m, d) = time(|| build(w.load()));
    out.null("bulk_load", "s", MEM);
    out.emit("build_load", Some(secs(d)), "s", "in memory");
    let hwm = proc_status_kib("VmHWM");
    out.val("peak_rss_after_load", hwm as f64 / 1024.0, "MiB (VmHWM, whole process)");
    out.val("peak_rss_engine", hwm.saturating_sub(base_rss) as f64 / 1024.0, "MiB (VmHWM - RSS with the workload)");
    let rss = proc_status_kib("VmRSS").saturating_sub(base_rss);
    out.val("rss_after_load_engine", rss as f64 / 1024.0, "MiB (VmRSS - RSS with the workload)");
    for r in [w.single(), w.threaded(), w.batches()] {
        for (k, v) in r.iter() {
            m.insert(*k, v.to_vec());
        }
    }

    read_steps(&out, w, |keys| read(&m, keys))?;
    scan_step(&out, w, || Ok(std::hint::black_box(m.values().fold((0, 0), |(n, acc), v| (n + 1, acc + touch(v))))))?;

    // "Reopen": build the same map from the records in memory, until the first read succeeds.
    let (_, d) = time(|| drop(m));
    out.val("close", secs(d), "s");
    let t = Instant::now();
    let m = build(w.written());
    if m.get(&w.load().keys[0]).map(|v| std::hint::black_box(touch(v))).is_none() {
        return Err("hashmap: the first key is missing".into());
    }
    out.emit("reopen", Some(secs(t.elapsed())), "s", "HashMap built from the records in memory");
    let (r, d) = time(|| read(&m, &w.read_keys));
    check("reopen_reads", r?, w.read_expect)?;
    out.val("reopen_reads", secs(d) * 1e6 / w.read_keys.len() as f64, "s per 1M reads");
    for op in ["commit_p50", "commit_p99", "commits_1thread", "commits_8threads", "batch_100x1000", "remove_half"] {
        out.null(op, "", MEM);
    }
    out.null("size_after_load", "MiB", MEM);
    out.null("commit_max_during_compaction", "ms", MEM);
    Ok(())
}
