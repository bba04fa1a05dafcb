#!/usr/bin/env python3
"""check_documented.py HEADER... — fails (exit 1) when a public function has no comment.

A function is documented by a comment on the line(s) right above it, or above the run
of adjacent declarations it belongs to, or by a comment after it on its own line; the
rules, and the parser, are docs/headerdoc.py's, the same that give the comments to
Doxygen for the API reference. Each undocumented function is listed as FILE:LINE: name.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs"))
import headerdoc  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: check_documented.py HEADER...", file=sys.stderr)
        sys.exit(2)
    sys.exit(headerdoc.check(sys.argv[1:]))
