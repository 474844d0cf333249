# chatstore: PostgreSQL extension built with PGXS.
#
#   make            build
#   make install    install into the PostgreSQL found by pg_config (root)
#   make demo       install what is missing, build, install, run a short chat session on a throwaway server
#   make test       the same set-up, then every test suite; ends with "N passed, N failed, N skipped"
#   make stress     make test with the long variants of the crash, fuzz and archiver tests
#   make bench      benchmarks (long; never part of make test)
#   make dist       PGXN release zip of the last commit: dist/chatstore-X.Y.Z.zip (README "Packages")
#   make deb        Debian package postgresql-15-chatstore, built in a temporary copy: dist/*.deb (README "Packages")

EXTENSION    = chatstore
EXTVERSION   = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" chatstore.control)

MODULE_big   = chatstore
OBJS         = src/chatstore.o src/uuidv7.o src/tokens.o src/conversation.o \
               src/append.o src/history.o src/archive.o src/stats.o \
               src/privileges.o src/worker.o src/limits.o \
               src/tags.o src/lifecycle.o src/keys.o src/usage.o src/search.o src/export.o \
               src/rewind.o src/citus.o src/migrate.o

DATA_built   = chatstore--$(EXTVERSION).sql
# upgrade scripts, and the install scripts of released versions (frozen: the upgrade test installs each)
DATA         = $(wildcard src/updates/chatstore--*--*.sql) $(wildcard src/releases/chatstore--*.sql)

# pg_regress suites, in sql/ and expected/
REGRESS      = conversation append history archive privileges privileges_local search_path stats partitions tags lifecycle keys \
               usage search search_pending export rewind migrate distribute
REGRESS_OPTS = --inputdir=. --outputdir=. --load-extension=chatstore

# PostgreSQL 15 from Debian's packages unless told otherwise; test/setup installs it when missing.
# isolation specs, in test/specs and test/expected
ISOLATION    = append-append idempotency-race append-archive archive-archive restore-append purge-restore archive-locks \
               tag-delete keys-race import-race rewind-append search-archive
ISOLATION_OPTS = --inputdir=test --outputdir=output_iso --load-extension=chatstore

PG_CONFIG   ?= $(shell command -v pg_config || echo /usr/lib/postgresql/15/bin/pg_config)
PG_CFLAGS   += -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers $(CHATSTORE_CFLAGS)

EXTRA_CLEAN  = results regression.diffs regression.out output_iso .build-flags

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
else
all install installcheck:
	@echo "$(PG_CONFIG) not found: run 'make demo' or 'make test' (they install PostgreSQL), or set PG_CONFIG"; exit 1
endif

# Every C file includes the shared header: rebuild them all when it changes (PGXS tracks no header dependencies).
$(OBJS): src/chatstore.h

# The install script is built from one source, src/chatstore.sql.
chatstore--$(EXTVERSION).sql: src/chatstore.sql chatstore.control
	cp $< $@

.PHONY: demo test stress bench setup test-citus dist deb

# Install missing system packages (as root, with apt-get), then build and install the extension.
setup:
	@test/setup

demo: setup
	@test/with-server test/demo

test:
	@CHATSTORE_CFLAGS=-DUSE_ASSERT_CHECKING test/setup
	@test/with-server test/run-all

stress:
	@CHATSTORE_CFLAGS=-DUSE_ASSERT_CHECKING test/setup
	@CHATSTORE_STRESS=1 test/with-server test/run-all

# shared_buffers for make bench: 8GB (the 10,000,000-message store of every layout fits), or 40% of RAM on a smaller
# machine; BENCH_SHARED_BUFFERS=2GB make bench overrides it.
BENCH_SHARED_BUFFERS ?= $(shell awk '/MemTotal/ {mb = int($$2 * 0.4 / 1024); print (mb > 8192 ? 8192 : mb) "MB"}' /proc/meminfo)

bench: setup
	@test/with-server -o fsync=on -o shared_buffers=$(BENCH_SHARED_BUFFERS) -o max_wal_size=8GB test/bench/run

# every suite against a Citus coordinator with two workers, chatstore distributed (skipped without Citus)
test-citus: all install
	@PG_CONFIG=$(PG_CONFIG) test/citus/run

# PGXN wants a semantic version (X.Y.Z) in META.json and in the zip's name: default_version 1.1 is 1.1.0 there.
DISTVERSION  = $(shell echo '$(EXTVERSION)' | sed 's/^\([0-9]*\.[0-9]*\)$$/\1.0/')
DIST_DIR    ?= dist

# The PGXN release zip: the committed files of HEAD (git archive) under one top directory chatstore-X.Y.Z/.
# Uncommitted changes are not in it (a warning lists them): commit first, then make dist.
dist:
	@git rev-parse --verify -q HEAD >/dev/null || { echo "make dist: needs a git checkout (it archives the last commit)"; exit 1; }
	@mkdir -p $(DIST_DIR)
	git archive --format zip --prefix chatstore-$(DISTVERSION)/ -o $(DIST_DIR)/chatstore-$(DISTVERSION).zip HEAD
	@if [ -n "$$(git status --porcelain --untracked-files=no)" ]; then \
	  echo "make dist: WARNING: the zip holds the last commit ($$(git rev-parse --short HEAD)); these uncommitted changes are NOT in it:"; \
	  git status --short --untracked-files=no; fi
	@echo "make dist: $(DIST_DIR)/chatstore-$(DISTVERSION).zip"

# The Debian package, built by dpkg-buildpackage with pg_buildext (debian/rules) in a temporary copy of the tree;
# the .deb files land in $(DIST_DIR). debian/make-deb says what it copies.
deb:
	@DEB_DIR=$(DIST_DIR) debian/make-deb
