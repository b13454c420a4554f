/*
 * db: libpq helpers. sf_db_fail is the single place where a failure is
 * classified as unavailable / invalid / internal; keep it that way so the
 * consumer's "never sideline an infrastructure error" rule holds.
 */
#include "db.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

sf_status sf_db_connect(const char *dsn, PGconn **out, sf_error *err)
{
    *out = NULL;
    PGconn *conn = PQconnectdb(dsn);
    if (!conn)
        return SF_ERR(err, SF_ENOMEM, "postgres: out of memory connecting");
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        PQfinish(conn);
        return SF_ERR(err, SF_EUNAVAIL, "postgres (%s): %s", dsn, msg);
    }
    *out = conn;
    return SF_OK;
}

static sf_status db__classify(PGconn *conn, const PGresult *res)
{
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        return SF_EUNAVAIL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state)
        return SF_EUNAVAIL; /* no server answer at all: treat as a lost connection */
    if (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3) || !strncmp(state, "53", 2))
        return SF_EUNAVAIL; /* connection, shutdown, insufficient resources */
    if (!strncmp(state, "22", 2) || !strncmp(state, "23", 2))
        return SF_EINVAL;
    if (!strcmp(state, "40001") || !strcmp(state, "40P01"))
        return SF_EUNAVAIL; /* serialization failure / deadlock: retry */
    return SF_EINTERNAL;
}

sf_status sf_db_fail(PGconn *conn, const PGresult *res, const char *what, sf_error *err)
{
    sf_status st = db__classify(conn, res);
    const char *msg = res ? PQresultErrorMessage(res) : "";
    if (!msg || !*msg)
        msg = conn ? PQerrorMessage(conn) : "no connection";
    char line[300];
    snprintf(line, sizeof line, "%s", msg);
    line[strcspn(line, "\n")] = '\0';
    return SF_ERR(err, st, "postgres: %s: %s", what, line);
}

sf_status sf_db_ensure(PGconn **conn, const char *dsn, bool *fresh, sf_error *err)
{
    if (fresh)
        *fresh = false;
    if (*conn && PQstatus(*conn) == CONNECTION_OK)
        return SF_OK;
    if (*conn)
        PQfinish(*conn);
    *conn = NULL;
    sf_status st = sf_db_connect(dsn, conn, err);
    if (!st && fresh)
        *fresh = true;
    return st;
}

/* Keep res when it succeeded; otherwise classify, free it and fail. */
static sf_status db__check(PGconn *conn, PGresult *res, const char *sql, sf_error *err)
{
    ExecStatusType rs = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK)
        return SF_OK;
    char what[80];
    snprintf(what, sizeof what, "%.60s", sql);
    sf_status st = sf_db_fail(conn, res, what, err);
    PQclear(res);
    return st;
}

sf_status sf_db_exec(PGconn *conn, const char *sql, sf_error *err)
{
    PGresult *res = PQexec(conn, sql);
    sf_status st = db__check(conn, res, sql, err);
    if (!st)
        PQclear(res);
    return st;
}

sf_status sf_db_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
                      PGresult **out, sf_error *err)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    sf_status st = db__check(conn, res, sql, err);
    *out = st ? NULL : res;
    return st;
}

