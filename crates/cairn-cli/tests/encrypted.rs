//! The `cairn` binary on an encrypted database: the key from `--key-file` or `CAIRN_PASSPHRASE`, clear errors
//! without it or with a wrong one, and `rekey`.

use std::path::Path;
use std::process::{Command, Output};

use cairn::EncryptionKey;

cairn::schema! {
    Vault {
        secrets: <String, String>,
        counts: ordered<u64, u32>,
    }
}

/// Runs `cairn ARGS...` with the environment `env` (and nothing of the test's own Cairn variables).
fn cairn(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.args(args).env_remove("CAIRN_PASSPHRASE").env_remove("CAIRN_KEY_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the cairn binary runs")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn write(dir: &Path) {
    let db = Vault::builder().encryption(EncryptionKey::passphrase("open sesame")).open(dir).unwrap();
    db.transaction(|tx| {
        tx.secrets.insert("launch".into(), "the code is 0000".into())?;
        tx.counts.insert(7, 49)
    })
    .unwrap();
    db.db().compact().unwrap();
    db.secrets.insert("door".into(), "under the mat".into()).unwrap();
}

#[test]
fn an_encrypted_database_opens_with_its_key_only_and_rekeys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    write(&dir);
    let d = dir.to_str().unwrap();
    let pass = [("CAIRN_PASSPHRASE", "open sesame")];

    let none = cairn(&["info", d], &[]);
    let (_, err) = text(&none);
    assert_eq!(none.status.code(), Some(1), "{err}");
    assert!(err.contains("is encrypted") && err.contains("CAIRN_PASSPHRASE"), "{err}");

    let wrong = cairn(&["dump", d], &[("CAIRN_PASSPHRASE", "open barley")]);
    let (_, err) = text(&wrong);
    assert_eq!(wrong.status.code(), Some(1), "{err}");
    assert!(err.contains("the key does not open"), "{err}");

    let info = cairn(&["info", d], &pass);
    let (out, err) = text(&info);
    assert!(info.status.success(), "{err}");
    assert!(out.contains("XChaCha20-Poly1305"), "{out}");
    let dump = cairn(&["dump", d, "secrets"], &pass);
    let (out, err) = text(&dump);
    assert!(dump.status.success(), "{err}");
    assert!(out.contains("the code is 0000") && out.contains("under the mat"), "{out}");
    assert!(cairn(&["verify", d], &pass).status.success());

    // Backups carry the key file: the copy opens with the same passphrase.
    let copy = tmp.path().join("copy");
    let backup = cairn(&["backup", d, copy.to_str().unwrap()], &pass);
    assert!(backup.status.success(), "{}", text(&backup).1);
    assert!(copy.join("KEYS").exists());
    let (out, _) = text(&cairn(&["get", copy.to_str().unwrap(), "counts", "7"], &pass));
    assert_eq!(out.trim(), "49");

    // Rekey to a 32-byte key in hex; the passphrase no longer opens it, the key file does.
    let key_file = tmp.path().join("new.key");
    std::fs::write(&key_file, format!("{}\n", "ab".repeat(32))).unwrap();
    let k = key_file.to_str().unwrap();
    let rekey = cairn(&["rekey", d, "--new-key-file", k], &pass);
    assert!(rekey.status.success(), "{}", text(&rekey).1);
    let old = cairn(&["dump", d], &pass);
    assert!(text(&old).1.contains("the key does not open"), "{}", text(&old).1);
    let dump = cairn(&["dump", d, "secrets", "--key-file", k], &[]);
    let (out, err) = text(&dump);
    assert!(dump.status.success(), "{err}");
    assert!(out.contains("under the mat"), "{out}");
    let db = Vault::builder().encryption(EncryptionKey::from_bytes([0xab; 32])).open(&dir).unwrap();
    assert_eq!(db.secrets.get("launch").as_deref(), Some("the code is 0000"));

    // A key file that is no key is refused, saying what a key file holds.
    std::fs::write(&key_file, "short").unwrap();
    let bad = cairn(&["info", d, "--key-file", k], &[]);
    assert!(text(&bad).1.contains("32 raw bytes or 64 hex digits"), "{}", text(&bad).1);
}
