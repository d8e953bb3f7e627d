/*-------------------------------------------------------------------------
 *
 * test_core.c
 *		  Unit tests of the parsing core, built with a plain cc (no
 *		  PostgreSQL).  The allocator records every block so that each test
 *		  frees all it used, and can fail the Nth allocation so that the
 *		  out-of-memory paths run too (under ASan or valgrind in CI).
 *
 * test/unit/test_core.c
 *
 *-------------------------------------------------------------------------
 */
#include "kb_core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int	passed;
static int	failed;

#define CHECK(cond) \
	do { \
		if (cond) \
			passed++; \
		else \
		{ \
			failed++; \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		} \
	} while (0)

/* ---------------------------------------------------------------------
 * A tracking allocator: a list of blocks, freed all at once.
 * ---------------------------------------------------------------------
 */
typedef struct Block
{
	struct Block *next;
	struct Block *prev;
	size_t		size;
	/* the payload follows, max-aligned */
} Block;

#define HDR ((sizeof(Block) + 15) & ~(size_t) 15)

typedef struct Arena
{
	Block	   *head;
	long		fail_at;		/* fail the Nth allocation (1-based), 0: never */
	long		count;
} Arena;

static void *
t_alloc(void *ctx, size_t size)
{
	Arena	   *ar = ctx;
	Block	   *b;

	if (ar->fail_at && ++ar->count == ar->fail_at)
		return NULL;
	b = malloc(HDR + size);
	if (b == NULL)
		return NULL;
	b->size = size;
	b->prev = NULL;
	b->next = ar->head;
	if (ar->head)
		ar->head->prev = b;
	ar->head = b;
	return (char *) b + HDR;
}

static void
t_free(void *ctx, void *ptr)
{
	Arena	   *ar = ctx;
	Block	   *b = (Block *) ((char *) ptr - HDR);

	if (b->prev)
		b->prev->next = b->next;
	else
		ar->head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	free(b);
}

static void *
t_realloc(void *ctx, void *ptr, size_t oldsize, size_t newsize)
{
	void	   *p = t_alloc(ctx, newsize);

	if (p == NULL)
		return NULL;
	memcpy(p, ptr, oldsize < newsize ? oldsize : newsize);
	t_free(ctx, ptr);
	return p;
}

static void
t_oom(void *ctx)
{
	fprintf(stderr, "out of memory inside cmark\n");
	abort();
}

static KbAlloc
arena_alloc(Arena *ar)
{
	KbAlloc		a = {ar, t_alloc, t_realloc, t_free, t_oom};

	memset(ar, 0, sizeof(*ar));
	return a;
}

static void
arena_reset(Arena *ar)
{
	while (ar->head)
	{
		Block	   *next = ar->head->next;

		free(ar->head);
		ar->head = next;
	}
	ar->count = 0;
}

static bool
text_is(KbText t, const char *s)
{
	return t.ptr != NULL && t.len == strlen(s) && memcmp(t.ptr, s, t.len) == 0;
}

/* ---------------------------------------------------------------------
 * Tests
 * ---------------------------------------------------------------------
 */
static void
test_utf8(void)
{
	size_t		off;
	bool		nul;

	CHECK(kb_check_utf8("plain ascii", 11, &off, &nul));
	CHECK(kb_check_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, &off, &nul));
	CHECK(!kb_check_utf8("caf\xe9", 4, &off, &nul) && off == 3 && !nul);
	CHECK(!kb_check_utf8("\xc0\xaf", 2, &off, &nul) && off == 0);	/* overlong */
	CHECK(!kb_check_utf8("\xed\xa0\x80", 3, &off, &nul));	/* surrogate */
	CHECK(!kb_check_utf8("\xf4\x90\x80\x80", 4, &off, &nul));	/* > U+10FFFF */
	CHECK(!kb_check_utf8("ab\xe2\x82", 4, &off, &nul) && off == 2);	/* truncated */
	CHECK(!kb_check_utf8("a\0b", 3, &off, &nul) && nul && off == 1);
	CHECK(kb_utf8_clip("ab\xe2\x82\xac", 4) == 2);
	CHECK(kb_utf8_clip("ab\xe2\x82\xac", 5) == 5);

	/* long ASCII runs are checked a word at a time: a fault at any offset */
	for (size_t at = 0; at < 40; at++)
	{
		char		s[40];

		memset(s, 'a', sizeof(s));
		s[at] = '\0';
		CHECK(!kb_check_utf8(s, sizeof(s), &off, &nul) && nul && off == at);
		s[at] = (char) 0xff;
		CHECK(!kb_check_utf8(s, sizeof(s), &off, &nul) && !nul && off == at);
		s[at] = (char) 0x7f;
		CHECK(kb_check_utf8(s, sizeof(s), &off, &nul));
	}
	CHECK(kb_check_utf8("0123456789abcdef\xc3\xa9 0123456789", 27, &off, &nul));
	CHECK(!kb_check_utf8("0123456789abcdef\xc3", 17, &off, &nul) && off == 16);
}

static void
test_split(void)
{
	KbSplit		s;
	const char *doc = "---\nid: A\n---\nbody\n";

	CHECK(kb_split_frontmatter(doc, strlen(doc), &s) == KB_SPLIT_OK);
	CHECK(s.yaml_len == 6 && memcmp(s.yaml, "id: A\n", 6) == 0);
	CHECK(s.body_len == 5 && memcmp(s.body, "body\n", 5) == 0);
	doc = "\xEF\xBB\xBF---\r\nid: B\r\n...\r\nrest";
	CHECK(kb_split_frontmatter(doc, strlen(doc), &s) == KB_SPLIT_OK);
	CHECK(s.body_len == 4);
	doc = "# no frontmatter\n";
	CHECK(kb_split_frontmatter(doc, strlen(doc), &s) == KB_SPLIT_NONE);
	doc = "--- \nid: A\n---\n";
	CHECK(kb_split_frontmatter(doc, strlen(doc), &s) == KB_SPLIT_NONE);
	doc = "---\nid: A\n";
	CHECK(kb_split_frontmatter(doc, strlen(doc), &s) == KB_SPLIT_UNCLOSED);
	doc = "---\n---";
	CHECK(kb_split_frontmatter(doc, strlen(doc), &s) == KB_SPLIT_OK && s.yaml_len == 0);
	CHECK(kb_split_frontmatter("", 0, &s) == KB_SPLIT_NONE);
}

static KbValue *
parse(const KbAlloc *a, const char *yaml, char **error)
{
	KbYamlLimits lim = {KB_YAML_MAX_NODES, KB_YAML_MAX_DEPTH};
	KbValue    *v = NULL;

	*error = NULL;
	if (kb_yaml_parse(a, yaml, strlen(yaml), 2, &lim, &v, error) != KB_OK)
		return NULL;
	return v;
}

