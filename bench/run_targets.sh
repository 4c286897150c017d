#!/usr/bin/env bash
# Makes the performance models (random weights, slimlm init) and measures this machine and each
# model: `slimlm hw` (text and JSON), then `slimlm bench` per model (Markdown table and JSON
# records), and gathers the tables in summary.md.
#
# usage: bench/run_targets.sh [OUT_DIR]        (default out/bench)
# environment:
#   SLIMLM   the binary (default build/release/src/tools/slimlm)
#   MODELS   which models, as preset:type words
#            (default: 110m and tinyllama-1.1b, each in f16, q8_0 and q4_0)
#   THREADS  thread counts for -t (default 1,2)
#   BENCH_ARGS  replaces the default "-p 128 -n 64 -r 5 -fa 1"
#   LONG     the preset:type of the long-context test (default tinyllama-1.1b:q4_0; empty: none)
#   LONG_ARGS   replaces its default "-p 0 -n 32 -d 0,4096 -r 3 -fa 1" (tg at depth 0 and 4096)
#
# Models are made once and kept in OUT_DIR/models (tinyllama-1.1b: f16 2.2 GB, q8_0 1.2 GB,
# q4_0 0.65 GB; 110m: 220, 117 and 75 MB). Results go to OUT_DIR/results/<UTC time>/.
set -euo pipefail

cd "$(dirname "$0")/.."
out=${1:-out/bench}
slimlm=${SLIMLM:-build/release/src/tools/slimlm}
models=${MODELS:-"110m:f16 110m:q8_0 110m:q4_0 tinyllama-1.1b:f16 tinyllama-1.1b:q8_0 tinyllama-1.1b:q4_0"}
long=${LONG-tinyllama-1.1b:q4_0}
threads=${THREADS:-1,2}
read -r -a bench_args <<<"${BENCH_ARGS:--p 128 -n 64 -r 5 -fa 1}"
read -r -a long_args <<<"${LONG_ARGS:--p 0 -n 32 -d 0,4096 -r 3 -fa 1}"

if [ ! -x "$slimlm" ]; then
  echo "run_targets: no slimlm binary at $slimlm; build the release preset first:" >&2
  echo "  cmake --preset release && cmake --build --preset release" >&2
  exit 2
fi

results="$out/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out/models" "$results"
echo "run_targets: results in $results" >&2

"$slimlm" --version >"$results/version.txt"
"$slimlm" hw --json-file "$results/hw.json" | tee "$results/hw.txt"

# The model file of a preset:type word, made on first use.
model_of() {
  local preset=${1%%:*} type=${1#*:}
  local model="$out/models/$preset-$type.gguf"
  if [ ! -f "$model" ]; then
    "$slimlm" init --preset "$preset" --type "$type" "$model" >&2
  fi
  echo "$model"
}

for spec in $models; do
  model=$(model_of "$spec")
  name="${spec%%:*}-${spec#*:}"
  echo "run_targets: bench $name" >&2
  "$slimlm" bench "$model" "${bench_args[@]}" -t "$threads" -o md \
    --json-file "$results/bench-$name.json" | tee "$results/bench-$name.md"
done

if [ -n "$long" ]; then
  model=$(model_of "$long")
  name="${long%%:*}-${long#*:}"
  echo "run_targets: long-context bench $name" >&2
  "$slimlm" bench "$model" "${long_args[@]}" -t "$threads" -o md \
    --json-file "$results/long-$name.json" | tee "$results/long-$name.md"
fi

# One Markdown file with every table, in the order measured.
{
  echo "# slimlm bench, $(cat "$results/version.txt"), $(date -u +%Y-%m-%d)"
  echo
  echo '```'
  cat "$results/hw.txt"
  echo '```'
  echo
  echo "Arguments: ${bench_args[*]} -t $threads"
  for spec in $models; do
    name="${spec%%:*}-${spec#*:}"
    echo
    echo "## $name"
    echo
    cat "$results/bench-$name.md"
  done
  if [ -n "$long" ]; then
    echo
    echo "## long context: ${long%%:*}-${long#*:}, ${long_args[*]} -t $threads"
    echo
    cat "$results/long-${long%%:*}-${long#*:}.md"
  fi
} >"$results/summary.md"
echo "run_targets: wrote $results/summary.md" >&2
