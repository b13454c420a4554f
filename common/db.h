/*
 * db: PostgreSQL connections, error classification and migrations.
 *
 * The one idea: every libpq failure is classified once, here. A lost or
 * refused connection (or a server shutting down) is SF_EUNAVAIL, which
 * callers retry and never sideline; a data error (SQLSTATE classes 22 and
 * 23) is SF_EINVAL, which may be sidelined; anything else is SF_EINTERNAL.
 * Connections are plain PGconn handles owned by the caller (PQfinish).
 */
#ifndef SF_DB_H
#define SF_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "sf_error.h"

/* Connect to dsn. On failure *out is NULL and the error is SF_EUNAVAIL. */
sf_status sf_db_connect(const char *dsn, PGconn **out, sf_error *err) SF_MUSTCHECK;

/* Keep *conn usable for a long-running service: when it is NULL or its
 * connection is broken, close it and connect again to dsn. *fresh (may be
 * NULL) tells whether a new connection was made (session state such as
 * LISTEN must then be set up again). SF_EUNAVAIL while PostgreSQL is down. */
sf_status sf_db_ensure(PGconn **conn, const char *dsn, bool *fresh, sf_error *err) SF_MUSTCHECK;

/* Classify a failed result (res may be NULL) into err, prefixed by what. */
sf_status sf_db_fail(PGconn *conn, const PGresult *res, const char *what, sf_error *err);

/* Run one or more statements that return no rows. */
sf_status sf_db_exec(PGconn *conn, const char *sql, sf_error *err) SF_MUSTCHECK;

/* Run a parameterised query expecting PGRES_TUPLES_OK or COMMAND_OK;
 * *out (caller PQclear) is set on success. */
sf_status sf_db_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
                      PGresult **out, sf_error *err) SF_MUSTCHECK;

/* A PostgreSQL array literal built element by element, for one array
 * parameter instead of one statement per row: {"a","b\"c",NULL}. Every
 * element is quoted (\ and " escaped); NULL adds a NULL element. A failed
 * allocation is sticky: the adds become no-ops and sf_db_array_end says
 * so, so a builder is checked once, at the end. */
typedef struct sf_db_array {
    char *buf;
    size_t len, cap, n;
    bool failed;
} sf_db_array;

void sf_db_array_init(sf_db_array *a);
void sf_db_array_add(sf_db_array *a, const char *s); /* s NULL: a NULL element */
void sf_db_array_add_int(sf_db_array *a, long long v);
/* The closed literal (owned by a), or NULL when an allocation failed. */
const char *sf_db_array_end(sf_db_array *a);
void sf_db_array_free(sf_db_array *a);

/* Apply every schemas/sql/NNN_*.sql file of dir not yet recorded in table
 * schema_migrations, in name order, each in its own transaction, under an
 * advisory lock so concurrent setups do not race. *applied counts the new
 * ones. A file whose checksum changed after it was applied is an error. */
sf_status sf_db_migrate(PGconn *conn, const char *dir, int *applied, sf_error *err) SF_MUSTCHECK;

#endif
