#!/usr/bin/env python3
"""Robustness sweep (issue 10, X5): every condition's scenario family over many seeds.

Runs each scenario of scenarios/robust/ (and top-mesh-failures.toml with every mesh
c from 2 to 5, c - 1 top-level peers crashing; partition-peers also with a 20 s cut) once per seed with the release
binary, reads metrics.json and prints one markdown table: per condition, the figure
the issue bounds, its mean, its worst value and the seed that gave it, and whether
every seed met the bound. One seed is one trajectory of a chaotic system: a claim
holds only when the worst seed meets it.

Usage:
  scripts/robust-sweep.py [--first 31] [--seeds 12] [--jobs 2] [--only NAME]...
                          [--scale 1.0] [--check] [--out DIR] [--peers-set K=V]...
                          [--from DIR]...
  --scale F   multiplies every arrival's size (count =, population =) by F: the
              small version CI runs uses --seeds 2 --scale 0.2.
  --check     exits 1 when a condition's worst seed misses its bound.
  --out DIR   keeps each run's outputs under DIR/<scenario>-<seed>/.
  --peers-set K=V  adds `K = V` to every scenario's [peers] table (an experiment:
              e.g. uplink_max_wait_ms=2000); scenarios without one are unchanged.
  --from DIR  runs nothing: the table from the runs an earlier --out DIR kept (each
              run looked for in every DIR given, the last one holding it wins).
The binary is $CARGO_TARGET_DIR/release/tiercast (target/ by default).
Progress goes to stderr, one line per run.
"""

import argparse
import concurrent.futures as cf
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "tiercast"


def dig(m, path):
    """metrics.json value at a dotted path ('fault_windows.0.continuity_after')."""
    for k in path.split("."):
        if m is None:
            return None
        m = m[int(k)] if isinstance(m, list) else m.get(k)
    return m


# (condition, scenario file, edits, [(figure path, label, bound, direction)])
# direction ">=": higher is better and the bound is a floor; "<=": a ceiling.
PARTITION = [
    ("fault_windows.0.continuity_after", "continuity after the heal", 0.995, ">="),
    ("fault_windows.0.rehomed_max_ms", "re-homed after the heal (ms)", 3000, "<="),
]
RESTART = [
    ("restarts.0.served_again_ms", "served again after it (ms)", None, "<="),
    ("fault_windows.0.continuity_after", "continuity after it", 0.995, ">="),
]
CONDITIONS = [
    (
        "origin restart (down 2 s)",
        "robust/restart-origin.toml",
        {},
        [("restarts.0.served_again_ms", "served again after it (ms)", 3000, "<="), RESTART[1]],
    ),
    (
        "coordinator restart, relays",
        "robust/restart-coordinator.toml",
        {},
        [("restarts.0.served_again_ms", "served again after it (ms)", 1000, "<="), RESTART[1]],
    ),
    (
        "coordinator restart, peers",
        "robust/restart-coordinator-peers.toml",
        {},
        [("restarts.0.served_again_ms", "served again after it (ms)", 1000, "<="), RESTART[1]],
    ),
    ("20 % of relays restart", "robust/restart-relays.toml", {}, RESTART),
    ("partition of a region, relays", "robust/partition-relays.toml", {}, PARTITION),
    ("partition of a region, peers", "robust/partition-peers.toml", {}, PARTITION),
    (
        "partition of a region for 20 s, peers",
        "robust/partition-peers.toml",
        {"until_s": 50, "duration_s": 90, "tag": "20s-"},
        PARTITION,
    ),
    (
        "loss 0.5-2 % x churn 20 %/min",
        "robust/loss-churn.toml",
        {},
        [
            ("continuity_index", "continuity", 0.99, ">="),
            ("lag_ms_p95", "lag p95 (ms)", 3000, "<="),
        ],
    ),
    (
        "tight, strong peers (Σu 1.05)",
        "robust/tight-strong-105.toml",
        {},
        [("peers.continuity_index_admitted", "admitted continuity", 0.995, ">=")],
    ),
    (
        "tight, strong peers (Σu 1.10)",
        "robust/tight-strong.toml",
        {},
        [("peers.continuity_index_admitted", "admitted continuity", 0.995, ">=")],
    ),
    (
        "tight, strong peers (Σu 1.20)",
        "robust/tight-strong-120.toml",
        {},
        [("peers.continuity_index_admitted", "admitted continuity", 0.995, ">=")],
    ),
    (
        "tight, strong peers (Σu 1.25)",
        "robust/tight-strong-125.toml",
        {},
        [("peers.continuity_index_admitted", "admitted continuity", 0.995, ">=")],
    ),
    (
        "full recomputation every 20 s",
        "robust/full-recompute.toml",
        {},
        [
            ("recompute_min_second_continuity_members", "worst second around one, members then", 0.99, ">="),
            ("recompute_min_second_continuity", "worst second around one, every viewer", 0.99, ">="),
            ("recompute_min_second_received", "worst second received", None, ">="),
        ],
    ),
] + [
    (
        f"top mesh c = {c}, {c - 1} top peers crash",
        "top-mesh-failures.toml",
        {"mesh_c": c, "count": c - 1},
        [
            ("continuity_index", "continuity", None, ">="),
            ("peers.top_level_blocks_missed_after_fault", "top blocks missed after", None, "<="),
        ],
    )
    for c in range(2, 6)
]


