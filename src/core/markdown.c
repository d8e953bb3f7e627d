/*-------------------------------------------------------------------------
 *
 * markdown.c
 *		  Headings, sections, task-list entries and wikilinks of a Markdown
 *		  body, from cmark's AST and its source positions.
 *
 * cmark decides what is a heading, a list item or code; the text the
 * tables show ("as written") is then cut from the source by line and
 * column, never re-rendered.  cmark counts "\n", "\r\n" and a lone "\r" as
 * line endings, and so does the line index here, so that its line numbers
 * and ours agree.
 *
 * cmark's allocator hooks take no context argument, so the caller's
 * allocator is kept in a file-level variable for the length of one parse;
 * a backend is single-threaded and a parse is never re-entered.
 *
 * src/core/markdown.c
 *
 *-------------------------------------------------------------------------
 */
#include "kb_core.h"

#include <cmark.h>
#include <string.h>

/* ---------------------------------------------------------------------
 * cmark's allocator on top of KbAlloc.  cmark cannot take NULL, so a
 * failure goes to the caller's oom hook, which does not return.
 * A size header lets realloc copy through KbAlloc.
 * ---------------------------------------------------------------------
 */
static const KbAlloc *cm_alloc;

#define CM_HEADER 16

static void *
cm_calloc(size_t n, size_t size)
{
	size_t		total;
	char	   *p;

	if (size != 0 && n > (SIZE_MAX - CM_HEADER) / size)
		cm_alloc->oom(cm_alloc->ctx);
	total = n * size;
	p = cm_alloc->alloc(cm_alloc->ctx, total + CM_HEADER);
	if (p == NULL)
		cm_alloc->oom(cm_alloc->ctx);
	memcpy(p, &total, sizeof(size_t));
	memset(p + CM_HEADER, 0, total);
	return p + CM_HEADER;
}

static void *
cm_realloc(void *ptr, size_t size)
{
	char	   *h;
	size_t		old;

	if (ptr == NULL)
		return cm_calloc(1, size);
	h = (char *) ptr - CM_HEADER;
	memcpy(&old, h, sizeof(size_t));
	h = cm_alloc->realloc(cm_alloc->ctx, h, old + CM_HEADER, size + CM_HEADER);
	if (h == NULL)
		cm_alloc->oom(cm_alloc->ctx);
	memcpy(h, &size, sizeof(size_t));
	return h + CM_HEADER;
}

static void
cm_free(void *ptr)
{
	if (ptr != NULL)
		cm_alloc->free(cm_alloc->ctx, (char *) ptr - CM_HEADER);
}

static cmark_mem cm_mem = {cm_calloc, cm_realloc, cm_free};

/* ---------------------------------------------------------------------
 * Line index of the body.
 * ---------------------------------------------------------------------
 */
typedef struct KbLines
{
	const char *text;
	size_t		len;
	size_t	   *start;			/* start[i]: offset of line i+1 */
	size_t		n;
} KbLines;

static int
lines_build(const KbAlloc *a, const char *text, size_t len, KbLines *l)
{
	size_t		cap = 0;
	size_t		i = 0;
	bool		has_cr = memchr(text, '\r', len) != NULL;

	l->text = text;
	l->len = len;
	l->start = NULL;
	l->n = 0;
	for (;;)
	{
		size_t	   *s = kb_array_grow(a, l->start, sizeof(size_t), &cap, l->n + 1);

		if (s == NULL)
			return KB_ENOMEM;
		l->start = s;
		l->start[l->n++] = i;
		if (!has_cr)
		{
			/* the usual body: memchr finds each line ending */
			const char *nl = memchr(text + i, '\n', len - i);

			i = nl ? (size_t) (nl - text) : len;
		}
		else
			while (i < len && text[i] != '\n' && text[i] != '\r')
				i++;
		if (i >= len)
			break;
		if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
			i++;
		i++;
	}
	return KB_OK;
}

/* Offset where 1-based line begins; past the last line: the text's end. */
static size_t
line_begin(const KbLines *l, int line)
{
	if (line < 1)
		return 0;
	if ((size_t) line > l->n)
		return l->len;
	return l->start[line - 1];
}

