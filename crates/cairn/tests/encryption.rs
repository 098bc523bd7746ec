//! Compression and encryption at rest (issue 8), through the public API and the files on disk:
//! - an encrypted database holds no plaintext: known values, keys, table and field names and the key itself are
//!   looked for in every byte of every file;
//! - a wrong or missing key is refused having read nothing but the key file, and loses nothing;
//! - a changed byte of a unit (with its checksum fixed up, so only the cipher can tell), two frames swapped, a
//!   segment from another database, or a plain segment put into an encrypted database is an authentication error
//!   naming file and offset, never wrong data; damage the checksum sees stays `Error::Corrupt`;
//! - key rotation: afterwards only the new key opens the database, with all of its data;
//! - compression: text values take less than 0.6 x the plain size, and plain and compressed units mix across
//!   opens.
//!
//! Rotation under injected storage failures is in `cairn-testkit/tests/rotation_faults.rs`; the reliability suite's
//! damage, fault and power-loss tests run on sealed databases in `cairn-testkit/tests/`.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cairn::{Compression, EncryptionKey, Error, FsStorage, Storage, StorageFile};
use serde::{Deserialize, Serialize};

/// A value with a field name that must not appear on disk either (schema descriptions name fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    patient_diagnosis: String,
    visits: u32,
}

cairn::schema! {
    /// Table names that must not appear on disk in an encrypted database.
    Vault {
        confidential_ledger: ordered<u32, Record>,
        whisper_names: <String, u64>,
    }
}

const RAW: [u8; 32] = *b"0123456789abcdef0123456789ABCDEF";
const OTHER: [u8; 32] = *b"fedcba9876543210FEDCBA9876543210";
const PASSPHRASE: &str = "correct horse battery staple";

fn raw() -> EncryptionKey {
    EncryptionKey::from_bytes(RAW)
}

fn open(dir: &Path, key: Option<EncryptionKey>, compression: Compression) -> cairn::Result<Vault> {
    let builder = Vault::builder().compression(compression).compress_log_above(0).compact_after(None);
    match key {
        Some(key) => builder.encryption(key).open(dir),
        None => builder.open(dir),
    }
}

fn marker(i: u32) -> String {
    format!("SECRET-DIAGNOSIS-{i:04}")
}

fn name(i: u32) -> String {
    format!("hidden-person-{i:04}")
}

/// Writes records `from..to`: each a commit of its own, text long enough that compression is worth it.
fn write(db: &Vault, from: u32, to: u32) {
    for i in from..to {
        let text = format!("{} {}", marker(i), "the quick brown fox jumps over the lazy dog ".repeat(4));
        db.transaction(|tx| {
            tx.confidential_ledger.insert(i, Record { patient_diagnosis: text.clone(), visits: i })?;
            tx.whisper_names.insert(name(i), u64::from(i))
        })
        .unwrap();
    }
}

type State = (BTreeMap<u32, Record>, BTreeMap<String, u64>);

fn state(db: &Vault) -> State {
    (db.confidential_ledger.iter().collect(), db.whisper_names.iter().collect())
}

/// A database with a snapshot and a log after it: records 0..30 folded, 30..50 in the log.
fn build(dir: &Path, key: Option<EncryptionKey>, compression: Compression) -> State {
    let db = open(dir, key, compression).unwrap();
    write(&db, 0, 30);
    db.compact().unwrap();
    write(&db, 30, 50);
    let s = state(&db);
    assert_eq!(s.0.len(), 50);
    s
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

fn with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    files(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == ext)).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every needle found in some file of `dir`, with the file.
fn plaintext_found(dir: &Path, needles: &[Vec<u8>]) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for file in files(dir) {
        let bytes = fs::read(&file).unwrap();
        for n in needles {
            if contains(&bytes, n) {
                found.push((file.clone(), String::from_utf8_lossy(n).into_owned()));
            }
        }
    }
    found
}

