#!/usr/bin/env python3
"""Turns the ```c blocks of a Markdown page into C that the build compiles, so that no
snippet in the documentation can stop compiling unnoticed.

  extract_snippets.py program PAGE.md OUT.c     the page's whole program, alone
  extract_snippets.py fragments PAGE.md OUT.c   every other block, wrapped (below)
  extract_snippets.py check ROOT PAGE.md...     fails if a page under ROOT/docs, or
                                                ROOT/README.md, has a ```c block and
                                                is not one of the PAGEs listed

The rule a ```c block follows (docs/design.md, "Documentation"):
- A block that defines `main` is a whole program: `program` writes it as it is (the
  README's example, which the tests also run).
- Any other block is a fragment. Its lines that start in column 0 with `#`, `typedef`
  or `static` begin file-scope code (an include, a type, a function, a `tg_op`), which
  runs to the end of its braces or its `;`; the rest of the block is the body of a
  function of its own, `int snippet_<line>(void)`. Blocks are emitted in the page's
  order, so a fragment may use the types and functions of the blocks above it.
- `...` stands for statements left out: a lone `...`, or `... words ...` on one line,
  becomes an empty statement. Anything else must be C as written.
- What a fragment uses but does not declare is declared in an HTML comment right
  above its fence, which Markdown does not show: `<!-- c: tg_tape *tp; int epoch; -->`.
  Those declarations are emitted at file scope, before the fragment.
`#line` directives point the compiler's messages at the page's own lines. Every
fragment file includes <tapegrad.h>, <math.h>, <stdbool.h>, <stdio.h>, <stdlib.h> and
<string.h>.
"""
import os
import re
import sys

FENCE_C = re.compile(r'^```c\s*$')
CONTEXT = re.compile(r'<!--\s*c:(.*?)-->', re.S)


def blocks(path):
    """(first line number, lines, context text or None, context line) of each ```c block."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    lines = text.split('\n')
    out, i = [], 0
    while i < len(lines):
        if FENCE_C.match(lines[i]):
            body, j = [], i + 1
            while j < len(lines) and lines[j].rstrip() != '```':
                body.append(lines[j])
                j += 1
            if j == len(lines):
                sys.exit('%s:%d: a ```c block that is never closed' % (path, i + 1))
            ctx, ctx_line = None, 0
            if i > 0 and lines[i - 1].rstrip().endswith('-->'):
                start = text.rfind('<!--', 0, sum(len(l) + 1 for l in lines[:i]))
                m = CONTEXT.match(text, start)
                if m:
                    ctx, ctx_line = m.group(1), text.count('\n', 0, start) + 1
            out.append((i + 2, body, ctx, ctx_line))
            i = j
        i += 1
    return out


def is_program(body):
    return any(re.match(r'\s*int\s+main\s*\(', l) for l in body)


def mask(code, strings=True):
    """code with comments blanked (newlines kept) and, if strings, string and char
    literals' contents replaced by 'x', so that searches see only C tokens; the same
    length as code."""
    out, i, n = list(code), 0, len(code)
    while i < n:
        c = code[i]
        if code.startswith('/*', i):
            j = code.find('*/', i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if out[k] != '\n':
                    out[k] = ' '
            i = j
        elif code.startswith('//', i):
            while i < n and code[i] != '\n':
                out[i] = ' '
                i += 1
        elif c in '"\'':
            j = i + 1
            while j < n and code[j] != c and code[j] != '\n':
                j += 2 if code[j] == '\\' else 1
            for k in range(i + 1, min(j, n)) if strings else ():
                out[k] = 'x'
            i = j + 1
        else:
            i += 1
    return ''.join(out)


def fill_ellipses(code):
    """`... words ...` on one line, or a lone `...`, outside comments and strings: ';'."""
    m = mask(code)
    spans = [(x.start(), x.end()) for x in re.finditer(r'\.\.\.[^\n]*?\.\.\.|\.\.\.', m)]
    for a, b in reversed(spans):
        code = code[:a] + ';' + ' ' * (b - a - 1) + code[b:]
    # comments go too: they may hold `...`, and nothing the compiler needs
    return '\n'.join(l.rstrip() for l in mask(code, strings=False).split('\n'))


def split_scope(lines):
    """(file-scope lines, body lines): each as long as lines, blank where the other is."""
    top, body, inside, depth = [], [], False, 0
    for line in lines:
        starts = bool(re.match(r'(#|typedef\b|static\b)', line))
        if not inside and starts:
            inside = True
            depth = 0
        if inside:
            top.append(line)
            body.append('')
            depth += line.count('{') - line.count('}')
            if line.startswith('#'):
                inside = line.rstrip().endswith('\\')
            elif depth == 0 and re.search(r'[;}]\s*$', line):
                inside = False
        else:
            top.append('')
            body.append(line)
    return top, body


def fragments(page, path, out):
    rel = os.path.relpath(path, os.path.dirname(os.path.abspath(__file__)) + '/..')
    w = ['/* generated from %s by docs/extract_snippets.py: its ```c fragments */' % rel,
         '#include <tapegrad.h>', '', '#include <math.h>', '#include <stdbool.h>', '#include <stdio.h>',
         '#include <stdlib.h>', '#include <string.h>', '']
    names = []
    for first, body, ctx, ctx_line in page:
        if is_program(body):
            continue
        code = fill_ellipses('\n'.join(body)).split('\n')
        top, inner = split_scope(code)
        if any(l.strip() for l in top):
            w += ['#line %d "%s"' % (first, rel)] + top
        if ctx:
            w += ['#line %d "%s"' % (ctx_line, rel), ctx.strip()]
        if any(l.strip() for l in inner):
            name = 'snippet_%d' % first
            names.append(name)
            w += ['int %s(void);' % name, 'int %s(void)' % name, '{',
                  '#line %d "%s"' % (first, rel)] + inner + ['    return 0;', '}']
    w += ['', '/* compiled and linked, not run: the fragments are not a program */',
          'int main(void)', '{', '    return 0;', '}', '']
    with open(out, 'w', encoding='utf-8') as f:
        f.write('\n'.join(w))


def program(page, path, out):
    progs = [body for _, body, _, _ in page if is_program(body)]
    if len(progs) != 1:
        sys.exit('extract_snippets.py: %s has %d ```c blocks that define main (1 expected)'
                 % (path, len(progs)))
    with open(out, 'w', encoding='utf-8') as f:
        f.write('/* generated from %s by docs/extract_snippets.py */\n' % os.path.basename(path))
        f.write('\n'.join(progs[0]) + '\n')


def check(root, listed):
    pages = [os.path.join(root, 'README.md')]
    for d, _, files in os.walk(os.path.join(root, 'docs')):
        pages += [os.path.join(d, f) for f in files if f.endswith('.md')]
    listed = {os.path.realpath(p) for p in listed}
    missing = [os.path.relpath(p, root) for p in sorted(pages)
               if blocks(p) and os.path.realpath(p) not in listed]
    if missing:
        sys.exit('extract_snippets.py: ```c blocks that no test compiles (list the page in '
                 'docs/meson.build): ' + ', '.join(missing))
    print('%d pages with ```c blocks, all compiled' % len(listed))


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == 'check':
        return check(sys.argv[2], sys.argv[3:])
    if len(sys.argv) != 4 or sys.argv[1] not in ('program', 'fragments'):
        sys.exit(__doc__.split('\n\n')[1])
    page = blocks(sys.argv[2])
    (program if sys.argv[1] == 'program' else fragments)(page, sys.argv[2], sys.argv[3])


if __name__ == '__main__':
    main()
