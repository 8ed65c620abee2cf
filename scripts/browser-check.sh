#!/usr/bin/env bash
# Opens executed notebooks as a user does: starts Debian's Jupyter Notebook server (classic UI,
# notebook 6.4) on 127.0.0.1 with a random token and the installed kernels, loads each notebook in
# headless chromium, dumps the rendered DOM and checks it (scripts/check_notebook.py dom): no
# "Notebook validation failed" dialog or "Unrecognized cell type", no open dialog, every Markdown
# heading rendered as <hN>, and the SVG plots and tables of the outputs present on the page. The
# kernel each page starts is shut down after the page; the server is stopped on exit.
#
#   scripts/browser-check.sh NOTEBOOK.ipynb ...     (e.g. the NOTEBOOK_OUT of run-notebooks.sh)
#
# Environment:
#   BROWSER_OUT        keep the DOM dumps, a PNG screenshot of each page and the server log here
#   BROWSER_BUDGET_MS  chromium's virtual-time budget per page (default 20000)
#   BROWSER_TIMEOUT    wall-clock limit per chromium run and for the server start, s (default 300)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
budget="${BROWSER_BUDGET_MS:-20000}"
limit="${BROWSER_TIMEOUT:-300}"
(($# > 0)) || { echo "usage: scripts/browser-check.sh NOTEBOOK.ipynb ..." >&2; exit 2; }
for tool in jupyter chromium curl; do
  command -v "$tool" >/dev/null ||
    { echo "browser-check: $tool not found (Debian: apt-get install jupyter-notebook chromium curl)" >&2; exit 1; }
done
python="$(head -n1 "$(command -v jupyter)")"; python="${python#\#!}"; python="${python%% *}"
[[ -x "$python" ]] || python=python3

work="$(mktemp -d -t llmpruner-browser.XXXXXX)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
out="${BROWSER_OUT:-$work/out}"; mkdir -p "$out" "$work/nb"
for nb in "$@"; do cp "$nb" "$work/nb/"; done

# The server: a free port, a random token, only the copied notebooks, no browser of its own.
port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
token="$("$python" -c 'import secrets; print(secrets.token_hex(16))')"
base="http://127.0.0.1:$port"
jupyter notebook --no-browser --allow-root --ip=127.0.0.1 --port="$port" --port-retries=0 \
  --NotebookApp.token="$token" --notebook-dir="$work/nb" >"$out/server.log" 2>&1 &
server_pid=$!
for ((i = 0; ; i++)); do
  curl -sf "$base/api/status?token=$token" >/dev/null && break
  if ((i >= limit)) || ! kill -0 "$server_pid" 2>/dev/null; then
    echo "browser-check: the Jupyter server did not start on $base within ${limit} s:" >&2
    tail -n 20 "$out/server.log" >&2; exit 1
  fi
  sleep 1
done
echo "browser-check: $(jupyter notebook --version 2>/dev/null | sed 's/^/jupyter notebook /') on $base, $(chromium --version 2>/dev/null)"

# shutdown_kernels: ends the sessions (and kernels) the pages opened.
shutdown_kernels() {
  curl -sf "$base/api/sessions?token=$token" |
    "$python" -c 'import json, sys; [print(s["id"]) for s in json.load(sys.stdin)]' |
    while read -r id; do curl -sf -X DELETE "$base/api/sessions/$id?token=$token" >/dev/null || true; done
}

chrome=(chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars
        --user-data-dir="$work/profile" --virtual-time-budget="$budget")
failed=0
for nb in "$@"; do
  name="$(basename "$nb")"
  url="$base/notebooks/$name?token=$token"
  start=$SECONDS
  if ! timeout "$limit" "${chrome[@]}" --dump-dom "$url" >"$out/${name%.ipynb}.dom.html" 2>"$work/chrome.log"; then
    echo "FAIL  $name: chromium did not render the page within ${limit} s" >&2
    grep -v dbus "$work/chrome.log" | tail -n 10 >&2; failed=1; shutdown_kernels; continue
  fi
  if [[ -n "${BROWSER_OUT:-}" ]]; then
    timeout "$limit" "${chrome[@]}" --window-size=1280,2400 --screenshot="$out/${name%.ipynb}.png" "$url" \
      >/dev/null 2>&1 || echo "      (no screenshot of $name)"
  fi
  shutdown_kernels
  if "$python" "$root/scripts/check_notebook.py" dom "$nb" "$out/${name%.ipynb}.dom.html"; then
    echo "ok    $name  $((SECONDS - start)) s"
  else
    failed=1
  fi
done
if ((failed)); then
  echo "browser-check: FAILED (DOM dumps in ${BROWSER_OUT:-a temp dir; set BROWSER_OUT to keep them})" >&2
  exit 1
fi
echo "browser-check: ${#@} notebooks render in chromium with no validation message, headings, plots and tables present"
