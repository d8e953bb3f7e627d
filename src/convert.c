/*-------------------------------------------------------------------------
 *
 * convert.c
 *		  From an analysed file to the Datums of a row.
 *
 * Every value is validated by the core before it is turned into a Datum
 * here, so no input function can raise: a value of the wrong shape is NULL
 * (PostgreSQL 15 has no soft-error input path).  Text has been checked to
 * be UTF-8 when the file was read.
 *
 * src/convert.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/* Rows a file yields for a table; a fatal error yields none but in files. */
int
kabsd_file_rows(KabsdTable table, const KbFile *f)
{
	if (table == KT_FILES)
		return 1;
	if (f->fatal || f->fm == NULL)
		return 0;
	switch (table)
	{
		case KT_ITEMS:
			return f->is_item ? 1 : 0;
		case KT_DECISIONS:
			return f->is_decision ? 1 : 0;
		case KT_LINKS:
			return f->is_item ? (int) f->links.n : 0;
		case KT_WORKLOG:
			return f->is_item ? (int) f->md.nworklog : 0;
		case KT_SECTIONS:
			return (f->is_item || f->is_decision) ? (int) f->md.nsections : 0;
		case KT_CHECKLIST:
			return f->is_item ? (int) f->md.nchecks : 0;
		default:
			return 0;
	}
}

static Datum
text_datum(KbText t, bool *isnull)
{
	if (t.ptr == NULL)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return PointerGetDatum(cstring_to_text_with_len(t.ptr, (int) t.len));
}

static Datum
cstr_datum(const char *s, bool *isnull)
{
	if (s == NULL)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return CStringGetTextDatum(s);
}

static Datum
date_datum(bool present, const KbDate *d, bool *isnull)
{
	if (!present)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return DateADTGetDatum(date2j(d->year, d->month, d->day) - POSTGRES_EPOCH_JDATE);
}

static Datum
uuid_datum(bool present, const unsigned char *bytes, bool *isnull)
{
	pg_uuid_t  *u;

	if (!present)
	{
		*isnull = true;
		return (Datum) 0;
	}
	u = palloc(sizeof(pg_uuid_t));
	memcpy(u->data, bytes, UUID_LEN);
	return UUIDPGetDatum(u);
}

static Datum
text_array_datum(const KbTextList *l, bool *isnull)
{
	Datum	   *elems;
	bool	   *nulls;
	int			dims[1];
	int			lbs[1] = {1};

	if (!l->present)
	{
		*isnull = true;
		return (Datum) 0;
	}
	if (l->n == 0)
		return PointerGetDatum(construct_empty_array(TEXTOID));
	elems = palloc(sizeof(Datum) * l->n);
	nulls = palloc(sizeof(bool) * l->n);
	for (size_t i = 0; i < l->n; i++)
	{
		nulls[i] = false;
		elems[i] = text_datum(l->elems[i], &nulls[i]);
	}
	dims[0] = (int) l->n;
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  TEXTOID, -1, false, TYPALIGN_INT));
}

/* A timestamp from validated parts, without any input function. */
static Timestamp
timestamp_from(const KbTimestamp *ts)
{
	return (Timestamp) (date2j(ts->date.year, ts->date.month, ts->date.day) -
						POSTGRES_EPOCH_JDATE) * USECS_PER_DAY +
		((ts->hour * INT64CONST(60) + ts->minute) * 60 + ts->second) * USECS_PER_SEC +
		ts->usec;
}

static Datum
mtime_datum(const KbEntry *e)
{
	TimestampTz t;

	t = (TimestampTz) (e->mtime_sec -
					   ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)) *
		USECS_PER_SEC + e->mtime_nsec / 1000;
	return TimestampTzGetDatum(t);
}

/* ---------------------------------------------------------------------
 * jsonb from the value tree.
 * ---------------------------------------------------------------------
 */
static void
push_scalar(JsonbParseState **state, const KbValue *v, JsonbIteratorToken tok)
{
	JsonbValue	jv;

	switch (v->kind)
	{
		case KB_VAL_NULL:
			jv.type = jbvNull;
			break;
		case KB_VAL_BOOL:
			jv.type = jbvBool;
			jv.val.boolean = v->text[0] == 't';
			break;
		case KB_VAL_NUMBER:
			/* kb_is_json_number accepted it, so numeric_in cannot fail */
			jv.type = jbvNumeric;
			jv.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																 CStringGetDatum(v->text),
																 ObjectIdGetDatum(InvalidOid),
																 Int32GetDatum(-1)));
			break;
		default:
			jv.type = jbvString;
			jv.val.string.val = (char *) v->text;
			jv.val.string.len = (int) v->len;
			break;
	}
	pushJsonbValue(state, tok, &jv);
}

