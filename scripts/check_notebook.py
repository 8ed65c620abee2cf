"""Checks notebooks with Jupyter's own nbformat (Debian python3-nbformat). Used by
scripts/run-notebooks.sh around stock `jupyter nbconvert --to notebook --execute`.

  check_notebook.py validate NOTEBOOK.ipynb ...
      nbformat.validate on each file as stored (no upgrade; the warnings nbformat 5.5 gives for
      missing or duplicate cell ids count as errors). Exit 1 listing every invalid file.

  check_notebook.py executed SOURCE.ipynb EXECUTED.ipynb [KERNEL_STDERR]
      The notebook nbconvert wrote: valid nbformat, no error output, no Go panic in any cell's
      output nor in the kernel's stderr. Prints the slowest cells (from the execution timestamps
      nbclient records); on failure prints the failing cell's source and everything it wrote, which
      nbconvert's own message leaves out. Exit 1 on failure.

  check_notebook.py dom NOTEBOOK.ipynb PAGE.html
      The DOM a browser rendered for NOTEBOOK.ipynb in the classic Jupyter Notebook UI (chromium
      --dump-dom; scripts/browser-check.sh): no "Notebook validation failed" message, no
      "Unrecognized cell type", no open dialog, one rendered cell per notebook cell, every Markdown
      heading of the notebook rendered as an <hN> element, and at least as many SVG plots and tables
      in the output areas as the notebook's outputs hold. Exit 1 listing what is wrong.
"""
import datetime
import html
import html.parser
import json
import re
import sys
import warnings

import nbformat

# A Go runtime panic or fatal error as the program writes it on stderr. (Not "goroutine N [running]":
# GoNB logs such stack traces on a normal shutdown.)
PANIC = re.compile(r"^(panic: |fatal error: )", re.M)


def validate(path):
    """Returns the nbformat validation error of the file as stored, or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with open(path, encoding="utf-8") as f:
                nb = nbformat.from_dict(json.load(f))
            if nb.get("nbformat") != 4:
                return f"nbformat {nb.get('nbformat')}, want 4"
            nbformat.validate(nb, version=4)
    except Exception as err:  # ValidationError, JSON errors, nbformat's id warnings
        return str(err).strip().splitlines()[0]
    return None


def cmd_validate(paths):
    bad = 0
    for path in paths:
        err = validate(path)
        if err:
            bad += 1
            print(f"INVALID {path}: {err}")
    if bad:
        print(f"{bad} of {len(paths)} notebooks fail nbformat.validate "
              "(fix with: go run ./kernel fmt -w)")
        return 1
    print(f"nbformat.validate: {len(paths)} notebooks valid (nbformat {nbformat.__version__})")
    return 0


def text_of(output):
    """Everything a cell output shows, as plain text."""
    kind = output.get("output_type")
    if kind == "stream":
        return output.get("text", "")
    if kind == "error":
        return f"{output.get('ename')}: {output.get('evalue')}\n" + "\n".join(output.get("traceback", []))
    data = output.get("data", {})
    if "text/plain" in data:
        return data["text/plain"]
    if "text/html" in data:  # GoNB shows compile errors and tables as HTML
        text = re.sub(r"(?s)<(style|script)[^>]*>.*?</\1>", "", data["text/html"])
        text = html.unescape(re.sub(r"<[^>]+>", "", text))
        return re.sub(r"\n\s*\n+", "\n", text).strip()
    return ""


def cell_seconds(cell):
    """Wall time of one executed cell from nbclient's timestamps, or None."""
    ex = cell.get("metadata", {}).get("execution", {})
    start, end = ex.get("iopub.status.busy"), ex.get("iopub.status.idle")
    if not start or not end:
        return None
    parse = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (parse(end) - parse(start)).total_seconds()


