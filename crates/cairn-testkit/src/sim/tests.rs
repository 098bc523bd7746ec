use std::path::Path;

use cairn::Storage;

use super::*;

const DIR: &str = "/db";

fn disk() -> SimStorage {
    let sim = SimStorage::new();
    sim.create_dir_all(Path::new(DIR)).unwrap();
    sim
}

fn path(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

fn all_images(sim: &SimStorage) -> CrashImages {
    let images = sim.crash_images(&Sampling { exhaustive_up_to: 100_000, ..Sampling::default() });
    assert!(images.exhaustive);
    images
}

/// A durable file `name` holding `bytes`.
fn durable_file(sim: &SimStorage, name: &str, bytes: &[u8]) -> Box<dyn StorageFile> {
    let f = sim.open_write(&path(name)).unwrap();
    f.write_all_at(bytes, 0).unwrap();
    f.sync_all().unwrap();
    sim.sync_dir(Path::new(DIR)).unwrap();
    f
}

#[test]
fn a_synced_write_survives_every_crash_image() {
    let sim = disk();
    let f = durable_file(&sim, "a", b"durable");
    f.write_all_at(b"xyz", 7).unwrap();
    f.write_all_at(&[7; 1500], 100).unwrap();
    let other = sim.open_write(&path("b")).unwrap();
    other.write_all_at(b"maybe", 0).unwrap();
    let images = all_images(&sim);
    assert!(images.images.len() > 10, "{}", images.images.len());
    for image in &images.images {
        let a = image.file(&path("a")).expect("a durable file with a durable entry is in every image");
        assert_eq!(&a[..7], b"durable");
    }
}

#[test]
fn an_unsynced_write_is_in_some_images_and_not_in_others() {
    let sim = disk();
    let f = durable_file(&sim, "a", b"0123");
    f.write_all_at(b"4567", 4).unwrap();
    let images = all_images(&sim);
    let contents: Vec<&[u8]> = images.images.iter().map(|i| i.file(&path("a")).unwrap()).collect();
    assert!(contents.contains(&&b"01234567"[..]), "{contents:?}");
    assert!(contents.contains(&&b"0123"[..]), "{contents:?}");
    // The middle tear keeps two bytes of the four.
    assert!(contents.contains(&&b"012345"[..]), "{contents:?}");
    assert_eq!(contents.len(), 3);
}

#[test]
fn a_torn_write_keeps_a_prefix_and_the_old_bytes_after_it() {
    let sim = disk();
    let f = durable_file(&sim, "a", &[1; 2048]);
    // From 100 to 1300: sector boundaries at 512 and 1024 inside, the middle at 700.
    f.write_all_at(&[2; 1200], 100).unwrap();
    let images = all_images(&sim);
    let mut kept: Vec<usize> = images
        .images
        .iter()
        .map(|i| {
            let a = i.file(&path("a")).unwrap();
            assert_eq!(a.len(), 2048);
            let n = a[100..].iter().take_while(|&&b| b == 2).count();
            assert!(a[..100].iter().chain(&a[100 + n..]).all(|&b| b == 1), "a tear is a prefix, nothing else changes");
            n
        })
        .collect();
    kept.sort_unstable();
    assert_eq!(kept, vec![0, 412, 600, 924, 1200]);
}

#[test]
fn random_sampling_tears_at_any_byte_and_is_repeatable() {
    let sim = disk();
    let f = durable_file(&sim, "a", b"");
    for i in 0..20u64 {
        f.write_all_at(&[i as u8 + 1; 100], i * 100).unwrap();
    }
    let sampling = Sampling { exhaustive_up_to: 10, samples: 60, seed: 7 };
    let images = sim.crash_images(&sampling);
    assert!(!images.exhaustive);
    assert_eq!(images.pending, 20);
    assert!(images.images.len() > 50, "{}", images.images.len());
    assert_eq!(images.images[0].file(&path("a")).unwrap().len(), 2000, "everything kept comes first");
    assert_eq!(images.images[1].file(&path("a")).unwrap().len(), 0, "then everything dropped");
    let odd_tear = images.images.iter().any(|i| {
        let a = i.file(&path("a")).unwrap();
        (0..20).any(|w| {
            let part = &a[(w * 100).min(a.len())..((w + 1) * 100).min(a.len())];
            let n = part.iter().take_while(|&&b| b == w as u8 + 1).count();
            n > 0 && n < 100 && n != 50
        })
    });
    assert!(odd_tear, "sampling tears at other bytes than the middle");
    assert_eq!(sim.crash_images(&sampling).images, images.images, "same seed, same images");
}

#[test]
fn a_created_file_may_vanish_until_its_directory_is_synced() {
    let sim = disk();
    let f = sim.open_write(&path("new")).unwrap();
    f.write_all_at(b"data", 0).unwrap();
    f.sync_all().unwrap();
    let images = all_images(&sim);
    let present: Vec<bool> = images.images.iter().map(|i| i.file(&path("new")).is_some()).collect();
    assert!(present.contains(&true) && present.contains(&false), "{present:?}");
    for image in images.images.iter().filter(|i| i.file(&path("new")).is_some()) {
        assert_eq!(image.file(&path("new")).unwrap(), b"data");
    }
    sim.sync_dir(Path::new(DIR)).unwrap();
    assert!(all_images(&sim).images.iter().all(|i| i.file(&path("new")) == Some(&b"data"[..])));
}

#[test]
fn an_unsynced_rename_leaves_the_old_name_or_the_new_one() {
    let sim = disk();
    drop(durable_file(&sim, "x.tmp", b"snapshot"));
    drop(durable_file(&sim, "x", b"older"));
    sim.rename(&path("x.tmp"), &path("x")).unwrap();
    assert_eq!(sim.read_all(&path("x")).unwrap(), b"snapshot");
    assert!(sim.read_all(&path("x.tmp")).is_err());
    let images = all_images(&sim);
    let mut seen: Vec<[Option<&[u8]>; 2]> =
        images.images.iter().map(|i| [i.file(&path("x.tmp")), i.file(&path("x"))]).collect();
    seen.sort();
    assert_eq!(seen, vec![[None, Some(&b"snapshot"[..])], [Some(&b"snapshot"[..]), Some(&b"older"[..])]]);
}

#[test]
fn an_unsynced_removal_may_be_undone() {
    let sim = disk();
    drop(durable_file(&sim, "old.log", b"log"));
    sim.remove(&path("old.log")).unwrap();
    assert_eq!(sim.list(Path::new(DIR)).unwrap(), Vec::<String>::new());
    let images = all_images(&sim);
    assert_eq!(images.images.len(), 2);
    sim.sync_dir(Path::new(DIR)).unwrap();
    assert_eq!(all_images(&sim).images.len(), 1);
}

#[test]
fn size_changes_are_pending_like_writes() {
    let sim = disk();
    let f = durable_file(&sim, "seg", b"header");
    f.allocate(64).unwrap();
    f.allocate(32).unwrap();
    assert_eq!(f.size().unwrap(), 64, "allocate never shrinks");
    f.set_len(3).unwrap();
    assert_eq!(sim.read_all(&path("seg")).unwrap(), b"hea");
    let mut lens: Vec<usize> = all_images(&sim).images.iter().map(|i| i.file(&path("seg")).unwrap().len()).collect();
    lens.sort_unstable();
    assert_eq!(lens, vec![3, 6, 64]);
    f.sync_data().unwrap();
    assert_eq!(all_images(&sim).images.len(), 1);
}

#[test]
fn a_stopped_disk_fails_every_later_call_and_changes_nothing() {
    let sim = disk();
    let f = durable_file(&sim, "a", b"abc");
    sim.stop_after(2);
    f.write_all_at(b"d", 3).unwrap();
    assert!(!sim.stopped());
    assert!(f.sync_data().is_err());
    assert!(sim.stopped());
    assert!(f.write_all_at(b"e", 4).is_err());
    assert!(sim.remove(&path("a")).is_err());
    assert!(sim.open_write(&path("b")).is_err());
    assert_eq!(sim.read_all(&path("a")).unwrap(), b"abcd");
    assert_eq!(sim.pending().len(), 1);
    assert!(sim.trace().last().unwrap().contains("write a @3 +1"), "{:?}", sim.trace());
}

#[test]
fn the_disk_goes_on_from_the_crash_image() {
    let sim = disk();
    let f = durable_file(&sim, "a", b"abc");
    f.write_all_at(b"def", 3).unwrap();
    let lock = sim.lock(&path("LOCK")).unwrap();
    assert_eq!(sim.lock(&path("LOCK")).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    sim.crash(&mut |p| match p.kind {
        PendingKind::Write { .. } => Fate::Tear(1),
        _ => Fate::Keep,
    });
    assert_eq!(sim.read_all(&path("a")).unwrap(), b"abcd");
    assert!(sim.pending().is_empty(), "the image is the new durable state");
    assert!(f.write_all_at(b"x", 0).is_err(), "handles from before the crash are dead");
    let relock = sim.lock(&path("LOCK")).expect("a crash releases every lock");
    drop(lock);
    assert_eq!(sim.lock(&path("LOCK")).unwrap_err().kind(), io::ErrorKind::WouldBlock, "a stale guard frees nothing");
    drop(relock);
    sim.lock(&path("LOCK")).unwrap();
}

#[test]
fn a_file_removed_durably_contributes_no_pending_change() {
    let sim = disk();
    let f = durable_file(&sim, "gone", b"x");
    f.write_all_at(b"unsynced", 1).unwrap();
    sim.remove(&path("gone")).unwrap();
    sim.sync_dir(Path::new(DIR)).unwrap();
    assert!(sim.pending().is_empty());
    assert_eq!(f.size().unwrap(), 9, "an open handle still reaches the removed file");
}

#[test]
fn an_image_can_be_built_by_hand() {
    let mut image = CrashImage::new();
    image.insert(&path("00000000000000000001.log"), vec![1, 2, 3]);
    let sim = SimStorage::from_image(&image);
    assert_eq!(sim.list(Path::new(DIR)).unwrap(), vec!["00000000000000000001.log".to_string()]);
    assert_eq!(sim.durable_image(), image);
    assert_eq!(sim.current_image(), image);
}
