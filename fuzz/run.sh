#!/usr/bin/env bash
# Runs every fuzz target for the given number of seconds (default 60), one after the other.
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Crashes are written under
# fuzz/artifacts/TARGET/; copy each into fuzz/regressions/TARGET/ so `cargo test` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
for target in frame segment_header record_ops snapshot log_scan schema model; do
    echo "== $target for ${seconds}s"
    mkdir -p "corpus/$target" "regressions/$target"
    cargo +nightly fuzz run "$target" "corpus/$target" "regressions/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss|==|SUMMARY|Done)" || true
    if compgen -G "artifacts/$target/crash-*" >/dev/null; then
        echo "$target found a crash: see fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
