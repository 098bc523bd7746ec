//! The checker: is the state a reopen found one that whole transactions give, applied in commit order, and does it
//! hold everything the killed child acknowledged and the previous reopen found? Pure: the caller reads the state.
//!
//! - Lost: a ledger entry that the child acknowledged (key, writer and sequence number), or that the previous reopen
//!   found (the whole entry), is missing or different.
//! - Half-applied: the balances do not add up to the initial total, or differ from the initial balances with every
//!   ledger entry applied, or the `writers` table disagrees with the last ledger entry of some writer.
//! - Not a prefix: the ledger keys are not `1..=n`, or some writer's sequence numbers, in ledger order, are not
//!   `1..=m`: a later commit survived without an earlier one.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use crate::bank::{Transfer, ACCOUNTS, INITIAL_BALANCE};

/// Every table of the bank, read at one state.
#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    pub(crate) balances: BTreeMap<u32, i64>,
    pub(crate) writers: BTreeMap<u32, u64>,
    /// Sorted by key.
    pub(crate) ledger: Vec<(u64, Transfer)>,
}

/// A commit the child acknowledged: its `ack <key> <writer> <seq>` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ack {
    pub(crate) key: u64,
    pub(crate) writer: u32,
    pub(crate) seq: u64,
}

/// What the checker found in one reopened state.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    /// Ledger keys acknowledged by the last child, or found by the previous reopen, that are missing or changed.
    pub(crate) lost: Vec<u64>,
    /// Ledger entries the last child committed without acknowledging them: its commits in flight at the kill.
    pub(crate) unacknowledged: u64,
    /// Why the state is not one that whole transactions give, if it is not.
    pub(crate) half_applied: Option<String>,
    /// Why the ledger is not a prefix of the commit order, if it is not.
    pub(crate) not_a_prefix: Option<String>,
}

impl Verdict {
    /// Everything wrong, in one message; `None` if nothing is.
    pub(crate) fn problems(&self) -> Option<String> {
        join([
            (!self.lost.is_empty()).then(|| format!("lost ledger keys {:?}", self.lost)),
            self.half_applied.as_ref().map(|why| format!("half-applied: {why}")),
            self.not_a_prefix.as_ref().map(|why| format!("not a prefix: {why}")),
        ])
    }
}

/// The counts over every kill of a run.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) kills: u64,
    /// Acknowledged commits, each checked by the reopen after the kill that followed it.
    pub(crate) acked: u64,
    pub(crate) lost: u64,
    /// Reopens that found a half-applied state.
    pub(crate) half_applied: u64,
    /// Reopens whose ledger was not a prefix of the commit order.
    pub(crate) not_a_prefix: u64,
    pub(crate) unacknowledged: u64,
}

impl Totals {
    /// Counts what one reopen found, with the acknowledgements of the child killed before it.
    pub(crate) fn add(&mut self, acked: &[Ack], verdict: &Verdict) {
        self.acked += acked.len() as u64;
        self.lost += verdict.lost.len() as u64;
        self.half_applied += u64::from(verdict.half_applied.is_some());
        self.not_a_prefix += u64::from(verdict.not_a_prefix.is_some());
        self.unacknowledged += verdict.unacknowledged;
    }
}

/// The last line of a run.
impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kills: {}, acknowledged commits checked: {}, lost: {}, half-applied: {}",
            self.kills, self.acked, self.lost, self.half_applied
        )
    }
}

/// Checks `state` against `acked` (sorted by key) and `earlier`, the ledger the previous reopen found.
pub(crate) fn check(state: &State, acked: &[Ack], earlier: &[(u64, Transfer)]) -> Verdict {
    let ledger = &state.ledger;
    let mut lost = missing(earlier, |(key, _)| *key, ledger, |entry| *entry);
    lost.extend(missing(acked, |ack| ack.key, ledger, |(key, t)| Ack { key: *key, writer: t.writer, seq: t.seq }));
    lost.sort_unstable();
    lost.dedup();

    let newest_earlier = earlier.last().map_or(0, |(key, _)| *key);
    let acked_keys: HashSet<u64> = acked.iter().map(|ack| ack.key).collect();
    let unacknowledged = ledger.iter().filter(|(key, _)| *key > newest_earlier && !acked_keys.contains(key)).count();

    let (last_seqs, gap) = writer_sequences(ledger);
    let key_gap = ledger
        .iter()
        .zip(1u64..)
        .find(|((key, _), expected)| key != expected)
        .map(|((key, _), expected)| format!("ledger key {key} where {expected} was expected"));
    let half_applied = [balances_differ(&state.balances, ledger), writers_differ(&state.writers, &last_seqs)];
    Verdict {
        lost,
        unacknowledged: unacknowledged as u64,
        half_applied: join(half_applied),
        not_a_prefix: join([key_gap, gap]),
    }
}

