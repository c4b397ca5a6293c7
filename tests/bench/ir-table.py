#!/usr/bin/env python3
"""ir-table.py - the instructions-per-operation table of tests/bench/README.md, from a run.

    python3 tests/bench/ir-table.py build/bench/bench-ir.csv

`make bench-ir` writes the CSV (one row per build, workload, allocator and phase); this
prints the Markdown table the README shows, so the figures there come from a real run and
are never edited by hand.  Columns: the builds bench.mk makes, the judged one first; "vs
locked" is Ir/op over freelist+tas of the same build.
"""
import csv
import sys

BUILDS = [  # (build label in the CSV, column heading, with a "vs locked" column)
    ("LMM_DEBUG=1/minimal-port/MAX_CPUS=16", "minimal port, 16 CPUs (judged)", True),
    ("LMM_DEBUG=1/minimal-port/MAX_CPUS=1", "minimal port, 1 CPU", False),
    ("LMM_DEBUG=1/minimal-inline-port/MAX_CPUS=16", "minimal port, hooks inline", True),
    ("LMM_DEBUG=0/minimal-port/MAX_CPUS=16", "minimal port, LMM_DEBUG=0", False),
    ("LMM_DEBUG=1/host-port/MAX_CPUS=16", "host port, 16 CPUs", True),
    ("LMM_DEBUG=0/host-port/MAX_CPUS=16", "host port, LMM_DEBUG=0", False),
]
ROWS = [  # (row label, allocator label, CSV workload, CSV allocator, phase, bold in the judged column)
    ("W1 warm pair", "freelist", "W1 warm order-0", "freelist", "pair", False),
    ("", "freelist+tas", "W1 warm order-0", "freelist+tas", "pair", True),
    ("", "freelist+portlock", "W1 warm order-0", "freelist+portlock", "pair", False),
    ("", "checked list+tas", "W1 warm order-0", "checked list+tas", "pair", False),
    ("", "mm/", "W1 warm order-0", "mm/", "pair", True),
    ("", "mm/ no-cache", "W1 warm order-0", "mm/ no-cache", "pair", False),
    ("", "mm/ +holders", "W1 warm order-0", "mm/ +holders", "pair", False),
    ("W1 warm pair, interrupts off", "freelist+tas", "W1 warm irqs-off", "freelist+tas", "pair", False),
    ("", "mm/", "W1 warm irqs-off", "mm/", "pair", False),
    ("W1 cold pair", "mm/ (cache on: = warm)", "W1 cold order-0", "mm/", "pair", False),
    ("", "mm/ no-cache", "W1 cold order-0", "mm/ no-cache", "pair", True),
    ("W2 alloc", "freelist+tas", "W2 exhaust+rand free", "freelist+tas", "alloc", False),
    ("", "mm/", "W2 exhaust+rand free", "mm/", "alloc", False),
    ("", "mm/ no-cache", "W2 exhaust+rand free", "mm/ no-cache", "alloc", False),
    ("W2 random free", "freelist+tas", "W2 exhaust+rand free", "freelist+tas", "free", False),
    ("", "mm/", "W2 exhaust+rand free", "mm/", "free", False),
    ("", "mm/ no-cache", "W2 exhaust+rand free", "mm/ no-cache", "free", True),
    ("W3 50% geometric, per op", "mm/", "W3 50% geometric", "mm/", "op", False),
    ("W3 50% uniform", "mm/", "W3 50% uniform", "mm/", "op", False),
    ("W3 90% geometric", "mm/", "W3 90% geometric", "mm/", "op", False),
    ("W3 90% uniform", "mm/", "W3 90% uniform", "mm/", "op", False),
    ("W4 init 1 GiB, per frame", "mm/", "W4 init 1 GiB", "mm/", "init per frame", False),
    ("W4 init 16 GiB sparse, per frame", "mm/", "W4 init 16 GiB sparse", "mm/", "init per frame", False),
    ("W5 atomic exclusive pair", "freelist+tas", "W5 atomic pool pair", "freelist+tas", "pair", True),
    ("", "mm/ atomic-excl", "W5 atomic pool pair", "mm/ atomic-excl", "pair", True),
]


def figure(v, phase):
    if phase == "init per frame":
        return "%.1f" % v
    text = "%.1f" % v
    return text[:-2] if text.endswith(".0") else text


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: ir-table.py build/bench/bench-ir.csv")
    ir = {}
    for r in csv.DictReader(open(sys.argv[1])):
        ir[(r["build"], r["workload"], r["allocator"], r["phase"])] = float(r["ir_per_op"])
    head = ["workload", "allocator"]
    for _, title, vs in BUILDS:
        head += [title] + (["vs locked"] if vs else [])
    print("| " + " | ".join(head) + " |")
    print("|---|---|" + "---:|" * (len(head) - 2))
    for label, alloc, wl, csv_alloc, phase, bold in ROWS:
        cells = [label, alloc]
        for i, (build, _, vs) in enumerate(BUILDS):
            key = (build, wl, csv_alloc, phase)
            if key not in ir:
                sys.exit("ir-table: no figure for %s / %s / %s / %s in %s" % (key + (sys.argv[1],)))
            v = ir[key]
            text = figure(v, phase)
            cells.append("**%s**" % text if bold and i == 0 else text)
            if vs:
                base = ir.get((build, wl, "freelist+tas", phase))
                cells.append("%.2fx" % (v / base) if base and phase in ("pair", "alloc", "free") else "")
        print("| " + " | ".join(cells) + " |")


main()
