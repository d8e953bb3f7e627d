#!/usr/bin/env python3
"""The comparison route of the benchmark: parse the same backlog with
PyYAML's C loader in Python and load files, items, decisions, links and
worklog with COPY (through psql).  Written for this project, to measure
against kabsd_refresh() on the same corpus in the same run.

    python3 bench/python_copy.py ROOT DBNAME
"""
import csv
import io
import os
import re
import subprocess
import sys
import time

import yaml

LOADER = yaml.CSafeLoader
STAMP = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?)\s*(?:\[agent=([^\]]*)\])?\s*(?:\[model=([^\]]*)\])?\s*(.*)$')
WIKI = re.compile(r'\[\[([^\]|#\n]+)')


def text(v):
    return None if v is None or isinstance(v, (list, dict)) else str(v)


def walk(root):
    for d, dirs, names in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith('.')]
        for n in names:
            if n.endswith('.md') and not n.startswith('.'):
                p = os.path.join(d, n)
                yield p, os.path.relpath(p, root)


def main(root, db):
    t0 = time.monotonic()
    out = {k: io.StringIO() for k in ('files', 'items', 'decisions', 'links', 'worklog')}
    w = {k: csv.writer(v) for k, v in out.items()}
    for p, rel in walk(root):
        st = os.stat(p)
        parts = rel.split('/')
        product = parts[1] if len(parts) > 2 and parts[0] == 'products' else None
        kind = 'index' if rel.endswith('.index.md') else 'item' if product and parts[2] == 'items' else 'decision' if product and parts[2] == 'decisions' else 'other'
        data = open(p, encoding='utf-8').read()
        fm, body, err = None, data, None
        if data.startswith('---\n'):
            end = data.find('\n---\n', 3)
            if end < 0:
                err = 'unclosed'
            else:
                try:
                    fm = yaml.load(data[4:end + 1], Loader=LOADER)
                    body = data[end + 5:]
                except yaml.YAMLError as e:
                    err = str(e)
        w['files'].writerow([rel, product, kind, st.st_size, fm is not None, err])
        if not isinstance(fm, dict):
            continue
        if kind == 'item' and (fm.get('id') is not None or fm.get('uid') is not None):
            w['items'].writerow([text(fm.get('uid')), text(fm.get('id')), text(fm.get('type')), text(fm.get('state')),
                                 text(fm.get('title')), text(fm.get('parent')), text(fm.get('created')), rel, product])
            links = fm.get('links') if isinstance(fm.get('links'), dict) else {}
            edges = [('parent', fm.get('parent'))] if text(fm.get('parent')) else []
            for t in ('relates', 'blocks', 'blocked_by'):
                for src in (links.get(t), fm.get(t)):
                    if isinstance(src, list):
                        edges += [(t, x) for x in src if x]
            if isinstance(fm.get('decisions'), list):
                edges += [('decision', x) for x in fm['decisions'] if x]
            edges += [('wikilink', m.strip()) for m in WIKI.findall(body)]
            for i, (t, target) in enumerate(edges, 1):
                w['links'].writerow([text(fm.get('id')), i, t, str(target), rel])
            inlog, n = False, 0
            for line in body.split('\n'):
                if line.startswith('#'):
                    inlog = line.lstrip('#').strip().lower() == 'worklog'
                    continue
                m = STAMP.match(line) if inlog else None
                if m:
                    n += 1
                    w['worklog'].writerow([text(fm.get('id')), n, m.group(1), m.group(2), m.group(4), rel])
        elif kind == 'decision':
            w['decisions'].writerow([text(fm.get('id')), text(fm.get('title')), text(fm.get('status') or fm.get('state')), rel, product])
    parsed = time.monotonic() - t0
    ddl = """
DROP SCHEMA IF EXISTS pyload CASCADE; CREATE SCHEMA pyload;
CREATE TABLE pyload.files (path text, product text, kind text, size bigint, has_frontmatter bool, error text);
CREATE TABLE pyload.items (uid text, id text, type text, state text, title text, parent text, created text, path text, product text);
CREATE TABLE pyload.decisions (id text, title text, status text, path text, product text);
CREATE TABLE pyload.links (source_id text, ordinal int, type text, target_id text, path text);
CREATE TABLE pyload.worklog (item_id text, ordinal int, at text, agent text, message text, path text);
"""
    subprocess.run(['psql', '-X', '-q', '-d', db, '-c', ddl], check=True)
    for k, buf in out.items():
        subprocess.run(['psql', '-X', '-q', '-d', db, '-c', f"COPY pyload.{k} FROM STDIN (FORMAT csv)"],
                       input=buf.getvalue().encode(), check=True)
    print(f"{time.monotonic() - t0:.3f} {parsed:.3f}")


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