static void
test_yaml(void)
{
	Arena		ar;
	KbAlloc		a = arena_alloc(&ar);
	char	   *err;
	KbValue    *v;
	const KbValue *x;

	v = parse(&a, "id: 0042\nn: 12\nd: 2.5\ne: 1e5\nb: true\nz: ~\nq: 'true'\ns: [a, ~, 3]\nm: {k: v}\nid: last\n", &err);
	CHECK(v != NULL && err == NULL);
	CHECK((x = kb_map_get(v, "id")) && strcmp(x->text, "last") == 0);
	CHECK((x = kb_map_get(v, "n")) && x->kind == KB_VAL_NUMBER);
	CHECK((x = kb_map_get(v, "d")) && x->kind == KB_VAL_NUMBER);
	CHECK((x = kb_map_get(v, "e")) && x->kind == KB_VAL_STRING);
	CHECK((x = kb_map_get(v, "b")) && x->kind == KB_VAL_BOOL);
	CHECK((x = kb_map_get(v, "z")) && x->kind == KB_VAL_NULL);
	CHECK((x = kb_map_get(v, "q")) && x->kind == KB_VAL_STRING);
	CHECK((x = kb_map_get(v, "s")) && x->kind == KB_VAL_SEQ && x->n == 3 &&
		  x->items[1]->kind == KB_VAL_NULL);
	CHECK((x = kb_map_get_path(v, "m.k")) && strcmp(x->text, "v") == 0);
	CHECK(kb_map_get_path(v, "m.k.deeper") == NULL);
	CHECK(kb_map_get(v, "absent") == NULL);

	/* anchors and aliases share nodes; << is an ordinary key */
	v = parse(&a, "base: &b {x: 1}\ncopy: *b\n<<: *b\n", &err);
	CHECK(v != NULL && kb_map_get(v, "copy") == kb_map_get(v, "base"));
	CHECK(kb_map_get(v, "<<") != NULL);

	/* errors */
	v = parse(&a, "- a\n- b\n", &err);
	CHECK(v == NULL && err && strstr(err, "not a mapping"));
	v = parse(&a, "", &err);
	CHECK(v == NULL && err && strstr(err, "empty"));
	v = parse(&a, "a: 1\n---\nb: 2\n", &err);
	CHECK(v == NULL && err && strstr(err, "more than one YAML document"));
	v = parse(&a, "a: [1\n", &err);
	CHECK(v == NULL && err && strstr(err, "invalid YAML in frontmatter at line"));
	v = parse(&a, "a: &x [*x]\n", &err);
	CHECK(v == NULL && err && strstr(err, "recursive alias"));
	v = parse(&a, "a: *nowhere\n", &err);
	CHECK(v == NULL && err && strstr(err, "undefined anchor"));
	v = parse(&a, "? [a, b]\n: c\n", &err);
	CHECK(v == NULL && err && strstr(err, "key is not a scalar"));

	/* an alias bomb stops at the node limit */
	{
		char		bomb[2048];
		size_t		n = 0;

		n += snprintf(bomb + n, sizeof(bomb) - n, "a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n");
		for (int i = 1; i <= 9; i++)
			n += snprintf(bomb + n, sizeof(bomb) - n,
						  "a%d: &a%d [*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d]\n",
						  i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1,
						  i - 1, i - 1, i - 1);
		v = parse(&a, bomb, &err);
		CHECK(v == NULL && err && strstr(err, "100000 nodes"));
	}
	/* deep nesting stops at the depth limit */
	{
		char	   *deep = malloc(20010);

		strcpy(deep, "d: ");
		memset(deep + 3, '[', 10000);
		memset(deep + 10003, ']', 10000);
		deep[20003] = '\0';
		v = parse(&a, deep, &err);
		CHECK(v == NULL && err && strstr(err, "deeper than 100"));
		free(deep);
	}
	arena_reset(&ar);
}

static void
test_values(void)
{
	KbDate		d;
	KbTimestamp ts;
	unsigned char u[16];
	int64_t		n;

	CHECK(kb_parse_date_prefix("2026-01-07", 10, &d) && d.day == 7);
	CHECK(kb_parse_date_prefix("2026-01-07 10:35:00", 19, &d) && d.month == 1);
	CHECK(kb_parse_date_prefix("2024-02-29T10:35:00Z", 20, &d));
	CHECK(!kb_parse_date_prefix("2026-02-29", 10, &d));
	CHECK(!kb_parse_date_prefix("yesterday", 9, &d));
	CHECK(!kb_parse_date_prefix("2026-01-07 junk", 15, &d));
	CHECK(kb_parse_timestamp("2026-01-07 10:35", 16, &ts) && ts.minute == 35);
	CHECK(kb_parse_timestamp("2026-01-07T10:35:01.25+02:00", 28, &ts) &&
		  ts.usec == 250000 && ts.offset_sec == 7200);
	CHECK(!kb_parse_timestamp("2026-13-45 25:99", 16, &ts));
	CHECK(!kb_parse_timestamp("2026-01-07 24:00", 16, &ts));
	CHECK(kb_parse_uuid("019b8f52-9f3a-7c41-8e2d-5a1b3c4d5e6f", 36, u) && u[0] == 0x01);
	CHECK(!kb_parse_uuid("12", 2, u));
	CHECK(!kb_parse_uuid("019b8f52-9f3a-7c41-8e2d-5a1b3c4d5e6g", 36, u));
	CHECK(kb_parse_int64("-9223372036854775808", 20, &n) && n < 0);
	CHECK(!kb_parse_int64("9223372036854775808", 19, &n));
	CHECK(kb_is_json_number("-0.5", 4) && kb_is_json_number("12", 2));
	CHECK(!kb_is_json_number("0042", 4) && !kb_is_json_number("1.", 2) &&
		  !kb_is_json_number("+1", 2) && !kb_is_json_number("0x1F", 4));
}

static void
test_item_fields(void)
{
	Arena		ar;
	KbAlloc		a = arena_alloc(&ar);
	char	   *err;
	KbValue    *v;
	KbItem		item;
	KbNotes		notes;
	KbLinks		links;

	v = parse(&a, "id: 7\nuid: 12\ntags: \"a,b\"\ncreated: yesterday\nparent: [a, b]\n"
			  "links: {relates: [x, ~, ''], blocks: y}\nblocked_by: [z]\ndecisions: [ADR-1]\n",
			  &err);
	CHECK(v != NULL);
	kb_buf_init(&notes.buf, &a);
	CHECK(kb_extract_item(&a, v, &item, &notes) == KB_OK);
	CHECK(text_is(item.id, "7") && !item.has_uid && !item.tags.present &&
		  !item.has_created && item.parent.ptr == NULL);
	CHECK(strstr(notes.buf.data, "key \"uid\": expected a UUID, got \"12\"") != NULL);
	CHECK(strstr(notes.buf.data, "key \"tags\": expected a list, got \"a,b\"") != NULL);
	memset(&links, 0, sizeof(links));
	CHECK(kb_extract_links(&a, v, &links, &notes) == KB_OK);
	/* relates x (null and empty dropped), blocked_by z, decision ADR-1 */
	CHECK(links.n == 3 && links.links[0].type == KB_LINK_RELATES &&
		  links.links[1].type == KB_LINK_BLOCKED_BY &&
		  links.links[2].type == KB_LINK_DECISION);
	CHECK(strstr(notes.buf.data, "key \"links.blocks\": expected a list") != NULL);
	arena_reset(&ar);
}

