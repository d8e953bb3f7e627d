#!/usr/bin/env python3
"""The comparison route of the benchmark: what a competent Python script
would do instead of kabsd_fdw.  It walks the same backlog, parses it with
PyYAML's C loader and a line-based Markdown scan, and builds what a
rebuild of a kabsd snapshot builds -- all seven tables of DATA-MODEL.md
(files, items, decisions, links with target_uid, worklog, sections,
checklist), with the same columns and types, then the same primary keys,
btree indexes and full-text GIN index -- in ONE transaction of one psql
session (BEGIN, CREATE, COPY ... FROM STDIN, CREATE INDEX, COMMIT), in a
schema `pyroute` (dropped before the timer starts).  Written for this
project, to measure against kabsd_refresh() on the same corpus in the same
run.

    python3 bench/python_copy.py ROOT DBNAME

psql connects as usual (PGHOST, PGPORT, PGUSER, ... from the environment).
It prints one line:

    TOTAL parse=Ps copy=Cs index=Is

TOTAL (seconds, the first field) is the whole route: walk, read and parse,
link targets, COPY of the seven tables, index builds, commit.  parse is
the Python part (walk, read, parse, target_uid, the COPY text); copy runs from
starting psql to the end of the last COPY (the CREATE TABLEs included);
index is the rest (primary keys, indexes, commit).  The three add up to
TOTAL.

How faithful it is, and why that makes it, if anything, faster than a
faithful route:
- Frontmatter: PyYAML's CSafeLoader (libyaml's parser; PyYAML's resolver,
  YAML 1.1), with timestamps kept as the strings written (the data model's
  rule; and cheaper than building datetimes).  Other scalars are resolved
  as YAML 1.1 resolves them (yes/no booleans, octal 0042), not as the data
  model says; the alias and depth limits are checked only when the text
  has an anchor or many brackets.
- Markdown: a line-based scan in plain Python (one regular expression over
  the body finds ATX headings, fences and task entries), which only
  APPROXIMATES cmark: setext headings, block quotes, headings inside list
  items, indented code blocks, lazy continuation lines and HTML blocks are
  not handled, and inline code is found per line.  A faithful Markdown
  parser does strictly more work, so this route errs on the fast side.
- Errors: an entry that cannot be read (a FIFO, a dangling or escaping
  symbolic link, a name that is not UTF-8) is listed in files with an
  error and never opened; a file that is not valid UTF-8, holds a NUL
  byte, or has an unclosed or unparsable frontmatter or one that is not a
  mapping gets its row in files with an error and no other rows, as in the
  data model; values of the wrong shape become NULL with a note in
  files.error.  Nothing in a file aborts the run.
- COPY data: text format, escaped with str.replace (the csv module's
  writer was more than twice as slow).
"""
import codecs
import datetime
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time

import yaml

MAX_FILE_SIZE = 64 * 1024 * 1024
WS = ' \t\n\r\f\v'

NULL = None


class Loader(yaml.CSafeLoader):
    """PyYAML's C loader; timestamps stay the strings written."""


Loader.add_constructor('tag:yaml.org,2002:timestamp', Loader.construct_yaml_str)

FM_END = re.compile(r'^(?:---|\.\.\.)\r?$', re.M)
UUID = re.compile(r'[0-9a-fA-F]{8}(-?)[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{12}')
DATE = re.compile(r'([0-9]{4})-([0-9]{2})-([0-9]{2})'
                  r'(?:[ T]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,6})?)?'
                  r'(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?')
# the lines that matter in a body: fences, ATX headings, task-list entries
BLOCK = re.compile(r'^(?: {0,3}(?P<fence>`{3,}|~{3,})'
                   r'| {0,3}(?P<hash>#{1,6})(?=[ \t\r]|$)'
                   r'|[ \t]*(?:[-*+]|[0-9]{1,9}[.)])[ \t]+\[(?P<box>[ xX])\][ \t])', re.M)
