#!/usr/bin/env python3
"""headerdoc.py — what the public headers' comments document, for Doxygen and for a test.

The headers document with plain C comments, as the rest of the code does:

    /* A comment on the line(s) right above a declaration documents it. When several
     * declarations follow on adjacent lines (no blank line between), it documents
     * them all: a group. */
    tg_tape *tg_tape_new(uint64_t seed); /* a comment after a declaration documents it too */

A banner (/* ------ name */) or a comment followed by a blank line documents nothing.

Two uses:

  headerdoc.py --filter FILE      FILE with those comments in Doxygen's form, on stdout
                                  (the Doxyfile's INPUT_FILTER): a leading comment
                                  becomes /** ... */, a trailing one /**< ... */, a group
                                  a member group (/**@{*/ ... /**@}*/) whose first member's
                                  comment Doxygen gives to each (DISTRIBUTE_GROUP_DOC),
                                  the file's opening comment the file's page (@file),
                                  and an indented example or list in a comment a code
                                  block (@code ... @endcode). Lines are neither added nor removed, so
                                  Doxygen's line numbers are the header's.
  headerdoc.py --check HEADER...  lists every function declared in the headers that no
                                  comment documents, as FILE:LINE: name; exits 1 if
                                  there is one (tests/docs/check_documented.py).

Python 3 standard library only.
"""
import re
import sys

BANNER = re.compile(r"/\*\s*-{4,}")
IDENT_BEFORE_PAREN = re.compile(r"([A-Za-z_]\w*)\s*\(")
EMPTY_LINE = re.compile(r"^\s*\*\s*$")      # " *" inside a comment
CODE_LINE = re.compile(r"^\s*\*   +\S")     # " *   indented past the text"


class Comment:
    def __init__(self, line, col, end_line, end_col, trailing):
        self.line, self.col = line, col              # where "/*" starts (0-based)
        self.end_line, self.end_col = end_line, end_col  # where "*/" ends (index after '/')
        self.trailing = trailing                     # code precedes it on its first line


class Header:
    """A header split into comments and code. code[i] is line i with comments blanked."""

    def __init__(self, text):
        self.lines = text.split("\n")
        self.comments = []
        self.code = []
        in_comment = None
        for n, line in enumerate(self.lines):
            out = []
            i = 0
            while i < len(line):
                if in_comment is not None:
                    j = line.find("*/", i)
                    if j < 0:
                        out.append(" " * (len(line) - i))
                        i = len(line)
                    else:
                        out.append(" " * (j + 2 - i))
                        c = in_comment
                        c.end_line, c.end_col = n, j + 2
                        self.comments.append(c)
                        in_comment = None
                        i = j + 2
                elif line.startswith("/*", i):
                    trailing = "".join(out).strip() != ""
                    in_comment = Comment(n, i, None, None, trailing)
                elif line.startswith("//", i):
                    self.comments.append(Comment(n, i, n, len(line), "".join(out).strip() != ""))
                    out.append(" " * (len(line) - i))
                    i = len(line)
                elif line[i] == '"':  # a string literal: keep it whole
                    j = i + 1
                    while j < len(line) and line[j] != '"':
                        j += 2 if line[j] == "\\" else 1
                    out.append(line[i:j + 1])
                    i = j + 1
                else:
                    out.append(line[i])
                    i += 1
            self.code.append("".join(out))
        self.by_end = {c.end_line: c for c in self.comments if not c.trailing}

    def blank(self, n):
        return not self.lines[n].strip()

    def comment_only(self, n):
        return self.lines[n].strip() != "" and self.code[n].strip() == ""


def statements(h):
    """Top-level declarations: (first line, last line, text without comments). The
    contents of '#ifdef __cplusplus' blocks and preprocessor lines other than #define
    are skipped; a #define is a statement of its own (with its continuation lines)."""
    out = []
    depth = 0
    start = None
    text = []
    skip_cpp = 0
    n = 0
    while n < len(h.lines):
        code = h.code[n]
        s = code.strip()
        if s.startswith("#"):
            if re.match(r"#\s*ifdef\s+__cplusplus", s):
                skip_cpp = 1
            elif skip_cpp and re.match(r"#\s*endif", s):
                skip_cpp = 0
            elif s.startswith("#define") or re.match(r"#\s*define", s):
                first = n
                while h.code[n].rstrip().endswith("\\"):
                    n += 1
                if depth == 0 and start is None:
                    out.append((first, n, " ".join(h.code[first:n + 1])))
            n += 1
            continue
        if skip_cpp or not s:
            n += 1
            continue
        if start is None:
            start = n
        text.append(code)
        depth += code.count("{") - code.count("}")
        if depth == 0 and s.endswith(";"):
            out.append((start, n, " ".join(text)))
            start, text = None, []
        n += 1
    return out


def function_name(stmt_text):
    """The name of the function a declaration declares, or None for anything else."""
    t = " ".join(stmt_text.split())
    if t.startswith(("#", "typedef ", "struct ", "enum ", "union ")) or "{" in t:
        return None
    t = re.sub(r"__attribute__\s*\(\(.*\)\)", "", t)
    m = IDENT_BEFORE_PAREN.search(t)
    if not m or "=" in t[:m.start()]:
        return None
    if re.search(r"\(\s*\*", t[:m.end() + 2]):  # a pointer to function: a variable
        return None
    return m.group(1)