static void
test_markdown(void)
{
	Arena		ar;
	KbAlloc		a = arena_alloc(&ar);
	KbMarkdown	md;
	const char *body =
		"# Title #\n\nSee [[A-1]] and [[B-2|alias]], not `[[code]]`.\n\n"
		"Setext\n------\n\n```\n# not a heading [[nor-link]]\n```\n\n"
		"## Acceptance Criteria\n\n- [ ] one\n  more\n- [x] two\n1. [X]\tthree\n- [ ]\n\n"
		"> ### Quoted\n\n## worklog\n\nbefore\n"
		"2026-01-07 09:00 [agent=a] [model=m] Start\n  - detail\n"
		"2026-13-45 25:99 [agent=b] State -> Done now\n";

	CHECK(kb_markdown_analyze(&a, body, strlen(body),
							  KB_MD_CHECKLIST | KB_MD_WIKILINKS | KB_MD_WORKLOG,
							  &md) == KB_OK);
	CHECK(md.nsections == 5);
	CHECK(text_is(md.sections[0].heading, "Title") && md.sections[0].level == 1);
	CHECK(text_is(md.sections[1].heading, "Setext") && md.sections[1].level == 2);
	CHECK(text_is(md.sections[3].heading, "Quoted") && md.sections[3].level == 3);
	CHECK(md.nwikilinks == 2 && text_is(md.wikilinks[0], "A-1") &&
		  text_is(md.wikilinks[1], "B-2"));
	CHECK(md.nchecks == 3);
	CHECK(text_is(md.checks[0].text, "one\nmore") && !md.checks[0].checked);
	CHECK(md.checks[2].checked && text_is(md.checks[2].text, "three"));
	CHECK(md.checks[0].section == 2);
	CHECK(md.nworklog == 2);
	CHECK(md.worklog[0].has_at && text_is(md.worklog[0].agent, "a") &&
		  text_is(md.worklog[0].model, "m") &&
		  text_is(md.worklog[0].message, "Start\n  - detail"));
	CHECK(!md.worklog[1].has_at && text_is(md.worklog[1].new_state, "Done"));
	arena_reset(&ar);

	/* CR LF and a bare CR end lines too; the last line may have no end */
	body = "# A\r\n\r\ntext\r\n## B\rmore\r\n- [x] done\n### C";
	CHECK(kb_markdown_analyze(&a, body, strlen(body), KB_MD_CHECKLIST, &md) == KB_OK);
	CHECK(md.nsections == 3 && text_is(md.sections[0].heading, "A") &&
		  text_is(md.sections[0].content, "text") &&
		  text_is(md.sections[1].heading, "B") &&
		  text_is(md.sections[1].content, "more\r\n- [x] done") &&
		  text_is(md.sections[2].heading, "C") && md.sections[2].content.len == 0);
	CHECK(md.nchecks == 1 && text_is(md.checks[0].text, "done") &&
		  md.checks[0].section == 1);
	arena_reset(&ar);
}

/* Every allocation that fails must come back as KB_ENOMEM, never a crash
 * or a leak (ASan/valgrind check the latter). */
static void
test_out_of_memory(void)
{
	Arena		ar;
	KbAlloc		a = arena_alloc(&ar);
	const char *yaml = "id: A\ntags: [a, b, c]\nm: &m {x: [1, 2]}\nn: *m\n";
	long		n;
	int			enomem = 0;

	for (n = 1; n < 200; n++)
	{
		KbYamlLimits lim = {KB_YAML_MAX_NODES, KB_YAML_MAX_DEPTH};
		KbValue    *v;
		char	   *err;
		int			rc;

		ar.fail_at = n;
		rc = kb_yaml_parse(&a, yaml, strlen(yaml), 2, &lim, &v, &err);
		arena_reset(&ar);
		if (rc == KB_OK)
			break;
		enomem += rc == KB_ENOMEM;
	}
	CHECK(enomem == n - 1 && n > 5 && n < 200);
}

static void
write_file(const char *path, const char *text)
{
	FILE	   *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
}

/* Does this kernel (or valgrind) offer openat2? */
static bool
have_openat2(void)
{
#ifdef SYS_openat2
	long		fd;
	struct
	{
		uint64_t	flags,
					mode,
					resolve;
	}			how = {0, 0, 0};

	fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));
	if (fd >= 0)
		close((int) fd);
	return fd >= 0 || errno != ENOSYS;
#else
	return false;
#endif
}

static void
test_walk(void)
{
	Arena		ar;
	KbAlloc		a = arena_alloc(&ar);
	char		root[] = "/tmp/kb_unit_XXXXXX";
	char		path[512];
	KbWalk	   *w;
	KbEntry		e;
	int			err;
	int			n = 0,
				errors = 0;
	bool		saw_gone = false;

	CHECK(mkdtemp(root) != NULL);
	snprintf(path, sizeof(path), "mkdir -p %s/products/p/items/t %s/products/q/items", root, root);
	CHECK(system(path) == 0);
	snprintf(path, sizeof(path), "%s/products/q/items/Q.md", root);
	write_file(path, "---\nid: Q\n---\n");
	snprintf(path, sizeof(path), "%s/products/p/items/t/A.md", root);
	write_file(path, "---\nid: A\n---\n");
	snprintf(path, sizeof(path), "%s/products/p/items/t/gone.md", root);
	write_file(path, "---\nid: G\n---\n");
	snprintf(path, sizeof(path), "%s/README.md", root);
	write_file(path, "readme");
	snprintf(path, sizeof(path), "%s/products/p/items/t/out.md", root);
	CHECK(symlink("/etc/passwd", path) == 0);
	snprintf(path, sizeof(path), "%s/products/p/items/up", root);
	CHECK(symlink("..", path) == 0);

	w = kb_walk_open(&a, root, KB_SCOPE_ALL, NULL, &err);
	CHECK(w != NULL);
	while (w && kb_walk_next(w, &e) == 1)
	{
		n++;
		if (e.error)
			errors++;
		if (strstr(e.relpath, "gone.md"))
		{
			char	   *data,
					   *msg;
			size_t		len;

			/* deleted between listing and reading: an error, not a crash */
			CHECK(unlink(e.openpath) == 0);
			CHECK(kb_read_file(&a, &e, -1, 1 << 20, &data, &len, &msg) == KB_OK);
			CHECK(data == NULL && msg && strstr(msg, "could not open file"));
			saw_gone = true;
		}
		if (strstr(e.relpath, "t/A.md"))
		{
			char	   *data,
					   *msg;
			size_t		len;

			/* truncated between listing and reading: what is left is read */
			int			root_fd = open(root, O_PATH | O_DIRECTORY);

			CHECK(truncate(e.openpath, 4) == 0);
			CHECK(kb_read_file(&a, &e, -1, 1 << 20, &data, &len, &msg) == KB_OK);
			CHECK(data != NULL && len == 4 && msg == NULL);
			CHECK(kb_read_file(&a, &e, root_fd, 1 << 20, &data, &len, &msg) == KB_OK);
			CHECK(data != NULL && len == 4 && memcmp(data, "---\n", 4) == 0);
			close(root_fd);
			write_file(e.openpath, "---\nid: A\n---\n");
		}
	}
	kb_walk_close(w);
	CHECK(n == 5 && errors == 1 && saw_gone);	/* README, A, gone, out, Q */

	w = kb_walk_open(&a, root, KB_SCOPE_ITEMS, "p", &err);
	n = 0;
	while (w && kb_walk_next(w, &e) == 1)
		n++;
	kb_walk_close(w);
	/* root files are listed (the scan drops them by kind); other products'
	 * and non-item folders are never entered, nor the link "up" to an
	 * ancestor */
	CHECK(n == 3);

	/*
	 * A directory swapped for a link out of root between the walk and the
	 * read: the open refuses it instead of following it.
	 */
	{
		char		outside[] = "/tmp/kb_unit_out_XXXXXX";
		char		cmd[1024];
		bool		refused = false;

		int			root_fd = open(root, O_PATH | O_DIRECTORY);

		CHECK(root_fd >= 0);
		CHECK(mkdtemp(outside) != NULL);
		snprintf(path, sizeof(path), "%s/A.md", outside);
		write_file(path, "---\nid: SECRET\n---\n");
		w = kb_walk_open(&a, root, KB_SCOPE_ALL, NULL, &err);
		while (w && kb_walk_next(w, &e) == 1)
		{
			char	   *data,
					   *msg;
			size_t		len;

			if (!strstr(e.relpath, "t/A.md"))
				continue;
			snprintf(cmd, sizeof(cmd), "mv %s/products/p/items/t %s/products/p/items/t.moved && ln -s %s %s/products/p/items/t",
					 root, root, outside, root);
			CHECK(system(cmd) == 0);
			CHECK(kb_read_file(&a, &e, -1, 1 << 20, &data, &len, &msg) == KB_OK);
			refused = data == NULL && msg != NULL && strstr(msg, "symbolic link") != NULL;
			/* the same through a descriptor of root kept open by the caller */
			CHECK(kb_read_file(&a, &e, root_fd, 1 << 20, &data, &len, &msg) == KB_OK);
			refused = refused && data == NULL && msg != NULL &&
				strstr(msg, "symbolic link") != NULL;
		}
		kb_walk_close(w);
		if (have_openat2())
			CHECK(refused);
		else
			printf("# no openat2 here (valgrind?): the swapped-link check is skipped\n");
		snprintf(cmd, sizeof(cmd), "rm -rf %s", outside);
		CHECK(system(cmd) == 0);
		close(root_fd);
	}

	CHECK(kb_walk_open(&a, "/no/such/dir", KB_SCOPE_ALL, NULL, &err) == NULL &&
		  err == ENOENT);
	arena_reset(&ar);
	snprintf(path, sizeof(path), "rm -rf %s", root);
	CHECK(system(path) == 0);
}

