/*-------------------------------------------------------------------------
 *
 * values.c
 *		  Values of a definite shape: dates, timestamps, UUIDs, numbers, text
 *		  and lists of text, each validated before anything reaches a
 *		  PostgreSQL input function (PostgreSQL 15 has no soft errors).
 *
 * src/core/values.c
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

/* n decimal digits at s, as an int. */
static bool
digits(const char *s, size_t n, int *out)
{
	int			v = 0;

	for (size_t i = 0; i < n; i++)
	{
		if (!is_digit(s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool
kb_valid_date(int y, int m, int d)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			days;

	if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1)
		return false;
	days = mdays[m - 1];
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		days = 29;
	return d <= days;
}

/* "YYYY-MM-DD" at the start of s; the rest is not looked at. */
static bool
date_at(const char *s, size_t len, KbDate *out)
{
	if (len < 10 || s[4] != '-' || s[7] != '-')
		return false;
	if (!digits(s, 4, &out->year) || !digits(s + 5, 2, &out->month) ||
		!digits(s + 8, 2, &out->day))
		return false;
	return true;
}

/*
 * A date, or the date part of a date and time: "2026-01-07",
 * "2026-01-07 10:35:00", "2026-01-07T10:35:00Z".  The time part, when
 * present, must be a valid time too, so that "2026-01-07 junk" is refused.
 */
bool
kb_parse_date_prefix(const char *s, size_t len, KbDate *out)
{
	KbTimestamp ts;

	if (len == 10)
		return date_at(s, len, out) &&
			kb_valid_date(out->year, out->month, out->day);
	if (!kb_parse_timestamp(s, len, &ts))
		return false;
	*out = ts.date;
	return true;
}

/*
 * "YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][Z|(+|-)HH[:MM]]", each part checked
 * for range.  A bare date is midnight.
 */
bool
kb_parse_timestamp(const char *s, size_t len, KbTimestamp *out)
{
	size_t		i = 10;

	memset(out, 0, sizeof(*out));
	if (!date_at(s, len, &out->date) ||
		!kb_valid_date(out->date.year, out->date.month, out->date.day))
		return false;
	if (len == 10)
		return true;
	if ((s[i] != ' ' && s[i] != 'T') || len < i + 6)
		return false;
	i++;
	if (!digits(s + i, 2, &out->hour) || s[i + 2] != ':' ||
		!digits(s + i + 3, 2, &out->minute))
		return false;
	i += 5;
	if (i < len && s[i] == ':')
	{
		if (len < i + 3 || !digits(s + i + 1, 2, &out->second))
			return false;
		i += 3;
		if (i < len && s[i] == '.')
		{
			int			scale = 100000;

			i++;
			if (i >= len || !is_digit(s[i]))
				return false;
			for (; i < len && is_digit(s[i]); i++)
			{
				out->usec += (s[i] - '0') * scale;
				scale /= 10;
			}
		}
	}
	if (out->hour > 23 || out->minute > 59 || out->second > 59)
		return false;
	if (i < len && s[i] == ' ')
		i++;
	if (i == len)
		return true;
	if (s[i] == 'Z' && i + 1 == len)
	{
		out->has_offset = true;
		return true;
	}
	if (s[i] == '+' || s[i] == '-')
	{
		int			oh,
					om = 0;
		int			sign = s[i] == '-' ? -1 : 1;

		i++;
		if (len < i + 2 || !digits(s + i, 2, &oh))
			return false;
		i += 2;
		if (i < len && s[i] == ':')
			i++;
		if (i < len)
		{
			if (len != i + 2 || !digits(s + i, 2, &om))
				return false;
			i += 2;
		}
		if (oh > 15 || om > 59 || i != len)
			return false;
		out->has_offset = true;
		out->offset_sec = sign * (oh * 3600 + om * 60);
		return true;
	}
	return false;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The canonical 8-4-4-4-12 form, either case. */
bool
kb_parse_uuid(const char *s, size_t len, unsigned char out[16])
{
	int			k = 0;

	if (len != 36)
		return false;
	for (size_t i = 0; i < 36;)
	{
		int			hi,
					lo;

		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
			i++;
			continue;
		}
		hi = hexval(s[i]);
		lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[k++] = (unsigned char) (hi * 16 + lo);
		i += 2;
	}
	return true;
}

bool
kb_parse_int64(const char *s, size_t len, int64_t *out)
{
	size_t		i = 0;
	bool		neg = false;
	uint64_t	v = 0;
	uint64_t	limit;

	if (len > 0 && (s[0] == '-' || s[0] == '+'))
	{
		neg = s[0] == '-';
		i++;
	}
	if (i == len)
		return false;
	limit = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
	for (; i < len; i++)
	{
		if (!is_digit(s[i]))
			return false;
		if (v > (limit - (uint64_t) (s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t) (s[i] - '0');
	}
	*out = neg ? (int64_t) (0 - v) : (int64_t) v;
	return true;
}

/*
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?  -- a plain integer or decimal that JSON
 * and numeric_in read alike; "0042" (octal-looking), "1e5", "0x1F", "+1"
 * and ".5" stay strings.
 */
bool
kb_is_json_number(const char *s, size_t len)
{
	size_t		i = 0;

	if (len > 0 && s[0] == '-')
		i++;
	if (i == len || !is_digit(s[i]))
		return false;
	if (s[i] == '0')
		i++;
	else
		while (i < len && is_digit(s[i]))
			i++;
	if (i < len && s[i] == '.')
	{
		i++;
		if (i == len || !is_digit(s[i]))
			return false;
		while (i < len && is_digit(s[i]))
			i++;
	}
	return i == len;
}

bool
kb_value_scalar_text(const KbValue *v, KbText *out)
{
	if (v == NULL || v->kind == KB_VAL_NULL || v->kind == KB_VAL_SEQ ||
		v->kind == KB_VAL_MAP)
	{
		out->ptr = NULL;
		out->len = 0;
		return false;
	}
	out->ptr = v->text;
	out->len = v->len;
	return true;
}

/*
 * Notes read like "key \"uid\": expected a UUID, got \"12\"" and are joined
 * with "; ".  The value shown is cut at 40 bytes on a character boundary.
 */
void
kb_notes_add(KbNotes *notes, const char *key, const char *what,
			 const KbValue *v)
{
	KbBuf	   *b;

	if (notes == NULL)
		return;					/* the caller reports this key elsewhere */
	b = &notes->buf;
	if (b->len > 0)
		kb_buf_append(b, "; ", 2);
	kb_buf_appendf(b, "key \"%s\": expected %s", key, what);
	if (v == NULL)
		return;
	if (v->kind == KB_VAL_SEQ)
		kb_buf_append(b, ", got a list", 12);
	else if (v->kind == KB_VAL_MAP)
		kb_buf_append(b, ", got a mapping", 15);
	else
	{
		size_t		n = v->len > 40 ? kb_utf8_clip(v->text, 40) : v->len;

		kb_buf_append(b, ", got \"", 7);
		kb_buf_append(b, v->text, n);
		kb_buf_append(b, n < v->len ? "...\"" : "\"", n < v->len ? 4 : 1);
	}
}

KbShape
kb_get_text(const KbValue *map, const char *key, KbText *out, KbNotes *notes)
{
	const KbValue *v = kb_map_get(map, key);

	out->ptr = NULL;
	out->len = 0;
	if (v == NULL || v->kind == KB_VAL_NULL)
		return KB_SHAPE_ABSENT;
	if (!kb_value_scalar_text(v, out))
	{
		kb_notes_add(notes, key, "text", v);
		return KB_SHAPE_WRONG;
	}
	return KB_SHAPE_OK;
}

/*
 * A list of scalars; a single string (tags: "a,b") is a wrong shape.  name
 * is the key as the note shows it ("links.relates").
 */
KbShape
kb_value_text_list(const KbAlloc *a, const KbValue *v, const char *name,
				   KbTextList *out, KbNotes *notes)
{
	memset(out, 0, sizeof(*out));
	if (v == NULL || v->kind == KB_VAL_NULL)
		return KB_SHAPE_ABSENT;
	if (v->kind != KB_VAL_SEQ)
	{
		kb_notes_add(notes, name, "a list", v);
		return KB_SHAPE_WRONG;
	}
	for (size_t i = 0; i < v->n; i++)
	{
		if (v->items[i]->kind == KB_VAL_SEQ || v->items[i]->kind == KB_VAL_MAP)
		{
			kb_notes_add(notes, name, "a list of scalars", v->items[i]);
			return KB_SHAPE_WRONG;
		}
	}
	out->elems = a->alloc(a->ctx, (v->n ? v->n : 1) * sizeof(KbText));
	if (out->elems == NULL)
	{
		if (notes)
			notes->buf.failed = true;
		return KB_SHAPE_WRONG;
	}
	for (size_t i = 0; i < v->n; i++)
		kb_value_scalar_text(v->items[i], &out->elems[i]);
	out->n = v->n;
	out->present = true;
	return KB_SHAPE_OK;
}

KbShape
kb_get_text_list(const KbAlloc *a, const KbValue *map, const char *key,
				 KbTextList *out, KbNotes *notes)
{
	return kb_value_text_list(a, kb_map_get(map, key), key, out, notes);
}

KbShape
kb_get_date(const KbValue *map, const char *key, KbDate *out, KbNotes *notes)
{
	const KbValue *v = kb_map_get(map, key);

	if (v == NULL || v->kind == KB_VAL_NULL)
		return KB_SHAPE_ABSENT;
	if (v->kind == KB_VAL_SEQ || v->kind == KB_VAL_MAP ||
		!kb_parse_date_prefix(v->text, v->len, out))
	{
		kb_notes_add(notes, key, "a date", v);
		return KB_SHAPE_WRONG;
	}
	return KB_SHAPE_OK;
}

KbShape
kb_get_uuid(const KbValue *map, const char *key, unsigned char out[16],
			KbNotes *notes)
{
	const KbValue *v = kb_map_get(map, key);

	if (v == NULL || v->kind == KB_VAL_NULL)
		return KB_SHAPE_ABSENT;
	if (v->kind == KB_VAL_SEQ || v->kind == KB_VAL_MAP ||
		!kb_parse_uuid(v->text, v->len, out))
	{
		kb_notes_add(notes, key, "a UUID", v);
		return KB_SHAPE_WRONG;
	}
	return KB_SHAPE_OK;
}
