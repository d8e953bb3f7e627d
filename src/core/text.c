/*-------------------------------------------------------------------------
 *
 * text.c
 *		  Buffers, UTF-8 checks and the frontmatter split.
 *
 * src/core/text.c
 *
 *-------------------------------------------------------------------------
 */
#include "kb_core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/*
 * Buffers grow geometrically; a failed allocation marks the buffer failed
 * so that callers can check once at the end instead of after each append.
 */
void
kb_buf_init(KbBuf *b, const KbAlloc *a)
{
	b->a = a;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->failed = false;
}

static bool
kb_buf_reserve(KbBuf *b, size_t extra)
{
	size_t		need;
	size_t		cap;
	char	   *p;

	if (b->failed)
		return false;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	if (b->data == NULL)
		p = b->a->alloc(b->a->ctx, cap);
	else
		p = b->a->realloc(b->a->ctx, b->data, b->cap, cap);
	if (p == NULL)
	{
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void
kb_buf_append(KbBuf *b, const char *s, size_t n)
{
	if (!kb_buf_reserve(b, n))
		return;
	if (n > 0)
		memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
kb_buf_appendf(KbBuf *b, const char *fmt,...)
{
	va_list		ap;
	char		small[256];
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t) n < sizeof(small))
	{
		kb_buf_append(b, small, (size_t) n);
		return;
	}
	if (!kb_buf_reserve(b, (size_t) n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t) n;
}

char *
kb_strndup(const KbAlloc *a, const char *s, size_t n)
{
	char	   *p = a->alloc(a->ctx, n + 1);

	if (p == NULL)
		return NULL;
	if (n > 0)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/*
 * Makes room for need elements in a growable array; returns the (possibly
 * moved) array or NULL when out of memory, in which case arr is untouched.
 */
void *
kb_array_grow(const KbAlloc *a, void *arr, size_t elemsize, size_t *cap,
			  size_t need)
{
	size_t		newcap;
	void	   *p;

	if (need <= *cap)
		return arr;
	newcap = *cap ? *cap * 2 : 8;
	while (newcap < need)
		newcap *= 2;
	if (arr == NULL)
		p = a->alloc(a->ctx, newcap * elemsize);
	else
		p = a->realloc(a->ctx, arr, *cap * elemsize, newcap * elemsize);
	if (p == NULL)
		return NULL;
	*cap = newcap;
	return p;
}

/* Eight bytes at a time: each byte 0x01, and each byte's high bit. */
#define ASCII_ONES UINT64_C(0x0101010101010101)
#define ASCII_HIGH UINT64_C(0x8080808080808080)

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past
 * U+10FFFF.  NUL is refused too, because PostgreSQL text cannot hold it.
 */
bool
kb_check_utf8(const char *str, size_t len, size_t *bad_offset, bool *is_nul)
{
	const unsigned char *s = (const unsigned char *) str;
	size_t		i = 0;

	*is_nul = false;
	while (i < len)
	{
		unsigned char c;
		size_t		n;
		unsigned char lo = 0x80,
					hi = 0xBF;

		/* eight bytes at a time while they are ASCII and none is NUL */
		while (len - i >= 8)
		{
			uint64_t	w;

			memcpy(&w, s + i, 8);
			if (((w | ((w - ASCII_ONES) & ~w)) & ASCII_HIGH) != 0)
				break;
			i += 8;
		}
		if (i >= len)
			break;
		c = s[i];
		if (c < 0x80)
		{
			if (c == 0)
			{
				*is_nul = true;
				*bad_offset = i;
				return false;
			}
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 1;
		else if (c >= 0xE0 && c <= 0xEF)
		{
			n = 2;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		}
		else if (c >= 0xF0 && c <= 0xF4)
		{
			n = 3;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		}
		else
		{
			*bad_offset = i;
			return false;
		}
		if (i + n >= len)	/* truncated sequence */
		{
			*bad_offset = i;
			return false;
		}
		if (s[i + 1] < lo || s[i + 1] > hi)
		{
			*bad_offset = i;
			return false;
		}
		for (size_t k = 2; k <= n; k++)
		{
			if (s[i + k] < 0x80 || s[i + k] > 0xBF)
			{
				*bad_offset = i;
				return false;
			}
		}
		i += n + 1;
	}
	return true;
}

/* Cuts a length back so that it does not end inside a UTF-8 character. */
size_t
kb_utf8_clip(const char *s, size_t len)
{
	size_t		i = len;

	/* step back over continuation bytes to the last lead byte */
	while (i > 0 && ((unsigned char) s[i - 1] & 0xC0) == 0x80 && len - i < 3)
		i--;
	if (i > 0)
	{
		unsigned char c = (unsigned char) s[i - 1];
		size_t		want;

		if (c < 0x80)
			return len;
		want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
		if (len - (i - 1) < want)
			return i - 1;
	}
	return len;
}

static bool
kb_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
		c == '\v';
}

KbText
kb_trim(const char *s, size_t len)
{
	KbText		t;

	while (len > 0 && kb_is_space(*s))
	{
		s++;
		len--;
	}
	while (len > 0 && kb_is_space(s[len - 1]))
		len--;
	t.ptr = s;
	t.len = len;
	return t;
}

/*
 * Is the line s[0..len) (without its '\n') exactly the fence, allowing a
 * CR before the newline?
 */
static bool
kb_line_is(const char *s, size_t len, const char *fence)
{
	if (len > 0 && s[len - 1] == '\r')
		len--;
	return len == 3 && memcmp(s, fence, 3) == 0;
}

/*
 * Frontmatter: the first line (after an optional BOM) is exactly "---"; it
 * ends at the next line that is exactly "---" or "...".
 */
KbSplitResult
kb_split_frontmatter(const char *data, size_t len, KbSplit *out)
{
	const char *p = data;
	const char *end = data + len;
	const char *nl;

	if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	nl = memchr(p, '\n', (size_t) (end - p));
	if (nl == NULL || !kb_line_is(p, (size_t) (nl - p), "---"))
		return KB_SPLIT_NONE;
	p = nl + 1;
	out->yaml = p;
	out->yaml_first_line = 2;
	while (p < end)
	{
		const char *eol;

		nl = memchr(p, '\n', (size_t) (end - p));
		eol = nl ? nl : end;
		if (kb_line_is(p, (size_t) (eol - p), "---") ||
			kb_line_is(p, (size_t) (eol - p), "..."))
		{
			out->yaml_len = (size_t) (p - out->yaml);
			out->body = nl ? nl + 1 : end;
			out->body_len = (size_t) (end - out->body);
			return KB_SPLIT_OK;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return KB_SPLIT_UNCLOSED;
}
