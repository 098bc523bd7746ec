//! Every input a fuzzer once crashed on (kept under `fuzz/regressions/TARGET/`), plus the seed inputs there, replayed
//! through the same decoder entry points the fuzz targets call. The model target's inputs are replayed by
//! `cargo fuzz run model fuzz/regressions/model` (it needs the fault-injecting storage of cairn-testkit).

use std::path::Path;

#[test]
fn every_kept_fuzz_input_still_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut replayed = 0;
    for target in std::fs::read_dir(&root).expect("fuzz/regressions exists") {
        let target = target.unwrap();
        let name = target.file_name().into_string().unwrap();
        if name == "model" {
            continue;
        }
        for input in std::fs::read_dir(target.path()).unwrap() {
            let path = input.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            assert!(cairn::fuzzing::replay(&name, &data), "no decoder target named {name}");
            replayed += 1;
        }
    }
    assert!(replayed >= 5, "the seed inputs are missing ({replayed} replayed)");
}