/*
 * Pushes a value; returns the finished jsonb value when v closes the
 * outermost container.  Depth is bounded by the YAML limits.
 */
static JsonbValue *
push_value(JsonbParseState **state, const KbValue *v, bool in_array)
{
	if (v->kind == KB_VAL_MAP)
	{
		pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
		for (size_t i = 0; i < v->n; i++)
		{
			const KbValue *k = v->items[2 * i];
			JsonbValue	key;

			key.type = jbvString;
			key.val.string.val = (char *) k->text;
			key.val.string.len = (int) k->len;
			pushJsonbValue(state, WJB_KEY, &key);
			push_value(state, v->items[2 * i + 1], false);
		}
		return pushJsonbValue(state, WJB_END_OBJECT, NULL);
	}
	if (v->kind == KB_VAL_SEQ)
	{
		pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
		for (size_t i = 0; i < v->n; i++)
			push_value(state, v->items[i], true);
		return pushJsonbValue(state, WJB_END_ARRAY, NULL);
	}
	push_scalar(state, v, in_array ? WJB_ELEM : WJB_VALUE);
	return NULL;
}

static Datum
jsonb_datum(const KbValue *v, bool *isnull)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;

	if (v == NULL)
	{
		*isnull = true;
		return (Datum) 0;
	}
	if (v->kind == KB_VAL_MAP || v->kind == KB_VAL_SEQ)
		res = push_value(&state, v, false);
	else
	{
		/* a top-level scalar is a one-element raw-scalar array */
		JsonbValue	arr;

		arr.type = jbvArray;
		arr.val.array.rawScalar = true;
		arr.val.array.nElems = 1;
		pushJsonbValue(&state, WJB_BEGIN_ARRAY, &arr);
		push_scalar(&state, v, WJB_ELEM);
		res = pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	}
	return JsonbPGetDatum(JsonbValueToJsonb(res));
}

/* ---------------------------------------------------------------------
 * A column mapped to a frontmatter key, converted to its declared type.
 * Anything that does not convert is NULL.
 * ---------------------------------------------------------------------
 */
static Datum
key_datum(const KbFile *f, const char *key, Oid type, bool *isnull)
{
	const KbValue *v = f->fm ? kb_map_get_path(f->fm, key) : NULL;
	KbText		t;
	bool		scalar = kb_value_scalar_text(v, &t);

	*isnull = true;
	if (v == NULL || v->kind == KB_VAL_NULL)
		return (Datum) 0;
	switch (type)
	{
		case JSONBOID:
			*isnull = false;
			return jsonb_datum(v, isnull);
		case TEXTARRAYOID:
			{
				KbTextList	l;

				if (v->kind != KB_VAL_SEQ)
					return (Datum) 0;
				l.n = v->n;
				l.present = true;
				l.elems = palloc(sizeof(KbText) * Max(1, v->n));
				for (size_t i = 0; i < v->n; i++)
					if (!kb_value_scalar_text(v->items[i], &l.elems[i]) &&
						v->items[i]->kind != KB_VAL_NULL)
						return (Datum) 0;
				*isnull = false;
				return text_array_datum(&l, isnull);
			}
		default:
			break;
	}
	if (!scalar)
		return (Datum) 0;
	switch (type)
	{
		case TEXTOID:
			*isnull = false;
			return text_datum(t, isnull);
		case INT2OID:
		case INT4OID:
		case INT8OID:
			{
				int64_t		n;

				if (!kb_parse_int64(t.ptr, t.len, &n))
					return (Datum) 0;
				if (type == INT2OID && (n < PG_INT16_MIN || n > PG_INT16_MAX))
					return (Datum) 0;
				if (type == INT4OID && (n < PG_INT32_MIN || n > PG_INT32_MAX))
					return (Datum) 0;
				*isnull = false;
				return type == INT2OID ? Int16GetDatum((int16) n)
					: type == INT4OID ? Int32GetDatum((int32) n)
					: Int64GetDatum((int64) n);
			}
		case NUMERICOID:
			if (!kb_is_json_number(t.ptr, t.len))
				return (Datum) 0;
			*isnull = false;
			return DirectFunctionCall3(numeric_in, CStringGetDatum(pnstrdup(t.ptr, t.len)),
									   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		case BOOLOID:
			if (t.len == 4 && pg_strncasecmp(t.ptr, "true", 4) == 0)
			{
				*isnull = false;
				return BoolGetDatum(true);
			}
			if (t.len == 5 && pg_strncasecmp(t.ptr, "false", 5) == 0)
			{
				*isnull = false;
				return BoolGetDatum(false);
			}
			return (Datum) 0;
		case DATEOID:
			{
				KbDate		d;

				if (!kb_parse_date_prefix(t.ptr, t.len, &d))
					return (Datum) 0;
				*isnull = false;
				return date_datum(true, &d, isnull);
			}
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			{
				KbTimestamp ts;
				char		buf[64];

				if (!kb_parse_timestamp(t.ptr, t.len, &ts))
					return (Datum) 0;
				*isnull = false;
				if (type == TIMESTAMPOID)
					return TimestampGetDatum(timestamp_from(&ts));
				if (ts.has_offset)
					return TimestampTzGetDatum(timestamp_from(&ts) -
											   (int64) ts.offset_sec * USECS_PER_SEC);
				/* no zone written: the session's TimeZone, as PostgreSQL reads it */
				snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d.%06d",
						 ts.date.year, ts.date.month, ts.date.day, ts.hour,
						 ts.minute, ts.second, ts.usec);
				return DirectFunctionCall3(timestamptz_in, CStringGetDatum(buf),
										   ObjectIdGetDatum(InvalidOid),
										   Int32GetDatum(-1));
			}
		case UUIDOID:
			{
				unsigned char u[16];

				if (!kb_parse_uuid(t.ptr, t.len, u))
					return (Datum) 0;
				*isnull = false;
				return uuid_datum(true, u, isnull);
			}
		default:
			return (Datum) 0;
	}
}