/* FNV-1a over a path, as the walk hashes a path it cannot list whole. */
static uint64_t
path_hash(const char *s, size_t len)
{
	uint64_t	h = UINT64_C(14695981039346656037);

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char) s[i]) * UINT64_C(1099511628211);
	return h;
}

/* One entry a walk listed, copied out of the walk's buffers. */
typedef struct Listed
{
	char		relpath[4200];
	size_t		relpath_len;
	char		error[128];
	int64_t		size;
	uint64_t	ino;
	bool		read_error;		/* kb_file_analyze: fatal, never read */
} Listed;

static int
walk_all(const KbAlloc *a, const char *root, KbScope scope, Listed *out,
		 int max)
{
	KbWalk	   *w;
	KbEntry		e;
	int			err;
	int			n = 0;

	w = kb_walk_open(a, root, scope, NULL, &err);
	CHECK(w != NULL);
	while (w && kb_walk_next(w, &e) == 1)
	{
		KbFileOptions opts = {1 << 20, {KB_YAML_MAX_NODES, KB_YAML_MAX_DEPTH}, false, -1};
		KbFile		f;

		if (n == max)
		{
			n++;
			break;
		}
		CHECK(e.relpath_len < sizeof(out[n].relpath) &&
			  strlen(e.relpath) == e.relpath_len);
		snprintf(out[n].relpath, sizeof(out[n].relpath), "%s", e.relpath);
		out[n].relpath_len = e.relpath_len;
		snprintf(out[n].error, sizeof(out[n].error), "%s", e.error ? e.error : "");
		out[n].size = e.size;
		out[n].ino = e.ino;
		CHECK(kb_file_analyze(a, &e, &opts, KB_NEED_READ | KB_NEED_FIELDS, &f) == KB_OK);
		out[n].read_error = !f.was_read && f.data == NULL && f.fatal != NULL &&
			e.error != NULL && strcmp(f.fatal, e.error) == 0;
		n++;
	}
	kb_walk_close(w);
	return n;
}

/* Is this the relpath of a path too long to list: prefix...#hash? */
static bool
is_long_relpath(const Listed *l, const char *full, size_t prefix)
{
	char		want[8192];

	snprintf(want, sizeof(want), "%.*s...#%016llx", (int) prefix, full,
			 (unsigned long long) path_hash(full, strlen(full)));
	return strcmp(l->relpath, want) == 0 && l->relpath_len == strlen(want) &&
		strcmp(l->error, "path is longer than PATH_MAX (4096 bytes)") == 0 &&
		l->ino != 0 && l->read_error;
}

/*
 * Names that are not valid UTF-8 and paths longer than PATH_MAX: each is
 * listed with an error, escaped or shortened, and never read; a directory
 * of either kind is listed and not entered.
 */
