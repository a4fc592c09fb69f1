#!/usr/bin/env python3
"""Execute notebooks headless with the tslab kernel, into a build folder.

Never rewrites the committed sources. While a notebook runs it shows which cell it is on
(`02-cpu-vs-gpu · cell 8/23 · 1:12`, one updating line on a terminal, a line every 30 s
otherwise), with an estimate from the previous run's cell times (kept in build/notebook-times.json,
per mode), then one line per finished notebook. Kernel stderr lines that repeat (driver warnings
printed by every kernel, e.g. Dawn's "artificially reduced" limits) are shown once. On the first
failing cell it stops that notebook and reports the notebook's name, the
cell's number and source, and the error text; the partial run is kept as NAME.failed.ipynb.
The executed copy is signed (trusted) so classic Notebook shows its SVG charts.

Usage: nbclient_runner.py [--out DIR] [--timeout SECONDS] [--times FILE] NOTEBOOK ...
Started by scripts/notebooks/run.ts (npm run notebooks), which runs it with the project-local
Jupyter's Python and names the collection's notebooks when none are given.
Exit status: 0 when every notebook ran clean, 1 otherwise.

Python here only because nbclient (Jupyter's own execution API) is Python.
"""
import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

try:
    from nbformat.sign import NotebookNotary
except Exception:  # pragma: no cover - signing is a nicety
    NotebookNotary = None


def write_atomic(nb, path):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


TIMES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "notebook-times.json")
PERIOD = 30.0  # seconds between progress lines when stdout is not a terminal


