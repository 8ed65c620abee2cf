"""Executes one notebook headless with nbconvert's ExecutePreprocessor (the engine of
`jupyter nbconvert --to notebook --execute`) and fails on the first error cell, printing that cell's
source and everything it wrote (stdout, stderr, error), which nbconvert's own message leaves out,
and the slowest cells. Used by scripts/run-notebooks.sh.

usage: execute_notebook.py NOTEBOOK.ipynb OUT.ipynb KERNEL TIMEOUT_SECONDS
"""
import html
import os
import re
import sys
import time

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor
from nbclient.exceptions import CellExecutionError, CellTimeoutError


def main():
    src, dst, kernel, timeout = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    nb = nbformat.read(src, as_version=4)
    state = {"index": None, "start": 0.0, "times": []}

    def on_start(cell, cell_index, **_):
        state["index"], state["start"] = cell_index, time.monotonic()

    def on_done(cell, cell_index, **_):
        state["times"].append((time.monotonic() - state["start"], cell_index))

    executor = ExecutePreprocessor(timeout=timeout, kernel_name=kernel,
                                   on_cell_start=on_start, on_cell_executed=on_done)
    failed = None
    try:
        executor.preprocess(nb, {"metadata": {"path": os.path.dirname(os.path.abspath(src))}})
    except (CellExecutionError, CellTimeoutError) as err:
        failed = err
    finally:
        nbformat.write(nb, dst)

    slow = sorted(state["times"], reverse=True)[:3]
    print("      slowest cells: " + ", ".join(f"#{i} {t:.1f}s" for t, i in slow))
    errors = [i for i, c in enumerate(nb.cells)
              if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    if failed is None and not errors:
        return 0
    i = state["index"] if failed is not None else errors[0]
    cell = nb.cells[i]
    print(f"\nerror in cell #{i} of {src}:\n----- source -----\n{cell.source}\n----- outputs -----")
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            print(o.get("text", ""), end="")
        elif o.get("output_type") == "error":
            print(f"{o.get('ename')}: {o.get('evalue')}")
            print("\n".join(o.get("traceback", [])))
        elif "text/plain" in o.get("data", {}):
            print(o["data"]["text/plain"])
        elif "text/html" in o.get("data", {}):  # GoNB shows compile errors as HTML
            text = re.sub(r"(?s)<(style|script)[^>]*>.*?</\1>", "", o["data"]["text/html"])
            text = html.unescape(re.sub(r"<[^>]+>", "", text))
            print(re.sub(r"\n\s*\n+", "\n", text).strip())
    if failed is not None:
        print(f"----- kernel reply -----\n{str(failed)[-2000:]}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
