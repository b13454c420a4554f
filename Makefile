# stockflow build. Reads top to bottom: variables, the library, a rule per
# binary, then test, test-asan, fuzz, bench, demo, clean.

CC        ?= cc
PKGS      := libnats avro-c libpq libzmq jansson inih libcrypto libcurl libevent
SANITIZER ?=
OPT       ?= -O2

WARN      := -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wwrite-strings -Werror
CFLAGS    := -std=c11 -D_DEFAULT_SOURCE $(OPT) -g -MMD -MP $(WARN) -Icommon \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(EXTRA_CFLAGS)
LDLIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
TEST_LIBS := $(shell pkg-config --libs criterion 2>/dev/null)

ifneq ($(SANITIZER),)
  CFLAGS  += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=$(SANITIZER)
  BUILD   ?= build/san-$(subst $(comma),-,$(SANITIZER))-$(notdir $(CC))
  BIN     ?= $(BUILD)/bin
else
  BUILD   ?= build/default
  BIN     ?= bin
endif
comma := ,

COMMON_SRC := $(sort $(wildcard common/*.c))
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
LIB        := $(BUILD)/libstockflow.a

# Parsers and mappers of inv-supplier, linked into its tests and fuzz targets.
SUPPLIER_SRC := $(filter-out suppliers/main.c,$(sort $(wildcard suppliers/*.c)))
SUPPLIER_LIB := $(BUILD)/libsuppliers.a

# service folder -> binary name
SERVICES   := ingest:inv-ingest consumers:inv-consumer tools:invctl \
              $(if $(wildcard suppliers/main.c),suppliers:inv-supplier) \
              $(if $(wildcard reconciler/main.c),reconciler:inv-reconciler) \
              $(if $(wildcard api/main.c),api:inv-api)
BINARIES   := $(foreach s,$(SERVICES),$(BIN)/$(word 2,$(subst :, ,$(s))))

UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
INTEG_SRC  := $(sort $(wildcard tests/integration/test_*.c))
FIX_SRC    := $(filter-out tests/integration/test_%,$(wildcard tests/integration/*.c))
FIXTURE    := $(FIX_SRC:%.c=$(BUILD)/%.o)
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN   := $(FUZZ_SRC:%.c=$(BUILD)/%)
FUZZ_SAN   := fuzzer-no-link,address,undefined
FUZZ_BUILD := build/fuzz
BENCH_SRC  := $(sort $(wildcard bench/*.c))
BENCH_BIN  := $(BENCH_SRC:%.c=$(BUILD)/%)
UNIT_BIN   := $(UNIT_SRC:%.c=$(BUILD)/%)
INTEG_BIN  := $(INTEG_SRC:%.c=$(BUILD)/%)

.PHONY: all deps test test-unit test-integration test-asan test-fault fuzz fuzz-build bench demo \
        stack-up stack-down format format-check clean tests-build bench-build test-run-only
.DEFAULT_GOAL := all
.SECONDARY:

all: $(BINARIES)

deps:
	@scripts/deps.sh

# --- the library --------------------------------------------------------------
$(BUILD)/%.o: %.c $(wildcard common/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SUPPLIER_LIB): $(SUPPLIER_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# --- one rule per binary: every .c of the service folder ---------------------
define service_rule
$(BIN)/$(2): $(patsubst %.c,$(BUILD)/%.o,$(wildcard $(1)/*.c)) $(LIB)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $$@ $$^ $(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rule,$(word 1,$(subst :, ,$(s))),$(word 2,$(subst :, ,$(s))))))

# inv-api's dashboard page, embedded: api/dashboard.html -> a C array.
$(BUILD)/gen/dashboard_html.h: api/dashboard.html
	@mkdir -p $(dir $@)
	cd api && xxd -i dashboard.html | sed 's/^unsigned/static const unsigned/' > $(abspath $@).tmp
	mv $@.tmp $@
$(BUILD)/api/dashboard.o: $(BUILD)/gen/dashboard_html.h
$(BUILD)/api/dashboard.o: CFLAGS += -I$(BUILD)/gen

# --- tests --------------------------------------------------------------------
$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(SUPPLIER_LIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

$(BUILD)/tests/integration/%: $(BUILD)/tests/integration/%.o $(FIXTURE) $(SUPPLIER_LIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

# libFuzzer targets: built by `make fuzz-build` with clang into build/fuzz.
$(BUILD)/tests/fuzz/%: $(BUILD)/tests/fuzz/%.o $(SUPPLIER_LIB) $(LIB)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

tests-build: $(BINARIES) $(UNIT_BIN) $(INTEG_BIN)

bench-build: $(BINARIES) $(BENCH_BIN)

# make test: install what is missing, build, start a private stack, run all;
# then every fuzz target for 10 s.
test: deps
	@$(MAKE) --no-print-directory tests-build
	@BUILD=$(BUILD) BIN=$(BIN) scripts/run-tests.sh all
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_BUILD=$(FUZZ_BUILD) scripts/fuzz.sh 10

test-unit: tests-build
	@BUILD=$(BUILD) BIN=$(BIN) scripts/run-tests.sh unit

test-integration: tests-build
	@BUILD=$(BUILD) BIN=$(BIN) scripts/run-tests.sh integration

test-asan: deps
	@$(MAKE) --no-print-directory SANITIZER=address,undefined OPT=-O1 tests-build
	@$(MAKE) --no-print-directory SANITIZER=address,undefined OPT=-O1 test-run-only

test-run-only:
	@BUILD=$(BUILD) BIN=$(BIN) scripts/run-tests.sh all

# make test-fault: the fault suite (tests/fault/run.sh): a generated workload
# through the whole pipeline on a private stack while processes and servers
# are killed and paused at seeded moments, then a Jepsen-style check.
# SEED=N repeats a run; EVENTS=N changes its size (default 1000000).
FAULT_SRC  := $(sort $(wildcard tests/fault/*.c))
FAULT_BIN  := $(FAULT_SRC:%.c=$(BUILD)/%)

$(BUILD)/tests/fault/%: $(BUILD)/tests/fault/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: fault-build
fault-build: $(BINARIES) $(FAULT_BIN)

test-fault: deps
	@$(MAKE) --no-print-directory fault-build
	@BUILD=$(BUILD) BIN=$(BIN) tests/fault/run.sh

# make fuzz: every target for FUZZ_SECONDS (default 300) each; make test runs
# them for 10 s each. Corpora start from tests/fuzz/corpus/<target>/.
fuzz-build:
	@$(MAKE) --no-print-directory CC=clang SANITIZER=$(FUZZ_SAN) BUILD=$(FUZZ_BUILD) \
	    OPT=-O1 $(FUZZ_SRC:%.c=$(FUZZ_BUILD)/%)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_BUILD=$(FUZZ_BUILD) scripts/fuzz.sh $${FUZZ_SECONDS:-300}

# make bench: the pipeline against its raw limits, then the channels'
# convergence bound (bench/README.md).
bench: deps
	@$(MAKE) --no-print-directory bench-build
	@BUILD=$(BUILD) BIN=$(BIN) bench/pipeline.sh
	@BIN=$(BIN) bench/convergence.sh

demo: deps all
	@BIN=$(BIN) scripts/demo.sh

stack-up:
	@scripts/stack.sh up

stack-down:
	@scripts/stack.sh down

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