fn needles() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = ["SECRET-DIAGNOSIS", "hidden-person", "confidential_ledger", "whisper_names"]
        .iter()
        .chain(&["patient_diagnosis", "quick brown fox", PASSPHRASE])
        .map(|s| s.as_bytes().to_vec())
        .collect();
    v.push(RAW.to_vec());
    v.push(RAW[..16].to_vec());
    v
}

/// Makes the key of a case, for each of its opens.
type KeyMaker = fn() -> EncryptionKey;

#[test]
fn an_encrypted_database_holds_no_plaintext_in_any_file() {
    // The scan itself finds what a plain database holds, so an empty result below means something.
    let plain = tempfile::tempdir().unwrap();
    build(plain.path(), None, Compression::None);
    let in_plain: Vec<String> = plaintext_found(plain.path(), &needles()).into_iter().map(|(_, n)| n).collect();
    for n in ["SECRET-DIAGNOSIS", "hidden-person", "confidential_ledger", "whisper_names", "patient_diagnosis"] {
        assert!(in_plain.iter().any(|f| f == n), "the plain database shows {n:?}: {in_plain:?}");
    }

    let cases: [(&str, KeyMaker, Compression); 4] = [
        ("raw key", raw, Compression::None),
        ("raw key + lz4", raw, Compression::Lz4),
        ("passphrase", || EncryptionKey::passphrase(PASSPHRASE), Compression::None),
        ("passphrase + zstd", || EncryptionKey::passphrase(PASSPHRASE), Compression::Zstd { level: 3 }),
    ];
    for (what, key, compression) in cases {
        let dir = tempfile::tempdir().unwrap();
        let expected = build(dir.path(), Some(key()), compression);
        let names: Vec<String> =
            files(dir.path()).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert!(names.iter().any(|n| n.ends_with(".snap")), "{what}: a snapshot was written: {names:?}");
        assert!(names.iter().any(|n| n.ends_with(".log")), "{what}: a segment was written: {names:?}");
        assert!(names.iter().any(|n| n == "KEYS"), "{what}: a key file was written: {names:?}");
        let found = plaintext_found(dir.path(), &needles());
        assert!(found.is_empty(), "{what}: plaintext on disk: {found:?}");
        // And it all reads back with the key, however it was compressed.
        let db = open(dir.path(), Some(key()), Compression::None).unwrap();
        assert_eq!(state(&db), expected, "{what}");
    }
}

/// The paths a storage was asked to read or write, in order.
#[derive(Debug, Default, Clone)]
struct Recording {
    fs: FsStorage,
    touched: Arc<Mutex<Vec<(&'static str, PathBuf)>>>,
}

impl Recording {
    fn note(&self, what: &'static str, path: &Path) {
        self.touched.lock().unwrap().push((what, path.to_path_buf()));
    }

    fn touched(&self) -> Vec<(&'static str, PathBuf)> {
        self.touched.lock().unwrap().clone()
    }
}

impl Storage for Recording {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.fs.create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.note("list", dir);
        self.fs.list(dir)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.note("open_read", path);
        self.fs.open_read(path)
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.note("open_write", path);
        self.fs.open_write(path)
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.note("read_all", path);
        self.fs.read_all(path)
    }

