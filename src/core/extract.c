/*-------------------------------------------------------------------------
 *
 * extract.c
 *		  Kinds of files, and the fields of items, decisions and links read
 *		  from a frontmatter mapping, as ../shared/DATA-MODEL.md says.
 *
 * src/core/extract.c
 *
 *-------------------------------------------------------------------------
 */
#include "kb_core.h"

#include <stdio.h>
#include <string.h>

const char *
kb_kind_name(KbKind kind)
{
	switch (kind)
	{
		case KB_KIND_ITEM:
			return "item";
		case KB_KIND_DECISION:
			return "decision";
		case KB_KIND_INDEX:
			return "index";
		default:
			return "other";
	}
}

static bool
has_suffix(const char *s, size_t len, const char *suffix)
{
	size_t		n = strlen(suffix);

	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/*
 * products/<product>/items/...      item
 * products/<product>/decisions/...  decision
 * any *.index.md                    index (wins over the two above)
 */
KbKind
kb_classify_path(const char *path, KbText *product)
{
	size_t		len = strlen(path);
	const char *p = path;
	const char *slash;

	product->ptr = NULL;
	product->len = 0;
	if (len > 9 && memcmp(path, "products/", 9) == 0)
	{
		p = path + 9;
		slash = strchr(p, '/');
		if (slash != NULL && slash > p)
		{
			product->ptr = p;
			product->len = (size_t) (slash - p);
			p = slash + 1;
		}
	}
	if (has_suffix(path, len, ".index.md"))
		return KB_KIND_INDEX;
	if (product->ptr != NULL)
	{
		if (strncmp(p, "items/", 6) == 0 && p[6] != '\0')
			return KB_KIND_ITEM;
		if (strncmp(p, "decisions/", 10) == 0 && p[10] != '\0')
			return KB_KIND_DECISION;
	}
	return KB_KIND_OTHER;
}

bool
kb_is_item(const KbValue *fm)
{
	const KbValue *id = kb_map_get(fm, "id");
	const KbValue *uid = kb_map_get(fm, "uid");

	return (id != NULL && id->kind != KB_VAL_NULL) ||
		(uid != NULL && uid->kind != KB_VAL_NULL);
}

int
kb_extract_item(const KbAlloc *a, const KbValue *fm, KbItem *out,
				KbNotes *notes)
{
	memset(out, 0, sizeof(*out));
	out->has_uid = kb_get_uuid(fm, "uid", out->uid, notes) == KB_SHAPE_OK;
	kb_get_text(fm, "id", &out->id, notes);
	kb_get_text(fm, "type", &out->type, notes);
	kb_get_text(fm, "state", &out->state, notes);
	kb_get_text(fm, "title", &out->title, notes);
	kb_get_text(fm, "priority", &out->priority, notes);
	kb_get_text(fm, "parent", &out->parent, notes);
	kb_get_text(fm, "area", &out->area, notes);
	kb_get_text(fm, "iteration", &out->iteration, notes);
	kb_get_text(fm, "owner", &out->owner, notes);
	kb_get_text_list(a, fm, "tags", &out->tags, notes);
	kb_get_text_list(a, fm, "decisions", &out->decisions, notes);
	out->has_created = kb_get_date(fm, "created", &out->created, notes) == KB_SHAPE_OK;
	out->has_updated = kb_get_date(fm, "updated", &out->updated, notes) == KB_SHAPE_OK;
	return notes->buf.failed ? KB_ENOMEM : KB_OK;
}

/* The first of keys present with a non-null value, or NULL. */
static const char *
first_present(const KbValue *fm, const char *const *keys)
{
	for (; *keys; keys++)
	{
		const KbValue *v = kb_map_get(fm, *keys);

		if (v != NULL && v->kind != KB_VAL_NULL)
			return *keys;
	}
	return NULL;
}

int
kb_extract_decision(const KbAlloc *a, const KbValue *fm, KbDecision *out,
					KbNotes *notes)
{
	static const char *const status_keys[] = {"status", "state", NULL};
	static const char *const date_keys[] = {"date", "decision_date", "created", NULL};
	const char *key;

	memset(out, 0, sizeof(*out));
	out->has_uid = kb_get_uuid(fm, "uid", out->uid, notes) == KB_SHAPE_OK;
	kb_get_text(fm, "id", &out->id, notes);
	kb_get_text(fm, "title", &out->title, notes);
	key = first_present(fm, status_keys);
	if (key)
		kb_get_text(fm, key, &out->status, notes);
	/* no fall-through: a malformed date gives NULL, not the next key */
	key = first_present(fm, date_keys);
	if (key)
		out->has_date = kb_get_date(fm, key, &out->date, notes) == KB_SHAPE_OK;
	kb_get_text_list(a, fm, "deciders", &out->deciders, notes);
	kb_get_text_list(a, fm, "related_items", &out->related_items, notes);
	kb_get_text(fm, "supersedes", &out->supersedes, notes);
	kb_get_text(fm, "superseded_by", &out->superseded_by, notes);
	kb_get_text_list(a, fm, "tags", &out->tags, notes);
	return notes->buf.failed ? KB_ENOMEM : KB_OK;
}

const char *
kb_link_type_name(KbLinkType t)
{
	static const char *const names[] = {
		"parent", "relates", "blocks", "blocked_by", "decision", "wikilink"
	};

	return names[t];
}

static int
add_link(const KbAlloc *a, KbLinks *out, KbLinkType type, KbText target)
{
	KbLink	   *links;

	if (target.ptr == NULL || target.len == 0)
		return KB_OK;			/* null and empty targets yield no row */
	links = kb_array_grow(a, out->links, sizeof(KbLink), &out->cap, out->n + 1);
	if (links == NULL)
		return KB_ENOMEM;
	out->links = links;
	out->links[out->n].type = type;
	out->links[out->n].target = target;
	out->n++;
	return KB_OK;
}

static int
add_list(const KbAlloc *a, KbLinks *out, KbLinkType type, const KbValue *v,
		 const char *name, KbNotes *notes)
{
	KbTextList	list;

	if (kb_value_text_list(a, v, name, &list, notes) != KB_SHAPE_OK)
		return (notes && notes->buf.failed) ? KB_ENOMEM : KB_OK;
	for (size_t i = 0; i < list.n; i++)
		if (add_link(a, out, type, list.elems[i]) != KB_OK)
			return KB_ENOMEM;
	return KB_OK;
}

/*
 * Frontmatter edges in the contract's order.  Notes are made here only for
 * the keys that nothing else reads (links and its lists); parent and
 * decisions are noted by the item's own fields.
 */
int
kb_extract_links(const KbAlloc *a, const KbValue *fm, KbLinks *out,
				 KbNotes *notes)
{
	static const KbLinkType list_types[] = {
		KB_LINK_RELATES, KB_LINK_BLOCKS, KB_LINK_BLOCKED_BY
	};
	const KbValue *links = kb_map_get(fm, "links");
	const KbValue *parent = kb_map_get(fm, "parent");
	KbText		t;

	if (links != NULL && links->kind != KB_VAL_NULL && links->kind != KB_VAL_MAP)
	{
		kb_notes_add(notes, "links", "a mapping", links);
		links = NULL;
	}
	if (kb_value_scalar_text(parent, &t) && add_link(a, out, KB_LINK_PARENT, t) != KB_OK)
		return KB_ENOMEM;
	for (size_t i = 0; i < 3; i++)
	{
		const char *name = kb_link_type_name(list_types[i]);
		char		qualified[32];

		snprintf(qualified, sizeof(qualified), "links.%s", name);
		if (add_list(a, out, list_types[i], kb_map_get(links, name), qualified,
					 notes) != KB_OK ||
			add_list(a, out, list_types[i], kb_map_get(fm, name), name,
					 notes) != KB_OK)
			return KB_ENOMEM;
	}
	if (add_list(a, out, KB_LINK_DECISION, kb_map_get(fm, "decisions"),
				 "decisions", NULL) != KB_OK)
		return KB_ENOMEM;
	return KB_OK;
}
