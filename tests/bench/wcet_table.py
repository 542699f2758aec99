#!/usr/bin/env python3
"""wcet_table.py - the bench-wcet tables of two heap sizes side by side.

    tests/bench/wcet_table.py SMALL.log LARGE.log [--md]

Reads the "# wcet NAME calls mean p50 p99 p99.99 max" lines that
tests/bench/wcet.h prints (guest console logs or the host benchmark's
output), and prints for every operation p50, p99.99 and max on the small
heap, max on the large one, and "grows" where the large heap's max is
higher.  --md: a Markdown table (the README's).

Bounds: pfa_alloc/pfa_free of order k also have a constructed worst case
in the adversarial section ("pfa_alloc order k, split 10-k", "pfa_free
order k, merge 10-k": the deepest split and merge there are).  For those
rows (and the "all orders" ones) the bound column is max(the mixed run's
max, the constructed max), on each heap; "grows" compares the maxima and
the bounds alike.

First it says whether the two runs made the same calls: the workload's
choices do not depend on a call's outcome (a failed call leaves a
phantom), so two runs of one seed differ in their call counts only where
a call failed on one heap and not on the other.  Then each differing row
is marked "(calls differ)", and every max compares heaps whose contents
differ from the first failure on: not like with like.  Exit status 0
either way (it is a table, not a test).
"""
import re
import sys

ROW = re.compile(r"^# wcet (?!  )(.+?)\s+(\d+)\s+(\d+)\s+(<?\d+)\s+(<?\d+)\s+(<?\d+)\s+(\d+)\s*$")


def rows(path):
    out = {}
    order = []
    section = "mixed"
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line.startswith("# wcet adversarial"):
                section = "adversarial"
            m = ROW.match(line)
            if not m or m.group(1) == "operation":
                continue
            key = (section, m.group(1).strip())
            if key not in out:
                order.append(key)
            out[key] = dict(calls=int(m.group(2)), p50=m.group(4), p9999=m.group(6),
                            max=int(m.group(7)))
    return order, out


def constructed(table, name):
    """The constructed worst case(s) for a mixed row, or None."""
    m = re.match(r"pfa_(alloc|free) (?:order (\d+)|\(all orders\))$", name)
    if not m:
        return None
    kind, order = m.group(1), m.group(2)
    pat = re.compile(r"pfa_%s order %s, (split|merge) \d+$" % (kind, order or r"\d+"))
    hits = [v["max"] for (sec, n), v in table.items() if sec == "adversarial" and pat.match(n)]
    return max(hits) if hits else None


def bound(table, key):
    c = constructed(table, key[1]) if key[0] == "mixed" else None
    return None if c is None else max(c, table[key]["max"])


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    md = "--md" in sys.argv
    if len(args) != 2:
        sys.exit(__doc__)
    order, small = rows(args[0])
    _, large = rows(args[1])
    differ = {k for k in order if k in large and large[k]["calls"] != small[k]["calls"]}
    differ |= {k for k in order if k not in large} | {k for k in large if k not in small}
    if differ:
        print("calls differ in %d rows (a call failed on one heap only): the maxima after"
              " the first failure compare different heap contents" % len(differ))
    else:
        print("same calls on both heaps (every row's call count equal): like with like")
    head = ("operation", "calls", "p50", "p99.99", "max", "max, large heap", "bound",
            "bound, large heap")
    if md:
        print("| " + " | ".join(head) + " |")
        print("|---|--:|--:|--:|--:|--:|--:|--:|")
    else:
        print("%-30s %10s %8s %9s %9s %16s %7s %17s" % head)
    section = None
    for key in order:
        s, l = small[key], large.get(key)
        if key[0] != section:
            section = key[0]
            if md:
                print("| *%s* | | | | | | | |" % section)
            else:
                print("-- %s" % section)
        lmax = l["max"] if l else None
        grows = lmax is not None and lmax > s["max"]
        lm = "-" if lmax is None else "%d%s" % (lmax, " (grows)" if grows else "")
        if key in differ:
            lm += " (calls differ)"
        bs, bl = bound(small, key), (bound(large, key) if l else None)
        bsm = "" if bs is None else "%d" % bs
        blm = "" if bl is None else "%d%s" % (bl, " (grows)" if bs is not None and bl > bs else "")
        if md:
            print("| %s | %d | %s | %s | %d | %s | %s | %s |" % (
                key[1], s["calls"], s["p50"], s["p9999"], s["max"], lm, bsm, blm))
        else:
            print("%-30s %10d %8s %9s %9d %16s %7s %17s" % (
                key[1], s["calls"], s["p50"], s["p9999"], s["max"], lm, bsm, blm))


if __name__ == "__main__":
    main()
