#!/usr/bin/env python3
"""Checks docs/CONFORMANCE.md against docs/requirements.md and the code.

Usage (from the repository root): python3 docs/check_conformance.py [REQUIREMENTS [CONFORMANCE]]
(defaults: docs/requirements.md and docs/CONFORMANCE.md). CONFORMANCE.md is edited by hand; this
script only reads. It reports:
  - requirement ids of requirements.md without a row in CONFORMANCE.md's table, rows whose id
    requirements.md does not define (an AMB id we propose ourselves, written "Proposed AMB-nn" in
    CONFORMANCE.md, may have a row), ids with two rows, and rows with an unknown status or not of
    the form `| id | requirement | status | proof |`;
  - proposals ("Proposed AMB-nn") whose number requirements.md now defines;
  - every cited test that does not exist. A citation is `crate: path test_a, test_b` (crate
    abbreviations as in CRATES below, path inside crates/<crate>/); the test exists if `fn test_a`
    is in the cited file or in a module it declares (`mod x;`, followed recursively), or, for a
    directory, anywhere below it. Test names in the free prose (snake_case words of four or more
    parts outside code spans) must be a `fn` somewhere under crates/; in a table row, a test named
    after a bare `path.rs` (no crate) is reported too.
Exits 0 when all is well, 1 with the list of problems otherwise (2 on a usage error)."""
import functools
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = {'crypto': 'esession-crypto', 'wire': 'esession-wire', 'algorithms': 'esession-algorithms', 'core': 'esession',
          'store': 'esession-store', 'xmpp': 'esession-xmpp', 'cli': 'esession-cli',
          'bench': 'esession-bench', 'testkit': 'esession-testkit'}
PREFIXES = ('CMN', 'THR', 'SSN', 'ENC', 'SIM', 'ESN', 'PKP', 'OFF', 'ARC', 'AMB')
STATUSES = ('done', 'partial', 'not yet', 'n/a')

REQ_ID = re.compile(r'^- ((?:%s)-\d+)\b' % '|'.join(PREFIXES), re.M)
ROW = re.compile(r'^\|\s*([A-Z]+-\d+)\s*\|(.*)$')
PROPOSED = re.compile(r'\bProposed (AMB-\d+)\b')
NAME = r'[A-Za-z_][A-Za-z0-9_]*\b(?!:)'
CITATION = re.compile(r'\b(%s): ([A-Za-z0-9_./-]+?(?:\.rs|/)) (%s(?:, %s)*)'
                      % ('|'.join(CRATES), NAME, NAME))
UNPREFIXED = re.compile(r'(?<![\w./-])[A-Za-z0-9_./-]+\.rs [a-z][a-z0-9]*_\w+')
PROSE_NAME = re.compile(r'(?<![\w:./`*-])([a-z][a-z0-9]*(?:_[a-z0-9]+){3,})\b(?![\w(:`*-]|\.rs)')


@functools.lru_cache(maxsize=None)
def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def rs_files(path):
    if os.path.isfile(path):
        return [path]
    out = []
    for d, _, files in os.walk(path):
        out += [os.path.join(d, f) for f in sorted(files) if f.endswith('.rs')]
    return sorted(out)


def module_files(path, seen=None):
    """`path` and the files of the modules it declares with `mod x;`, recursively."""
    seen = set() if seen is None else seen
    if path in seen or not os.path.isfile(path):
        return seen
    seen.add(path)
    src = read(path)
    base = os.path.basename(path)
    # A crate root, a mod.rs or a tests/*.rs target keeps its modules beside it; foo.rs below foo/.
    is_root = base in ('lib.rs', 'main.rs', 'mod.rs') or os.path.basename(os.path.dirname(path)) == 'tests'
    here = os.path.dirname(path) if is_root else path[:-3]
    for m in re.finditer(r'(?:#\[path\s*=\s*"([^"]+)"\]\s*)?(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;', src):
        if m.group(1):
            candidates = [os.path.join(os.path.dirname(path), m.group(1))]
        else:
            candidates = [os.path.join(here, m.group(2) + '.rs'), os.path.join(here, m.group(2), 'mod.rs')]
        for c in candidates:
            if os.path.isfile(c):
                module_files(c, seen)
                break
    # Inline `mod x { mod y; }` blocks (as in tests/two_party.rs) put y.rs in <dir>/x/.
    for m in re.finditer(r'\bmod\s+(\w+)\s*\{([^{}]*)\}', src):
        for n in re.findall(r'\bmod\s+(\w+)\s*;', m.group(2)):
            for c in (os.path.join(here, m.group(1), n + '.rs'), os.path.join(here, m.group(1), n, 'mod.rs')):
                if os.path.isfile(c):
                    module_files(c, seen)
                    break
    return seen


def defines(path, name):
    return re.search(r'\bfn\s+' + re.escape(name) + r'\b', read(path)) is not None


def rel(path):
    return os.path.relpath(path, ROOT)


