#!/usr/bin/env python3
"""Runs scenarios in both worlds — `tiercast sim` and `tiercast cluster` (real
processes in network namespaces) — and prints the issue-13 comparison table:
continuity, offload, startup p50/p95, lag p95, duplicate factor, control overhead,
with whether they agree (within 5 % relative; ratios near 1 — both in 0.9..1.1 —
within 0.005 absolute).

Usage: scripts/sim-vs-cluster.py [--bin PATH] [--seed S] [--runs N] [--keep DIR] SCENARIO.toml...
A run of the cluster takes the scenario's duration in wall time (plus ~15 s).
Several cluster runs (--runs) give the spread: the table shows each run's figure.
"""
import argparse, json, os, subprocess, sys, tempfile

FIELDS = [
    ("continuity_index", "continuity", True),
    ("offload", "offload", True),
    ("startup_delay_ms_p50", "startup p50 (ms)", False),
    ("startup_delay_ms_p95", "startup p95 (ms)", False),
    ("lag_ms_p95", "lag p95 (ms)", False),
    ("duplicate_factor", "duplicate factor", True),
    ("control_overhead", "control overhead", False),
]


def agree(field, ratio_near_one, a, b):
    """Within 5 % relative; a ratio near 1 (both in 0.9..1.1) within 0.005 absolute."""
    if a is None or b is None:
        return "n/a"
    if ratio_near_one and 0.9 <= a <= 1.1 and 0.9 <= b <= 1.1:
        return "yes" if abs(a - b) <= 0.005 else "**no**"
    ref = max(abs(a), abs(b))
    if ref == 0:
        return "yes"
    return "yes" if abs(a - b) / ref <= 0.05 else "**no**"


def fmt(v):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}" if v < 10 else f"{v:.0f}"
    return str(v)


def run(cmd):
    print("$", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenarios", nargs="+")
    ap.add_argument("--bin", default="target/release/tiercast")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--keep")
    a = ap.parse_args()
    base = a.keep or tempfile.mkdtemp(prefix="sim-vs-cluster-")
    for sc in a.scenarios:
        name = os.path.splitext(os.path.basename(sc))[0]
        seed = ["--seed", str(a.seed)] if a.seed is not None else []
        sim_out = os.path.join(base, name, "sim")
        run([a.bin, "sim", sc, "--out", sim_out, "--quiet"] + seed)
        sim = json.load(open(os.path.join(sim_out, "metrics.json")))
        clusters = []
        for r in range(a.runs):
            out = os.path.join(base, name, f"cluster-{r + 1}")
            run([a.bin, "cluster", sc, "--out", out] + seed)
            clusters.append(json.load(open(os.path.join(out, "metrics.json"))))
        print(f"\n### {name} (network: {clusters[0].get('network')})\n")
        head = "| figure | sim | " + " | ".join(f"cluster run {i + 1}" for i in range(a.runs)) + " | agree |"
        print(head)
        print("|" + "---|" * (a.runs + 3))
        for key, label, near_one in FIELDS:
            s = sim.get(key)
            cs = [c.get(key) for c in clusters]
            verdicts = {agree(key, near_one, s, c) for c in cs}
            verdict = "**no**" if "**no**" in verdicts else ("n/a" if verdicts == {"n/a"} else "yes")
            print(f"| {label} | {fmt(s)} | " + " | ".join(fmt(c) for c in cs) + f" | {verdict} |")
    print(f"\noutputs in {base}", file=sys.stderr)


if __name__ == "__main__":
    main()
