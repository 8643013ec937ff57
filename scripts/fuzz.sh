#!/usr/bin/env bash
# Runs every cargo-fuzz target (tests/fuzz/fuzz_targets/) for a fixed time each, one after the
# other, and prints the executions of each and any crash.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]    default: 10 s, every target
#   scripts/fuzz.sh 1800                                the long run (3 hours for all six)
#
# Installs what it needs when missing: a nightly toolchain (minimal profile) and
# cargo-fuzz. Targets are built without a sanitizer (claimgate is safe Rust; overflow
# checks and debug assertions stay on); FUZZ_SANITIZER=address turns ASan on.
# Inputs found while fuzzing are kept in tests/fuzz/corpus/<target>/ (only the seed-* files are
# committed); a crash is saved under tests/fuzz/artifacts/<target>/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
shift || true
sanitizer=${FUZZ_SANITIZER:-none}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

# The fuzz crate is tests/fuzz (the project keeps no fuzz/ at its top level).
fuzz=(cargo +nightly fuzz)
dir=(--fuzz-dir tests/fuzz)
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <("${fuzz[@]}" list "${dir[@]}")
fi

build_start=$(date +%s)
"${fuzz[@]}" build "${dir[@]}" --sanitizer "$sanitizer"
echo "fuzz: build took $(( $(date +%s) - build_start )) s"

mkdir -p target/fuzz-logs
failed=()
summary=()
for target in "${targets[@]}"; do
  log="target/fuzz-logs/$target.log"
  mkdir -p "tests/fuzz/corpus/$target" "tests/fuzz/artifacts/$target"
  echo "fuzz: $target for ${seconds} s"
  status=0
  "${fuzz[@]}" run "${dir[@]}" --sanitizer "$sanitizer" "$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
  if [ -z "$executions" ]; then
    executions=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
  fi
  per_second=$(( ${executions:-0} / (seconds > 0 ? seconds : 1) ))
  line="$target: ${executions:-?} executions in ${seconds} s (~${per_second}/s)"
  if [ "$status" -ne 0 ]; then
    artifact=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n 1 | sed 's/Test unit written to //')
    line="$line — FAILED (exit $status)${artifact:+, reproducer: $artifact}"
    failed+=("$target")
    grep -E 'panicked at|^thread|ERROR: libFuzzer|SUMMARY' "$log" | head -n 8 || true
    echo "fuzz: log in target/fuzz-logs/$target.log"
  fi
  echo "$line"
  summary+=("$line")
done

echo
echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crash in ${#targets[@]} targets"