static void
test_walk_names(void)
{
	Arena		ar;
	KbAlloc		a = arena_alloc(&ar);
	char		root[] = "/tmp/kb_unit_XXXXXX";
	char		path[512];
	char		full[8192];		/* the long directories, relative to root */
	char		p16[4096];		/* the 16th of them */
	char		want[8192];
	char		seg[251];
	char		seg4[251];
	char		n60[61];
	char		n100[101];
	int			fd;
	Listed	   *l = calloc(16, sizeof(Listed));
	int			n;

	CHECK(mkdtemp(root) != NULL);
	CHECK(strlen(root) == 19);	/* the long paths below count on it */
	snprintf(path, sizeof(path), "%s/ok.md", root);
	write_file(path, "---\nid: OK\n---\n");
	snprintf(path, sizeof(path), "%s/\xFF.md", root);
	write_file(path, "0123456789");
	snprintf(path, sizeof(path), "%s/caf\xE9.md", root);
	write_file(path, "---\nid: CAFE\n---\n");
	snprintf(path, sizeof(path), "%s/bad\xFE" "dir", root);
	CHECK(mkdir(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/bad\xFE" "dir/inside.md", root);
	write_file(path, "---\nid: INSIDE\n---\n");
	/* escaping would make these two one path */
	snprintf(path, sizeof(path), "%s/clash", root);
	CHECK(mkdir(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/clash/\\xFF.md", root);
	write_file(path, "as written");
	snprintf(path, sizeof(path), "%s/clash/\xFF.md", root);
	write_file(path, "a bad byte");

	/*
	 * long/ then 250-byte directories, made one at a time (no open() of
	 * the whole path could): the 16th ends at byte 4 + 16 * 251 = 4020
	 * (4040 with root), the 17th past PATH_MAX.  The 4th holds an "é" at
	 * bytes 999-1000, so a 1000-byte prefix ends before it.  In the 16th:
	 * a 60-byte name (the relative path fits PATH_MAX, the absolute one
	 * not), a 100-byte name (neither fits), and x.md (fits).
	 */
	memset(seg, 'd', 250);
	seg[250] = '\0';
	memcpy(seg4, seg, sizeof(seg));
	memcpy(seg4 + 241, "\xC3\xA9", 2);
	memset(n60, 'a', 57);
	strcpy(n60 + 57, ".md");
	memset(n100, 'b', 97);
	strcpy(n100 + 97, ".md");
	snprintf(path, sizeof(path), "%s/long", root);
	CHECK(mkdir(path, 0755) == 0);
	fd = open(path, O_RDONLY | O_DIRECTORY);
	strcpy(full, "long");
	for (int i = 1; i <= 17; i++)
	{
		const char *name = i == 4 ? seg4 : seg;
		int			next;

		CHECK(mkdirat(fd, name, 0755) == 0);
		next = openat(fd, name, O_RDONLY | O_DIRECTORY);
		CHECK(next >= 0);
		close(fd);
		fd = next;
		strcat(full, "/");
		strcat(full, name);
		if (i == 16)
		{
			const char *files[] = {n60, n100, "x.md"};

			strcpy(p16, full);
			for (int k = 0; k < 3; k++)
			{
				int			f = openat(fd, files[k], O_WRONLY | O_CREAT, 0644);

				CHECK(f >= 0 && write(f, "12345", 5) == 5);
				close(f);
			}
		}
	}
	CHECK(strlen(full) == 4 + 17 * 251 && strlen(p16) == 4020);
	CHECK(memcmp(full + 999, "\xC3\xA9", 2) == 0);
	{
		/* and at the bottom, out of reach */
		int			f = openat(fd, "deep.md", O_WRONLY | O_CREAT, 0644);

		CHECK(f >= 0);
		close(f);
	}
	close(fd);

	n = walk_all(&a, root, KB_SCOPE_ALL, l, 16);
	CHECK(n == 10);
	if (n == 10)
	{
		/* in byte order: bad<FE>dir, caf<E9>.md, clash/, long/, ok.md, <FF>.md */
		CHECK(strcmp(l[0].relpath, "bad\\xFEdir") == 0 &&
			  l[0].relpath_len == 10 &&
			  strcmp(l[0].error, "name is not valid UTF-8") == 0 &&
			  l[0].ino != 0 && l[0].read_error);
		CHECK(strcmp(l[1].relpath, "caf\\xE9.md") == 0 &&
			  strcmp(l[1].error, "name is not valid UTF-8") == 0 &&
			  l[1].size == 17 && l[1].read_error);
		/* the name as written keeps its path; the bad one gets a hash */
		CHECK(strcmp(l[2].relpath, "clash/\\xFF.md") == 0 &&
			  l[2].error[0] == '\0' && l[2].size == 10 && !l[2].read_error);
		snprintf(want, sizeof(want), "clash/\\xFF.md#%016llx",
				 (unsigned long long) path_hash("clash/\xFF.md", 10));
		CHECK(strcmp(l[3].relpath, want) == 0 &&
			  strcmp(l[3].error, "name is not valid UTF-8") == 0 &&
			  l[3].size == 10 && l[3].read_error);

		/* the 60-byte name: the absolute path is too long */
		snprintf(want, sizeof(want), "%s/%s", p16, n60);
		CHECK(strlen(want) == 4081);
		CHECK(is_long_relpath(&l[4], want, 999) && l[4].size == 5);
		/* the 100-byte name: the relative path is too long */
		snprintf(want, sizeof(want), "%s/%s", p16, n100);
		CHECK(strlen(want) == 4121);
		CHECK(is_long_relpath(&l[5], want, 999) && l[5].size == 5);
		/* the 17th directory: listed, not entered (deep.md is not listed) */
		CHECK(is_long_relpath(&l[6], full, 999));
		/* x.md fits: an ordinary file, read */
		snprintf(want, sizeof(want), "%s/x.md", p16);
		CHECK(strcmp(l[7].relpath, want) == 0 && l[7].relpath_len == 4025 &&
			  l[7].error[0] == '\0' && l[7].size == 5 && !l[7].read_error);
		CHECK(strcmp(l[8].relpath, "ok.md") == 0 && l[8].error[0] == '\0');
		CHECK(strcmp(l[9].relpath, "\\xFF.md") == 0 && l[9].relpath_len == 7 &&
			  strcmp(l[9].error, "name is not valid UTF-8") == 0 &&
			  l[9].size == 10 && l[9].ino != 0 && l[9].read_error);
	}
	for (int i = 0; i < n && i < 16; i++)
		CHECK(strstr(l[i].relpath, "inside") == NULL &&
			  strstr(l[i].relpath, "deep") == NULL);

	/*
	 * A walk of decisions only: the bad directory, clash/ and long/ are
	 * not wanted, so not listed; the Markdown files at the root are.
	 */
	n = walk_all(&a, root, KB_SCOPE_DECISIONS, l, 16);
	CHECK(n == 3 && strcmp(l[0].relpath, "caf\\xE9.md") == 0 &&
		  strcmp(l[1].relpath, "ok.md") == 0 &&
		  strcmp(l[2].relpath, "\\xFF.md") == 0);

	free(l);
	arena_reset(&ar);
	snprintf(path, sizeof(path), "rm -rf %s", root);
	CHECK(system(path) == 0);
}

/* ---------------------------------------------------------------------
 * The Git HEAD reader, against repositories that git itself makes
 * ---------------------------------------------------------------------
 */
static char git_tmp[] = "/tmp/kb_git_XXXXXX";

/*
 * Runs a shell command in dir, its output hidden (the directory is
 * git_tmp-relative unless absolute).  True when it succeeds.
 */
static bool
sh(const char *dir, const char *fmt,...)
	__attribute__((format(printf, 2, 3)));

static bool
sh(const char *dir, const char *fmt,...)
{
	char		cmd[8192];
	int			n;
	va_list		ap;

	n = snprintf(cmd, sizeof(cmd), "cd '%s%s%s' && { ",
				 dir[0] == '/' ? "" : git_tmp, dir[0] == '/' ? "" : "/", dir);
	va_start(ap, fmt);
	n += vsnprintf(cmd + n, sizeof(cmd) - n, fmt, ap);
	va_end(ap);
	snprintf(cmd + n, sizeof(cmd) - n, "; } >/dev/null 2>&1");
	return system(cmd) == 0;
}

/* git_tmp/rel, in a static buffer (one at a time) */
static const char *
gpath(const char *rel)
{
	static char path[1024];

	snprintf(path, sizeof(path), "%s/%s", git_tmp, rel);
	return path;
}

/* What "git rev-parse --verify HEAD" says in dir: the commit or "". */
static void
git_rev_parse(const char *dir, char *out, size_t size)
{
	char		cmd[1200];
	FILE	   *p;

	snprintf(cmd, sizeof(cmd), "cd '%s' 2>/dev/null && git rev-parse -q --verify HEAD 2>/dev/null",
			 gpath(dir));
	out[0] = '\0';
	p = popen(cmd, "r");
	if (p == NULL)
		return;
	if (fgets(out, (int) size, p) == NULL)
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	pclose(p);
}

/* kb_git_head(dir) finds the commit git finds there. */
#define CHECK_GIT_AGREES(dir) check_git_agrees(dir, __LINE__)
static void
check_git_agrees(const char *dir, int line)
{
	char		want[128];
	KbGitHead	h;
	KbGitStatus st;

	git_rev_parse(dir, want, sizeof(want));
	st = kb_git_head(gpath(dir), &h);
	if (st == KB_GIT_COMMIT && (strlen(want) == 40 || strlen(want) == 64) &&
		strcmp(h.commit, want) == 0)
		passed++;
	else
	{
		failed++;
		fprintf(stderr, "FAIL %s:%d: HEAD of %s: git says \"%s\", status %d \"%s\" %s\n",
				__FILE__, line, dir, want, (int) st, h.commit, h.error);
	}
}

/*
 * kb_git_head(dir) gives status (and an error containing what, if any),
 * and git finds no commit there either (unless git_differs: git passes
 * over a .git directory with a malformed HEAD, this reports it).
 */
#define CHECK_GIT_STATUS(dir, status, what, git_differs) \
	check_git_status(dir, status, what, git_differs, __LINE__)
static void
check_git_status(const char *dir, KbGitStatus status, const char *what,
				 bool git_differs, int line)
{
	char		want[128];
	KbGitHead	h;
	KbGitStatus st;
	size_t		bad;
	bool		nul;

	git_rev_parse(dir, want, sizeof(want));
	st = kb_git_head(dir[0] == '/' ? dir : gpath(dir), &h);
	if (st == status && h.commit[0] == '\0' &&
		(git_differs || want[0] == '\0') &&
		(what == NULL ? h.error[0] == '\0' : strstr(h.error, what) != NULL) &&
		kb_check_utf8(h.error, strlen(h.error), &bad, &nul) &&
		strchr(h.error, '\n') == NULL)
		passed++;
	else
	{
		failed++;
		fprintf(stderr, "FAIL %s:%d: HEAD of %s: git says \"%s\", status %d \"%s\" \"%s\"\n",
				__FILE__, line, dir, want, (int) st, h.commit, h.error);
	}
}

/* Writes text to git_tmp/rel. */
static void
gwrite(const char *rel, const char *text)
{
	write_file(gpath(rel), text);
}

static void
test_git_head(void)
{
	char		before[128];
	char		after[128];
	char		big[6000];
	KbGitHead	h;

	CHECK(mkdtemp(git_tmp) != NULL);
	/* git's configuration is the test's alone */
	setenv("HOME", git_tmp, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_AUTHOR_NAME", "kabsd", 1);
	setenv("GIT_AUTHOR_EMAIL", "kabsd@example.org", 1);
	setenv("GIT_COMMITTER_NAME", "kabsd", 1);
	setenv("GIT_COMMITTER_EMAIL", "kabsd@example.org", 1);
	unsetenv("GIT_DIR");
	unsetenv("GIT_WORK_TREE");
	CHECK(sh("/", "git --version"));

	/* outside any repository; a root that is missing or no directory */
	CHECK(sh("", "mkdir -p plain/backlog && touch plain/file"));
	CHECK_GIT_STATUS("plain/backlog", KB_GIT_NOT_REPO, NULL, false);
	CHECK_GIT_STATUS("missing", KB_GIT_ERROR, "could not resolve the path", false);
	CHECK_GIT_STATUS("plain/file", KB_GIT_ERROR, "is not a directory", false);

	/* a new repository: an unborn branch */
	CHECK(sh("", "git init -q -b main repo && mkdir -p repo/backlog/nested"));
	CHECK_GIT_STATUS("repo/backlog", KB_GIT_UNBORN, NULL, false);
	CHECK_GIT_STATUS("repo", KB_GIT_UNBORN, NULL, false);

	/* a commit on the branch, from the root and from below it */
	CHECK(sh("repo", "echo one > backlog/a.md && git add backlog && git commit -q -m one"));
	CHECK_GIT_AGREES("repo/backlog");
	CHECK_GIT_AGREES("repo/backlog/nested");
	CHECK_GIT_AGREES("repo");
	/* an empty .git directory is no repository: passed over, as git does */
	CHECK(sh("repo", "mkdir backlog/nested/.git"));
	CHECK_GIT_AGREES("repo/backlog/nested");

	/* another branch; a detached HEAD */
	CHECK(sh("repo", "git checkout -q -b feature && echo two > backlog/a.md && git commit -q -a -m two"));
	CHECK_GIT_AGREES("repo/backlog");
	CHECK(sh("repo", "git checkout -q --detach HEAD~1"));
	CHECK_GIT_AGREES("repo/backlog");
	git_rev_parse("repo", before, sizeof(before));
	CHECK(sh("repo", "git checkout -q feature"));
	git_rev_parse("repo", after, sizeof(after));
	CHECK(strcmp(before, after) != 0);
	CHECK_GIT_AGREES("repo/backlog");

	/* every ref packed: no loose file left, packed-refs read */
	CHECK(sh("repo", "git checkout -q main && git pack-refs --all"));
	CHECK(access(gpath("repo/.git/refs/heads/main"), F_OK) != 0);
	CHECK_GIT_AGREES("repo/backlog");
	CHECK(sh("repo", "git checkout -q feature"));
	CHECK_GIT_AGREES("repo/backlog");
	/* a commit after packing: the loose ref wins over the stale packed one */
	CHECK(sh("repo", "echo three > backlog/a.md && git commit -q -a -m three"));
	CHECK(sh("repo", "grep -q ' refs/heads/feature$' .git/packed-refs"));
	CHECK(access(gpath("repo/.git/refs/heads/feature"), F_OK) == 0);
	CHECK_GIT_AGREES("repo/backlog");

	/* symbolic refs: four after HEAD are followed, five are too many */
	CHECK(sh("repo", "git symbolic-ref refs/heads/s1 refs/heads/s2 && "
			 "git symbolic-ref refs/heads/s2 refs/heads/s3 && "
			 "git symbolic-ref refs/heads/s3 refs/heads/main && "
			 "git symbolic-ref HEAD refs/heads/s1"));
	CHECK_GIT_AGREES("repo/backlog");
	CHECK(sh("repo", "git symbolic-ref refs/heads/s0 refs/heads/s1 && "
			 "git symbolic-ref HEAD refs/heads/s0"));
	CHECK_GIT_STATUS("repo/backlog", KB_GIT_ERROR, "names no commit within 5 symbolic refs", false);
	CHECK(sh("repo", "git symbolic-ref refs/heads/s3 refs/heads/s0"));	/* a loop */
	CHECK_GIT_STATUS("repo/backlog", KB_GIT_ERROR, "names no commit within 5 symbolic refs", false);
	/* a symbolic ref to a branch that does not exist: unborn */
	CHECK(sh("repo", "git symbolic-ref HEAD refs/heads/nowhere"));
	CHECK_GIT_STATUS("repo/backlog", KB_GIT_UNBORN, NULL, false);
	/* an old-style symbolic ref: a symbolic link to a ref name */
	CHECK(sh("repo", "ln -s refs/heads/feature .git/refs/heads/linked && "
			 "git symbolic-ref HEAD refs/heads/linked"));
	CHECK_GIT_AGREES("repo/backlog");
	CHECK(sh("repo", "git symbolic-ref HEAD refs/heads/feature"));
	CHECK_GIT_AGREES("repo/backlog");

	/* a linked worktree: HEAD its own, its branch in the common directory */
	CHECK(sh("repo", "git worktree add -q -b wtb ../wt main"));
	CHECK(sh("wt", "test -f .git && echo wt > backlog/w.md && "
			 "git add backlog && git commit -q -m wt"));
	CHECK_GIT_AGREES("wt/backlog");
	CHECK_GIT_AGREES("repo/backlog");
	git_rev_parse("wt", before, sizeof(before));
	git_rev_parse("repo", after, sizeof(after));
	CHECK(strcmp(before, after) != 0);
	CHECK(sh("repo", "git pack-refs --all && test ! -e .git/refs/heads/wtb"));
	CHECK_GIT_AGREES("wt/backlog");
	/* a per-worktree ref lives in the worktree's own git directory */
	CHECK(sh("wt", "git update-ref refs/worktree/mine HEAD~1 && "
			 "git symbolic-ref HEAD refs/worktree/mine && "
			 "test -f ../repo/.git/worktrees/wt/refs/worktree/mine"));
	CHECK_GIT_AGREES("wt/backlog");
	CHECK(sh("wt", "git symbolic-ref HEAD refs/heads/wtb"));
	CHECK_GIT_AGREES("wt/backlog");

	/* a submodule: ".git" is a file naming ../.git/modules/sub */
	CHECK(sh("", "git init -q -b main subsrc && cd subsrc && echo s > s.md && "
			 "git add s.md && git commit -q -m sub"));
	CHECK(sh("repo", "git -c protocol.file.allow=always submodule add -q %s sub && "
			 "grep -qx 'gitdir: ../.git/modules/sub' sub/.git && "
			 "cd sub && echo t > t.md && git add t.md && git commit -q -m t",
			 gpath("subsrc")));
	CHECK_GIT_AGREES("repo/sub");
	git_rev_parse("repo/sub", before, sizeof(before));
	git_rev_parse("repo", after, sizeof(after));
	CHECK(strcmp(before, after) != 0);
	/* and one made with --separate-git-dir: an absolute path */
	CHECK(sh("", "git init -q -b main --separate-git-dir %s sepwt && cd sepwt && "
			 "echo x > x.md && git add x.md && git commit -q -m x && "
			 "grep -q '^gitdir: /' .git", gpath("sep.git")));
	CHECK_GIT_AGREES("sepwt");

	/* a SHA-256 repository: 64 hex digits, loose then packed */
	CHECK(sh("", "git init -q -b main --object-format=sha256 sha && cd sha && "
			 "echo x > x.md && git add x.md && git commit -q -m x"));
	CHECK_GIT_AGREES("sha");
	CHECK(sh("sha", "git pack-refs --all"));
	CHECK_GIT_AGREES("sha");
	CHECK(kb_git_head(gpath("sha"), &h) == KB_GIT_COMMIT && strlen(h.commit) == 64);

	/*
	 * Broken repositories, each a copy of repo: an error, never a commit
	 * (git passes over a .git directory whose HEAD it cannot read, and
	 * would find an enclosing repository; this says what is wrong).
	 */
	CHECK(sh("", "cp -a repo bad"));
	gwrite("bad/.git/HEAD", "garbage\n");
	CHECK_GIT_STATUS("bad/backlog", KB_GIT_ERROR, ".git/HEAD\" holds neither an object name nor a valid ref name", true);
	gwrite("bad/.git/HEAD", "ref: refs/heads/../../../../../etc/passwd\n");
	CHECK_GIT_STATUS("bad/backlog", KB_GIT_ERROR, "holds neither", true);
	gwrite("bad/.git/HEAD", "ref: refs/heads/a..b\n");	/* git refuses the name */
	gwrite("bad/.git/refs/heads/a..b", "0123456789abcdef0123456789abcdef01234567\n");
	CHECK_GIT_STATUS("bad/backlog", KB_GIT_ERROR, "holds neither", true);
	gwrite("bad/.git/HEAD", "ref: heads/main\n");
	CHECK_GIT_STATUS("bad/backlog", KB_GIT_ERROR, "holds neither", true);
	gwrite("bad/.git/HEAD", "ref: refs/heads/.hidden\n");
	CHECK_GIT_STATUS("bad/backlog", KB_GIT_ERROR, "holds neither", true);
	gwrite("bad/.git/HEAD", "0123456789abcdef0123456789abcdef0123456\n");	/* 39 */
	CHECK_GIT_STATUS("bad/backlog", KB_GIT_ERROR, "holds neither", true);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	gwrite("bad/.git/HEAD", big);
	CHECK_GIT_STATUS("bad/backlog", KB_GIT_ERROR, ".git/HEAD\" is larger than 4095 bytes", true);
	/* a FIFO does not hang the reader (git would wait on it: not asked) */
	CHECK(sh("bad", "rm .git/HEAD && mkfifo .git/HEAD"));
	CHECK(kb_git_head(gpath("bad/backlog"), &h) == KB_GIT_ERROR &&
		  strstr(h.error, ".git/HEAD\" is not a regular file") != NULL);
	CHECK(sh("bad", "rm .git/HEAD"));
	/* a detached HEAD in capitals reads as git reads it, in lowercase */
	git_rev_parse("repo", before, sizeof(before));
	for (char *p = before; *p; p++)
		*p = (char) (*p >= 'a' && *p <= 'f' ? *p - 'a' + 'A' : *p);
	snprintf(big, sizeof(big), "%s\n", before);
	gwrite("bad/.git/HEAD", big);
	CHECK_GIT_AGREES("bad/backlog");
	/* a loose ref that holds no object name */
	gwrite("bad/.git/HEAD", "ref: refs/heads/broken\n");
	gwrite("bad/.git/refs/heads/broken", "not a commit\n");
	CHECK_GIT_STATUS("bad/backlog", KB_GIT_ERROR, "refs/heads/broken\" holds neither", false);
	/* a ref that is a symbolic link out of the repository: not followed */
	CHECK(sh("bad", "ln -s /etc/hostname .git/refs/heads/evil"));
	gwrite("bad/.git/HEAD", "ref: refs/heads/evil\n");
	CHECK_GIT_STATUS("bad/backlog", KB_GIT_ERROR, "is a symbolic link to something other than a ref", true);
	/* a packed-refs line of another shape */
	gwrite("bad/.git/HEAD", "ref: refs/heads/main\n");
	CHECK_GIT_AGREES("bad/backlog");
	CHECK(sh("bad", "head -n 1 .git/packed-refs | grep -q '^# pack-refs' && "
			 "sed -i '1a oops refs/heads/aaa' .git/packed-refs"));
	/* (git's binary search of a sorted packed-refs does not see it) */
	CHECK_GIT_STATUS("bad/backlog", KB_GIT_ERROR, "packed-refs\" holds a line that is not", true);
	/* a repository in the reftable format */
	CHECK(sh("bad", "sed -i 2d .git/packed-refs"));
	CHECK_GIT_AGREES("bad/backlog");
	CHECK(sh("bad", "mkdir .git/reftable"));
	CHECK_GIT_STATUS("bad/backlog", KB_GIT_ERROR, "keeps its refs in a reftable", true);

	/* .git files that name no repository: an error, as in git */
	CHECK(sh("", "mkdir -p gf1/backlog gf2/backlog gf3/backlog && "
			 "echo 'nonsense' > gf1/.git && "
			 "echo 'gitdir: ../nowhere' > gf2/.git"));
	CHECK_GIT_STATUS("gf1/backlog", KB_GIT_ERROR, "gf1/.git\" does not hold \"gitdir: <path>\"", false);
	CHECK_GIT_STATUS("gf2/backlog", KB_GIT_ERROR, "gf2/.git\" names \"", false);
	CHECK_GIT_STATUS("gf2/backlog", KB_GIT_ERROR, "gf2/../nowhere\", which is not a Git repository", false);
	/* a message quotes no control character nor byte that is not UTF-8 */
	gwrite("gf3/.git", "gitdir: ../no\x01w\xffhere\n");
	CHECK_GIT_STATUS("gf3/backlog", KB_GIT_ERROR, "gf3/../no?w?here\", which is not", false);
	/* a relative .git file with CRLF, as a Windows checkout may leave it */
	CHECK(sh("", "mkdir -p crlf/backlog && mv sepwt/.git sepwt/.git.moved && "
			 "printf 'gitdir: ../sep.git\\r\\n' > crlf/.git"));
	CHECK(kb_git_head(gpath("crlf/backlog"), &h) == KB_GIT_COMMIT);
	git_rev_parse("sha", before, sizeof(before));
	CHECK(sh("sepwt", "mv .git.moved .git"));
	git_rev_parse("sepwt", after, sizeof(after));
	CHECK(strcmp(h.commit, after) == 0);

	snprintf(big, sizeof(big), "rm -rf %s", git_tmp);
	CHECK(system(big) == 0);
}

/*
 * A walk restricted to some paths lists those files and the files below
 * those directories, nothing else; the path rules it relies on.
 */
static void
test_walk_restrict(void)
{
	Arena		ar;
	KbAlloc		a = arena_alloc(&ar);
	char		root[] = "/tmp/kb_unit_XXXXXX";
	char		path[512];
	/* sorted, as a restricted walk wants them */
	const char *paths[] = {"products/none", "products/p/items/t/A.md", "topics"};
	const char *found[8];
	KbWalk	   *w;
	KbEntry		e;
	int			err;
	int			n = 0;

	CHECK(mkdtemp(root) != NULL);
	snprintf(path, sizeof(path), "mkdir -p %s/products/p/items/t %s/products/q/items %s/topics/deep %s/topicsX",
			 root, root, root, root);
	CHECK(system(path) == 0);
	snprintf(path, sizeof(path), "%s/products/p/items/t/A.md", root);
	write_file(path, "---\nid: A\n---\n");
	snprintf(path, sizeof(path), "%s/products/p/items/t/B.md", root);
	write_file(path, "---\nid: B\n---\n");
	snprintf(path, sizeof(path), "%s/products/q/items/Q.md", root);
	write_file(path, "---\nid: Q\n---\n");
	snprintf(path, sizeof(path), "%s/topics/deep/x.md", root);
	write_file(path, "# x\n");
	snprintf(path, sizeof(path), "%s/topicsX/y.md", root);
	write_file(path, "# y\n");
	snprintf(path, sizeof(path), "%s/README.md", root);
	write_file(path, "readme");

	w = kb_walk_open(&a, root, KB_SCOPE_ALL, NULL, &err);
	CHECK(w != NULL);
	kb_walk_restrict(w, paths, 3);
	while (w && kb_walk_next(w, &e) == 1 && n < 8)
		found[n++] = kb_strndup(&a, e.relpath, e.relpath_len);
	kb_walk_close(w);
	CHECK(n == 2);
	CHECK(n == 2 && strcmp(found[0], "products/p/items/t/A.md") == 0);
	CHECK(n == 2 && strcmp(found[1], "topics/deep/x.md") == 0);

	CHECK(kb_relpath_valid("a/b.md"));
	CHECK(kb_relpath_valid("a..b/c"));
	CHECK(!kb_relpath_valid(""));
	CHECK(!kb_relpath_valid("/a"));
	CHECK(!kb_relpath_valid("a/"));
	CHECK(!kb_relpath_valid("a//b"));
	CHECK(!kb_relpath_valid("./a"));
	CHECK(!kb_relpath_valid("a/../../b"));
	CHECK(!kb_relpath_valid(".."));
	CHECK(kb_path_within("topics/x.md", 11, paths, 3));
	CHECK(kb_path_within("topics", 6, paths, 3));
	CHECK(!kb_path_within("topicsX/y.md", 12, paths, 3));
	CHECK(!kb_path_within("products/p/items/t/B.md", 23, paths, 3));
	CHECK(kb_path_within("products/none", 13, paths, 3));
	CHECK(kb_path_within("products/none/deeper/z.md", 25, paths, 3));
	CHECK(!kb_path_within("products/non", 12, paths, 3));
	CHECK(!kb_path_within("products", 8, paths, 3));
	CHECK(!kb_path_within("products/none-else", 18, paths, 3));
	CHECK(!kb_path_within("a", 1, paths, 3));
	CHECK(!kb_path_within("zzz", 3, paths, 3));
	CHECK(!kb_path_within("topics", 6, paths, 0));

	snprintf(path, sizeof(path), "rm -rf %s", root);
	CHECK(system(path) == 0);
	arena_reset(&ar);
}

/*
 * What a need implies: asked for wikilinks alone, an item's links still
 * come after its frontmatter edges, numbered as when everything is asked.
 */
static void
test_need_closure(void)
{
	Arena		ar;
	KbAlloc		a = arena_alloc(&ar);
	char		root[] = "/tmp/kb_unit_XXXXXX";
	char		path[512];
	KbFileOptions opts = {1 << 20, {KB_YAML_MAX_NODES, KB_YAML_MAX_DEPTH}, false, -1};
	KbWalk	   *w;
	KbEntry		e;
	KbFile		all,
				wiki;
	int			err;

	CHECK(kb_need_closure(0) == 0);
	CHECK(kb_need_closure(KB_NEED_FIELDS) == (KB_NEED_FIELDS | KB_NEED_READ));
	CHECK(kb_need_closure(KB_NEED_CHECKLIST) ==
		  (KB_NEED_CHECKLIST | KB_NEED_MARKDOWN | KB_NEED_READ));
	CHECK(kb_need_closure(KB_NEED_WIKILINKS) ==
		  (KB_NEED_WIKILINKS | KB_NEED_LINKS | KB_NEED_MARKDOWN | KB_NEED_READ));
	CHECK(kb_need_closure(KB_NEED_ALL) == KB_NEED_ALL);

	CHECK(mkdtemp(root) != NULL);
	snprintf(path, sizeof(path), "mkdir -p %s/products/p/items/t", root);
	CHECK(system(path) == 0);
	snprintf(path, sizeof(path), "%s/products/p/items/t/A.md", root);
	write_file(path, "---\nid: A\nuid: 019b8f52-9f3a-7c41-8e2d-5a1b3c4d5e6f\ntype: Task\n"
			   "state: New\nparent: E\nlinks:\n  relates: [B]\n---\nSee [[C]].\n");
	w = kb_walk_open(&a, root, KB_SCOPE_ALL, NULL, &err);
	CHECK(w != NULL && kb_walk_next(w, &e) == 1);
	if (w)
	{
		CHECK(kb_file_analyze(&a, &e, &opts, KB_NEED_ALL, &all) == KB_OK);
		CHECK(kb_file_analyze(&a, &e, &opts, KB_NEED_WIKILINKS, &wiki) == KB_OK);
		CHECK(all.links.n >= 2 && wiki.links.n == all.links.n);
		for (size_t i = 0; i < all.links.n && i < wiki.links.n; i++)
			CHECK(all.links.links[i].type == wiki.links.links[i].type &&
				  all.links.links[i].target.len == wiki.links.links[i].target.len &&
				  memcmp(all.links.links[i].target.ptr, wiki.links.links[i].target.ptr,
						 all.links.links[i].target.len) == 0);
		CHECK(wiki.links.n > 0 && wiki.links.links[wiki.links.n - 1].type == KB_LINK_WIKILINK);
	}
	kb_walk_close(w);
	snprintf(path, sizeof(path), "rm -rf %s", root);
	CHECK(system(path) == 0);
	arena_reset(&ar);
}

int
main(void)
{
	test_utf8();
	test_split();
	test_yaml();
	test_values();
	test_item_fields();
	test_markdown();
	test_out_of_memory();
	test_walk();
	test_walk_names();
	test_walk_restrict();
	test_need_closure();
	test_git_head();
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
