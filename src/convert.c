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
 * One row.  A column is computed by its field, in one switch.
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
column_datum(KabsdField field, const KbEntry *e, const KbFile *f, size_t row,
			 bool *isnull)
{
	const KbItem *it = &f->item;
	const KbDecision *d = &f->decision;

	switch (field)
	{
		case KF_PATH:
			{
				KbText		relpath = {e->relpath, e->relpath_len};

				return text_datum(relpath, isnull);
			}
		case KF_PRODUCT:
			return text_datum(f->product, isnull);
		case KF_MTIME:
			return mtime_datum(e);
		case KF_FRONTMATTER:
			return jsonb_datum(f->fm, isnull);
		case KF_BODY:
			return text_datum(f->body, isnull);

		case KF_FILE_KIND:
			return CStringGetTextDatum(kb_kind_name(f->kind));
		case KF_FILE_SIZE:
			return Int64GetDatum(e->size);
		case KF_FILE_HAS_FRONTMATTER:
			if (!f->was_read)
				break;
			return BoolGetDatum(f->has_frontmatter);
		case KF_FILE_ERROR:
			return cstr_datum(kb_file_error(f), isnull);

		case KF_ITEM_UID:
			return uuid_datum(it->has_uid, it->uid, isnull);
		case KF_ITEM_ID:
			return text_datum(it->id, isnull);
		case KF_ITEM_TYPE:
			return text_datum(it->type, isnull);
		case KF_ITEM_STATE:
			return text_datum(it->state, isnull);
		case KF_ITEM_TITLE:
			return text_datum(it->title, isnull);
		case KF_ITEM_PRIORITY:
			return text_datum(it->priority, isnull);
		case KF_ITEM_PARENT:
			return text_datum(it->parent, isnull);
		case KF_ITEM_AREA:
			return text_datum(it->area, isnull);
		case KF_ITEM_ITERATION:
			return text_datum(it->iteration, isnull);
		case KF_ITEM_OWNER:
			return text_datum(it->owner, isnull);
		case KF_ITEM_TAGS:
			return text_array_datum(&it->tags, isnull);
		case KF_ITEM_DECISIONS:
			return text_array_datum(&it->decisions, isnull);
		case KF_ITEM_CREATED:
			return date_datum(it->has_created, &it->created, isnull);
		case KF_ITEM_UPDATED:
			return date_datum(it->has_updated, &it->updated, isnull);

		case KF_DECISION_UID:
			return uuid_datum(d->has_uid, d->uid, isnull);
		case KF_DECISION_ID:
			return text_datum(d->id, isnull);
		case KF_DECISION_TITLE:
			return text_datum(d->title, isnull);
		case KF_DECISION_STATUS:
			return text_datum(d->status, isnull);
		case KF_DECISION_DATE:
			return date_datum(d->has_date, &d->date, isnull);
		case KF_DECISION_DECIDERS:
			return text_array_datum(&d->deciders, isnull);
		case KF_DECISION_RELATED_ITEMS:
			return text_array_datum(&d->related_items, isnull);
		case KF_DECISION_SUPERSEDES:
			return text_datum(d->supersedes, isnull);
		case KF_DECISION_SUPERSEDED_BY:
			return text_datum(d->superseded_by, isnull);
		case KF_DECISION_TAGS:
			return text_array_datum(&d->tags, isnull);

		case KF_OWNER_UID:
		case KF_OWNER_ID:
			{
				bool		has_uid;
				const unsigned char *uid;
				KbText		id;

				owner_ids(f, &has_uid, &uid, &id);
				if (field == KF_OWNER_UID)
					return uuid_datum(has_uid, uid, isnull);
				return text_datum(id, isnull);
			}
		case KF_ORDINAL:
			return Int32GetDatum((int32) row + 1);

		case KF_LINK_TYPE:
			return CStringGetTextDatum(kb_link_type_name(f->links.links[row].type));
		case KF_LINK_TARGET_ID:
			return text_datum(f->links.links[row].target, isnull);

		case KF_WORKLOG_AT:
			if (!f->md.worklog[row].has_at)
				break;
			return TimestampGetDatum(timestamp_from(&f->md.worklog[row].at));
		case KF_WORKLOG_AGENT:
			return text_datum(f->md.worklog[row].agent, isnull);
		case KF_WORKLOG_MODEL:
			return text_datum(f->md.worklog[row].model, isnull);
		case KF_WORKLOG_MESSAGE:
			return text_datum(f->md.worklog[row].message, isnull);
		case KF_WORKLOG_NEW_STATE:
			return text_datum(f->md.worklog[row].new_state, isnull);

		case KF_SECTION_LEVEL:
			return Int32GetDatum(f->md.sections[row].level);
		case KF_SECTION_HEADING:
			return text_datum(f->md.sections[row].heading, isnull);
		case KF_SECTION_CONTENT:
			return text_datum(f->md.sections[row].content, isnull);

		case KF_CHECK_SECTION:
			{
				const KbCheck *c = &f->md.checks[row];
				KbText		none = {NULL, 0};

				return text_datum(c->section >= 0
								  ? f->md.sections[c->section].heading
								  : none, isnull);
			}
		case KF_CHECK_CHECKED:
			return BoolGetDatum(f->md.checks[row].checked);
		case KF_CHECK_TEXT:
			return text_datum(f->md.checks[row].text, isnull);
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
			values[i] = column_datum(def->cols[col->colid].field, e, f, row,
									 &isnull[i]);
	}
}