# a line that ends a task entry's paragraph
PARA_END = re.compile(r'[ \t]*(?:[-*+]|[0-9]{1,9}[.)])(?:[ \t]|$)| {0,3}(?:#{1,6}(?:[ \t]|$)|`{3,}|~{3,}|>)')
ENTRY = re.compile(r'([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}(?::[0-9]{2})?)(?![^ \t])[ \t]*'
                   r'(?:\[agent=([^\]]*)\][ \t]*)?(?:\[model=([^\]]*)\][ \t]*)?(.*)')
NEW_STATE = re.compile(r'State -> ([A-Za-z0-9_]+)')
CODE_SPAN = re.compile(r'(`+)(?!`).*?(?<!`)\1(?!`)')
WIKI = re.compile(r'\[\[((?:[^\[\]\n\x01]|\](?!\]))*?)\]\]')

TABLES = {
    'files': 'path text, product text, kind text, size bigint, mtime timestamptz, '
             'has_frontmatter boolean, error text',
    'items': 'uid uuid, id text, type text, state text, title text, priority text, parent text, '
             'area text, iteration text, owner text, tags text[], decisions text[], created date, '
             'updated date, path text, product text, mtime timestamptz, frontmatter jsonb, body text',
    'decisions': 'uid uuid, id text, title text, status text, date date, deciders text[], '
                 'related_items text[], supersedes text, superseded_by text, tags text[], path text, '
                 'product text, mtime timestamptz, frontmatter jsonb, body text',
    'links': 'source_uid uuid, source_id text, ordinal integer, type text, target_id text, '
             'path text, product text, target_uid uuid',
    'worklog': 'item_uid uuid, item_id text, ordinal integer, at timestamp, agent text, model text, '
               'message text, new_state text, path text, product text',
    'sections': 'item_uid uuid, item_id text, ordinal integer, level integer, heading text, '
                'content text, path text, product text',
    'checklist': 'item_uid uuid, item_id text, section text, ordinal integer, checked boolean, '
                 'text text, path text, product text',
}
# what a rebuild of the snapshot builds (sql/kabsd_fdw.sql, kabsd_attach)
INDEXES = """
ALTER TABLE pyroute.files ADD PRIMARY KEY (path);
ALTER TABLE pyroute.items ADD PRIMARY KEY (path);
ALTER TABLE pyroute.decisions ADD PRIMARY KEY (path);
ALTER TABLE pyroute.links ADD PRIMARY KEY (path, ordinal);
ALTER TABLE pyroute.worklog ADD PRIMARY KEY (path, ordinal);
ALTER TABLE pyroute.sections ADD PRIMARY KEY (path, ordinal);
ALTER TABLE pyroute.checklist ADD PRIMARY KEY (path, ordinal);
CREATE INDEX ON pyroute.items (uid);
CREATE INDEX ON pyroute.items (id);
CREATE INDEX ON pyroute.items (state);
CREATE INDEX ON pyroute.items (parent);
CREATE INDEX ON pyroute.items (product);
CREATE INDEX ON pyroute.decisions (id);
CREATE INDEX ON pyroute.links (target_uid);
CREATE INDEX ON pyroute.worklog (item_uid);
CREATE INDEX ON pyroute.sections USING gin
  (pg_catalog.to_tsvector('simple'::regconfig, coalesce(heading, '') || ' ' || coalesce(content, '')));
"""


# ---------------------------------------------------------------------------
# The walk: every *.md, no dot entries; symbolic links followed only inside
# the root; anything that cannot be read is listed with an error.
# Yields (path relative to root, its path on disk, error or None); with an
# error, the path is only for lstat().
# ---------------------------------------------------------------------------
codecs.register_error('kabsd_hex', lambda e: (''.join('\\x%02X' % b for b in e.object[e.start:e.end]), e.end))


def shown(rel):
    """A path as the files table shows it: invalid UTF-8 bytes as \\xNN."""
    return os.fsencode(rel).decode('utf-8', 'kabsd_hex')


def valid_name(name):
    if name.isascii():
        return True
    try:
        name.encode('utf-8')
        return True
    except UnicodeEncodeError:
        return False


