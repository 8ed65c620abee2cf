#!/usr/bin/env bash
# Wires a GoNB notebook to this llmpruner working tree. Run it from the notebook's first cell:
#
#   !*bash "$LLMPRUNER_REPO/kernel/notebook-setup.sh"
#
# "!*" runs it in GoNB's temporary module ($GONB_TMP_DIR). It makes that module require
# github.com/llmpruner/llmpruner, replaced by $LLMPRUNER_REPO (the working tree, so local edits are
# used), requires every module of the repository's go.mod at the repository's pinned versions
# (gomlx, compute, gonb, ...), and merges the repository's go.sum. GoNB's automatic "go get" then
# finds everything already resolved and never asks the module proxy for "latest". Idempotent.
set -euo pipefail

repo="${LLMPRUNER_REPO:?LLMPRUNER_REPO is not set: install the kernel with 'go run ./kernel install' and select the llmpruner kernel}"
dir="${1:-${GONB_TMP_DIR:-$PWD}}"
[[ -f "$repo/go.mod" ]] || { echo "notebook-setup: $repo/go.mod not found (LLMPRUNER_REPO)" >&2; exit 1; }
[[ -f "$dir/go.mod" ]] || { echo "notebook-setup: $dir/go.mod not found: run as '!*bash ...' in a GoNB cell" >&2; exit 1; }
cd "$dir"

# "path version" for every require line of the repository's go.mod (block or single-line form).
mapfile -t reqs < <(awk '
  /^require[ \t]*\($/ { inblock = 1; next }
  inblock && /^\)/     { inblock = 0; next }
  inblock && NF >= 2   { print $1 "@" $2; next }
  /^require[ \t]+[^(]/ { print $2 "@" $3 }
' "$repo/go.mod")

args=(-replace "github.com/llmpruner/llmpruner=$repo"
      -require "github.com/llmpruner/llmpruner@v0.0.0-00010101000000-000000000000")
for r in "${reqs[@]}"; do args+=(-require "$r"); done
go mod edit "${args[@]}"

touch go.sum
sort -u go.sum "$repo/go.sum" -o go.sum

echo "notebook wired to $repo (${#reqs[@]} pinned modules; GOMLX_BACKEND=${GOMLX_BACKEND:-unset}, LLMPRUNER_DATA=${LLMPRUNER_DATA:-unset})"