def check_citations(conf, problems):
    all_rs = rs_files(os.path.join(ROOT, 'crates'))
    all_fns = set()
    for f in all_rs:
        all_fns.update(re.findall(r'\bfn\s+(\w+)', read(f)))
    count = 0
    for where, text in split_contexts(conf):
        cited = set()
        for m in CITATION.finditer(text):
            crate, path = m.group(1), m.group(2)
            target = os.path.join(ROOT, 'crates', CRATES[crate], path)
            names = m.group(3).split(', ')
            cited.update(names)
            if not os.path.exists(target):
                files, why = [], 'no such file'
            else:
                files = rs_files(target) if os.path.isdir(target) else sorted(module_files(target))
                why = 'no such test'
            for n in names:
                count += 1
                if any(defines(f, n) for f in files):
                    continue
                elsewhere = [rel(f) for f in all_rs if defines(f, n)]
                hint = f' (`fn {n}` is in {", ".join(elsewhere)})' if elsewhere else ''
                problems.append(f'{where}: {crate}: {path} {n}: {why}{hint}')
        row = ROW.match(text)
        if row:
            # Rows cite as `crate: path names`; a bare `path.rs test_name` there is a slip.
            for m in UNPREFIXED.finditer(text):
                if not re.search(r'\b(?:%s): $' % '|'.join(CRATES), text[:m.start()]):
                    problems.append(f'{where}: "{m.group(0)}": cite as `crate: path test_name`')
            text = '|'.join(re.split(r'(?<!\\)\|', row.group(2))[2:])  # the proof cell
        prose = re.sub(r'`[^`]*`', '', text)
        for n in PROSE_NAME.findall(prose):
            if n in cited:
                continue
            count += 1
            if n not in all_fns:
                problems.append(f'{where}: {n}: named as a test, but no `fn {n}` under crates/')
    return count


def split_contexts(conf):
    """(where, text) for each table row (its id), paragraph or list item (its bold title or section)."""
    out, section, item, para = [], '', None, []

    def flush():
        if para:
            out.append((item or section, '\n'.join(para)))
            para.clear()

    for line in conf.split('\n'):
        row = ROW.match(line)
        if line.startswith('#'):
            flush()
            section, item = line.lstrip('#').strip(), None
        elif row:
            flush()
            out.append((row.group(1), line))
        elif not line.strip() or line.startswith('|'):
            flush()
            item = None
        elif line.startswith('- '):
            flush()
            m = re.match(r'- \*\*(.+?)\*\*', line)
            item = (m.group(1).rstrip('.') if m else None)
            para.append(line)
        else:
            para.append(line)
    flush()
    return out


def main():
    args = sys.argv[1:]
    if args and args[0] in ('-h', '--help'):
        print(__doc__)
        return
    if len(args) > 2 or any(a.startswith('-') for a in args):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    req_path = args[0] if args else os.path.join(ROOT, 'docs', 'requirements.md')
    conf_path = args[1] if len(args) > 1 else os.path.join(ROOT, 'docs', 'CONFORMANCE.md')
    req, conf = read(req_path), read(conf_path)
    problems = []

    ids = REQ_ID.findall(req)
    known = set(ids)
    problems += [f'{i}: defined twice in {os.path.basename(req_path)}'
                 for i in sorted(known) if ids.count(i) > 1]
    rows = {}
    for line in conf.split('\n'):
        m = ROW.match(line)
        if not m:
            continue
        i, cells = m.group(1), [c.strip() for c in re.split(r'(?<!\\)\|', m.group(2))]
        if i in rows:
            problems.append(f'{i}: two rows in {os.path.basename(conf_path)}')
        rows[i] = cells
        if len(cells) != 4 or cells[3]:
            what = 'text after its last "|"' if len(cells) == 4 else f'{len(cells) - 1} cells after the id'
            problems.append(f'{i}: the row has {what} (expected: | id | requirement | status | proof |)')
        status = cells[1] if len(cells) > 1 else ''
        if not status.startswith(STATUSES):
            problems.append(f'{i}: unknown status "{status}" (expected one of {", ".join(STATUSES)})')
    proposed = set(PROPOSED.findall(conf))
    problems += [f'{i}: no row in {os.path.basename(conf_path)}' for i in ids if i not in rows]
    problems += [f'{i}: has a row but {os.path.basename(req_path)} does not define it'
                 for i in rows if i not in known and i not in proposed]
    problems += [f'{i}: "Proposed {i}" in {os.path.basename(conf_path)}, but {os.path.basename(req_path)} '
                 f'defines {i} (adopted, or the number is taken)' for i in sorted(proposed) if i in known]

    tests = check_citations(conf, problems)
    if problems:
        print(f'check_conformance: {len(problems)} problem(s):', file=sys.stderr)
        for p in problems:
            print('  ' + p, file=sys.stderr)
        sys.exit(1)
    done = sum(1 for c in rows.values() if len(c) > 1 and c[1] == 'done')
    print(f'check_conformance: ok: {len(known)} requirement ids, {len(rows)} rows ({done} done), '
          f'{tests} test citations exist')


if __name__ == '__main__':
    main()
