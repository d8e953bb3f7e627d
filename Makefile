# kabsd_fdw: PGXS build.  The version comes from the control file.
EXTENSION = kabsd_fdw
EXTVERSION = $(shell grep default_version $(EXTENSION).control | sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")

MODULE_big = kabsd_fdw
CORE_OBJS = src/core/text.o src/core/yaml.o src/core/values.o \
	src/core/extract.o src/core/markdown.o src/core/worklog.o \
	src/core/walk.o src/core/file.o src/core/githead.o
OBJS = src/kabsd_fdw.o src/options.o src/tables.o src/convert.o \
	src/scan.o src/refresh.o src/refresh_stamps.o src/refresh_worklist.o \
	src/refresh_parallel.o src/refresh_diff.o src/refresh_targets.o \
	src/refresh_write.o src/refresh_record.o src/watch.o $(CORE_OBJS)

# The install script and each update script end with the functions, which
# are written once, in sql/kabsd_fdw_functions.sql, then the watcher's, in
# sql/kabsd_fdw_watch.sql.
UPDATES = $(patsubst sql/updates/%.sql,sql/$(EXTENSION)--%.sql,$(wildcard sql/updates/*.sql))
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql $(UPDATES)

SHLIB_LINK = -lyaml -lcmark
PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -std=gnu99

# pg_regress suites: one per table and per concern
REGRESS = import files items decisions links worklog sections checklist \
	options readonly planner refresh incremental views
REGRESS_OPTS = --load-extension=kabsd_fdw
# TAP tests (several clusters, files changed, processes killed): run by
# "make installcheck" as a user that may run initdb (not root)
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = results output_iso tmp_check regression.diffs regression.out test/unit/test_core test/fuzz/fuzz_core

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track headers: every object depends on them all
$(OBJS): src/kabsd_fdw.h src/core/kb_core.h

sql/$(EXTENSION)--$(EXTVERSION).sql: sql/$(EXTENSION).sql sql/$(EXTENSION)_functions.sql sql/$(EXTENSION)_watch.sql sql/$(EXTENSION)_views.sql $(EXTENSION).control
	cat sql/$(EXTENSION).sql sql/$(EXTENSION)_functions.sql sql/$(EXTENSION)_watch.sql sql/$(EXTENSION)_views.sql > $@

sql/$(EXTENSION)--%.sql: sql/updates/%.sql sql/$(EXTENSION)_functions.sql sql/$(EXTENSION)_watch.sql sql/$(EXTENSION)_views.sql
	cat $< sql/$(EXTENSION)_functions.sql sql/$(EXTENSION)_watch.sql sql/$(EXTENSION)_views.sql > $@

# The parsing core on its own, with a plain cc (no PostgreSQL headers).
CORE_SRCS = $(CORE_OBJS:.o=.c)
test/unit/test_core: test/unit/test_core.c $(CORE_SRCS) src/core/kb_core.h
	$(CC) -std=c99 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Wno-unused-parameter $(CORE_CFLAGS) \
		-Isrc/core -o $@ test/unit/test_core.c $(CORE_SRCS) -lyaml -lcmark

unitcheck: test/unit/test_core
	cd test/unit && ./test_core

.PHONY: unitcheck

# libFuzzer target for the core (clang), with ASan and UBSan.
test/fuzz/fuzz_core: test/fuzz/fuzz_core.c $(CORE_SRCS) src/core/kb_core.h
	clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -Isrc/core -o $@ \
		test/fuzz/fuzz_core.c $(CORE_SRCS) -lyaml -lcmark
