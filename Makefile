# Orbit build. `make run` and `make test` install what is missing first.
#   make            build bin/orbitd, bin/orbitctl (build/)
#   make SANITIZE=address,undefined   sanitizer build into build-san/
#   make unit       run C unit tests;  make test   everything CI runs
#   make integration-san   the protocol suites against the sanitizer orbitd
CC       ?= cc
PYTHON   := /usr/bin/python3
SANITIZE ?=
PKGS     := libuv sqlite3 openssl jansson libzstd

ifeq ($(SANITIZE),)
  BUILD := build
  OPT   := -O2
  SANFLAGS :=
else
  BUILD := build-san
  OPT   := -O1 -fno-omit-frame-pointer
  SANFLAGS := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
endif

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -DSQLITE_ENABLE_PREUPDATE_HOOK -g $(OPT) -Wall -Wextra -Werror \
               -Wno-unused-parameter -Wno-format-truncation -Wshadow -Wstrict-prototypes -Wmissing-prototypes -pthread \
               $(foreach d,$(wildcard src/*),-I$(d)) $(SANFLAGS)
PKG_CFLAGS  = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS      = $(PKG_LIBS) -lraft -lcrypto -lssl -lm -pthread

LIB_SRC  := $(filter-out src/main/%,$(wildcard src/*/*.c))
LIB_OBJ  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC))
LIB      := $(BUILD)/liborbit.a
BINS     := $(BUILD)/orbitd $(BUILD)/orbitctl
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all bin build deps run test unit unit-san valgrind integration integration-san fuzz clean format format-check bench

all: $(BINS) bin

bin: $(BINS)
	@mkdir -p bin
	@if [ "$(BUILD)" = build ]; then ln -sf ../build/orbitd bin/orbitd; ln -sf ../build/orbitctl bin/orbitctl; fi

# `make build` builds too (build/ is also the output directory, which made
# it a silent no-op)
build: bin

deps:
	@scripts/deps.sh

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/%: src/main/%.c $(LIB)
	@echo "  LD $@"
	@$(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) $< $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(LIB) tests/unit/unit.h
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	@$(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) -Itests/unit $< $(LIB) $(LDLIBS) -lcmocka -o $@

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run.sh

unit: $(UNIT_BIN)
	@scripts/run-unit.sh $(UNIT_BIN)

unit-san:
	@$(MAKE) --no-print-directory SANITIZE=address,undefined unit

valgrind: $(UNIT_BIN)
	@scripts/run-unit.sh --valgrind $(UNIT_BIN)

integration: all
	@scripts/run-integration.sh

# The protocol-facing suites (malformed input, the extended protocol,
# startup and authentication, simple queries, COPY) against the ASan+UBSan
# orbitd: a sanitizer report in any server's log fails the test
# (harness.py), LeakSanitizer included, since orbitd returns from main.
SAN_SUITES := test_fuzz.py test_extended.py test_startup_auth.py test_simple_query.py test_copy.py
integration-san:
	@$(MAKE) --no-print-directory SANITIZE=address,undefined all
	@ORBITD=$(CURDIR)/build-san/orbitd $(PYTHON) -m pytest -q -p no:cacheprovider \
		$(addprefix tests/integration/,$(SAN_SUITES))

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory unit-san
	@$(MAKE) --no-print-directory valgrind
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory integration-san

fuzz:
	@scripts/fuzz.sh

format:
	clang-format -i src/*/*.c src/*/*.h tests/unit/*.c tests/unit/*.h

format-check:
	clang-format --dry-run --Werror src/*/*.c src/*/*.h tests/unit/*.c tests/unit/*.h

clean:
	rm -rf build build-san bin