def walk(root):
    real_root = os.path.realpath(root)
    stack = [(root, '', real_root)]
    while stack:
        d, prefix, real = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue                        # an unreadable directory is skipped
        with it:
            for e in it:
                name = e.name
                if name[0] == '.':
                    continue
                rel = prefix + name
                try:
                    if e.is_dir(follow_symlinks=False):
                        if not valid_name(name):
                            yield shown(rel), e.path, 'name is not valid UTF-8'
                        else:
                            stack.append((e.path, rel + '/', real + '/' + name))
                        continue
                    if not name.endswith('.md'):
                        if not e.is_symlink():
                            continue
                    elif not valid_name(name):
                        yield shown(rel), e.path, 'name is not valid UTF-8'
                        continue
                    if e.is_file(follow_symlinks=False):
                        yield rel, e.path, None
                        continue
                    if not e.is_symlink():
                        yield rel, e.path, 'not a regular file'
                        continue
                    # a symbolic link: followed only when it stays inside root
                    target = os.path.realpath(e.path)
                    inside = target == real_root or target.startswith(real_root + '/')
                    if os.path.isdir(target):
                        if not inside or not valid_name(name):
                            continue
                        if real == target or real.startswith(target + '/'):
                            continue                # a link back into an ancestor
                        stack.append((e.path, rel + '/', target))
                    elif name.endswith('.md'):
                        if not os.path.exists(target):
                            yield rel, e.path, 'dangling symbolic link'
                        elif not inside:
                            yield rel, e.path, 'symbolic link leads out of the root'
                        elif not os.path.isfile(target):
                            yield rel, e.path, 'not a regular file'
                        else:
                            yield rel, e.path, None
                except OSError as err:
                    if name.endswith('.md'):
                        yield shown(rel), e.path, err.strerror or str(err)


# ---------------------------------------------------------------------------
# Values from the frontmatter.  Every function returns NULL for "no value";
# a value of the wrong shape is NULL with a note.
# ---------------------------------------------------------------------------
def note(notes, key, what, v):
    if isinstance(v, list):
        got = ', got a list'
    elif isinstance(v, dict):
        got = ', got a mapping'
    else:
        s = scalar(v)
        got = ', got "%s"' % (s[:40] + '...' if len(s) > 40 else s)
    notes.append('key "%s": expected %s%s' % (key, what, got))


def scalar(v):
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return 'true' if v else 'false'
    return str(v)


def text(v, key, notes):
    if v is None:
        return NULL
    if type(v) is str:
        return v
    if isinstance(v, (list, dict)):
        note(notes, key, 'text', v)
        return NULL
    return scalar(v)


def text_list(v, key, notes):
    """A list of scalars (None for null elements), or None."""
    if v is None:
        return None
    if type(v) is not list:
        if notes is not None:
            note(notes, key, 'a list', v)
        return None
    out = []
    for e in v:
        if e is None:
            out.append(None)
        elif isinstance(e, (list, dict)):
            if notes is not None:
                note(notes, key, 'a list of scalars', e)
            return None
        else:
            out.append(e if type(e) is str else scalar(e))
    return out


def array(lst):
    if lst is None:
        return NULL
    return '{' + ','.join('NULL' if e is None else
                          '"' + e.replace('\\', '\\\\').replace('"', '\\"') + '"' for e in lst) + '}'


_dates = {}


def date_text(s):
    """'YYYY-MM-DD' of a date or a date and time, or None."""
    d = _dates.get(s)
    if d is None and s not in _dates:
        m = DATE.fullmatch(s)
        if m:
            try:
                datetime.date(int(m[1]), int(m[2]), int(m[3]))
                if m[4] is not None:
                    datetime.time(int(m[4]), int(m[5]), int(m[6] or 0))
                d = s[:10]
            except ValueError:
                d = None
        _dates[s] = d
    return d


def date(v, key, notes):
    if v is None:
        return NULL
    d = None if isinstance(v, (list, dict)) else date_text(scalar(v))
    if d is None:
        note(notes, key, 'a date', v)
        return NULL
    return d


