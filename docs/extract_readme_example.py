#!/usr/bin/env python3
"""Writes the first ```c block of README.md to a C file, so the build compiles the
README's example and the tests run it: the front page cannot drift from the API.

  extract_readme_example.py README.md out.c
"""
import sys


def main():
    src, out = sys.argv[1], sys.argv[2]
    lines, inside, found = [], False, False
    with open(src, encoding='utf-8') as f:
        for line in f:
            if not found and line.strip() == '```c':
                inside = found = True
                continue
            if inside and line.strip() == '```':
                break
            if inside:
                lines.append(line)
    if not found:
        sys.exit('extract_readme_example.py: %s has no ```c block' % src)
    with open(out, 'w', encoding='utf-8') as f:
        f.write('/* generated from README.md by docs/extract_readme_example.py */\n')
        f.writelines(lines)


if __name__ == '__main__':
    main()
