# stockflow build. Reads top to bottom: variables, the library, a rule per
# binary, then test, test-asan, fuzz, bench, demo, clean.

CC        ?= cc
PKGS      := libnats avro-c libpq libzmq jansson inih libcrypto libssl libcurl libevent \
             libevent_openssl
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

# Modules of inv-ingest (its main.c aside), linked into its tests and fuzz targets.
INGEST_SRC := $(filter-out ingest/main.c,$(sort $(wildcard ingest/*.c)))
INGEST_LIB := $(BUILD)/libingest.a

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

.PHONY: all deps test test-unit test-integration test-asan test-fault fuzz fuzz-build bench bench-scaling demo \
        stack-up stack-down format format-check clean tests-build bench-build test-run-only \
        bench-api bench-reserve
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

$(INGEST_LIB): $(INGEST_SRC:%.c=$(BUILD)/%.o)
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
$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(INGEST_LIB) $(SUPPLIER_LIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

$(BUILD)/tests/integration/%: $(BUILD)/tests/integration/%.o $(FIXTURE) $(SUPPLIER_LIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

# libFuzzer targets: built by `make fuzz-build` with clang into build/fuzz.
$(BUILD)/tests/fuzz/%: $(BUILD)/tests/fuzz/%.o $(INGEST_LIB) $(SUPPLIER_LIB) $(LIB)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $(filter %.o,$^) $(filter-out %.o,$^) $(LDLIBS)

# inv-api's request parsing is not in a library: link its objects directly
# (before the libraries they use).
$(BUILD)/tests/fuzz/fuzz_api_request: $(BUILD)/api/request.o
$(BUILD)/tests/fuzz/fuzz_reserve_body: $(BUILD)/api/reserve.o

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
# are killed and paused at seeded moments, then a Jepsen-style check; first
# on one nats-server (EVENTS, default 1000000, within FAULT_BUDGET=720 s),
# then on a 3-node cluster whose INV_EVENTS leader is killed mid-run
# (CLUSTER_EVENTS=300000 within CLUSTER_BUDGET=420 s). One SEED (printed;
# SEED=N repeats both runs). .ci/run runs it.
FAULT_SRC  := $(sort $(wildcard tests/fault/*.c))
FAULT_BIN  := $(FAULT_SRC:%.c=$(BUILD)/%)

$(BUILD)/tests/fault/%: $(BUILD)/tests/fault/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: fault-build
fault-build: $(BINARIES) $(FAULT_BIN)

test-fault: deps
	@$(MAKE) --no-print-directory fault-build
	@seed=$${SEED:-$$(( $$(od -An -N4 -tu4 /dev/urandom) % 1000000000 ))}; \
	echo "make test-fault: SEED=$$seed (one nats-server, then the 3-node cluster)"; \
	BUILD=$(BUILD) BIN=$(BIN) SEED=$$seed FAULT_BUDGET=$${FAULT_BUDGET:-720} tests/fault/run.sh && \
	BUILD=$(BUILD) BIN=$(BIN) SEED=$$seed CLUSTER=1 EVENTS=$${CLUSTER_EVENTS:-300000} \
	    FAULT_BUDGET=$${CLUSTER_BUDGET:-420} tests/fault/run.sh

# make test-valgrind: inv-ingest, inv-consumer, inv-reconciler and inv-api
# under valgrind memcheck through EVENTS events on a private stack
# (tests/valgrind/run.sh): default 10000, the CI run; EVENTS=100000 is the
# issue's 100k-event run.
.PHONY: test-valgrind
test-valgrind: deps
	@$(MAKE) --no-print-directory fault-build
	@BUILD=$(BUILD) BIN=$(BIN) tests/valgrind/run.sh

# make fuzz: every target for FUZZ_SECONDS (default 60) each; make test runs
# them for 10 s each. Corpora start from tests/fuzz/corpus/<target>/.
fuzz-build:
	@$(MAKE) --no-print-directory CC=clang SANITIZER=$(FUZZ_SAN) BUILD=$(FUZZ_BUILD) \
	    OPT=-O1 $(FUZZ_SRC:%.c=$(FUZZ_BUILD)/%)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_BUILD=$(FUZZ_BUILD) scripts/fuzz.sh $${FUZZ_SECONDS:-60}

# make bench: the pipeline against its raw limits, then the channels'
# convergence bound, then the stock API against a static reply
# (bench/README.md).
bench: deps
	@$(MAKE) --no-print-directory bench-build
	@BUILD=$(BUILD) BIN=$(BIN) bench/pipeline.sh
	@BIN=$(BIN) bench/convergence.sh
	@BUILD=$(BUILD) BIN=$(BIN) bench/api.sh
	@BUILD=$(BUILD) BIN=$(BIN) bench/reserve.sh

bench-api: deps
	@$(MAKE) --no-print-directory bench-build
	@BUILD=$(BUILD) BIN=$(BIN) bench/api.sh

# make bench-reserve: check-and-reserve alone (bench/README.md "Check-and-reserve").
bench-reserve: deps
	@$(MAKE) --no-print-directory bench-build
	@BUILD=$(BUILD) BIN=$(BIN) bench/reserve.sh

# make bench-scaling: ingest and apply rates with 1, 2 and 4 consumers on
# streams R1 and R3 (bench/scaling.sh; the table in docs/operations.md).
bench-scaling: deps all
	@BIN=$(BIN) bench/scaling.sh

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
