/*-------------------------------------------------------------------------
 *
 * worklog.c
 *		  Entries of the sections headed "Worklog":
 *
 *			YYYY-MM-DD HH:MM[:SS] [agent=NAME] [model=NAME] message
 *
 *		  with the following non-blank lines that start no entry joined to
 *		  the message.  Both tags are optional here (a missing agent gives
 *		  NULL); a timestamp of the right shape that is no real date and time
 *		  gives an entry whose time is NULL.
 *
 * src/core/worklog.c
 *
 *-------------------------------------------------------------------------
 */
#include "kb_core.h"

#include <string.h>

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_word_char(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		c == '_';
}

static bool
heading_is_worklog(KbText h)
{
	static const char word[] = "worklog";

	if (h.len != 7)
		return false;
	for (size_t i = 0; i < 7; i++)
	{
		char		c = h.ptr[i];

		if (c >= 'A' && c <= 'Z')
			c = (char) (c - 'A' + 'a');
		if (c != word[i])
			return false;
	}
	return true;
}

/*
 * Length of the "YYYY-MM-DD HH:MM[:SS]" prefix of a line (by shape only,
 * followed by a blank or the end), or 0.
 */
static size_t
stamp_length(const char *s, size_t len)
{
	static const char shape[] = "dddd-dd-dd dd:dd";
	size_t		n = sizeof(shape) - 1;

	if (len < n)
		return 0;
	for (size_t i = 0; i < n; i++)
	{
		if (shape[i] == 'd' ? !is_digit(s[i]) : s[i] != shape[i])
			return 0;
	}
	if (len >= n + 3 && s[n] == ':' && is_digit(s[n + 1]) && is_digit(s[n + 2]))
		n += 3;
	if (n < len && s[n] != ' ' && s[n] != '\t')
		return 0;
	return n;
}

/* "[name=VALUE]" at *p: sets out to VALUE and moves p past it. */
static bool
take_tag(const char **p, const char *end, const char *name, KbText *out)
{
	size_t		n = strlen(name);
	const char *s = *p;
	const char *close;

	if ((size_t) (end - s) < n + 3 || s[0] != '[' ||
		memcmp(s + 1, name, n) != 0 || s[n + 1] != '=')
		return false;
	close = memchr(s + n + 2, ']', (size_t) (end - (s + n + 2)));
	if (close == NULL)
		return false;
	out->ptr = s + n + 2;
	out->len = (size_t) (close - out->ptr);
	*p = close + 1;
	while (*p < end && (**p == ' ' || **p == '\t'))
		(*p)++;
	return true;
}

/* The word X of the first "State -> X" in the message. */
static KbText
find_new_state(KbText msg)
{
	static const char marker[] = "State -> ";
	size_t		m = sizeof(marker) - 1;
	KbText		t = {NULL, 0};

	for (size_t i = 0; i + m < msg.len; i++)
	{
		size_t		j = i + m;

		if (memcmp(msg.ptr + i, marker, m) != 0)
			continue;
		while (j < msg.len && is_word_char(msg.ptr[j]))
			j++;
		if (j > i + m)
		{
			t.ptr = msg.ptr + i + m;
			t.len = j - (i + m);
			return t;
		}
	}
	return t;
}

static void
start_entry(KbWorklogEntry *e, const char *line, size_t len, size_t stamp)
{
	const char *p = line + stamp;
	const char *end = line + len;

	memset(e, 0, sizeof(*e));
	e->has_at = kb_parse_timestamp(line, stamp, &e->at);
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	take_tag(&p, end, "agent", &e->agent);
	take_tag(&p, end, "model", &e->model);
	e->message = kb_trim(p, (size_t) (end - p));
}

/*
 * Ends an entry: continuation lines, if any, were collected in buf after
 * the first line's message.
 */
static int
finish_entry(KbWorklogEntry *e, KbBuf *buf)
{
	if (buf->len > 0)
	{
		if (buf->failed)
			return KB_ENOMEM;
		e->message.ptr = buf->data;
		e->message.len = buf->len;
	}
	e->new_state = find_new_state(e->message);
	return KB_OK;
}

int
kb_worklog_parse(const KbAlloc *a, const char *body, KbMarkdown *md)
{
	size_t		cap = 0;

	for (size_t s = 0; s < md->nsections; s++)
	{
		const KbSection *sec = &md->sections[s];
		const char *p = body + sec->raw_start;
		const char *end = body + sec->raw_end;
		KbWorklogEntry *cur = NULL;
		KbBuf		more;

		if (!heading_is_worklog(sec->heading))
			continue;
		kb_buf_init(&more, a);
		while (p < end)
		{
			const char *eol = p;
			const char *next;
			size_t		n;
			size_t		stamp;
			KbText		trimmed;

			while (eol < end && *eol != '\n' && *eol != '\r')
				eol++;
			next = eol;
			if (next < end && *next == '\r')
				next++;
			if (next < end && *next == '\n')
				next++;
			n = (size_t) (eol - p);
			trimmed = kb_trim(p, n);
			stamp = stamp_length(p, n);
			if (stamp > 0)
			{
				KbWorklogEntry *arr;

				if (cur && finish_entry(cur, &more) != KB_OK)
					return KB_ENOMEM;
				arr = kb_array_grow(a, md->worklog, sizeof(KbWorklogEntry),
									&cap, md->nworklog + 1);
				if (arr == NULL)
					return KB_ENOMEM;
				md->worklog = arr;
				cur = &md->worklog[md->nworklog++];
				start_entry(cur, p, n, stamp);
				kb_buf_init(&more, a);
			}
			else if (cur != NULL && trimmed.len > 0)
			{
				/* a continuation line: joined to the message as written */
				if (more.len == 0)
					kb_buf_append(&more, cur->message.ptr, cur->message.len);
				kb_buf_append(&more, "\n", 1);
				kb_buf_append(&more, p, n);
			}
			p = next;
		}
		if (cur && finish_entry(cur, &more) != KB_OK)
			return KB_ENOMEM;
	}
	return KB_OK;
}
