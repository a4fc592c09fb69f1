#!/usr/bin/env python3
"""Execute notebooks headless with the tslab kernel, into a build folder.

Never rewrites the committed sources. Prints one progress line per notebook (name, seconds,
status). On the first failing cell it stops that notebook and reports the notebook's name, the
cell's number and source, and the error text; the partial run is kept as NAME.failed.ipynb.
The executed copy is signed (trusted) so classic Notebook shows its SVG charts.

Usage: run_notebooks.py [--out DIR] [--timeout SECONDS] [NOTEBOOK ...]
Exit status: 0 when every notebook ran clean, 1 otherwise.
"""
import argparse
import glob
import os
import sys
import tempfile
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


def cell_text(outputs, name):
    return "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o.get("name") == name)


def run_one(path, out_dir, timeout):
    nb = nbformat.read(path, as_version=4)
    failed = {}

    def on_error(cell, cell_index, execute_reply):
        failed["index"] = cell_index

    client = NotebookClient(
        nb,
        kernel_name="tslab",
        timeout=timeout,
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}},
        on_cell_error=on_error,
    )
    name = os.path.basename(path)
    t0 = time.time()
    error = None
    try:
        client.execute()
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
    secs = time.time() - t0
    base = os.path.splitext(name)[0]
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
    print(f"✓ {name:40s} {secs:7.1f}s  ok", flush=True)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/notebooks")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    ap.add_argument("notebooks", nargs="*")
    args = ap.parse_args()
    paths = args.notebooks or sorted(glob.glob("notebooks/*.ipynb"))
    if not paths:
        print("no notebooks found", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    mode = "quick" if os.environ.get("GPULAB_QUICK", "") not in ("", "0", "false") else "full"
    print(f"Executing {len(paths)} notebook(s) with the tslab kernel ({mode} mode) into {args.out}/", flush=True)
    ok = [run_one(p, args.out, args.timeout) for p in paths]
    print(f"{sum(ok)} of {len(ok)} notebook(s) executed cleanly", flush=True)
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