    fn read_all_now(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.note("read_all_now", path);
        self.fs.read_all_now(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.note("rename", from);
        self.fs.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.note("remove", path);
        self.fs.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.fs.sync_dir(dir)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn Debug + Send + Sync>> {
        self.fs.lock(path)
    }
}

fn open_recorded(dir: &Path, key: Option<EncryptionKey>) -> (cairn::Result<Vault>, Vec<(&'static str, PathBuf)>) {
    let storage = Recording::default();
    let builder = Vault::builder().storage(Arc::new(storage.clone()));
    let opened = match key {
        Some(key) => builder.encryption(key).open(dir),
        None => builder.open(dir),
    };
    (opened, storage.touched())
}

/// An open (which the caller waits for) reads its snapshot and segments with `read_all_now`, which may use more than
/// one thread; a compaction (which runs beside the application) reads the old snapshot and the closed segments with
/// `read_all`, one thread.
#[test]
fn an_open_reads_files_with_read_all_now_and_a_compaction_with_read_all() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Recording::default();
    let opening = || Vault::builder().storage(Arc::new(storage.clone())).compact_after(None).open(dir.path()).unwrap();
    let reads = |from: usize, ext: &str| -> Vec<&'static str> {
        let touched = storage.touched();
        touched[from..]
            .iter()
            .filter(|(what, p)| what.starts_with("read_all") && p.extension().is_some_and(|e| e == ext))
            .map(|(what, _)| *what)
            .collect()
    };
    let db = opening();
    for round in 0..2u64 {
        for i in 0..100 {
            db.whisper_names.insert(format!("name-{round}-{i}"), i).unwrap();
        }
        let from = storage.touched().len();
        db.compact().unwrap();
        assert_eq!(reads(from, "log"), ["read_all"], "round {round}: the closed segment, read by the compaction");
        let snap = if round == 0 { vec![] } else { vec!["read_all"] };
        assert_eq!(reads(from, "snap"), snap, "round {round}: the base snapshot, read by the compaction");
    }
    drop(db);
    let from = storage.touched().len();
    let db = opening();
    assert_eq!(reads(from, "snap"), ["read_all_now"], "the open reads its snapshot with read_all_now");
    assert!(reads(from, "log").iter().all(|w| *w == "read_all_now"), "and its segments too");
    assert_eq!(db.whisper_names.get(&"name-1-99".to_string()), Some(99));
}

#[test]
fn a_wrong_or_missing_key_is_refused_having_read_only_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let expected = build(dir.path(), Some(raw()), Compression::Lz4);
    let before: Vec<(PathBuf, Vec<u8>)> =
        files(dir.path()).into_iter().map(|p| (p.clone(), fs::read(p).unwrap())).collect();
    let keys = dir.path().join("KEYS");

    let refusals: [(&str, Option<EncryptionKey>); 3] = [
        ("another raw key", Some(EncryptionKey::from_bytes(OTHER))),
        ("a passphrase", Some(EncryptionKey::passphrase(PASSPHRASE))),
        ("no key", None),
    ];
    for (what, key) in refusals {
        let (opened, touched) = open_recorded(dir.path(), key);
        match opened {
            Err(Error::WrongKey { path, expects }) if what != "no key" => {
                assert_eq!(path, dir.path(), "{what}");
                assert!(expects.contains("32-byte key"), "{what}: {expects}");
            }
            Err(Error::KeyRequired { path, file }) if what == "no key" => {
                assert_eq!(path, dir.path());
                assert_eq!(file, keys);
            }
            other => panic!("{what}: expected a key error, got {:?}", other.err()),
        }
        // Nothing but the key file was opened, read or written; the directory's names (in the clear anyway) may
        // have been listed.
        let data: Vec<_> = touched.iter().filter(|(call, p)| !(*call == "list" && p == dir.path())).collect();
        assert!(data.iter().all(|(_, p)| p == &keys), "{what}: touched {touched:?}");
        assert!(data.iter().all(|(call, _)| *call == "read_all" || *call == "open_read"), "{what}: {touched:?}");
        assert!(!touched.is_empty(), "{what}: the key file was read");
    }
    // The refusals changed nothing: every file is as it was, and the right key opens it all.
    let after: Vec<(PathBuf, Vec<u8>)> =
        files(dir.path()).into_iter().map(|p| (p.clone(), fs::read(p).unwrap())).collect();
    assert_eq!(after, before);
    let db = open(dir.path(), Some(raw()), Compression::None).unwrap();
    assert_eq!(state(&db), expected);
    drop(db);

