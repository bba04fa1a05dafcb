#!/usr/bin/env python3
"""check_quotes.py TUTORIAL_DIR — fails (exit 1) when a chapter quotes output its program
does not print.

Chapter NN-*.md of the tutorial quotes the output of its example program in fenced
blocks marked ```text. Every such block must appear, line for line and contiguously,
in the program's checked output, examples/chN_*.expected (which the docs/chN_* tests
compare with what the program prints). A line holding only "..." inside a block
elides: the lines before and after it are checked as separate runs. Other fenced
blocks (```c, or unmarked formulas) are not checked.

Python 3 standard library only.
"""
import glob
import os
import sys


def text_blocks(markdown):
    """(line number, lines) of each ```text block."""
    blocks, cur, start = [], None, 0
    for n, line in enumerate(markdown.split("\n"), 1):
        if cur is None and line.strip() == "```text":
            cur, start = [], n + 1
        elif cur is not None and line.strip() == "```":
            blocks.append((start, cur))
            cur = None
        elif cur is not None:
            cur.append(line)
    return blocks


def runs(block):
    run = []
    for line in block:
        if line.strip() == "...":
            if run:
                yield run
            run = []
        else:
            run.append(line)
    if run:
        yield run


def contains(haystack, run):
    k = len(run)
    return any(haystack[i:i + k] == run for i in range(len(haystack) - k + 1))


def main(argv):
    if len(argv) != 2:
        print("usage: check_quotes.py TUTORIAL_DIR", file=sys.stderr)
        return 2
    tdir = argv[1]
    bad = checked = 0
    chapters = sorted(glob.glob(os.path.join(tdir, "[0-9][0-9]-*.md")))
    if not chapters:
        print(f"check_quotes: no chapters in {tdir}")
        return 1
    for chapter in chapters:
        num = int(os.path.basename(chapter)[:2])
        expected = glob.glob(os.path.join(tdir, "examples", f"ch{num}_*.expected"))
        with open(chapter, encoding="utf-8") as f:
            blocks = text_blocks(f.read())
        if not blocks:
            continue
        if len(expected) != 1:
            print(f"{chapter}: quotes output but there is no single examples/ch{num}_*.expected")
            bad += 1
            continue
        with open(expected[0], encoding="utf-8") as f:
            out = f.read().split("\n")
        for start, block in blocks:
            for run in runs(block):
                checked += 1
                if not contains(out, run):
                    first = next((l for l in run if not contains(out, [l])), None)
                    why = (f"this line is not in it: {first!r}" if first is not None
                           else "its lines are there, but not together in this order")
                    print(f"{chapter}:{start}: a quoted block does not match "
                          f"{os.path.basename(expected[0])}: {why}")
                    bad += 1
    if bad:
        print(f"check_quotes: {bad} quoted block(s) differ from the programs' output")
        return 1
    print(f"check_quotes: {checked} quoted blocks in {len(chapters)} chapters match the output")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
