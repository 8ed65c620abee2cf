#!/usr/bin/env bash
# Runs every native Go fuzz target of the repository (func FuzzX in *_test.go), one at a time
# (go test -fuzz takes one package and one target per run), and prints the executions and time of
# each. `go test` alone only replays the seed corpora (f.Add seeds and testdata/fuzz/FuzzX); this
# mutates new inputs.
#
#   scripts/fuzz.sh [FUZZTIME] [TARGET_REGEXP] [extra go test flags]
#   scripts/fuzz.sh 8s                       # CI: a bounded run per target
#   scripts/fuzz.sh 1000000x . -parallel 1   # the soak: 10^6 executions per target
#
# A failing input is written to the package's testdata/fuzz/FuzzX/ and the script exits 1 after
# the remaining targets ran. Seeds from real files come from $LLMPRUNER_DATA when it is set.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3} GOEXPERIMENT=${GOEXPERIMENT:-simd} GOFLAGS=
fuzztime="${1:-8s}"
filter="${2:-.}"
shift $(( $# < 2 ? $# : 2 ))
failed=0
total_start=$SECONDS
printf '%-24s %-28s %12s %8s  %s\n' package target execs seconds result
while read -r file target; do
  [[ "$target" =~ $filter ]] || continue
  pkg="./$(dirname "$file")"
  start=$SECONDS
  # Minimising a new interesting input may take up to a minute by default: cap it.
  out="$(go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 10x -timeout 0 "$@" 2>&1)"
  rc=$?
  execs="$(grep -oE 'execs: [0-9]+' <<<"$out" | tail -1 | grep -oE '[0-9]+' || true)"
  result=ok
  if ((rc != 0)); then
    result=FAIL failed=1
    echo "$out" | grep -vE '^fuzz: elapsed' >&2
  fi
  printf '%-24s %-28s %12s %8d  %s\n' "${pkg#./}" "$target" "${execs:-?}" $((SECONDS - start)) "$result"
done < <(grep -rHoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' lib cmd internal 2>/dev/null |
         sed -E 's/:func / /' | sort)
printf 'all targets: %d s\n' $((SECONDS - total_start))
exit $failed