def cmd_executed(src, executed, kernel_log=None):
    err = validate(executed)
    if err:
        print(f"executed notebook is not valid nbformat: {err}")
        return 1
    nb = nbformat.read(executed, as_version=4)
    times = [(cell_seconds(c), i) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    times = sorted([t for t in times if t[0] is not None], reverse=True)[:3]
    print("      slowest cells: " + ", ".join(f"#{i} {t:.1f}s" for t, i in times))

    failed = None
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                failed = (i, "error output")
            elif PANIC.search(text_of(o)):
                failed = (i, "Go panic in the output")
            if failed:
                break
        if failed:
            break
    if failed:
        i, why = failed
        cell = nb.cells[i]
        print(f"\n{why} in cell #{i} of {src}:\n----- source -----\n{cell.source}\n----- outputs -----")
        for o in cell.get("outputs", []):
            print(text_of(o))
        return 1
    if kernel_log:
        with open(kernel_log, encoding="utf-8", errors="replace") as f:
            log = f.read()
        m = PANIC.search(log)
        if m:
            start = max(0, log.rfind("\n", 0, max(0, m.start() - 400)))
            print(f"\nGo panic on the kernel's stderr while running {src}:\n{log[start:m.start() + 2000]}")
            return 1
    return 0


def expected_page(nb):
    """What the classic UI must show for nb: cell counts, headings per level, SVGs and tables."""
    want = {"cells": len(nb.cells), "markdown": 0, "svg": 0, "table": 0, "h": [0] * 7}
    for cell in nb.cells:
        if cell.cell_type in ("markdown", "md"):  # "md": what an invalid notebook meant as Markdown
            want["markdown"] += 1
            fenced = False
            for line in cell.source.splitlines():
                if line.lstrip().startswith("```"):
                    fenced = not fenced
                m = re.match(r"^(#{1,6})\s+\S", line)
                if m and not fenced:
                    want["h"][len(m.group(1))] += 1
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if "image/svg+xml" in data:
                want["svg"] += 1
            page = data.get("text/html", "")
            if isinstance(page, list):
                page = "".join(page)
            want["svg"] += len(re.findall(r"<svg[\s>]|data:image/svg\+xml", page))
            want["table"] += len(re.findall(r"<table[\s>]", page))
    return want


class PageScan(html.parser.HTMLParser):
    """Counts what the classic notebook UI rendered: cells, headings in rendered Markdown, outermost
    SVGs (inline or as <img> data URIs) and tables inside output areas, open dialogs."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
            "source", "track", "wbr", "path", "rect", "line", "circle", "polyline", "polygon", "use"}

    def __init__(self):
        super().__init__()
        self.stack = []  # (tag, classes) of open elements
        self.got = {"cells": 0, "markdown": 0, "svg": 0, "table": 0, "h": [0] * 7}
        self.dialogs, self.text = [], []
        self.in_title = False

    def inside(self, cls):
        return any(cls in c for _, c in self.stack)

    def handle_starttag(self, tag, attrs):
        classes = set((dict(attrs).get("class") or "").split())
        if tag == "div" and "cell" in classes:
            self.got["cells"] += 1
        if "text_cell_render" in classes:
            self.got["markdown"] += 1
        if re.fullmatch(r"h[1-6]", tag) and self.inside("text_cell_render"):
            self.got["h"][int(tag[1])] += 1
        if self.inside("output_area") or "output_area" in classes:
            if tag == "svg" and not any(t == "svg" for t, _ in self.stack):
                self.got["svg"] += 1
            if tag == "img" and (dict(attrs).get("src") or "").startswith("data:image/svg+xml"):
                self.got["svg"] += 1  # lib/notebook.ShowSVG: an <img> data URI survives untrusted mode
            if tag == "table":
                self.got["table"] += 1
        if "modal" in classes and ("in" in classes or "show" in classes):
            self.dialogs.append("")
        if "modal-title" in classes and self.dialogs:
            self.in_title = True
        if tag not in self.VOID:
            self.stack.append((tag, classes))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):  # tolerate unclosed elements
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break
        self.in_title = False

    def handle_data(self, data):
        self.text.append(data)
        if self.in_title:
            self.dialogs[-1] += data.strip()


def cmd_dom(notebook, page):
    nb = nbformat.read(notebook, as_version=4)
    want = expected_page(nb)
    scan = PageScan()
    with open(page, encoding="utf-8", errors="replace") as f:
        scan.feed(f.read())
    got, text = scan.got, " ".join(scan.text)
    problems = []
    for msg in ("Notebook validation failed", "Unrecognized cell type", "Unrecognized output"):
        if msg in text:
            i = text.index(msg)
            problems.append(f"page says {text[i:i + 160]!r}")
    for title in scan.dialogs:
        problems.append(f"a dialog is open: {title!r}")
    if got["cells"] != want["cells"] or got["markdown"] != want["markdown"]:
        problems.append(f"{got['cells']} cells ({got['markdown']} rendered Markdown) on the page, "
                        f"notebook has {want['cells']} ({want['markdown']} Markdown)")
    for level in range(1, 7):
        if got["h"][level] < want["h"][level]:
            problems.append(f"{got['h'][level]} <h{level}> in rendered Markdown, notebook has "
                            f"{want['h'][level]} level-{level} headings")
    for kind in ("svg", "table"):
        if got[kind] < want[kind]:
            problems.append(f"{got[kind]} <{kind}> in the outputs on the page, notebook outputs hold {want[kind]}")
    summary = (f"{got['cells']} cells, headings h1-h3 {got['h'][1:4]}, {got['svg']} SVG, "
               f"{got['table']} tables (notebook: {want['svg']} SVG, {want['table']} tables)")
    if problems:
        print(f"browser check FAILED for {notebook}: {summary}")
        for p in problems:
            print("  - " + p)
        return 1
    print(f"      rendered: {summary}")
    return 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "validate":
        return cmd_validate(argv[1:])
    if len(argv) in (3, 4) and argv[0] == "executed":
        return cmd_executed(*argv[1:])
    if len(argv) == 3 and argv[0] == "dom":
        return cmd_dom(*argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