def groups(h, stmts):
    """Runs of statements on adjacent lines: lists of statement indices. A definition
    with a body (struct, enum) ends its run: a comment above it documents it alone,
    as Doxygen reads it."""
    out = []
    for k, (first, last, _) in enumerate(stmts):
        prev = stmts[out[-1][-1]] if out else None
        if prev and prev[1] == first - 1 and "{" not in prev[2]:
            out[-1].append(k)
        else:
            out.append([k])
    return out


def leading_comment(h, first_line):
    """The comment that ends on the line above first_line, if it documents (not a banner)."""
    c = h.by_end.get(first_line - 1)
    if c and not BANNER.match(h.lines[c.line][c.col:]) and h.comment_only(c.end_line):
        return c
    return None


def trailing_comment(h, first, last):
    for c in h.comments:
        if c.trailing and first <= c.line <= last:
            return c
    return None


def undocumented(path):
    with open(path, encoding="utf-8") as f:
        h = Header(f.read())
    stmts = statements(h)
    missing = []
    for g in groups(h, stmts):
        lead = leading_comment(h, stmts[g[0]][0])
        for k in g:
            first, last, text = stmts[k]
            name = function_name(text)
            if name and not lead and not trailing_comment(h, first, last):
                missing.append((first + 1, name))
    return missing


def check(paths):
    bad = 0
    count = 0
    for p in paths:
        with open(p, encoding="utf-8") as f:
            h = Header(f.read())
        count += sum(1 for s in statements(h) if function_name(s[2]))
        for line, name in undocumented(p):
            print(f"{p}:{line}: {name}: no comment documents this function "
                  "(a comment on the line above it or its group, or after it on its line)")
            bad += 1
    if bad:
        print(f"check_documented: {bad} of {count} public functions undocumented")
        return 1
    print(f"check_documented: all {count} public functions in {len(paths)} headers are documented")
    return 0


def doxygen_filter(path):
    with open(path, encoding="utf-8") as f:
        h = Header(f.read())
    lines = list(h.lines)
    edits = []  # (line, col, old, new): applied right to left

    def open_doc(c, marker):
        edits.append((c.line, c.col, "/*", marker))

    # the file's opening comment: the file's page
    first_code = next((n for n in range(len(lines)) if h.code[n].strip()), len(lines))
    opening = next((c for c in h.comments if c.line < first_code and not c.trailing), None)
    if opening is not None:
        open_doc(opening, "/**")
        edits.append((opening.end_line, opening.end_col - 2, "*/", " @file */"))

    # every other comment that documents: right above code, or after code on its line
    for c in h.comments:
        if c is opening or not lines[c.line].startswith("/*", c.col):
            continue
        if c.trailing:
            open_doc(c, "/**<")
        elif (c.end_line + 1 < len(lines) and not h.blank(c.end_line + 1)
              and not h.comment_only(c.end_line + 1) and h.comment_only(c.end_line)
              and not BANNER.match(lines[c.line][c.col:])):
            open_doc(c, "/**")

    # examples inside doc comments: a run of lines indented past the text (" *   code")
    # after an empty comment line or a line ending in ':' is code (Markdown would want 4
    # spaces of indentation); it ends at the next line that is not indented
    for c in h.comments:
        if c.trailing or c.end_line - c.line < 2 or not any(
                e[0] == c.line and e[3].startswith("/**") for e in edits):
            continue
        n = c.line
        while n < c.end_line:
            opens = EMPTY_LINE.match(lines[n]) or lines[n].rstrip().endswith(":")
            if opens and CODE_LINE.match(lines[n + 1]):
                end = n + 1
                while end < c.end_line and (CODE_LINE.match(lines[end]) or (
                        EMPTY_LINE.match(lines[end]) and CODE_LINE.match(lines[end + 1]))):
                    end += 1  # (an empty line between two runs stays in the block)
                edits.append((n, len(lines[n]), "", " @code"))
                if EMPTY_LINE.match(lines[end]):
                    edits.append((end, len(lines[end]), "", " @endcode"))
                else:  # text, or the comment's end, right after the last code line
                    edits.append((end - 1, len(lines[end - 1]), "", " @endcode"))
                n = end
                continue
            n += 1

    # groups of declarations under one comment: member groups
    stmts = statements(h)
    for g in groups(h, stmts):
        if len(g) < 2:
            continue
        lead = leading_comment(h, stmts[g[0]][0])
        if not lead:
            continue
        last = stmts[g[-1]][1]
        edits.append((lead.line, lead.col, "", "/**@{*/ "))
        edits.append((last, len(lines[last]), "", " /**@}*/"))

    for n, col, old, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        line = lines[n]
        assert line[col:col + len(old)] == old, (path, n + 1, col, old)
        lines[n] = line[:col] + new + line[col + len(old):]
    sys.stdout.write("\n".join(lines))


def main(argv):
    if len(argv) == 3 and argv[1] == "--filter":
        doxygen_filter(argv[2])
        return 0
    if len(argv) >= 3 and argv[1] == "--check":
        return check(argv[2:])
    print("usage: headerdoc.py --filter HEADER | --check HEADER...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