def clock(secs):
    secs = int(round(secs))
    return f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}" if secs >= 3600 else f"{secs // 60}:{secs % 60:02d}"


def load_times(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_times(path, times):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(times, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


class Console:
    """Progress on stdout: one rewritten line on a terminal, periodic lines otherwise; kernel
    stderr relayed line by line, each distinct line once."""

    def __init__(self, stream=sys.stdout):
        self.out = stream
        self.tty = stream.isatty()
        self.lock = threading.Lock()
        self.status = ""
        self.seen = set()
        self.suppressed = 0

    def _clear(self):
        if self.tty and self.status:
            self.out.write("\r\033[K")

    def line(self, text):
        with self.lock:
            self._clear()
            self.out.write(text + "\n")
            if self.tty and self.status:
                self.out.write(self.status)
            self.out.flush()

    def progress(self, text, force=False):
        with self.lock:
            if self.tty:
                self._clear()
                self.status = text
                self.out.write(text)
            elif force:
                self.out.write(text + "\n")
            self.out.flush()

    def done(self):
        with self.lock:
            self._clear()
            self.status = ""
            self.out.flush()

    def kernel_line(self, raw):
        text = raw.rstrip()
        if not text:
            return
        # Repeats are judged without numbers (addresses, pids, timings differ between kernels).
        key = re.sub(r"\d+", "#", text)
        if key in self.seen:
            self.suppressed += 1
            return
        self.seen.add(key)
        self.line("  [kernel] " + text)


def relay_stderr(console):
    """A pipe for the kernel's stderr, relayed through `console` by a thread; returns its write end."""
    r, w = os.pipe()

    def pump():
        with os.fdopen(r, "r", encoding="utf-8", errors="replace") as f:
            for raw in f:
                console.kernel_line(raw)

    threading.Thread(target=pump, daemon=True).start()
    return w


class Progress:
    """Tracks the running cell of one notebook and shows `name · cell i/n · m:ss`, plus an estimate
    from the previous run's cell times."""

    def __init__(self, console, name, nb, previous):
        self.console = console
        self.name = name
        self.code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        self.ids = {i: (nb.cells[i].get("id") or f"#{i}") for i in self.code}
        self.previous = previous or {}
        self.cells = {}
        self.t0 = time.time()
        self.current = None
        self.cell_t0 = self.t0
        self.stop = threading.Event()
        self.last_line = 0.0
        self.thread = threading.Thread(target=self._tick, daemon=True)

    def start(self):
        self.t0 = time.time()
        self.thread.start()

    def on_start(self, cell=None, cell_index=None, **_):
        if cell is not None and cell.cell_type == "code":
            self.current = cell_index
            self.cell_t0 = time.time()
            self.show(force=False)

    def on_complete(self, cell=None, cell_index=None, **_):
        if cell is not None and cell.cell_type == "code" and cell_index is not None:
            self.cells[self.ids[cell_index]] = round(time.time() - self.cell_t0, 2)

    def estimate(self, now):
        prev = self.previous.get("cells") or {}
        if not prev or self.current is None:
            return None
        pos = self.code.index(self.current)
        cur_prev = prev.get(self.ids[self.current], 0.0)
        rest = sum(prev.get(self.ids[i], 0.0) for i in self.code[pos + 1:])
        return max(cur_prev - (now - self.cell_t0), 0.0) + rest

    def text(self):
        now = time.time()
        pos = self.code.index(self.current) + 1 if self.current is not None else 0
        t = f"{self.name} · cell {pos}/{len(self.code)} · {clock(now - self.t0)}"
        left = self.estimate(now)
        if left is not None:
            t += f" · about {clock(left)} left (last run {clock(self.previous.get('total', 0))})"
        return t

    def show(self, force):
        now = time.time()
        if self.console.tty:
            self.console.progress(self.text())
        elif force or now - self.last_line >= PERIOD:
            self.last_line = now
            self.console.progress(self.text(), force=True)

    def _tick(self):
        while not self.stop.wait(1.0):
            if self.current is not None:
                self.show(force=False)

    def finish(self):
        self.stop.set()
        self.console.done()
        return {"total": round(time.time() - self.t0, 1), "cells": self.cells}


def cell_text(outputs, name):
    return "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o.get("name") == name)


def run_one(path, out_dir, timeout, console, times):
    nb = nbformat.read(path, as_version=4)
    failed = {}

    def on_error(cell, cell_index, execute_reply):
        failed["index"] = cell_index

    name = os.path.basename(path)
    base = os.path.splitext(name)[0]
    progress = Progress(console, base, nb, times.get(base))
    client = NotebookClient(
        nb,
        kernel_name="tslab",
        timeout=timeout,
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}},
        on_cell_error=on_error,
        on_cell_start=progress.on_start,
        on_cell_executed=progress.on_complete,
    )
    t0 = time.time()
    error = None
    progress.start()
    kernel_stderr = relay_stderr(console)
    try:
        client.execute(stderr=kernel_stderr)
    except (CellExecutionError, CellTimeoutError) as e:
        idx = failed.get("index")
        if idx is None:  # a timeout: the last cell that started is the culprit
            started = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("execution_count")]
            idx = started[-1] if started else -1
        cell = nb.cells[idx] if idx >= 0 else None
        text = cell_text(cell.outputs, "stderr").strip() if cell else ""
        code_no = sum(1 for c in nb.cells[: idx + 1] if c.cell_type == "code")
        error = {
            "cell": idx,
            "code_cell": code_no,
            "source": cell.source if cell else "",
            "text": text or str(e).strip().splitlines()[-1],
        }
    except Exception as e:  # kernel died, could not start …
        error = {"cell": -1, "code_cell": 0, "source": "", "text": f"{type(e).__name__}: {e}"}
    finally:
        os.close(kernel_stderr)
    secs = time.time() - t0
    timing = progress.finish()
    if error:
        write_atomic(nb, os.path.join(out_dir, base + ".failed.ipynb"))
        print(f"✗ {name:40s} {secs:7.1f}s  FAILED in code cell {error['code_cell']} (cell index {error['cell']})", flush=True)
        src = "\n".join("    | " + line for line in error["source"].splitlines()[:15])
        print(f"  notebook: {path}\n  cell source:\n{src}\n  error: {error['text']}", flush=True)
        return False
    nb.metadata.setdefault("gpulab", {})["executed_seconds"] = round(secs, 1)
    nb.metadata["gpulab"]["quick"] = os.environ.get("GPULAB_QUICK", "") not in ("", "0", "false")
    if NotebookNotary is not None:
        try:
            NotebookNotary().sign(nb)
        except Exception:
            pass
    stale = os.path.join(out_dir, base + ".failed.ipynb")
    if os.path.exists(stale):
        os.unlink(stale)
    write_atomic(nb, os.path.join(out_dir, name))
    times[base] = timing
    print(f"✓ {name:40s} {secs:7.1f}s  ok", flush=True)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/notebooks")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    ap.add_argument("--times", default=TIMES_FILE, help="per-cell times of the last run (for estimates)")
    ap.add_argument("notebooks", nargs="+")
    args = ap.parse_args()
    paths = args.notebooks
    os.makedirs(args.out, exist_ok=True)
    mode = "quick" if os.environ.get("GPULAB_QUICK", "") not in ("", "0", "false") else "full"
    all_times = load_times(args.times)
    times = all_times.setdefault(mode, {})
    known = [os.path.splitext(os.path.basename(p))[0] in times for p in paths]
    estimate = ""
    if all(known):
        total = sum(times[os.path.splitext(os.path.basename(p))[0]].get("total", 0) for p in paths)
        estimate = f"; the last run took {clock(total)}"
    print(f"Executing {len(paths)} notebook(s) with the tslab kernel ({mode} mode) into {args.out}/{estimate}", flush=True)
    console = Console()
    ok = []
    for p in paths:
        ok.append(run_one(p, args.out, args.timeout, console, times))
        all_times[mode] = times
        save_times(args.times, all_times)
    if console.suppressed:
        print(f"({console.suppressed} repeated kernel stderr line(s) not shown again)", flush=True)
    print(f"{sum(ok)} of {len(ok)} notebook(s) executed cleanly", flush=True)
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
