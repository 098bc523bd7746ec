//! The commands that maintain a whole database: `compact`, `backup`, `restore`, `salvage`. They open it through `cairn::raw`
//! (its lock taken, so not while a program has it open) and run the engine's own compaction and backup.

use std::io::Write;
use std::path::Path;

use crate::{fail, progress, Failure};

/// `cairn compact`: folds the log into a new snapshot and drops the log before it.
pub(crate) fn compact(out: &mut impl Write, dir: &Path) -> Result<(), Failure> {
    let db = crate::key::raw(dir)?;
    let spinner = progress::spinner("compacting", false);
    db.compact()?;
    spinner.finish_and_clear();
    drop(db);
    let after = crate::key::view(dir)?;
    let bytes: u64 = after.files.iter().map(|(_, n)| n).sum();
    writeln!(
        out,
        "compacted {}: snapshot at seq {}, {} files, {bytes} bytes",
        dir.display(),
        after.snapshot_seq.unwrap_or(0),
        after.files.len()
    )?;
    Ok(())
}

/// `cairn backup`: a consistent copy in `target`, which must not exist or be empty; also while programs have the
/// database open in shared mode (the copy then joins them).
pub(crate) fn backup(out: &mut impl Write, dir: &Path, target: &Path) -> Result<(), Failure> {
    let spinner = progress::spinner("backing up", false);
    let b = cairn::raw::RawDb::backup(dir, target, crate::key::given())?;
    spinner.finish_and_clear();
    writeln!(
        out,
        "backed up {} to {}: seq {}, {} files, {} bytes",
        dir.display(),
        b.path.display(),
        b.seq,
        b.files,
        b.bytes
    )?;
    Ok(())
}

/// `cairn restore`: the backup (an ordinary database directory) copied into `target`, all or nothing. The target
/// must not exist or be an empty directory; the copy is written beside it and renamed into place once durable (the
/// engine's backup of the backup).
pub(crate) fn restore(out: &mut impl Write, backup: &Path, target: &Path) -> Result<(), Failure> {
    if let Ok(mut entries) = std::fs::read_dir(target) {
        if entries.next().is_some() {
            return Err(fail(format!(
                "cannot restore into {}: it is not empty; restore into a new directory, or move it away first",
                target.display()
            )));
        }
    }
    // A damaged backup is refused before anything is written.
    crate::key::view(backup)?;
    let db = crate::key::raw(backup)?;
    let b = db.backup_to(target)?;
    writeln!(out, "restored {} into {}: seq {}, {} files", backup.display(), b.path.display(), b.seq, b.files)?;
    Ok(())
}

/// `cairn salvage`: everything readable of `dir` into a new database at `target`, and what was lost. Exit code 4 when
/// anything was (the new database is written all the same).
pub(crate) fn salvage(out: &mut impl Write, dir: &Path, target: &Path) -> Result<(), Failure> {
    let spinner = progress::spinner("salvaging", false);
    let s = cairn::raw::salvage_keyed(dir, target, crate::key::given())?;
    spinner.finish_and_clear();
    for loss in &s.lost {
        match &loss.file {
            Some(file) => writeln!(out, "lost: {} at offset {}: {}", file.display(), loss.offset, loss.what)?,
            None => writeln!(out, "lost: {}", loss.what)?,
        }
    }
    writeln!(out, "salvaged {} records up to seq {} into {}", s.records, s.seq, s.out.display())?;
    if !s.lost.is_empty() {
        return Err(Failure {
            message: format!(
                "{} damaged places in {} (listed above); the new database at {} holds everything else",
                s.lost.len(),
                dir.display(),
                s.out.display()
            ),
            code: 4,
        });
    }
    Ok(())
}

/// `cairn rekey`: re-encrypts `dir` under `new` (the engine's key rotation).
pub(crate) fn rekey(out: &mut impl Write, dir: &Path, new: cairn::EncryptionKey) -> Result<(), Failure> {
    let db = crate::key::raw(dir)?;
    let spinner = progress::spinner("re-encrypting", false);
    db.rotate_key(new)?;
    spinner.finish_and_clear();
    writeln!(out, "re-encrypted {} under the new key: the old key no longer opens it", dir.display())?;
    Ok(())
}
