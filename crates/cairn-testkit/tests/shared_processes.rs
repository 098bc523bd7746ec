//! Shared mode with real processes: several `shared_counter` children (see `src/bin/shared_counter.rs`) increment
//! shared counters in read-modify-write transactions on one database, with compactions in between, and one is
//! SIGKILLed again and again while it writes. The totals must come out exact: no update lost across processes, no
//! acknowledged commit lost to a kill, no auto id handed out twice, no transaction half applied.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

cairn::schema! {
    Counters {
        counters: <u32, u64>,
        notes: auto<(u32, u64)>,
    }
}

fn spawn(dir: &Path, id: u32, ops: u64, compact_every: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shared_counter"))
        .arg(dir)
        .args([id.to_string(), ops.to_string(), compact_every.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start shared_counter")
}

/// The acknowledgements `(n, note id)` a child printed, in order.
fn acks(line: &str, id: u32) -> Option<(u64, u64)> {
    let mut words = line.split(' ');
    let ok = words.next() == Some("ack") && words.next()?.parse::<u32>().ok()? == id;
    let n = words.next()?.parse().ok()?;
    let note = words.next()?.parse().ok()?;
    ok.then_some((n, note))
}

fn wait_ok(mut child: Child, id: u32) -> Vec<(u64, u64)> {
    let out = BufReader::new(child.stdout.take().expect("piped"));
    let acked: Vec<(u64, u64)> = out.lines().map_while(Result::ok).filter_map(|l| acks(&l, id)).collect();
    let status = child.wait().expect("wait for shared_counter");
    assert!(status.success(), "shared_counter {id} ended with {status}");
    acked
}

/// Checks the database against what each child acknowledged: `acked[id]` = (n, note) pairs, `finished[id]` whether
/// it ran to the end (a killed one may have committed one more transaction than it acknowledged).
fn check(dir: &Path, acked: &BTreeMap<u32, Vec<(u64, u64)>>, killed: &[u32]) -> u64 {
    let db = Counters::open(dir).unwrap();
    let mut sum = 0;
    for (&id, acks) in acked {
        let own = db.counters.get(&(id + 1)).unwrap_or(0);
        let count = acks.len() as u64;
        if killed.contains(&id) {
            assert!(
                own == count || own == count + 1,
                "child {id}: {count} commits acknowledged, {own} in the database"
            );
        } else {
            assert_eq!(own, count, "child {id}: {count} commits acknowledged, {own} in the database");
        }
        for (i, &(n, note)) in acks.iter().enumerate() {
            assert_eq!(n, i as u64, "child {id} acknowledged out of order");
            let stored = db.notes.get(&cairn::Id::from_raw(note));
            assert_eq!(stored, Some((id, n)), "note {note} of child {id}'s commit {n} (an id handed out twice?)");
        }
        sum += own;
    }
    // Every transaction is whole: the total, the shared counters and the notes agree with the own counters.
    assert_eq!(db.counters.get(&0).unwrap_or(0), sum, "total");
    assert_eq!((100..104).map(|k| db.counters.get(&k).unwrap_or(0)).sum::<u64>(), sum, "shared counters");
    assert_eq!(db.notes.len() as u64, sum, "notes");
    sum
}

#[test]
fn four_processes_incrementing_shared_counters_with_compactions_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    const OPS: u64 = 150;
    let children: Vec<(u32, Child)> =
        (0..4).map(|id| (id, spawn(dir.path(), id, OPS, if id < 2 { 40 } else { 0 }))).collect();
    let acked: BTreeMap<u32, Vec<(u64, u64)>> = children.into_iter().map(|(id, c)| (id, wait_ok(c, id))).collect();
    assert!(acked.values().all(|a| a.len() as u64 == OPS));
    assert_eq!(check(dir.path(), &acked, &[]), 4 * OPS);
}

#[test]
fn a_process_killed_while_writing_loses_nothing_acknowledged_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    const OPS: u64 = 300;
    const KILLS: u32 = 12;
    let survivors: Vec<(u32, Child)> = (0..2).map(|id| (id, spawn(dir.path(), id, OPS, 50))).collect();
    let mut acked = BTreeMap::new();
    let mut killed = Vec::new();
    for round in 0..KILLS {
        let id = 10 + round;
        let mut victim = spawn(dir.path(), id, u64::MAX, 25);
        let out = BufReader::new(victim.stdout.take().expect("piped"));
        // Let it acknowledge a few commits (a different number each round), then kill it mid-stream: it commits
        // without pause, so the kill finds it inside a transaction, an append or a compaction as often as not.
        let wanted = 5 + 7 * round as usize;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut lines = out.lines();
        let mut mine = Vec::new();
        while mine.len() < wanted && Instant::now() < deadline {
            match lines.next() {
                Some(Ok(line)) => mine.extend(acks(&line, id)),
                _ => break,
            }
        }
        victim.kill().expect("SIGKILL the victim");
        victim.wait().expect("reap the victim");
        // Whatever it printed before it died was acknowledged too.
        mine.extend(lines.map_while(Result::ok).filter_map(|l| acks(&l, id)));
        assert!(mine.len() >= wanted, "victim {id} acknowledged only {} commits", mine.len());
        acked.insert(id, mine);
        killed.push(id);
    }
    for (id, child) in survivors {
        let mine = wait_ok(child, id);
        assert_eq!(mine.len() as u64, OPS, "survivor {id} did not finish");
        acked.insert(id, mine);
    }
    // A process opening after the kills continues with the others' database.
    let last = spawn(dir.path(), 50, 20, 10);
    acked.insert(50, wait_ok(last, 50));
    check(dir.path(), &acked, &killed);
}