def edit(text, seed, scale, edits):
    text = re.sub(r"(?m)^seed = .*$", f"seed = {seed}", text)
    if scale != 1.0:
        # Only the arrivals' sizes: relay classes and fault counts stay as written.
        out, table = [], ""
        for line in text.split("\n"):
            if line.startswith("["):
                table = line.strip()
            m = re.match(r"^(count = |population = )(\d+)$", line)
            if m and table == "[[arrivals]]":
                line = f"{m.group(1)}{max(1, round(int(m.group(2)) * scale))}"
            out.append(line)
        text = "\n".join(out)
    for kv in edits.get("peers_set", []):
        text = re.sub(r"(?m)^\[peers\]$", lambda m: f"[peers]\n{kv.replace('=', ' = ', 1)}", text)
    for key in ("until_s", "duration_s"):
        # A fault's end and the run's length (the partition condition's longer cut).
        if key in edits:
            text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {edits[key]}", text)
    if "mesh_c" in edits:
        text = re.sub(r"(?m)^mesh_c = .*$", f"mesh_c = {edits['mesh_c']}", text)
    if "count" in edits:
        # The crash's count: the line after 'top_peers = true'.
        text = re.sub(r"(?m)^(top_peers = true\n)count = \d+$",
                      lambda m: f"{m.group(1)}count = {edits['count']}", text)
    return text


def run_dir(keep, path, edits, seed):
    """Where --out keeps one run's outputs."""
    return Path(keep) / f"{Path(path).stem}-{edits.get('tag', edits.get('mesh_c', ''))}{seed}"


def read_one(job, dirs):
    """A kept run's metrics (--from), or why there is none."""
    cond, path, edits, seed, _, _ = job
    found = [run_dir(d, path, edits, seed) / "metrics.json" for d in dirs]
    found = [f for f in found if f.is_file()]
    if not found:
        return cond, seed, None, ["not kept in " + ", ".join(dirs)]
    return cond, seed, json.loads(found[-1].read_text()), None