    // A passphrase database names what it expects; a key for a plain database is refused as such.
    let pass = tempfile::tempdir().unwrap();
    drop(open(pass.path(), Some(EncryptionKey::passphrase(PASSPHRASE)), Compression::None).unwrap());
    match open(pass.path(), Some(raw()), Compression::None) {
        Err(Error::WrongKey { expects, .. }) => assert!(expects.contains("passphrase"), "{expects}"),
        other => panic!("expected WrongKey, got {:?}", other.err()),
    }
    match open(pass.path(), Some(EncryptionKey::passphrase("Correct horse battery staple")), Compression::None) {
        Err(Error::WrongKey { .. }) => {}
        other => panic!("expected WrongKey, got {:?}", other.err()),
    }
    let plain = tempfile::tempdir().unwrap();
    build(plain.path(), None, Compression::None);
    match open(plain.path(), Some(raw()), Compression::None) {
        Err(Error::NotEncrypted { path }) => assert_eq!(path, plain.path()),
        other => panic!("expected NotEncrypted, got {:?}", other.err()),
    }
    assert!(!plain.path().join("KEYS").exists(), "a refused key wrote no key file");
}

/// A frame of a log segment, from its header (docs/format.md, "Frames").
#[derive(Debug, Clone, Copy)]
struct Frame {
    offset: usize,
    len: usize,
    kind: u32,
}

fn frames(bytes: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut pos = 32;
    while pos + 32 <= bytes.len() && bytes[pos..pos + 32].iter().any(|&b| b != 0) {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
        out.push(Frame { offset: pos, len, kind });
        pos += (32 + len).div_ceil(8) * 8;
    }
    out
}

/// Rewrites the frame's payload checksum and header checksum after its bytes were changed.
fn fix_frame(bytes: &mut [u8], f: Frame) {
    let payload = crc32c::crc32c(&bytes[f.offset + 32..f.offset + 32 + f.len]);
    bytes[f.offset + 24..f.offset + 28].copy_from_slice(&payload.to_le_bytes());
    let header = crc32c::crc32c(&bytes[f.offset..f.offset + 28]);
    bytes[f.offset + 28..f.offset + 32].copy_from_slice(&header.to_le_bytes());
}

/// A block of a snapshot (docs/format.md, "Snapshots"): its offset, payload length and kind.
fn blocks(bytes: &[u8]) -> Vec<(usize, usize, u32)> {
    let mut out = Vec::new();
    let mut pos = 32;
    while pos + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
        out.push((pos, len, kind));
        pos += 12 + len;
    }
    out
}

fn fix_block(bytes: &mut [u8], offset: usize, len: usize) {
    let crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[offset..offset + 8]), &bytes[offset + 12..offset + 12 + len]);
    bytes[offset + 8..offset + 12].copy_from_slice(&crc.to_le_bytes());
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for f in files(from) {
        fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
}

/// A copy of the database in `base` with file `name` replaced by `bytes`.
fn copy_with(base: &Path, name: &std::ffi::OsStr, bytes: &[u8]) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    copy_dir(base, work.path());
    fs::write(work.path().join(name), bytes).unwrap();
    work
}

fn expect_authentication(result: cairn::Result<Vault>, file: &Path, offset: usize, what: &str) {
    match result {
        Err(Error::Authentication { file: f, offset: o, .. }) => {
            assert_eq!(f, file, "{what}: the damaged file is named");
            assert_eq!(o, offset as u64, "{what}: the damaged unit's offset is named");
            let message = Error::Authentication { file: f, offset: o, what: "x" }.to_string();
            assert!(message.contains(&file.display().to_string()) && message.contains(&offset.to_string()));
        }
        other => panic!("{what}: expected an authentication error, got {:?}", other.err()),
    }
}

