/*-------------------------------------------------------------------------
 *
 * fuzz_core.c
 *		  libFuzzer target: one input is one backlog file, run through
 *		  everything the core does with a file after reading it (checks,
 *		  frontmatter split, YAML, item/decision fields, links, Markdown,
 *		  worklog).  Built with ASan and UBSan by test/run.sh.
 *
 * test/fuzz/fuzz_core.c
 *
 *-------------------------------------------------------------------------
 */
#include "kb_core.h"

#include <stdlib.h>
#include <string.h>

/* A bump arena on malloc: freed whole after each input. */
typedef struct Chunk
{
	struct Chunk *next;
} Chunk;

static Chunk *chunks;

static void *
f_alloc(void *ctx, size_t size)
{
	Chunk	   *c = malloc(sizeof(Chunk) + 16 + size);

	if (c == NULL)
		return NULL;
	c->next = chunks;
	chunks = c;
	return (char *) c + sizeof(Chunk) + 16;
}

static void *
f_realloc(void *ctx, void *ptr, size_t oldsize, size_t newsize)
{
	void	   *p = f_alloc(ctx, newsize);

	if (p)
		memcpy(p, ptr, oldsize < newsize ? oldsize : newsize);
	return p;
}

static void
f_free(void *ctx, void *ptr)
{
	/* freed with the arena */
}

static void
f_oom(void *ctx)
{
	abort();
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	KbAlloc		a = {NULL, f_alloc, f_realloc, f_free, f_oom};
	KbYamlLimits lim = {KB_YAML_MAX_NODES, KB_YAML_MAX_DEPTH};
	const char *text = (const char *) data;
	KbSplit		split;
	size_t		bad;
	bool		nul;
	KbValue    *fm = NULL;
	char	   *error = NULL;
	const char *body = text;
	size_t		body_len = size;

	if (!kb_check_utf8(text, size, &bad, &nul))
		return 0;
	if (kb_split_frontmatter(text, size, &split) == KB_SPLIT_OK)
	{
		body = split.body;
		body_len = split.body_len;
		if (kb_yaml_parse(&a, split.yaml, split.yaml_len, 2, &lim, &fm, &error) == KB_OK &&
			fm != NULL)
		{
			KbNotes		notes;
			KbItem		item;
			KbDecision	dec;
			KbLinks		links;

			kb_buf_init(&notes.buf, &a);
			memset(&links, 0, sizeof(links));
			kb_extract_item(&a, fm, &item, &notes);
			kb_extract_decision(&a, fm, &dec, &notes);
			kb_extract_links(&a, fm, &links, &notes);
			(void) kb_map_get_path(fm, "external.jira_key");
		}
	}
	{
		KbMarkdown	md;

		kb_markdown_analyze(&a, body, body_len,
							KB_MD_CHECKLIST | KB_MD_WIKILINKS | KB_MD_WORKLOG, &md);
	}
	while (chunks)
	{
		Chunk	   *next = chunks->next;

		free(chunks);
		chunks = next;
	}
	return 0;
}