/// The reasons there are, joined; `None` if there are none.
fn join<const N: usize>(reasons: [Option<String>; N]) -> Option<String> {
    let reasons: Vec<String> = reasons.into_iter().flatten().collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// The keys of `wanted` (sorted by key) that `ledger` (sorted) lacks, or holds otherwise than `wanted` says:
/// `project` turns a ledger entry into the form of `wanted`.
fn missing<W: PartialEq>(
    wanted: &[W],
    key_of: impl Fn(&W) -> u64,
    ledger: &[(u64, Transfer)],
    project: impl Fn(&(u64, Transfer)) -> W,
) -> Vec<u64> {
    let mut rest = ledger.iter().peekable();
    let mut lost = Vec::new();
    for w in wanted {
        let key = key_of(w);
        while rest.next_if(|(k, _)| *k < key).is_some() {}
        if rest.peek().map(|entry| project(entry)).as_ref() != Some(w) {
            lost.push(key);
        }
    }
    lost
}

/// The `seq` of each writer's last ledger entry, and the first place where a writer's sequence skips or repeats.
fn writer_sequences(ledger: &[(u64, Transfer)]) -> (BTreeMap<u32, u64>, Option<String>) {
    let mut last = BTreeMap::new();
    let mut gap = None;
    for (key, t) in ledger {
        let seq = last.entry(t.writer).or_insert(0);
        if t.seq != *seq + 1 && gap.is_none() {
            gap = Some(format!(
                "ledger key {key} is writer {}'s commit {} where {} was expected",
                t.writer,
                t.seq,
                *seq + 1
            ));
        }
        *seq = t.seq;
    }
    (last, gap)
}

/// Why the `writers` table is not the `seq` of each writer's last ledger entry, if it is not.
fn writers_differ(writers: &BTreeMap<u32, u64>, last_seqs: &BTreeMap<u32, u64>) -> Option<String> {
    let ids: BTreeSet<u32> = writers.keys().chain(last_seqs.keys()).copied().collect();
    let wrong: Vec<String> = ids
        .into_iter()
        .filter_map(|w| {
            let (table, ledger) = (writers.get(&w).copied().unwrap_or(0), last_seqs.get(&w).copied().unwrap_or(0));
            (table != ledger)
                .then(|| format!("writer {w} is at {table} in the writers table but at {ledger} in the ledger"))
        })
        .collect();
    (!wrong.is_empty()).then(|| wrong.join(", "))
}

/// Why the balances are not the initial ones with every ledger entry applied, if they are not.
fn balances_differ(balances: &BTreeMap<u32, i64>, ledger: &[(u64, Transfer)]) -> Option<String> {
    if balances.is_empty() {
        // Killed before the accounts were created: then there can be no transfer either.
        return (!ledger.is_empty()).then(|| format!("no accounts, but {} ledger entries", ledger.len()));
    }
    let total: i64 = balances.values().sum();
    if total != i64::from(ACCOUNTS) * INITIAL_BALANCE {
        return Some(format!("the balances add up to {total}: {balances:?}"));
    }
    let mut replayed: BTreeMap<u32, i64> = (0..ACCOUNTS).map(|a| (a, INITIAL_BALANCE)).collect();
    for (key, t) in ledger {
        if !(replayed.contains_key(&t.from) && replayed.contains_key(&t.to)) {
            return Some(format!("ledger entry {key} names an unknown account: {t:?}"));
        }
        *replayed.entry(t.from).or_default() -= t.amount;
        *replayed.entry(t.to).or_default() += t.amount;
    }
    (replayed != *balances).then(|| {
        format!("the balances are {balances:?}, but replaying the {} ledger entries gives {replayed:?}", ledger.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three writers' transfers between accounts 0..3, committed in this order as ledger keys 1, 2, ...
    const COMMITS: [(u32, u32, i64, u32); 5] =
        [(0, 1, 10, 0), (1, 2, 20, 1), (2, 0, 30, 0), (0, 2, 40, 2), (2, 1, 50, 1)];

    /// The state whole transactions give after the first `n` commits, and their acks.
    fn committed(n: usize) -> (State, Vec<Ack>) {
        let mut state = State { balances: (0..ACCOUNTS).map(|a| (a, INITIAL_BALANCE)).collect(), ..State::default() };
        let mut acks = Vec::new();
        for (key, &(from, to, amount, writer)) in (1u64..).zip(&COMMITS[..n]) {
            let seq = state.writers.get(&writer).copied().unwrap_or(0) + 1;
            *state.balances.get_mut(&from).unwrap() -= amount;
            *state.balances.get_mut(&to).unwrap() += amount;
            state.writers.insert(writer, seq);
            state.ledger.push((key, Transfer { from, to, amount, writer, seq }));
            acks.push(Ack { key, writer, seq });
        }
        (state, acks)
    }

    #[test]
    fn a_state_of_whole_transactions_passes() {
        let (state, acks) = committed(5);
        let (earlier, _) = committed(2);
        // The child acknowledged commits 3 and 4; commit 5 was in flight at the kill.
        let verdict = check(&state, &acks[2..4], &earlier.ledger);
        assert_eq!(verdict.problems(), None);
        assert_eq!(verdict.unacknowledged, 1);
    }

    #[test]
    fn counts_a_lost_commit_and_a_half_applied_transfer() {
        let (_, acks) = committed(5);
        // Commit 5, acknowledged, is gone; commit 4 kept its credit, ledger entry and sequence number, not its debit.
        let (mut state, _) = committed(4);
        *state.balances.get_mut(&0).unwrap() += 40;

        let verdict = check(&state, &acks, &[]);
        assert_eq!(verdict.lost, vec![5]);
        let half_applied = verdict.half_applied.as_deref().unwrap_or_default();
        assert!(half_applied.contains("the balances add up to 10040"), "{verdict:?}");
        assert_eq!(verdict.not_a_prefix, None);
        let mut totals = Totals { kills: 1, ..Totals::default() };
        totals.add(&acks, &verdict);
        assert_eq!(totals.to_string(), "kills: 1, acknowledged commits checked: 5, lost: 1, half-applied: 1");
    }

    #[test]
    fn reports_a_changed_entry_as_lost() {
        let (mut state, acks) = committed(3);
        let (earlier, _) = committed(3);
        // The amounts still add up, but the entry is not the one the previous reopen found.
        state.ledger[1].1.amount += 1;
        *state.balances.get_mut(&1).unwrap() -= 1;
        *state.balances.get_mut(&2).unwrap() += 1;
        assert_eq!(check(&state, &acks[..2], &earlier.ledger).lost, vec![2]);
    }

    #[test]
    fn reports_a_writer_table_behind_its_ledger_as_half_applied() {
        let (mut state, acks) = committed(5);
        state.writers.insert(1, 1);
        let verdict = check(&state, &acks, &[]);
        assert_eq!(
            verdict.half_applied.as_deref(),
            Some("writer 1 is at 1 in the writers table but at 2 in the ledger")
        );
        assert!(verdict.lost.is_empty());
    }

    #[test]
    fn reports_a_later_commit_kept_without_an_earlier_one() {
        let (mut state, _) = committed(5);
        // Commit 3 (writer 0's second) is gone with all its effects, but commits 4 and 5 survived.
        let gone = state.ledger.remove(2).1;
        *state.balances.get_mut(&gone.from).unwrap() += gone.amount;
        *state.balances.get_mut(&gone.to).unwrap() -= gone.amount;
        state.writers.insert(0, 1);
        let verdict = check(&state, &[], &[]);
        assert_eq!(verdict.half_applied, None);
        assert_eq!(verdict.not_a_prefix.as_deref(), Some("ledger key 4 where 3 was expected"));
    }

    #[test]
    fn reports_a_gap_in_a_writers_sequence() {
        let (mut state, _) = committed(5);
        state.ledger[2].1.seq = 3;
        state.writers.insert(0, 3);
        let verdict = check(&state, &[], &[]);
        assert_eq!(verdict.half_applied, None);
        assert_eq!(verdict.not_a_prefix.as_deref(), Some("ledger key 3 is writer 0's commit 3 where 2 was expected"));
    }
}