def uuid(v, key, notes):
    if v is None:
        return NULL
    if type(v) is str and UUID.fullmatch(v):
        return v
    note(notes, key, 'a UUID', v)
    return NULL


def first_present(fm, keys):
    for k in keys:
        v = fm.get(k)
        if v is not None:
            return k, v
    return keys[0], None


def clean(v, depth):
    """JSON-able copy of a YAML value (keys as strings, odd scalars as text)."""
    if depth > 100:
        raise ValueError('frontmatter nested deeper than 100 levels')
    if isinstance(v, dict):
        return {('null' if k is None else scalar(k)): clean(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list):
        return [clean(x, depth + 1) for x in v]
    if v is None or isinstance(v, (str, bool, int)):
        return v
    if isinstance(v, float) and v == v and v not in (float('inf'), float('-inf')):
        return v
    return str(v)


def to_json(fm):
    try:
        return json.dumps(fm, ensure_ascii=False, allow_nan=False, default=str)
    except (TypeError, ValueError):
        return json.dumps(clean(fm, 0), ensure_ascii=False)


def check_aliases(fm):
    """The data model's limits on alias expansion and nesting (checked only
    when the text has an anchor or many brackets)."""
    count, todo = 0, [(fm, 0)]
    while todo:
        v, depth = todo.pop()
        count += 1
        if count > 100000:
            raise ValueError('aliases expand past 100,000 nodes')
        if depth > 100:
            raise ValueError('frontmatter nested deeper than 100 levels')
        if isinstance(v, dict):
            todo.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            todo.extend((x, depth + 1) for x in v)


# ---------------------------------------------------------------------------
# Markdown: a line-based scan that approximates cmark (see the top).
# Returns the sections [(level, heading, content start, end)], the task
# entries [(section heading, checked, text)] and the fenced code ranges.
# ---------------------------------------------------------------------------
def atx_text(line):
    t = line.lstrip(' ').lstrip('#').strip(' \t\r')
    q = t.rstrip('#')
    if not q or q[-1] in ' \t':
        t = q.rstrip(' \t')
    return t


def markdown(body, tasks_wanted):
    n = len(body)
    heads = []                  # [line start, content start, level, heading]
    tasks = []
    code = []
    fence = None
    fence_start = 0
    for m in BLOCK.finditer(body):
        g = m.lastgroup
        if fence is not None:
            if g == 'fence':
                f = m.group(g)
                if f[0] == fence[0] and len(f) >= len(fence):
                    e = body.find('\n', m.end())
                    e = n if e < 0 else e
                    if not body[m.end():e].strip(WS):
                        code.append((fence_start, e))
                        fence = None
            continue
        if g == 'hash':
            ls = m.start()
            e = body.find('\n', ls)
            e = n if e < 0 else e
            heads.append((ls, min(e + 1, n), len(m.group(g)), atx_text(body[ls:e])))
        elif g == 'fence':
            f = m.group(g)
            if f[0] == '`':
                e = body.find('\n', m.end())
                if '`' in body[m.end():(n if e < 0 else e)]:
                    continue            # not a fence: inline code
            fence = f
            fence_start = m.start()
        elif tasks_wanted:
            e = body.find('\n', m.end())
            e = n if e < 0 else e
            txt = body[m.end():e].strip(WS)
            p = e + 1
            while p < n:                # continuation lines of the paragraph
                e = body.find('\n', p)
                e = n if e < 0 else e
                ln = body[p:e]
                t = ln.strip(WS)
                if not t or PARA_END.match(ln):
                    break
                txt += '\n' + t
                p = e + 1
            tasks.append((heads[-1][3] if heads else NULL, m.group(g) != ' ', txt))
    if fence is not None:
        code.append((fence_start, n))
    sections = []
    for i, (ls, cs, level, heading) in enumerate(heads):
        end = heads[i + 1][0] if i + 1 < len(heads) else n
        sections.append((level, heading, cs, max(end, cs)))
    return sections, tasks, code


def wikilinks(body, code):
    out = []
    prev = 0
    for a, b in code + [(len(body), len(body))]:
        seg = body[prev:a]
        prev = b
        if '[[' not in seg:
            continue
        if '`' in seg:
            seg = CODE_SPAN.sub('\x01', seg)
        for g in WIKI.findall(seg):
            t = g.split('|', 1)[0].split('#', 1)[0].strip(WS)
            if t:
                out.append(t)
    return out


def valid_stamp(s):
    try:
        datetime.datetime(int(s[0:4]), int(s[5:7]), int(s[8:10]), int(s[11:13]), int(s[14:16]),
                          int(s[17:19]) if len(s) > 16 else 0)
        return s
    except ValueError:
        return NULL


def worklog(body, sections):
    entries = []
    for level, heading, start, end in sections:
        if len(heading) != 7 or heading.lower() != 'worklog':
            continue
        cur = None
        for ln in body[start:end].split('\n'):
            if ln.endswith('\r'):
                ln = ln[:-1]
            m = ENTRY.match(ln) if ln[:1].isdigit() else None
            if m:
                if cur:
                    entries.append(cur)
                cur = [m[1], m[2], m[3], m[4].strip(WS)]
            elif cur is not None and ln.strip(WS):
                cur[3] += '\n' + ln
        if cur:
            entries.append(cur)
    return entries


# ---------------------------------------------------------------------------
def esc(v):
    """A value as COPY's text format writes it."""
    if v.__class__ is str:
        if '\\' in v or '\n' in v or '\r' in v or '\t' in v:
            return v.replace('\\', '\\\\').replace('\n', '\\n').replace('\r', '\\r').replace('\t', '\\t')
        return v
    if v is None:
        return '\\N'
    if v is True:
        return 't'
    if v is False:
        return 'f'
    return str(v)


def mtime_text(st):
    s, ns = divmod(st.st_mtime_ns, 1000000000)
    return '%s.%06d+00' % (time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(s)), ns // 1000)


def parse(root):
    out = {k: [] for k in TABLES}       # the lines of each table's COPY data

    def writer(table, join='\t'.join, esc=esc):
        add = out[table].append
        return lambda row: add(join(map(esc, row)))

    w_files, w_items, w_decisions = writer('files'), writer('items'), writer('decisions')
    w_worklog, w_sections, w_checklist = writer('worklog'), writer('sections'), writer('checklist')
    links = []                              # written once target_uid is known
    by_id, by_name = {}, {}                 # (product, key) -> (path, uid), or AMBIGUOUS
    AMBIGUOUS = ()

    def claim(m, k, path, uid):
        cur = m.get(k)
        if cur is None:
            m[k] = (path, uid)
        elif cur is not AMBIGUOUS and cur[0] != path:
            m[k] = AMBIGUOUS

    for rel, ap, err in walk(root):
        parts = rel.split('/', 3)
        product = parts[1] if len(parts) > 2 and parts[0] == 'products' and parts[1] else None
        if rel.endswith('.index.md'):
            kind = 'index'
        elif product and len(parts) == 4 and parts[3] and parts[2] == 'items':
            kind = 'item'
        elif product and len(parts) == 4 and parts[3] and parts[2] == 'decisions':
            kind = 'decision'
        else:
            kind = 'other'
        prod = product or NULL
        if err is not None:             # never opened
            try:
                st = os.lstat(ap)
                size, mtime = st.st_size, mtime_text(st)
            except OSError:
                size = mtime = NULL
            w_files((rel, prod, kind, size, mtime, NULL, err))
            continue
        try:
            with open(ap, 'rb', buffering=0) as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise OSError(0, 'not a regular file')
                if st.st_size > MAX_FILE_SIZE:
                    raise OSError(0, 'larger than max_file_size')
                raw = f.read()
        except OSError as e:
            try:
                st = os.stat(ap)
                size, mtime = st.st_size, mtime_text(st)
            except OSError:
                size = mtime = NULL
            w_files((rel, prod, kind, size, mtime, NULL, e.strerror or str(e)))
            continue
        size, mtime = st.st_size, mtime_text(st)
        if raw[:3] == b'\xef\xbb\xbf':
            raw = raw[3:]
        has_fm = raw[:3] == b'---' and (raw[3:4] in (b'\n', b'') or raw[3:5] == b'\r\n')
        try:
            data = raw.decode('utf-8')
        except UnicodeDecodeError as e:
            w_files((rel, prod, kind, size, mtime, False, 'invalid UTF-8 at byte %d' % e.start))
            continue
        if '\x00' in data:
            w_files((rel, prod, kind, size, mtime, False, 'a NUL byte'))
            continue
        if not has_fm:
            w_files((rel, prod, kind, size, mtime, False, NULL))
            continue
        s = data.find('\n') + 1
        m = FM_END.search(data, s) if s else None
        if m is None:
            w_files((rel, prod, kind, size, mtime, True, 'unclosed frontmatter'))
            continue
        ytext = data[s:m.start()]
        body = data[m.end() + 1:]
        try:
            fm = yaml.load(ytext, Loader=Loader)
            if not isinstance(fm, dict):
                raise ValueError('frontmatter is not a mapping')
            if '&' in ytext or ytext.count('[') + ytext.count('{') > 100:
                check_aliases(fm)
            fm_json = to_json(fm) if kind == 'item' or kind == 'decision' else None
        except Exception as e:          # never abort the scan: the file's error
            w_files((rel, prod, kind, size, mtime, True, ('frontmatter: %s' % e).split('\n', 1)[0]))
            continue

        notes = []
        get = fm.get
        is_item = kind == 'item' and (get('id') is not None or get('uid') is not None)
        if is_item:
            uid = uuid(get('uid'), 'uid', notes)
            iid = text(get('id'), 'id', notes)
            parent = text(get('parent'), 'parent', notes)
            decisions = text_list(get('decisions'), 'decisions', notes)
            w_items((uid, iid, text(get('type'), 'type', notes), text(get('state'), 'state', notes),
                     text(get('title'), 'title', notes), text(get('priority'), 'priority', notes),
                     parent, text(get('area'), 'area', notes),
                     text(get('iteration'), 'iteration', notes), text(get('owner'), 'owner', notes),
                     array(text_list(get('tags'), 'tags', notes)), array(decisions),
                     date(get('created'), 'created', notes), date(get('updated'), 'updated', notes),
                     rel, prod, mtime, fm_json, body))
            # links: parent, relates, blocks, blocked_by, decision, wikilink
            edges = []
            if parent is not NULL and parent:
                edges.append(('parent', parent))
            lk = get('links')
            if lk is not None and not isinstance(lk, dict):
                note(notes, 'links', 'a mapping', lk)
                lk = None
            for t in ('relates', 'blocks', 'blocked_by'):
                for v, key in ((lk.get(t) if lk else None, 'links.' + t), (get(t), t)):
                    for x in text_list(v, key, notes) or ():
                        if x:
                            edges.append((t, x))
            for x in decisions or ():
                if x:
                    edges.append(('decision', x))
            sections, tasks, code = markdown(body, True)
            if '[[' in body:
                edges.extend(('wikilink', x) for x in wikilinks(body, code))
            for i, (t, x) in enumerate(edges, 1):
                links.append((uid, iid, i, t, x, rel, prod))
            for i, (heading, checked, txt) in enumerate(tasks, 1):
                w_checklist((uid, iid, heading, i, checked, txt, rel, prod))
            for i, (at, agent, model, msg) in enumerate(worklog(body, sections), 1):
                ns = NEW_STATE.search(msg) if 'State -> ' in msg else None
                w_worklog((uid, iid, i, valid_stamp(at), NULL if agent is None else agent,
                           NULL if model is None else model, msg, ns[1] if ns else NULL, rel, prod))
        elif kind == 'decision':
            uid = uuid(get('uid'), 'uid', notes)
            iid = text(get('id'), 'id', notes)
            k, v = first_present(fm, ('status', 'state'))
            status = text(v, k, notes)
            k, v = first_present(fm, ('date', 'decision_date', 'created'))
            w_decisions((uid, iid, text(get('title'), 'title', notes), status, date(v, k, notes),
                         array(text_list(get('deciders'), 'deciders', notes)),
                         array(text_list(get('related_items'), 'related_items', notes)),
                         text(get('supersedes'), 'supersedes', notes),
                         text(get('superseded_by'), 'superseded_by', notes),
                         array(text_list(get('tags'), 'tags', notes)),
                         rel, prod, mtime, fm_json, body))
            sections = markdown(body, False)[0]
        else:
            w_files((rel, prod, kind, size, mtime, True, NULL))
            continue
        # items and decisions: sections, and the targets of links
        for i, (level, heading, start, end) in enumerate(sections, 1):
            w_sections((uid, iid, i, level, heading, body[start:end].strip(WS), rel, prod))
        u = None if uid is NULL else uid
        if iid is not NULL:
            claim(by_id, (product, iid), rel, u)
            claim(by_name, (product, iid), rel, u)
        name = rel.rsplit('/', 1)[-1]
        claim(by_name, (product, name[:-3] if name.endswith('.md') else name), rel, u)
        w_files((rel, prod, kind, size, mtime, True, '; '.join(notes) if notes else NULL))

    # links.target_uid: the one item or decision of the product that the
    # target names (a wikilink: its last component without .md, by id or
    # file name); NULL when none or several paths match
    w_links = writer('links')
    for row in links:
        target = row[4]
        if row[3] == 'wikilink':
            key = target.rsplit('/', 1)[-1]
            if key.endswith('.md'):
                key = key[:-3]
            hit = by_name.get((row[6], key))
        else:
            hit = by_id.get((row[6], target))
        w_links(row + (hit[1] if hit and hit[1] is not None else NULL,))
    del links
    for t, lines in out.items():          # the COPY data, as bytes
        lines.append('')
        out[t] = '\n'.join(lines).encode() if len(lines) > 1 else b''
        del lines[:]
    return out


def psql(db, args=()):
    env = dict(os.environ, PGCLIENTENCODING='UTF8')
    return subprocess.Popen(['psql', '-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', *args, '-d', db],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)


def main(root, db):
    # not timed: the previous run's schema
    p = psql(db)
    p.communicate(b'SET client_min_messages = warning;\nDROP SCHEMA IF EXISTS pyroute CASCADE;\n')
    if p.returncode != 0:
        sys.exit('python_copy.py: could not drop schema pyroute')

    t0 = time.monotonic()
    out = parse(root)
    t_parse = time.monotonic()

    # one session, one transaction
    p = psql(db)
    marks = {}

    def read_marks():
        for line in p.stdout:
            marks[line.strip().decode()] = time.monotonic()

    reader = threading.Thread(target=read_marks)
    reader.start()
    try:
        ddl = ['SET client_min_messages = warning;', 'BEGIN;', 'CREATE SCHEMA pyroute;']
        ddl += ['CREATE TABLE pyroute.%s (%s);' % (t, cols) for t, cols in TABLES.items()]
        p.stdin.write(('\n'.join(ddl) + '\n').encode())
        for t in TABLES:
            p.stdin.write(('COPY pyroute.%s FROM STDIN;\n' % t).encode())
            p.stdin.write(out[t])
            out[t] = None
            p.stdin.write(b'\\.\n')
        p.stdin.write(b'\\echo copied\n')
        p.stdin.write(INDEXES.encode())
        p.stdin.write(b'COMMIT;\n\\echo committed\n')
        p.stdin.close()
    except BrokenPipeError:
        pass
    rc = p.wait()
    reader.join()
    t_end = time.monotonic()
    if rc != 0 or 'committed' not in marks:
        sys.exit('python_copy.py: psql failed (exit %d); nothing was committed' % rc)
    total = t_end - t0
    copy = marks['copied'] - t_parse
    print('%.3f parse=%.3fs copy=%.3fs index=%.3fs' % (total, t_parse - t0, copy, t_end - marks['copied']))


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit('usage: python3 bench/python_copy.py ROOT DBNAME')
    main(sys.argv[1], sys.argv[2])
