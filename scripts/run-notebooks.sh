#!/usr/bin/env bash
# Executes every notebook under tutorials/ and notebooks/ (or the .ipynb files given as arguments)
# headless on the llmpruner kernel (scripts/execute_notebook.py: nbconvert's ExecutePreprocessor, as
# "jupyter nbconvert --to notebook --execute", plus the failing cell's output), writing the executed copies
# into a temporary directory (never into the repository). Fails on the first notebook with an error
# cell and prints per-notebook wall time.
#
#   scripts/run-notebooks.sh [NOTEBOOK.ipynb ...]
#
# Needs: jupyter-nbconvert and the kernel ("go run ./kernel install"). Environment:
#   NOTEBOOK_KERNEL   kernelspec to run (default: llmpruner)
#   NOTEBOOK_TIMEOUT  per-cell timeout in seconds (default: 900)
#   NOTEBOOK_OUT      keep executed notebooks in this directory (default: a temp dir, removed)
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

if [[ -n "${NOTEBOOK_OUT:-}" ]]; then
  out="$NOTEBOOK_OUT"; mkdir -p "$out"
else
  out="$(mktemp -d -t llmpruner-notebooks.XXXXXX)"; trap 'rm -rf "$out"' EXIT
fi

# The Python that has nbclient: the one jupyter runs on (Debian: /usr/bin/python3), not a pyenv shim.
python="${NOTEBOOK_PYTHON:-}"
if [[ -z "$python" ]]; then
  shebang="$(head -n1 "$(command -v jupyter)")"
  python="${shebang#\#!}"; python="${python%% *}"
  [[ -x "$python" ]] || python=python3
fi
"$python" -c 'import nbconvert, nbclient, nbformat' 2>/dev/null ||
  { echo "run-notebooks: $python cannot import nbconvert/nbclient/nbformat (Debian: apt-get install jupyter-nbconvert)" >&2; exit 1; }

total_start=$SECONDS
for nb in "${notebooks[@]}"; do
  [[ "$nb" = /* ]] || nb="$root/$nb"
  name="$(basename "$nb" .ipynb)"
  log="$out/$name.log"  # our report; $log.kernel: kernel/nbclient stderr
  start=$SECONDS
  if ! "$python" "$root/scripts/execute_notebook.py" "$nb" "$out/$name.executed.ipynb" "$kernel" "$timeout" >"$log" 2>"$log.kernel"; then
    echo "FAIL  ${nb#"$root"/}  ($((SECONDS - start)) s)" >&2
    cat "$log" >&2
    if ! grep -q '^error in cell' "$log"; then  # no cell to blame (kernel did not start, ...): show the kernel log
      grep -v -E '^[IW][0-9]{4} |^\s|^(goroutine |github\.com/|main\.|runtime\.)' "$log.kernel" | tail -n 60 | cut -c1-400 >&2
    fi
    exit 1
  fi
  echo "ok    ${nb#"$root"/}  $((SECONDS - start)) s"
  cat "$log"
done
echo "notebooks ok: ${#notebooks[@]} executed with no error cell ($((SECONDS - total_start)) s)"
