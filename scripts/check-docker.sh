#!/usr/bin/env bash
# Static checks of docker/ that need no Docker engine (CI has none). They check that the images
# install the way the README does and that the files are internally consistent; they do not prove
# that the images build. Checked:
#   - each Dockerfile is multi-stage, every "COPY --from=X" names an earlier stage, and every
#     build-context source of COPY exists in the repository;
#   - the kernel is installed with the README's entry point ("go run ./kernel install"), which
#     must exist (kernel/main.go) and be the one the README documents;
#   - the Go settings (GOTOOLCHAIN, GOEXPERIMENT=simd) equal those of .ci/run and the Makefile;
#   - pip/apt versions that matter are pinned (jupyterlab==, jax-*==);
#   - compose.yaml's dockerfiles exist, and docker/README.md mentions every file.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
fail=0
set -f # no globbing when splitting Dockerfile lines
bad() { echo "check-docker: $*" >&2; fail=1; }

toolchain="$(grep -oE 'GOTOOLCHAIN=go[0-9.]+' .ci/run | head -n1)"
[[ -n "$toolchain" ]] || bad ".ci/run sets no GOTOOLCHAIN"
grep -qE "^export GOTOOLCHAIN := ${toolchain#GOTOOLCHAIN=}\$" Makefile || bad "Makefile's GOTOOLCHAIN differs from .ci/run ($toolchain)"
grep -q 'go run ./kernel install' README.md || bad "README.md does not document 'go run ./kernel install'"
[[ -f kernel/main.go ]] || bad "kernel/main.go (the install entry point) is missing"

for df in docker/Dockerfile.cpu docker/Dockerfile.cuda; do
  [[ -f "$df" ]] || { bad "$df missing"; continue; }
  stages=()
  nfrom=0
  while read -r line; do
    # Join nothing fancy: one instruction per line is enough for these files' FROM/COPY.
    set -- $line
    case "${1^^}" in
      FROM)
        nfrom=$((nfrom + 1))
        [[ "${3^^}" == "AS" && -n "${4:-}" ]] && stages+=("$4") ;;
      COPY)
        shift
        from=""
        srcs=()
        for a in "$@"; do
          case "$a" in
            --from=*) from="${a#--from=}" ;;
            --*) ;;
            *) srcs+=("$a") ;;
          esac
        done
        if [[ -n "$from" ]]; then
          printf '%s\n' "${stages[@]}" | grep -qx "$from" || bad "$df: COPY --from=$from names no earlier stage"
        else
          unset 'srcs[${#srcs[@]}-1]' # last argument is the destination
          for s in "${srcs[@]}"; do [[ -e "$s" ]] || bad "$df: COPY source '$s' does not exist in the repository"; done
        fi ;;
    esac
  done < <(grep -E '^(FROM|COPY) ' "$df")
  ((nfrom >= 2)) || bad "$df is not multi-stage ($nfrom FROM)"
  grep -q 'go run ./kernel install' "$df" || bad "$df does not install the kernel with 'go run ./kernel install'"
  grep -q "$toolchain" "$df" || bad "$df does not set $toolchain"
  grep -q 'GOEXPERIMENT=simd' "$df" || bad "$df does not set GOEXPERIMENT=simd"
  grep -q 'go build -o /out/llmpruner ./cmd/llmpruner' "$df" || bad "$df does not build ./cmd/llmpruner"
  for pkg in jupyterlab jax-cuda13-pjrt jax-cuda13-plugin; do
    if grep -q "\"$pkg" "$df" && ! grep -qE "\"$pkg(\[[^]]*\])?==" "$df"; then bad "$df: $pkg is not pinned (==)"; fi
  done
  grep -qE '^CMD \[' "$df" || bad "$df: CMD is not in exec (JSON array) form"
  grep -q "$(basename "$df")" docker/README.md || bad "docker/README.md does not mention $(basename "$df")"
done
[[ -d cmd/llmpruner ]] || bad "cmd/llmpruner is missing"
while read -r f; do
  [[ -f "docker/$f" || -f "$f" ]] || bad "compose.yaml names $f, which does not exist"
done < <(grep -oE 'dockerfile: *[^ },]+' docker/compose.yaml | sed 's/dockerfile: *//; s#^docker/##')
grep -q 'Dockerfile.cuda' docker/Dockerfile.cuda || bad "Dockerfile.cuda's header does not show its build command"
grep -q 'compose.yaml' docker/README.md || bad "docker/README.md does not mention compose.yaml"

if ((fail)); then exit 1; fi
echo "check-docker: ok (static checks only; no Docker engine was used)"