#[test]
fn changed_swapped_or_foreign_units_fail_authentication_naming_file_and_offset() {
    let base = tempfile::tempdir().unwrap();
    build(base.path(), Some(raw()), Compression::None);
    let log = with_ext(base.path(), "log").pop().unwrap();
    let snap = with_ext(base.path(), "snap").pop().unwrap();
    let log_name = log.file_name().unwrap().to_owned();
    let snap_name = snap.file_name().unwrap().to_owned();
    let log_bytes = fs::read(&log).unwrap();
    let fs_ = frames(&log_bytes);
    assert_eq!(fs_.len(), 20, "one frame per commit after the snapshot");
    assert!(fs_.iter().all(|f| f.kind & (1 << 16) != 0), "every frame is encrypted: {fs_:?}");

    // A changed byte in the middle of a frame's payload, its checksums fixed up so only the cipher can tell.
    for (nth, at) in [(3usize, 0usize), (10, 30), (19, 5)] {
        let mut bytes = log_bytes.clone();
        let f = fs_[nth];
        bytes[f.offset + 32 + at.min(f.len - 1)] ^= 0x40;
        fix_frame(&mut bytes, f);
        let work = copy_with(base.path(), &log_name, &bytes);
        let what = format!("frame {nth}, payload byte {at}");
        expect_authentication(
            open(work.path(), Some(raw()), Compression::None),
            &work.path().join(&log_name),
            f.offset,
            &what,
        );
        // Without the fix-up the checksum finds it first: damage before later frames is corruption.
        if nth < fs_.len() - 1 {
            let mut bytes = log_bytes.clone();
            bytes[f.offset + 32 + at.min(f.len - 1)] ^= 0x40;
            fs::write(work.path().join(&log_name), &bytes).unwrap();
            match open(work.path(), Some(raw()), Compression::None) {
                Err(Error::Corrupt(c)) => assert_eq!(c.file, work.path().join(&log_name), "{what}"),
                other => panic!("{what}: expected Corrupt, got {:?}", other.err()),
            }
        }
    }

    // A frame's header changed (its `durable` field), checksums fixed: the header is bound too.
    {
        let mut bytes = log_bytes.clone();
        let f = fs_[7];
        bytes[f.offset + 16] ^= 0x01;
        fix_frame(&mut bytes, f);
        let work = copy_with(base.path(), &log_name, &bytes);
        expect_authentication(
            open(work.path(), Some(raw()), Compression::None),
            &work.path().join(&log_name),
            f.offset,
            "durable",
        );
    }

    // Two frames of equal length swapped, each with its own checksums: the first of them fails.
    {
        let (a, b) = (fs_[4], fs_[9]);
        assert_eq!(a.len, b.len, "equal-size commits make equal-size frames");
        let mut bytes = log_bytes.clone();
        let pa = log_bytes[a.offset + 24..a.offset + 32 + a.len].to_vec();
        let pb = log_bytes[b.offset + 24..b.offset + 32 + b.len].to_vec();
        bytes[a.offset + 24..a.offset + 32 + a.len].copy_from_slice(&pb);
        bytes[b.offset + 24..b.offset + 32 + b.len].copy_from_slice(&pa);
        fix_frame(&mut bytes, a);
        fix_frame(&mut bytes, b);
        let work = copy_with(base.path(), &log_name, &bytes);
        expect_authentication(
            open(work.path(), Some(raw()), Compression::None),
            &work.path().join(&log_name),
            a.offset,
            "swap",
        );
    }

    // A snapshot block changed, its checksum fixed; and two snapshot blocks of one kind swapped.
    let snap_bytes = fs::read(&snap).unwrap();
    let bs = blocks(&snap_bytes);
    assert!(bs.len() >= 3, "catalog, records, end: {bs:?}");
    for &(offset, len, _) in &bs {
        let mut bytes = snap_bytes.clone();
        bytes[offset + 12 + len / 2] ^= 0x08;
        fix_block(&mut bytes, offset, len);
        let work = copy_with(base.path(), &snap_name, &bytes);
        expect_authentication(
            open(work.path(), Some(raw()), Compression::None),
            &work.path().join(&snap_name),
            offset,
            &format!("snapshot block at {offset}"),
        );
    }

    // A segment of another database under the same key, with the same commits, in place of this one's.
    {
        let other = tempfile::tempdir().unwrap();
        build(other.path(), Some(raw()), Compression::None);
        let work = tempfile::tempdir().unwrap();
        copy_dir(base.path(), work.path());
        fs::copy(other.path().join(&log_name), work.path().join(&log_name)).unwrap();
        expect_authentication(
            open(work.path(), Some(raw()), Compression::None),
            &work.path().join(&log_name),
            fs_[0].offset,
            "foreign segment",
        );
    }

    // A plain database's segment, with the same commits, in an encrypted one: a unit in the clear is refused.
    {
        let plain = tempfile::tempdir().unwrap();
        build(plain.path(), None, Compression::None);
        let work = tempfile::tempdir().unwrap();
        copy_dir(base.path(), work.path());
        fs::copy(plain.path().join(&log_name), work.path().join(&log_name)).unwrap();
        expect_authentication(
            open(work.path(), Some(raw()), Compression::None),
            &work.path().join(&log_name),
            32,
            "plain segment",
        );
        // And the other way: an encrypted segment in a plain database needs a key.
        let work = tempfile::tempdir().unwrap();
        copy_dir(plain.path(), work.path());
        fs::copy(base.path().join(&log_name), work.path().join(&log_name)).unwrap();
        match open(work.path(), None, Compression::None) {
            Err(Error::KeyRequired { file, .. }) => assert_eq!(file, work.path().join(&log_name)),
            other => panic!("expected KeyRequired, got {:?}", other.err()),
        }
    }
}

