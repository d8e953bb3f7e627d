/*-------------------------------------------------------------------------
 *
 * yaml.c
 *		  Frontmatter YAML to a value tree, with libyaml's event parser.
 *
 * The event parser (not libyaml's document loader) is used so that depth
 * and alias expansion are bounded while parsing: an alias bomb or a
 * 10,000-deep nesting stops at the limit instead of first being built.
 * Aliases share the anchored node; each node carries the size of its
 * expanded subtree, so the expansion total is known without expanding.
 *
 * libyaml allocates with malloc; every path out of kb_yaml_parse deletes
 * the current event and the parser, and nothing in here can longjmp.
 *
 * src/core/yaml.c
 *
 *-------------------------------------------------------------------------
 */
#include "kb_core.h"

#include <string.h>
#include <yaml.h>

/* An anchor name and the node it names, in a small hash table. */
typedef struct KbAnchor
{
	char	   *name;
	KbValue    *value;
	bool		complete;		/* false while its collection is still open */
	struct KbAnchor *next;
} KbAnchor;

/* A collection being built. */
typedef struct KbFrame
{
	KbValue    *value;
	size_t		cap;
	size_t		slots;			/* items filled: a map's keys and values */
	KbAnchor   *anchor;			/* its anchor, completed when it closes */
} KbFrame;

typedef struct KbYamlBuilder
{
	const KbAlloc *a;
	const KbYamlLimits *limits;
	KbFrame    *stack;
	int			depth;
	int			stack_cap;
	KbAnchor  **buckets;
	size_t		nbuckets;
	size_t		nanchors;
	size_t		expanded;		/* nodes after alias expansion so far */
	int			documents;
	KbValue    *root;
	char	   *error;
	bool		oom;
	int			first_line;
} KbYamlBuilder;

static void
builder_fail(KbYamlBuilder *b, const yaml_mark_t *mark, const char *msg)
{
	KbBuf		buf;

	if (b->error || b->oom)
		return;
	kb_buf_init(&buf, b->a);
	if (mark)
		kb_buf_appendf(&buf, "invalid YAML in frontmatter at line %d, column %d: %s",
					   b->first_line + (int) mark->line,
					   (int) mark->column + 1, msg);
	else
		kb_buf_appendf(&buf, "invalid frontmatter: %s", msg);
	if (buf.failed)
		b->oom = true;
	else
		b->error = buf.data;
}

static size_t
anchor_hash(const char *s)
{
	size_t		h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 16777619u;
	return h;
}

static KbAnchor *
anchor_find(KbYamlBuilder *b, const char *name)
{
	KbAnchor   *an;

	if (b->nbuckets == 0)
		return NULL;
	for (an = b->buckets[anchor_hash(name) % b->nbuckets]; an; an = an->next)
		if (strcmp(an->name, name) == 0)
			return an;
	return NULL;
}

/*
 * Records an anchor.  A redefined anchor name shadows the old one, as YAML
 * says: later aliases refer to the newest node of that name.
 */
static KbAnchor *
anchor_add(KbYamlBuilder *b, const char *name, KbValue *v, bool complete)
{
	KbAnchor   *an;
	size_t		h;

	if (b->nanchors + 1 > b->nbuckets * 2)
	{
		size_t		n = b->nbuckets ? b->nbuckets * 4 : 64;
		KbAnchor  **nb = b->a->alloc(b->a->ctx, n * sizeof(KbAnchor *));

		if (nb == NULL)
			return NULL;
		memset(nb, 0, n * sizeof(KbAnchor *));
		for (size_t i = 0; i < b->nbuckets; i++)
		{
			KbAnchor   *x = b->buckets[i];

			while (x)
			{
				KbAnchor   *next = x->next;
				size_t		k = anchor_hash(x->name) % n;

				x->next = nb[k];
				nb[k] = x;
				x = next;
			}
		}
		if (b->buckets)
			b->a->free(b->a->ctx, b->buckets);
		b->buckets = nb;
		b->nbuckets = n;
	}
	an = b->a->alloc(b->a->ctx, sizeof(KbAnchor));
	if (an == NULL)
		return NULL;
	an->name = kb_strndup(b->a, name, strlen(name));
	if (an->name == NULL)
		return NULL;
	an->value = v;
	an->complete = complete;
	h = anchor_hash(name) % b->nbuckets;
	an->next = b->buckets[h];
	b->buckets[h] = an;
	b->nanchors++;
	return an;
}

/* Counts weight more expanded nodes against the limit. */
static bool
count_nodes(KbYamlBuilder *b, const yaml_mark_t *mark, size_t weight)
{
	b->expanded += weight;
	if (b->expanded > b->limits->max_nodes)
	{
		char		msg[128];

		snprintf(msg, sizeof(msg),
				 "more than %zu nodes after alias expansion",
				 b->limits->max_nodes);
		builder_fail(b, mark, msg);
		return false;
	}
	return true;
}

