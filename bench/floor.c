/*
 * floor.c
 *		The physical floors the benchmark compares kabsd_fdw with: a plain C
 *		program that walks the tree and reads every *.md file, and, with
 *		--yaml, also runs libyaml's event parser over each frontmatter.
 *
 *		floor [--yaml] ROOT   prints: files bytes seconds
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

static long files;
static long long bytes;
static int with_yaml;
static char *buf;
static size_t bufcap;

static void
parse_frontmatter(const char *s, size_t len)
{
	const char *end;
	const char *close;
	yaml_parser_t p;
	yaml_event_t ev;

	if (len < 4 || memcmp(s, "---\n", 4) != 0)
		return;
	close = memmem(s + 4, len - 4, "\n---\n", 5);
	if (close == NULL)
		return;
	end = close + 1;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *) s + 4, end - (s + 4));
	for (;;)
	{
		if (!yaml_parser_parse(&p, &ev))
			break;
		if (ev.type == YAML_STREAM_END_EVENT)
		{
			yaml_event_delete(&ev);
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
}

static void
walk(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	char		path[4096];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
	{
		struct stat st;
		size_t		n = strlen(de->d_name);

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode))
			walk(path);
		else if (S_ISREG(st.st_mode) && n > 3 && strcmp(de->d_name + n - 3, ".md") == 0)
		{
			int			fd = open(path, O_RDONLY);
			ssize_t		r;
			size_t		got = 0;

			if (fd < 0)
				continue;
			if ((size_t) st.st_size + 1 > bufcap)
			{
				bufcap = st.st_size + 1;
				buf = realloc(buf, bufcap);
			}
			while ((r = read(fd, buf + got, bufcap - got)) > 0)
				got += r;
			close(fd);
			files++;
			bytes += got;
			if (with_yaml)
				parse_frontmatter(buf, got);
		}
	}
	closedir(d);
}

int
main(int argc, char **argv)
{
	struct timespec a, b;
	const char *root = argv[argc - 1];

	with_yaml = argc > 2 && strcmp(argv[1], "--yaml") == 0;
	clock_gettime(CLOCK_MONOTONIC, &a);
	walk(root);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%ld %lld %.3f\n", files, bytes,
		   (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	return 0;
}