def run_one(job):
    cond, path, edits, seed, scale, keep = job
    text = edit((ROOT / "scenarios" / path).read_text(), seed, scale, edits)
    with tempfile.TemporaryDirectory() as tmp:
        sc = Path(tmp) / "s.toml"
        sc.write_text(text)
        out = run_dir(keep, path, edits, seed) if keep else Path(tmp) / "out"
        r = subprocess.run([str(BIN), "sim", str(sc), "--out", str(out)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return cond, seed, None, r.stderr.strip().splitlines()[-1:] or ["failed"]
        return cond, seed, json.loads((out / "metrics.json").read_text()), None


def better(a, b, direction):
    return a >= b if direction == ">=" else a <= b


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--first", type=int, default=31)
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--peers-set", action="append", default=[])
    ap.add_argument("--from", dest="from_dirs", action="append", default=[])
    a = ap.parse_args()
    if any("=" not in kv for kv in a.peers_set):
        sys.exit("robust-sweep: --peers-set takes KEY=VALUE")
    if a.seeds < 1 or a.jobs < 1 or not (0 < a.scale <= 10):
        sys.exit("robust-sweep: --seeds and --jobs must be ≥ 1, --scale in (0, 10]")
    if not a.from_dirs:
        r = subprocess.run(["cargo", "build", "--release", "-q", "-p", "tiercast"], cwd=ROOT)
        if r.returncode != 0:
            sys.exit("robust-sweep: the release build failed")
    conds = [c for c in CONDITIONS if not a.only or any(o in c[1] or o in c[0] for o in a.only)]
    if not conds:
        sys.exit(f"robust-sweep: no condition matches {a.only}")
    jobs = [(c[0], c[1], {**c[2], "peers_set": a.peers_set}, s, a.scale, a.out)
            for c in conds for s in range(a.first, a.first + a.seeds)]
    results = {}
    failed = []
    with cf.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        work = (map(lambda j: read_one(j, a.from_dirs), jobs) if a.from_dirs
                else ex.map(run_one, jobs))
        for i, (cond, seed, m, err) in enumerate(work, 1):
            print(f"[{i}/{len(jobs)}] {cond} seed {seed}: {'ok' if m else 'FAILED ' + ' '.join(err)}",
                  file=sys.stderr)
            if m is None:
                failed.append((cond, seed))
            results.setdefault(cond, []).append((seed, m))
    print(f"seeds {a.first}..{a.first + a.seeds - 1}, scale {a.scale}\n")
    print("| condition | figure | mean | worst (seed) | bound | every seed |")
    print("|---|---|---|---|---|---|")
    missed = []
    for cond, _, _, figs in conds:
        runs = [(s, m) for s, m in results.get(cond, []) if m is not None]
        for path, label, bound, direction in figs:
            vals = [(s, dig(m, path)) for s, m in runs]
            absent = [s for s, v in vals if v is None]
            vals = [(s, v) for s, v in vals if v is not None]
            if not vals:
                print(f"| {cond} | {label} | – | – | {bound if bound is not None else '–'} | no figure |")
                if bound is not None:
                    missed.append(cond)
                continue
            mean = sum(v for _, v in vals) / len(vals)
            worst = min(vals, key=lambda x: x[1]) if direction == ">=" else max(vals, key=lambda x: x[1])
            fmt = (lambda v: f"{v:.4f}") if isinstance(worst[1], float) and abs(worst[1]) <= 1.0 else (lambda v: f"{v:.0f}")
            if bound is None:
                ok = "–"
            else:
                n_ok = sum(better(v, bound, direction) for _, v in vals)
                ok = f"{n_ok} of {len(vals) + len(absent)}"
                if n_ok < len(vals) + len(absent):
                    missed.append(cond)
            note = f" ({len(absent)} without the figure)" if absent else ""
            b = f"{direction} {bound}" if bound is not None else "–"
            print(f"| {cond} | {label} | {fmt(mean)} | {fmt(worst[1])} (seed {worst[0]}) | {b} | {ok}{note} |")
    if failed:
        print(f"\nruns that failed: {failed}")
    if a.check and (missed or failed):
        sys.exit(f"robust-sweep: bounds missed in {sorted(set(missed))}")


if __name__ == "__main__":
    main()