/* Attaches a finished node to the open collection, or makes it the root. */
static bool
attach(KbYamlBuilder *b, const yaml_mark_t *mark, KbValue *v)
{
	KbFrame    *f;
	KbValue    *parent;
	KbValue   **items;
	size_t		slots;

	if (b->depth == 0)
	{
		if (b->root != NULL)
		{
			builder_fail(b, mark, "more than one YAML document");
			return false;
		}
		b->root = v;
		return true;
	}
	f = &b->stack[b->depth - 1];
	parent = f->value;
	slots = f->slots;
	if (parent->kind == KB_VAL_MAP && slots % 2 == 0 &&
		(v->kind == KB_VAL_MAP || v->kind == KB_VAL_SEQ))
	{
		builder_fail(b, mark, "a mapping key is not a scalar");
		return false;
	}
	items = kb_array_grow(b->a, parent->items, sizeof(KbValue *), &f->cap,
						  slots + 1);
	if (items == NULL)
	{
		b->oom = true;
		return false;
	}
	parent->items = items;
	items[slots] = v;
	f->slots++;
	/* n counts a map's pairs: a key alone does not complete one */
	parent->n = parent->kind == KB_VAL_MAP ? f->slots / 2 : f->slots;
	return true;
}

/*
 * YAML core resolution, restricted as the data model says: null, true,
 * false and JSON-compatible numbers for plain scalars; text otherwise.
 */
static KbValueKind
resolve_plain(const char *s, size_t len)
{
	if (len == 0 || (len == 1 && s[0] == '~') ||
		(len == 4 && memcmp(s, "null", 4) == 0))
		return KB_VAL_NULL;
	if ((len == 4 && memcmp(s, "true", 4) == 0) ||
		(len == 5 && memcmp(s, "false", 5) == 0))
		return KB_VAL_BOOL;
	if (kb_is_json_number(s, len))
		return KB_VAL_NUMBER;
	return KB_VAL_STRING;
}

static KbValue *
new_value(KbYamlBuilder *b, KbValueKind kind)
{
	KbValue    *v = b->a->alloc(b->a->ctx, sizeof(KbValue));

	if (v == NULL)
	{
		b->oom = true;
		return NULL;
	}
	memset(v, 0, sizeof(KbValue));
	v->kind = kind;
	v->weight = 1;
	v->text = "";
	return v;
}

static bool
on_scalar(KbYamlBuilder *b, yaml_event_t *ev)
{
	const char *s = (const char *) ev->data.scalar.value;
	size_t		len = ev->data.scalar.length;
	KbValueKind kind = KB_VAL_STRING;
	KbValue    *v;

	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
		kind = resolve_plain(s, len);
	v = new_value(b, kind);
	if (v == NULL)
		return false;
	v->text = kb_strndup(b->a, s, len);
	v->len = len;
	if (v->text == NULL)
	{
		b->oom = true;
		return false;
	}
	if (ev->data.scalar.anchor &&
		anchor_add(b, (const char *) ev->data.scalar.anchor, v, true) == NULL)
	{
		b->oom = true;
		return false;
	}
	if (!count_nodes(b, &ev->start_mark, 1))
		return false;
	return attach(b, &ev->start_mark, v);
}

static bool
on_collection_start(KbYamlBuilder *b, yaml_event_t *ev, KbValueKind kind,
					yaml_char_t *anchor)
{
	KbValue    *v;
	KbFrame    *f;

	if (b->depth >= b->limits->max_depth)
	{
		char		msg[96];

		snprintf(msg, sizeof(msg), "nesting deeper than %d levels",
				 b->limits->max_depth);
		builder_fail(b, &ev->start_mark, msg);
		return false;
	}
	if (b->depth == b->stack_cap)
	{
		size_t		cap = (size_t) b->stack_cap;
		KbFrame    *ns = kb_array_grow(b->a, b->stack, sizeof(KbFrame), &cap,
									   (size_t) b->depth + 1);

		if (ns == NULL)
		{
			b->oom = true;
			return false;
		}
		b->stack = ns;
		b->stack_cap = (int) cap;
	}
	v = new_value(b, kind);
	if (v == NULL || !count_nodes(b, &ev->start_mark, 1))
		return false;
	f = &b->stack[b->depth++];
	f->value = v;
	f->cap = 0;
	f->slots = 0;
	f->anchor = NULL;
	if (anchor)
	{
		f->anchor = anchor_add(b, (const char *) anchor, v, false);
		if (f->anchor == NULL)
		{
			b->oom = true;
			return false;
		}
	}
	return true;
}

static bool
on_collection_end(KbYamlBuilder *b, yaml_event_t *ev)
{
	KbFrame    *f = &b->stack[--b->depth];
	KbValue    *v = f->value;
	size_t		slots = v->kind == KB_VAL_MAP ? v->n * 2 : v->n;
	size_t		w = 1;

	for (size_t i = 0; i < slots; i++)
		w += v->items[i]->weight;
	v->weight = w;
	if (f->anchor)
		f->anchor->complete = true;
	return attach(b, &ev->start_mark, v);
}