#[test]
fn rotation_leaves_a_database_only_the_new_key_opens_with_all_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let built = build(dir.path(), Some(raw()), Compression::Lz4);
    let old_files: Vec<Vec<u8>> = with_ext(dir.path(), "log").iter().map(|p| fs::read(p).unwrap()).collect();
    let expected = {
        let db = open(dir.path(), Some(raw()), Compression::Lz4).unwrap();
        db.rotate_key(EncryptionKey::passphrase(PASSPHRASE)).unwrap();
        assert_eq!(state(&db), built, "rotation changes no data");
        // It goes on working under the new key, and rotates again, to a raw key.
        write(&db, 50, 55);
        db.rotate_key(EncryptionKey::from_bytes(OTHER)).unwrap();
        write(&db, 55, 60);
        let s = state(&db);
        assert_eq!(s.0.len(), 60);
        s
    };
    let keys = fs::read(dir.path().join("KEYS")).unwrap();
    assert_eq!(u32::from_le_bytes(keys[32..36].try_into().unwrap()), 1, "one slot left in the key file");
    for (what, key) in [("the first key", raw()), ("the passphrase", EncryptionKey::passphrase(PASSPHRASE))] {
        match open(dir.path(), Some(key), Compression::None) {
            Err(Error::WrongKey { .. }) => {}
            other => panic!("{what} is refused after rotation, got {:?}", other.err()),
        }
    }
    let db = open(dir.path(), Some(EncryptionKey::from_bytes(OTHER)), Compression::None).unwrap();
    assert_eq!(state(&db), expected);
    assert_eq!(expected.0.len(), 60);
    // No segment of before the rotation survives (they were folded and removed).
    for f in with_ext(dir.path(), "log") {
        assert!(!old_files.contains(&fs::read(&f).unwrap()), "{} is a segment of before the rotation", f.display());
    }
    assert!(plaintext_found(dir.path(), &needles()).is_empty());
    drop(db);

    let plain = tempfile::tempdir().unwrap();
    let db = open(plain.path(), None, Compression::None).unwrap();
    match db.rotate_key(raw()) {
        Err(Error::NotEncrypted { path }) => assert_eq!(path, plain.path()),
        other => panic!("expected NotEncrypted, got {other:?}"),
    }
}

