/*
 * stockcheck: the integration tests' oracle. Builds the in-memory model
 * (common/stock_model) from the same input the pipeline gets, and asserts
 * that PostgreSQL's positions and reservations equal it exactly, key by key,
 * with no extra and no missing rows. Also the pipeline steps the tests
 * repeat: ingest a file, drain the consumers.
 */
#ifndef SF_TEST_STOCKCHECK_H
#define SF_TEST_STOCKCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "stock_model.h"

/* Parse a JSON-lines/CSV file the way inv-ingest does (default source
 * "inv-ingest") into *evs (caller frees); every line must be valid. */
size_t sc_load_events(const char *path, sf_event **evs);

/* A model of the set of evs[0..n). */
sf_model *sc_model_of(const sf_event *evs, size_t n);

/* Assert positions and reservations in PostgreSQL equal the model. */
void sc_assert_matches(const sf_model *m);

/* "$SF_BIN/invctl gen" into path. */
void sc_gen(const char *path, unsigned seed, unsigned events, unsigned skus, unsigned locations);

/* inv-ingest --file path; asserts exit 0; returns its stdout+stderr in out. */
void sc_ingest(const char *path, char *out, size_t size);

/* Run `consumers` inv-consumer --drain in parallel until all exit 0. */
void sc_drain(int consumers);

/* A path under the test stack's directory (STACK_DIR) for scratch files. */
const char *sc_tmp(const char *name, char *buf, size_t size);

#endif
