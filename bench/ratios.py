#!/usr/bin/env python3
"""ratios - Tern/Postfix ratios per load from the benchmark kit's results.

    bench/ratios.py [--dir RESULTS_DIR] [--last N] [--base postfix]
                    [--mta tern] [--json]

Reads every results/smtp_*.jsonl that ../shared/bench/run_smtp_bench.sh
(smtp_load.sh) wrote, one JSON line per run, and groups the successful
runs by server ("label") and load:
  r1  one recipient, one message per connection
  r5  five recipients per message
  d   one recipient, connections reused (smtp-source -d)
Of each group it takes the last N runs (by their "ts", i.e. the latest
invocation; default: all) and prints the medians of ingest msg/s, e2e
msg/s, deliveries/s and server CPU ms/msg for both servers, and the
ratio mta/base (higher is better for the rates, lower for the CPU). The
last columns add up lost and duplicated messages over those runs (the
kit checks every run by Message-Id): anything but 0/0 makes the figures
worthless. Exit status 1 when a load has no runs of one of the two
servers, or lost or duplicated a message.
"""
import argparse
import glob
import json
import os
import statistics
import sys

FIGURES = [  # key in the JSON line, column title, better when
    ("ingest_msg_s", "ingest msg/s", "higher"),
    ("e2e_msg_s", "e2e msg/s", "higher"),
    ("e2e_deliv_s", "deliv/s", "higher"),
    ("server_cpu_ms_per_msg", "CPU ms/msg", "lower"),
]
LOADS = ("r1", "r5", "d")


def load_of(row):
    """r1 / r5 / d from one result line, or None for another shape."""
    extra = row.get("cmd", "").split()
    if "-d" in extra:
        return "d" if row.get("rcpts", 1) == 1 else None
    return {1: "r1", 5: "r5"}.get(row.get("rcpts", 1))


def read_rows(results_dir, failed):
    """Successful runs; failed (smtp-source failed) or stalled runs are
    counted in failed[(label, load)] instead."""
    rows = []
    for path in sorted(glob.glob(os.path.join(results_dir, "smtp_*.jsonl"))):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if "label" not in r:
                    continue
                r["load"] = load_of(r)
                if not r["load"]:
                    continue
                if r.get("failed") or r.get("stalled"):
                    k = (r["label"], r["load"])
                    failed[k] = failed.get(k, 0) + 1
                    continue
                rows.append(r)
    return rows


def medians(rows, last):
    """{(label, load): {"runs": n, key: median, "missing": sum, "dup": sum}}"""
    groups = {}
    for r in rows:
        groups.setdefault((r["label"], r["load"]), []).append(r)
    out = {}
    for k, g in groups.items():
        g.sort(key=lambda r: r.get("ts", ""))
        if last:
            g = g[-last:]
        m = {"runs": len(g),
             "missing": sum(r.get("missing", 0) or 0 for r in g),
             "dup": sum(r.get("dup_files", 0) or 0 for r in g),
             "msgs": g[-1].get("msgs")}
        for key, _, _ in FIGURES:
            vals = [r[key] for r in g if isinstance(r.get(key), (int, float))]
            m[key] = statistics.median(vals) if vals else None
        out[k] = m
    return out


def fmt(v):
    if v is None:
        return "-"
    return "%.3g" % v if abs(v) < 100 else "%.0f" % v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=os.environ.get(
        "RESULTS_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                    "tern-bench-results")))
    ap.add_argument("--last", type=int, default=0,
                    help="the last N runs of each server and load (0 = all)")
    ap.add_argument("--base", default="postfix")
    ap.add_argument("--mta", default="tern")
    ap.add_argument("--json", action="store_true",
                    help="one JSON object instead of the table")
    a = ap.parse_args()

    failed = {}
    m = medians(read_rows(a.dir, failed), a.last)
    result, bad = {}, False
    for load in LOADS:
        b, t = m.get((a.base, load)), m.get((a.mta, load))
        if not b and not t:
            continue
        if not b or not t:
            bad = True
        row = {"base": b, "mta": t, "ratio": {}}
        for key, _, _ in FIGURES:
            bv, tv = (b or {}).get(key), (t or {}).get(key)
            row["ratio"][key] = tv / bv if bv and tv is not None else None
        for s in (b, t):
            if s and (s["missing"] or s["dup"]):
                bad = True
        result[load] = row
    if a.json:
        print(json.dumps(result, indent=1, sort_keys=True))
        return 1 if bad or not result else 0
    if not result:
        print("ratios: no results in %s" % a.dir, file=sys.stderr)
        return 1
    print("medians in %s%s; ratio = %s / %s (rates: higher is better; "
          "CPU: lower is better)"
          % (a.dir, " (last %d runs)" % a.last if a.last else "",
             a.mta, a.base))
    head = "%-4s %-8s %5s" % ("load", "server", "runs")
    for _, title, _ in FIGURES:
        head += " %13s" % title
    head += " %12s" % "lost/dup"
    print(head)
    print("-" * len(head))
    for load, row in result.items():
        for name, s in ((a.base, row["base"]), (a.mta, row["mta"])):
            line = "%-4s %-8s %5s" % (load, name, s["runs"] if s else 0)
            for key, _, _ in FIGURES:
                line += " %13s" % fmt(s.get(key) if s else None)
            line += " %12s" % ("%d/%d" % (s["missing"], s["dup"])
                               if s else "-")
            print(line)
        line = "%-4s %-8s %5s" % (load, "ratio", "")
        for key, _, _ in FIGURES:
            r = row["ratio"][key]
            line += " %13s" % ("-" if r is None else "%.2fx" % r)
        print(line)
        print()
    for (label, load), n in sorted(failed.items()):
        print("ratios: WARNING: %d failed or stalled run(s) of %s %s left "
              "out (see the .jsonl files)" % (n, label, load),
              file=sys.stderr)
    if bad:
        print("ratios: WARNING: a load lacks runs of one server, or a run "
              "lost or duplicated messages", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
