/*-------------------------------------------------------------------------
 *
 * file.c
 *		  One walked file, analysed only as far as the query needs: walk
 *		  facts alone, or read and checked, or frontmatter fields, or the
 *		  Markdown body too.  Every table of a snapshot is cut from one
 *		  KbFile, so all of them see the file as it was at one read.
 *
 * src/core/file.c
 *
 *-------------------------------------------------------------------------
 */
#include "kb_core.h"

#include <string.h>

static int
fatal_text(const KbAlloc *a, KbFile *f, const char *fmt, size_t arg)
{
	KbBuf		b;

	kb_buf_init(&b, a);
	kb_buf_appendf(&b, fmt, arg);
	if (b.failed)
		return KB_ENOMEM;
	f->fatal = b.data;
	return KB_OK;
}

static int
add_wikilinks(const KbAlloc *a, KbFile *f)
{
	for (size_t i = 0; i < f->md.nwikilinks; i++)
	{
		KbLink	   *l = kb_array_grow(a, f->links.links, sizeof(KbLink),
									  &f->links.cap, f->links.n + 1);

		if (l == NULL)
			return KB_ENOMEM;
		f->links.links = l;
		l[f->links.n].type = KB_LINK_WIKILINK;
		l[f->links.n].target = f->md.wikilinks[i];
		f->links.n++;
	}
	return KB_OK;
}

int
kb_need_closure(int need)
{
	if (need & KB_NEED_WIKILINKS)
		need |= KB_NEED_LINKS;
	if (need & (KB_NEED_CHECKLIST | KB_NEED_WORKLOG | KB_NEED_WIKILINKS))
		need |= KB_NEED_MARKDOWN;
	if (need != 0)
		need |= KB_NEED_READ;
	return need;
}

int
kb_file_analyze(const KbAlloc *a, const KbEntry *e, const KbFileOptions *opts,
				int need, KbFile *f)
{
	KbSplit		split;
	size_t		bad;
	bool		is_nul;
	char	   *error;
	int			rc;
	int			md_what = 0;

	memset(f, 0, sizeof(*f));
	need = kb_need_closure(need);
	f->kind = kb_classify_path(e->relpath, &f->product);
	kb_buf_init(&f->notes.buf, a);
	if (e->error)
	{
		f->fatal = (char *) e->error;
		return KB_OK;
	}
	if (!(need & KB_NEED_READ))
		return KB_OK;

	rc = kb_read_file(a, e, opts->has_root_fd ? opts->root_fd : -1,
					  opts->max_file_size, &f->data, &f->len, &error);
	if (rc != KB_OK)
		return rc;
	if (error)
	{
		f->fatal = error;
		return KB_OK;
	}
	f->was_read = true;
	if (!kb_check_utf8(f->data, f->len, &bad, &is_nul))
		return fatal_text(a, f, is_nul
						  ? "file contains a NUL byte at byte offset %zu"
						  : "file is not valid UTF-8 at byte offset %zu", bad);

	switch (kb_split_frontmatter(f->data, f->len, &split))
	{
		case KB_SPLIT_NONE:
			f->body.ptr = f->data;
			f->body.len = f->len;
			if (f->len >= 3 && memcmp(f->data, "\xEF\xBB\xBF", 3) == 0)
			{
				f->body.ptr += 3;
				f->body.len -= 3;
			}
			return KB_OK;		/* no frontmatter: no error, no item */
		case KB_SPLIT_UNCLOSED:
			f->has_frontmatter = true;
			f->fatal = "frontmatter is not closed: no line \"---\" or \"...\" "
				"follows the opening \"---\"";
			return KB_OK;
		case KB_SPLIT_OK:
			break;
	}
	f->has_frontmatter = true;
	f->body.ptr = split.body;
	f->body.len = split.body_len;
	rc = kb_yaml_parse(a, split.yaml, split.yaml_len, split.yaml_first_line,
					   &opts->yaml, &f->fm, &error);
	if (rc != KB_OK)
		return rc;
	if (error)
	{
		f->fatal = error;
		return KB_OK;
	}

	f->is_item = f->kind == KB_KIND_ITEM && kb_is_item(f->fm);
	f->is_decision = f->kind == KB_KIND_DECISION;
	if (need & KB_NEED_FIELDS)
	{
		if (f->is_item)
			rc = kb_extract_item(a, f->fm, &f->item, &f->notes);
		else if (f->is_decision)
			rc = kb_extract_decision(a, f->fm, &f->decision, &f->notes);
		if (rc != KB_OK)
			return rc;
	}
	if (f->is_item && (need & (KB_NEED_FIELDS | KB_NEED_LINKS)))
	{
		rc = kb_extract_links(a, f->fm, &f->links, &f->notes);
		if (rc != KB_OK || f->notes.buf.failed)
			return KB_ENOMEM;
	}

	if (!(f->is_item || f->is_decision) ||
		!(need & (KB_NEED_MARKDOWN | KB_NEED_CHECKLIST | KB_NEED_WIKILINKS |
				  KB_NEED_WORKLOG)))
		return KB_OK;
	if (f->is_item)
	{
		if (need & KB_NEED_CHECKLIST)
			md_what |= KB_MD_CHECKLIST;
		if (need & KB_NEED_WIKILINKS)
			md_what |= KB_MD_WIKILINKS;
		if (need & KB_NEED_WORKLOG)
			md_what |= KB_MD_WORKLOG;
	}
	rc = kb_markdown_analyze(a, f->body.ptr, f->body.len, md_what, &f->md);
	if (rc != KB_OK)
		return rc;
	if (f->is_item && (need & KB_NEED_WIKILINKS))
		return add_wikilinks(a, f);
	return KB_OK;
}

const char *
kb_file_error(const KbFile *f)
{
	if (f->fatal)
		return f->fatal;
	if (f->notes.buf.len > 0)
		return f->notes.buf.data;
	return NULL;
}