/* Read a whole (small) file; migrations are bounded to 1 MiB. */
static sf_status db__read_file(const char *path, char **out, sf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return SF_ERR(err, SF_EIO, "%s: cannot open", path);
    char *buf = malloc(1 << 20);
    if (!buf) {
        fclose(f);
        return SF_ERR(err, SF_ENOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    int too_big = !feof(f);
    fclose(f);
    if (too_big) {
        free(buf);
        return SF_ERR(err, SF_EINVAL, "%s: larger than 1 MiB", path);
    }
    buf[n] = '\0';
    *out = buf;
    return SF_OK;
}

static void db__sha256_hex(const char *data, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(data, strlen(data), md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int db__cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Apply one migration file unless recorded; sets *did when applied. */
static sf_status db__migrate_one(PGconn *conn, const char *dir, const char *name, int *did,
                                 sf_error *err)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *sql = NULL;
    sf_status st = db__read_file(path, &sql, err);
    if (st)
        return st;
    char sum[65];
    db__sha256_hex(sql, sum);

    PGresult *res = NULL;
    const char *params[2] = {name, sum};
    st = sf_db_query(conn, "SELECT checksum FROM schema_migrations WHERE version = $1", 1, params,
                     &res, err);
    if (st)
        goto out;
    if (PQntuples(res) == 1) {
        if (strcmp(PQgetvalue(res, 0, 0), sum) != 0)
            st = SF_ERR(err, SF_EINVAL,
                        "%s: changed after it was applied (checksum differs); add a new "
                        "migration instead",
                        path);
        goto out;
    }
    PQclear(res);
    res = NULL;
    if ((st = sf_db_exec(conn, "BEGIN", err)))
        goto out;
    if ((st = sf_db_exec(conn, sql, err))) {
        sf_error_prefix(err, "%s: ", path);
        PQclear(PQexec(conn, "ROLLBACK"));
        goto out;
    }
    st = sf_db_query(conn, "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)", 2,
                     params, &res, err);
    if (st) {
        PQclear(PQexec(conn, "ROLLBACK"));
        goto out;
    }
    if ((st = sf_db_exec(conn, "COMMIT", err)))
        goto out;
    *did = 1;
out:
    PQclear(res);
    free(sql);
    return st;
}

sf_status sf_db_migrate(PGconn *conn, const char *dir, int *applied, sf_error *err)
{
    *applied = 0;
    sf_status st = sf_db_exec(conn,
                              "SET client_min_messages = warning;"
                              "CREATE TABLE IF NOT EXISTS schema_migrations ("
                              " version text PRIMARY KEY, checksum text NOT NULL,"
                              " applied_at timestamptz NOT NULL DEFAULT now());"
                              "SELECT pg_advisory_lock(7478237)",
                              err);
    if (st)
        return st;

    DIR *d = opendir(dir);
    if (!d) {
        st = SF_ERR(err, SF_EIO, "%s: cannot open migrations directory", dir);
        goto unlock;
    }
    enum { MAX_FILES = 1000 };
    char *names[MAX_FILES];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".sql") != 0)
            continue;
        if (n == MAX_FILES) {
            st = SF_ERR(err, SF_EINVAL, "%s: more than %d migrations", dir, MAX_FILES);
            break;
        }
        if (!(names[n] = strdup(de->d_name))) {
            st = SF_ERR(err, SF_ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], db__cmp_names);
    for (size_t i = 0; i < n && !st; i++) {
        int did = 0;
        st = db__migrate_one(conn, dir, names[i], &did, err);
        *applied += did;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
unlock:
    PQclear(PQexec(conn, "SELECT pg_advisory_unlock(7478237)"));
    return st;
}

/* ------------------------------------------------------------ array literals --- */

static bool db__array_room(sf_db_array *a, size_t more)
{
    if (a->failed)
        return false;
    if (more > SIZE_MAX / 4 - a->len) {
        a->failed = true;
        return false;
    }
    size_t need = a->len + more + 1;
    if (need <= a->cap)
        return true;
    size_t ncap = a->cap ? a->cap : 256;
    while (ncap < need)
        ncap *= 2;
    char *nb = realloc(a->buf, ncap);
    if (!nb) {
        a->failed = true;
        return false;
    }
    a->buf = nb;
    a->cap = ncap;
    return true;
}

void sf_db_array_init(sf_db_array *a)
{
    memset(a, 0, sizeof *a);
    if (db__array_room(a, 1))
        a->buf[a->len++] = '{';
}

void sf_db_array_add(sf_db_array *a, const char *s)
{
    /* Worst case: every byte escaped, two quotes, a comma. */
    size_t slen = s ? strlen(s) : 4;
    if (!db__array_room(a, 2 * slen + 3))
        return;
    char *p = a->buf + a->len;
    if (a->n++ > 0)
        *p++ = ',';
    if (!s) {
        memcpy(p, "NULL", 4);
        p += 4;
    } else {
        *p++ = '"';
        for (; *s; s++) {
            if (*s == '"' || *s == '\\')
                *p++ = '\\';
            *p++ = *s;
        }
        *p++ = '"';
    }
    a->len = (size_t)(p - a->buf);
}

void sf_db_array_add_int(sf_db_array *a, long long v)
{
    char num[24];
    snprintf(num, sizeof num, "%lld", v);
    sf_db_array_add(a, num);
}

const char *sf_db_array_end(sf_db_array *a)
{
    if (!db__array_room(a, 1))
        return NULL;
    a->buf[a->len++] = '}';
    a->buf[a->len] = '\0';
    return a->buf;
}

void sf_db_array_free(sf_db_array *a)
{
    free(a->buf);
    memset(a, 0, sizeof *a);
}
