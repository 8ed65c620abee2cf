#!/usr/bin/env bash
# Validates every notebook under tutorials/ and notebooks/ (or the .ipynb files given as arguments)
# with nbformat.validate, then executes each with stock `jupyter nbconvert --to notebook --execute` on
# the llmpruner kernel, writing the executed copies into a directory outside the repository. Fails on
# an invalid notebook, an error cell, or a Go panic in a cell's output or on the kernel's stderr
# (scripts/check_notebook.py, which also prints the failing cell's outputs and the slowest cells),
# and prints per-notebook wall time.
#
#   scripts/run-notebooks.sh [NOTEBOOK.ipynb ...]
#
# Needs: jupyter-nbconvert, python3-nbformat and the kernel ("go run ./kernel install"). Environment:
#   NOTEBOOK_KERNEL   kernelspec to run (default: llmpruner)
#   NOTEBOOK_TIMEOUT  per-cell timeout in seconds (default: 900)
#   NOTEBOOK_OUT      keep executed notebooks (NAME.executed.ipynb) in this directory (default: a
#                     temp dir, removed); scripts/browser-check.sh opens them from there
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kernel="${NOTEBOOK_KERNEL:-llmpruner}"
timeout="${NOTEBOOK_TIMEOUT:-900}"

command -v jupyter >/dev/null || { echo "run-notebooks: jupyter not found (Debian: apt-get install jupyter-nbconvert jupyter-client)" >&2; exit 1; }
if ! jupyter kernelspec list 2>/dev/null | awk '{print $1}' | grep -qx "$kernel"; then
  echo "run-notebooks: Jupyter kernel '$kernel' is not installed: run 'go run ./kernel install' (JUPYTER_DATA_DIR=${JUPYTER_DATA_DIR:-default})" >&2
  exit 1
fi

if (($# > 0)); then
  notebooks=("$@")
else
  mapfile -t notebooks < <(cd "$root" && find tutorials notebooks -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' 2>/dev/null | sort)
fi
if ((${#notebooks[@]} == 0)); then
  echo "run-notebooks: no notebooks found under tutorials/ or notebooks/" >&2
  exit 1
fi
for i in "${!notebooks[@]}"; do
  [[ "${notebooks[$i]}" = /* ]] || notebooks[$i]="$root/${notebooks[$i]}"
done

if [[ -n "${NOTEBOOK_OUT:-}" ]]; then
  out="$NOTEBOOK_OUT"; mkdir -p "$out"
else
  out="$(mktemp -d -t llmpruner-notebooks.XXXXXX)"; trap 'rm -rf "$out"' EXIT
fi

# The Python that has nbformat: the one jupyter runs on (Debian: /usr/bin/python3), not a pyenv shim.
python="${NOTEBOOK_PYTHON:-}"
if [[ -z "$python" ]]; then
  shebang="$(head -n1 "$(command -v jupyter)")"
  python="${shebang#\#!}"; python="${python%% *}"
  [[ -x "$python" ]] || python=python3
fi
"$python" -c 'import nbconvert, nbformat' 2>/dev/null ||
  { echo "run-notebooks: $python cannot import nbconvert/nbformat (Debian: apt-get install jupyter-nbconvert python3-nbformat)" >&2; exit 1; }
check="$root/scripts/check_notebook.py"

# 1. Every notebook must be valid as stored: Jupyter shows a "Notebook validation failed" dialog otherwise.
"$python" "$check" validate "${notebooks[@]}"

# 2. Execute each with stock nbconvert. --allow-errors writes the executed notebook even when a cell
#    fails, so check_notebook.py can show that cell's outputs; it then fails the run.
total_start=$SECONDS
for nb in "${notebooks[@]}"; do
  name="$(basename "$nb" .ipynb)"
  log="$out/$name.log"  # our report; $log.kernel: nbconvert's and the kernel's stderr
  start=$SECONDS
  rc=0
  jupyter nbconvert --to notebook --execute --allow-errors \
    --ExecutePreprocessor.kernel_name="$kernel" --ExecutePreprocessor.timeout="$timeout" \
    --output-dir "$out" --output "$name.executed" "$nb" >"$log" 2>"$log.kernel" || rc=$?
  if ((rc == 0)); then
    "$python" "$check" executed "$nb" "$out/$name.executed.ipynb" "$log.kernel" >>"$log" 2>&1 || rc=$?
  else
    echo "jupyter nbconvert exited with status $rc" >>"$log"
  fi
  if ((rc != 0)); then
    echo "FAIL  ${nb#"$root"/}  ($((SECONDS - start)) s)" >&2
    cat "$log" >&2
    if ! grep -q 'in cell #' "$log"; then  # no cell to blame (kernel did not start, ...): show the kernel log
      grep -v -E '^[IW][0-9]{4} |^\s|^(goroutine |github\.com/|main\.|runtime\.)' "$log.kernel" | tail -n 60 | cut -c1-400 >&2
    fi
    exit 1
  fi
  echo "ok    ${nb#"$root"/}  $((SECONDS - start)) s"
  grep -v '^\[NbConvertApp\]' "$log" || true
done
echo "notebooks ok: ${#notebooks[@]} valid and executed by jupyter nbconvert with no error cell or panic ($((SECONDS - total_start)) s)"