/* ---------------------------------------------------------------------
 * One row.  Columns are addressed by their name in the table's def; the
 * switch on (table, column name) is kept in one place per table.
 * ---------------------------------------------------------------------
 */

/* uid and id of the file's item or decision, for the child tables. */
static void
owner_ids(const KbFile *f, bool *has_uid, const unsigned char **uid,
		  KbText *id)
{
	if (f->is_item)
	{
		*has_uid = f->item.has_uid;
		*uid = f->item.uid;
		*id = f->item.id;
	}
	else
	{
		*has_uid = f->decision.has_uid;
		*uid = f->decision.uid;
		*id = f->decision.id;
	}
}

static Datum
column_datum(KabsdTable table, const char *col, const KbEntry *e,
			 const KbFile *f, size_t row, bool *isnull)
{
	KbText		relpath = {e->relpath, e->relpath_len};

	/* columns every table has */
	if (strcmp(col, "path") == 0)
		return text_datum(relpath, isnull);
	if (strcmp(col, "product") == 0)
		return text_datum(f->product, isnull);
	if (strcmp(col, "mtime") == 0)
		return mtime_datum(e);

	switch (table)
	{
		case KT_FILES:
			if (strcmp(col, "kind") == 0)
				return CStringGetTextDatum(kb_kind_name(f->kind));
			if (strcmp(col, "size") == 0)
				return Int64GetDatum(e->size);
			if (strcmp(col, "has_frontmatter") == 0)
			{
				if (!f->was_read)
					break;
				return BoolGetDatum(f->has_frontmatter);
			}
			if (strcmp(col, "error") == 0)
				return cstr_datum(kb_file_error(f), isnull);
			break;
		case KT_ITEMS:
			{
				const KbItem *it = &f->item;

				if (strcmp(col, "uid") == 0)
					return uuid_datum(it->has_uid, it->uid, isnull);
				if (strcmp(col, "id") == 0)
					return text_datum(it->id, isnull);
				if (strcmp(col, "type") == 0)
					return text_datum(it->type, isnull);
				if (strcmp(col, "state") == 0)
					return text_datum(it->state, isnull);
				if (strcmp(col, "title") == 0)
					return text_datum(it->title, isnull);
				if (strcmp(col, "priority") == 0)
					return text_datum(it->priority, isnull);
				if (strcmp(col, "parent") == 0)
					return text_datum(it->parent, isnull);
				if (strcmp(col, "area") == 0)
					return text_datum(it->area, isnull);
				if (strcmp(col, "iteration") == 0)
					return text_datum(it->iteration, isnull);
				if (strcmp(col, "owner") == 0)
					return text_datum(it->owner, isnull);
				if (strcmp(col, "tags") == 0)
					return text_array_datum(&it->tags, isnull);
				if (strcmp(col, "decisions") == 0)
					return text_array_datum(&it->decisions, isnull);
				if (strcmp(col, "created") == 0)
					return date_datum(it->has_created, &it->created, isnull);
				if (strcmp(col, "updated") == 0)
					return date_datum(it->has_updated, &it->updated, isnull);
				if (strcmp(col, "frontmatter") == 0)
					return jsonb_datum(f->fm, isnull);
				if (strcmp(col, "body") == 0)
					return text_datum(f->body, isnull);
				break;
			}
		case KT_DECISIONS:
			{
				const KbDecision *d = &f->decision;

				if (strcmp(col, "uid") == 0)
					return uuid_datum(d->has_uid, d->uid, isnull);
				if (strcmp(col, "id") == 0)
					return text_datum(d->id, isnull);
				if (strcmp(col, "title") == 0)
					return text_datum(d->title, isnull);
				if (strcmp(col, "status") == 0)
					return text_datum(d->status, isnull);
				if (strcmp(col, "date") == 0)
					return date_datum(d->has_date, &d->date, isnull);
				if (strcmp(col, "deciders") == 0)
					return text_array_datum(&d->deciders, isnull);
				if (strcmp(col, "related_items") == 0)
					return text_array_datum(&d->related_items, isnull);
				if (strcmp(col, "supersedes") == 0)
					return text_datum(d->supersedes, isnull);
				if (strcmp(col, "superseded_by") == 0)
					return text_datum(d->superseded_by, isnull);
				if (strcmp(col, "tags") == 0)
					return text_array_datum(&d->tags, isnull);
				if (strcmp(col, "frontmatter") == 0)
					return jsonb_datum(f->fm, isnull);
				if (strcmp(col, "body") == 0)
					return text_datum(f->body, isnull);
				break;
			}
		default:
			{
				bool		has_uid;
				const unsigned char *uid;
				KbText		id;

				owner_ids(f, &has_uid, &uid, &id);
				if (strcmp(col, "source_uid") == 0 || strcmp(col, "item_uid") == 0)
					return uuid_datum(has_uid, uid, isnull);
				if (strcmp(col, "source_id") == 0 || strcmp(col, "item_id") == 0)
					return text_datum(id, isnull);
				if (strcmp(col, "ordinal") == 0)
					return Int32GetDatum((int32) row + 1);
				break;
			}
	}

	switch (table)
	{
		case KT_LINKS:
			{
				const KbLink *l = &f->links.links[row];

				if (strcmp(col, "type") == 0)
					return CStringGetTextDatum(kb_link_type_name(l->type));
				if (strcmp(col, "target_id") == 0)
					return text_datum(l->target, isnull);
				break;
			}
		case KT_WORKLOG:
			{
				const KbWorklogEntry *w = &f->md.worklog[row];

				if (strcmp(col, "at") == 0)
				{
					if (!w->has_at)
						break;
					return TimestampGetDatum(timestamp_from(&w->at));
				}
				if (strcmp(col, "agent") == 0)
					return text_datum(w->agent, isnull);
				if (strcmp(col, "model") == 0)
					return text_datum(w->model, isnull);
				if (strcmp(col, "message") == 0)
					return text_datum(w->message, isnull);
				if (strcmp(col, "new_state") == 0)
					return text_datum(w->new_state, isnull);
				break;
			}
		case KT_SECTIONS:
			{
				const KbSection *s = &f->md.sections[row];

				if (strcmp(col, "level") == 0)
					return Int32GetDatum(s->level);
				if (strcmp(col, "heading") == 0)
					return text_datum(s->heading, isnull);
				if (strcmp(col, "content") == 0)
					return text_datum(s->content, isnull);
				break;
			}
		case KT_CHECKLIST:
			{
				const KbCheck *c = &f->md.checks[row];

				if (strcmp(col, "section") == 0)
				{
					KbText		none = {NULL, 0};

					return text_datum(c->section >= 0
									  ? f->md.sections[c->section].heading
									  : none, isnull);
				}
				if (strcmp(col, "checked") == 0)
					return BoolGetDatum(c->checked);
				if (strcmp(col, "text") == 0)
					return text_datum(c->text, isnull);
				break;
			}
		default:
			break;
	}
	*isnull = true;
	return (Datum) 0;
}

/*
 * Fills values/isnull for row of file f.  Attributes the query does not
 * need (wanted[i] false) are NULL and cost nothing.
 */
void
kabsd_fill_row(const KabsdBinding *b, const bool *wanted, const KbEntry *e,
			   const KbFile *f, size_t row, Datum *values, bool *isnull)
{
	const KabsdTableDef *def = &kabsd_tables[b->table];

	for (int i = 0; i < b->natts; i++)
	{
		const KabsdColumn *col = &b->cols[i];

		values[i] = (Datum) 0;
		isnull[i] = true;
		if (!wanted[i] || col->colid == KABSD_COL_DROPPED ||
			col->colid == KABSD_COL_DERIVED)
			continue;
		isnull[i] = false;
		if (col->colid == KABSD_COL_KEY)
			values[i] = key_datum(f, col->key, col->type, &isnull[i]);
		else
			values[i] = column_datum(b->table, def->cols[col->colid].name, e,
									 f, row, &isnull[i]);
	}
}