/* Offset where a line's content ends (before its line ending). */
static size_t
line_end(const KbLines *l, int line)
{
	size_t		i = line_begin(l, line);

	while (i < l->len && l->text[i] != '\n' && l->text[i] != '\r')
		i++;
	return i;
}

/* The line's content from 1-based byte column col. */
static KbText
line_from(const KbLines *l, int line, int col)
{
	size_t		b = line_begin(l, line);
	size_t		e = line_end(l, line);
	KbText		t;

	if (col > 1)
		b = b + (size_t) (col - 1) < e ? b + (size_t) (col - 1) : e;
	t.ptr = l->text + b;
	t.len = e - b;
	return t;
}

static bool
is_blank_char(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * An ATX heading's text: after the opening #s, without a closing sequence
 * of #s (which must follow a space, or be all there is).
 */
static KbText
atx_text(KbText line)
{
	const char *p = line.ptr;
	const char *e = line.ptr + line.len;
	KbText		t;

	while (p < e && *p == ' ')
		p++;
	while (p < e && *p == '#')
		p++;
	while (p < e && is_blank_char(*p))
		p++;
	while (e > p && is_blank_char(e[-1]))
		e--;
	{
		const char *q = e;

		while (q > p && q[-1] == '#')
			q--;
		if (q == p || is_blank_char(q[-1]))
		{
			e = q;
			while (e > p && is_blank_char(e[-1]))
				e--;
		}
	}
	t.ptr = p;
	t.len = (size_t) (e - p);
	return t;
}

static bool
is_atx_line(KbText line)
{
	size_t		i = 0,
				n = 0;

	while (i < line.len && i < 3 && line.ptr[i] == ' ')
		i++;
	while (i < line.len && line.ptr[i] == '#')
	{
		i++;
		n++;
	}
	return n >= 1 && n <= 6 && (i == line.len || is_blank_char(line.ptr[i]));
}

/* A line of only "=" or only "-" (with blanks around): a setext underline. */
static bool
is_setext_underline(KbText line)
{
	KbText		t = kb_trim(line.ptr, line.len);
	char		c;

	if (line.len > 0 && line.ptr[0] == '>')
		t = kb_trim(line.ptr + 1, line.len - 1);
	if (t.len == 0 || (t.ptr[0] != '=' && t.ptr[0] != '-'))
		return false;
	c = t.ptr[0];
	for (size_t i = 0; i < t.len; i++)
		if (t.ptr[i] != c)
			return false;
	return true;
}

/*
 * Joins lines first..last of a block, the first from column col and the
 * others without leading blanks, each without trailing blanks; trimmed.
 * Returns a slice of the body when it is a single line.
 */
static int
join_lines(const KbAlloc *a, const KbLines *l, int first, int last, int col,
		   size_t skip, KbText *out)
{
	KbBuf		buf;
	KbText		t = line_from(l, first, col);

	t.ptr += skip < t.len ? skip : t.len;
	t.len -= skip < t.len ? skip : t.len;
	if (first >= last)
	{
		*out = kb_trim(t.ptr, t.len);
		return KB_OK;
	}
	kb_buf_init(&buf, a);
	t = kb_trim(t.ptr, t.len);
	kb_buf_append(&buf, t.ptr, t.len);
	for (int ln = first + 1; ln <= last; ln++)
	{
		t = line_from(l, ln, 1);
		t = kb_trim(t.ptr, t.len);
		kb_buf_append(&buf, "\n", 1);
		kb_buf_append(&buf, t.ptr, t.len);
	}
	if (buf.failed)
		return KB_ENOMEM;
	*out = kb_trim(buf.data, buf.len);
	return KB_OK;
}

/* ---------------------------------------------------------------------
 * Wikilinks: [[target]], [[target|alias]], [[target#heading]] in the text
 * of paragraphs and headings.  Inline code stands as a separator byte.
 * ---------------------------------------------------------------------
 */
#define CODE_SEP '\x01'

static int
scan_wikilinks(const KbAlloc *a, const KbBuf *text, KbMarkdown *md,
			   size_t *cap)
{
	const char *s = text->data;
	size_t		n = text->len;

	for (size_t i = 0; i + 1 < n; i++)
	{
		size_t		j;
		size_t		end;
		KbText		target;
		KbText	   *arr;

		if (s[i] != '[' || s[i + 1] != '[')
			continue;
		for (j = i + 2; j + 1 < n; j++)
		{
			if (s[j] == ']' && s[j + 1] == ']')
				break;
			if (s[j] == '\n' || s[j] == CODE_SEP || s[j] == '[')
				break;
		}
		if (j + 1 >= n || s[j] != ']' || s[j + 1] != ']')
			continue;
		end = i + 2;
		while (end < j && s[end] != '|' && s[end] != '#')
			end++;
		target = kb_trim(s + i + 2, end - (i + 2));
		i = j + 1;
		if (target.len == 0)
			continue;
		arr = kb_array_grow(a, md->wikilinks, sizeof(KbText), cap,
							md->nwikilinks + 1);
		if (arr == NULL)
			return KB_ENOMEM;
		md->wikilinks = arr;
		target.ptr = kb_strndup(a, target.ptr, target.len);
		if (target.ptr == NULL)
			return KB_ENOMEM;
		md->wikilinks[md->nwikilinks++] = target;
	}
	return KB_OK;
}

/* ---------------------------------------------------------------------
 * The walk over the AST.
 * ---------------------------------------------------------------------
 */
typedef struct KbMdState
{
	const KbAlloc *a;
	KbLines		lines;
	KbMarkdown *md;
	int			what;
	size_t		sec_cap;
	size_t		check_cap;
	size_t		wiki_cap;
	KbBuf		inline_text;	/* text of the current paragraph/heading */
} KbMdState;

static int
on_heading(KbMdState *st, cmark_node *node)
{
	KbMarkdown *md = st->md;
	KbSection  *sec;
	int			first = cmark_node_get_start_line(node);
	int			last = cmark_node_get_end_line(node);
	int			col = cmark_node_get_start_column(node);
	KbText		line = line_from(&st->lines, first, col);

	sec = kb_array_grow(st->a, md->sections, sizeof(KbSection), &st->sec_cap,
						md->nsections + 1);
	if (sec == NULL)
		return KB_ENOMEM;
	md->sections = sec;
	sec = &md->sections[md->nsections++];
	memset(sec, 0, sizeof(*sec));
	sec->level = cmark_node_get_heading_level(node);
	sec->line = first;
	if (first == last && is_atx_line(line))
	{
		sec->heading = atx_text(line);
		sec->raw_start = line_begin(&st->lines, first + 1);
	}
	else
	{
		/* setext: the text lines, then the underline */
		int			under = last;

		while (under > first && !is_setext_underline(line_from(&st->lines, under, 1)))
			under--;
		if (under == first)
			under = last + 1;
		if (join_lines(st->a, &st->lines, first, under - 1, col, 0,
					   &sec->heading) != KB_OK)
			return KB_ENOMEM;
		sec->raw_start = line_begin(&st->lines, under + 1);
	}
	return KB_OK;
}

/*
 * A list item whose first paragraph starts with "[ ]", "[x]" or "[X]" and
 * a space or tab is a task-list entry.
 */
static int
on_item(KbMdState *st, cmark_node *item)
{
	cmark_node *para = cmark_node_first_child(item);
	KbMarkdown *md = st->md;
	KbText		line;
	KbCheck    *c;
	int			first;

	if (para == NULL || cmark_node_get_type(para) != CMARK_NODE_PARAGRAPH)
		return KB_OK;
	first = cmark_node_get_start_line(para);
	line = line_from(&st->lines, first, cmark_node_get_start_column(para));
	if (line.len < 4 || line.ptr[0] != '[' || line.ptr[2] != ']' ||
		(line.ptr[1] != ' ' && line.ptr[1] != 'x' && line.ptr[1] != 'X') ||
		!is_blank_char(line.ptr[3]))
		return KB_OK;
	c = kb_array_grow(st->a, md->checks, sizeof(KbCheck), &st->check_cap,
					  md->nchecks + 1);
	if (c == NULL)
		return KB_ENOMEM;
	md->checks = c;
	c = &md->checks[md->nchecks++];
	c->section = (int) md->nsections - 1;
	c->checked = line.ptr[1] != ' ';
	return join_lines(st->a, &st->lines, first, cmark_node_get_end_line(para),
					  cmark_node_get_start_column(para), 4, &c->text);
}

static int
on_event(KbMdState *st, cmark_event_type ev, cmark_node *node)
{
	cmark_node_type type = cmark_node_get_type(node);
	bool		wiki = (st->what & KB_MD_WIKILINKS) != 0;

	switch (type)
	{
		case CMARK_NODE_HEADING:
		case CMARK_NODE_PARAGRAPH:
			if (ev == CMARK_EVENT_ENTER)
			{
				if (type == CMARK_NODE_HEADING && on_heading(st, node) != KB_OK)
					return KB_ENOMEM;
				st->inline_text.len = 0;
			}
			else if (wiki && st->inline_text.len > 0)
			{
				if (st->inline_text.failed ||
					scan_wikilinks(st->a, &st->inline_text, st->md,
								   &st->wiki_cap) != KB_OK)
					return KB_ENOMEM;
				st->inline_text.len = 0;
			}
			return KB_OK;
		case CMARK_NODE_ITEM:
			if (ev == CMARK_EVENT_ENTER && (st->what & KB_MD_CHECKLIST))
				return on_item(st, node);
			return KB_OK;
		case CMARK_NODE_TEXT:
			if (wiki)
			{
				const char *lit = cmark_node_get_literal(node);

				kb_buf_append(&st->inline_text, lit, strlen(lit));
			}
			return KB_OK;
		case CMARK_NODE_SOFTBREAK:
		case CMARK_NODE_LINEBREAK:
			if (wiki)
				kb_buf_append(&st->inline_text, "\n", 1);
			return KB_OK;
		case CMARK_NODE_CODE:
		case CMARK_NODE_HTML_INLINE:
			if (wiki)
			{
				char		sep = CODE_SEP;

				kb_buf_append(&st->inline_text, &sep, 1);
			}
			return KB_OK;
		default:
			return KB_OK;
	}
}

/* Each section's content runs to the next heading of any level. */
static void
finish_sections(KbMdState *st)
{
	KbMarkdown *md = st->md;

	for (size_t i = 0; i < md->nsections; i++)
	{
		KbSection  *s = &md->sections[i];
		size_t		end = i + 1 < md->nsections
			? line_begin(&st->lines, md->sections[i + 1].line)
			: st->lines.len;

		if (end < s->raw_start)
			end = s->raw_start;
		s->raw_end = end;
		s->content = kb_trim(st->lines.text + s->raw_start, end - s->raw_start);
	}
}

int
kb_markdown_analyze(const KbAlloc *a, const char *body, size_t len, int what,
					KbMarkdown *out)
{
	KbMdState	st;
	cmark_parser *parser;
	cmark_node *doc;
	cmark_iter *iter;
	cmark_event_type ev;
	int			rc = KB_OK;

	memset(out, 0, sizeof(*out));
	memset(&st, 0, sizeof(st));
	st.a = a;
	st.md = out;
	st.what = what;
	kb_buf_init(&st.inline_text, a);
	if (lines_build(a, body, len, &st.lines) != KB_OK)
		return KB_ENOMEM;

	cm_alloc = a;
	parser = cmark_parser_new_with_mem(CMARK_OPT_DEFAULT, &cm_mem);
	cmark_parser_feed(parser, body, len);
	doc = cmark_parser_finish(parser);
	cmark_parser_free(parser);
	iter = cmark_iter_new(doc);
	while ((ev = cmark_iter_next(iter)) != CMARK_EVENT_DONE)
	{
		if (on_event(&st, ev, cmark_iter_get_node(iter)) != KB_OK)
		{
			rc = KB_ENOMEM;
			break;
		}
	}
	cmark_iter_free(iter);
	cmark_node_free(doc);
	cm_alloc = NULL;
	if (rc != KB_OK)
		return rc;

	finish_sections(&st);
	if (what & KB_MD_WORKLOG)
		rc = kb_worklog_parse(a, body, out);
	return rc;
}