static bool
on_alias(KbYamlBuilder *b, yaml_event_t *ev)
{
	KbAnchor   *an = anchor_find(b, (const char *) ev->data.alias.anchor);

	if (an == NULL)
	{
		builder_fail(b, &ev->start_mark, "alias to an undefined anchor");
		return false;
	}
	if (!an->complete)
	{
		builder_fail(b, &ev->start_mark, "recursive alias");
		return false;
	}
	if (!count_nodes(b, &ev->start_mark, an->value->weight))
		return false;
	return attach(b, &ev->start_mark, an->value);
}

static const char *
kind_word(KbValueKind k)
{
	switch (k)
	{
		case KB_VAL_SEQ:
			return "a sequence";
		case KB_VAL_MAP:
			return "a mapping";
		case KB_VAL_NULL:
			return "null";
		default:
			return "a scalar";
	}
}

int
kb_yaml_parse(const KbAlloc *a, const char *text, size_t len, int first_line,
			  const KbYamlLimits *limits, KbValue **out, char **error)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	KbYamlBuilder b;
	bool		done = false;

	*out = NULL;
	*error = NULL;
	memset(&b, 0, sizeof(b));
	b.a = a;
	b.limits = limits;
	b.first_line = first_line;

	if (!yaml_parser_initialize(&parser))
		return KB_ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
	yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);

	/* each handler records a failure in b.error or b.oom, ending the loop */
	while (!done && !b.error && !b.oom)
	{
		if (!yaml_parser_parse(&parser, &ev))
		{
			if (parser.error == YAML_MEMORY_ERROR)
				b.oom = true;
			else
			{
				char		msg[512];

				if (parser.context)
					snprintf(msg, sizeof(msg), "%s (%s)",
							 parser.problem ? parser.problem : "syntax error",
							 parser.context);
				else
					snprintf(msg, sizeof(msg), "%s",
							 parser.problem ? parser.problem : "syntax error");
				builder_fail(&b, &parser.problem_mark, msg);
			}
			break;
		}
		switch (ev.type)
		{
			case YAML_DOCUMENT_START_EVENT:
				if (++b.documents > 1)
				{
					builder_fail(&b, &ev.start_mark,
								 "more than one YAML document");
				}
				break;
			case YAML_SCALAR_EVENT:
				(void) on_scalar(&b, &ev);
				break;
			case YAML_SEQUENCE_START_EVENT:
				(void) on_collection_start(&b, &ev, KB_VAL_SEQ,
										 ev.data.sequence_start.anchor);
				break;
			case YAML_MAPPING_START_EVENT:
				(void) on_collection_start(&b, &ev, KB_VAL_MAP,
										 ev.data.mapping_start.anchor);
				break;
			case YAML_SEQUENCE_END_EVENT:
			case YAML_MAPPING_END_EVENT:
				(void) on_collection_end(&b, &ev);
				break;
			case YAML_ALIAS_EVENT:
				(void) on_alias(&b, &ev);
				break;
			case YAML_STREAM_END_EVENT:
				done = true;
				break;
			default:
				break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);

	if (b.oom)
		return KB_ENOMEM;
	if (b.error)
	{
		*error = b.error;
		return KB_OK;
	}
	if (b.root == NULL || b.root->kind != KB_VAL_MAP)
	{
		KbBuf		buf;

		kb_buf_init(&buf, a);
		if (b.root == NULL)
			kb_buf_append(&buf, "frontmatter is empty", 20);
		else
			kb_buf_appendf(&buf, "frontmatter is not a mapping (it is %s)",
						   kind_word(b.root->kind));
		if (buf.failed)
			return KB_ENOMEM;
		*error = buf.data;
		return KB_OK;
	}
	*out = b.root;
	return KB_OK;
}

const KbValue *
kb_map_get(const KbValue *map, const char *key)
{
	size_t		klen = strlen(key);

	if (map == NULL || map->kind != KB_VAL_MAP)
		return NULL;
	/* from the end: with duplicate keys the last one wins */
	for (size_t i = map->n; i > 0; i--)
	{
		const KbValue *k = map->items[2 * (i - 1)];

		if (k->len == klen && memcmp(k->text, key, klen) == 0)
			return map->items[2 * (i - 1) + 1];
	}
	return NULL;
}

const KbValue *
kb_map_get_path(const KbValue *map, const char *path)
{
	const KbValue *v = map;
	char		part[256];

	while (v != NULL)
	{
		const char *dot = strchr(path, '.');
		size_t		n = dot ? (size_t) (dot - path) : strlen(path);

		if (n >= sizeof(part))
			return NULL;
		memcpy(part, path, n);
		part[n] = '\0';
		v = kb_map_get(v, part);
		if (dot == NULL)
			return v;
		path = dot + 1;
	}
	return NULL;
}