#[test]
fn rotation_keeps_commits_made_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), Some(raw()), Compression::None);
    let db = Arc::new(open(dir.path(), Some(raw()), Compression::None).unwrap());
    let writer = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || write(&db, 100, 400))
    };
    for key in [OTHER, RAW, OTHER] {
        db.rotate_key(EncryptionKey::from_bytes(key)).unwrap();
    }
    writer.join().unwrap();
    let expected = state(&db);
    assert_eq!(expected.0.len(), 350);
    drop(db);
    let db = open(dir.path(), Some(EncryptionKey::from_bytes(OTHER)), Compression::None).unwrap();
    assert_eq!(state(&db), expected);
    drop(db);
    assert!(matches!(open(dir.path(), Some(raw()), Compression::None), Err(Error::WrongKey { .. })));
}

/// Bytes of every snapshot in `dir`.
fn snapshot_bytes(dir: &Path) -> u64 {
    files(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .map(|p| fs::metadata(p).unwrap().len())
        .sum()
}

#[test]
fn compression_shrinks_text_and_units_of_every_kind_mix() {
    // Text values, folded into a snapshot: the snapshot with compression is well under the plain one.
    let sizes: Vec<(Compression, u64)> = [Compression::None, Compression::Lz4, Compression::Zstd { level: 3 }]
        .into_iter()
        .map(|c| {
            let dir = tempfile::tempdir().unwrap();
            let db = open(dir.path(), None, c).unwrap();
            write(&db, 0, 300);
            db.compact().unwrap();
            drop(db);
            (c, snapshot_bytes(dir.path()))
        })
        .collect();
    let plain = sizes[0].1;
    for (c, size) in &sizes[1..] {
        assert!((*size as f64) < 0.6 * plain as f64, "{c:?}: {size} bytes against {plain} plain");
    }

    // One database written under each setting in turn, encrypted or not: each open reads what all the others wrote.
    for key in [None, Some(RAW)] {
        let dir = tempfile::tempdir().unwrap();
        let settings =
            [Compression::None, Compression::Lz4, Compression::Zstd { level: 1 }, Compression::None, Compression::Lz4];
        let mut expected = None;
        for (n, c) in settings.into_iter().enumerate() {
            let db = open(dir.path(), key.map(EncryptionKey::from_bytes), c).unwrap();
            if let Some(e) = &expected {
                assert_eq!(&state(&db), e, "open {n} ({c:?}) reads everything before it");
            }
            let n = n as u32;
            write(&db, n * 20, n * 20 + 20);
            if n % 2 == 1 {
                db.compact().unwrap();
            }
            expected = Some(state(&db));
        }
        let db = open(dir.path(), key.map(EncryptionKey::from_bytes), Compression::None).unwrap();
        assert_eq!(Some(state(&db)), expected);
        assert_eq!(state(&db).0.len(), 100);
        // What was read mixed kinds of unit: the snapshot (written by the fourth open) plain, the log after it lz4.
        let snap = fs::read(with_ext(dir.path(), "snap").pop().unwrap()).unwrap();
        let block_codecs: std::collections::BTreeSet<u32> = blocks(&snap).iter().map(|b| (b.2 >> 8) & 0xf).collect();
        assert_eq!(block_codecs, [0].into(), "{key:?}: snapshot blocks");
        let frame_codecs: std::collections::BTreeSet<u32> = with_ext(dir.path(), "log")
            .iter()
            .flat_map(|p| frames(&fs::read(p).unwrap()).into_iter().map(|f| (f.kind >> 8) & 0xf))
            .collect();
        assert_eq!(frame_codecs, [1].into(), "{key:?}: frames");
    }
}
