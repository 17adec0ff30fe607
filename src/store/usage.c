/* SPDX-License-Identifier: MIT */
/* Per-user usage: one row per event (a job recorded, a result stored, CPU spent on an item that
 * failed, a job deleted) in table `usage`, and a running total per user in `usage_total` that a
 * trigger keeps, so /metrics reads one row per user however long the history. A row's `stored`
 * is the change in the bytes that user holds (inputs and results; negative when a job goes), so
 * the bytes stored at any moment are a running sum and the byte-seconds over a window are exact:
 * each row contributes stored * (until - max(t, since)). Bytes stored are attributed per user:
 * two users who upload the same image each hold it, although the blob store keeps one copy. */
#include <stdio.h>
#include <string.h>

#include "dip/image.h"
#include "store/usage.h"

static const char usage_schema[] =
    "CREATE TABLE usage ("
    " t REAL NOT NULL, owner TEXT NOT NULL, jobs INTEGER NOT NULL DEFAULT 0,"
    " items INTEGER NOT NULL DEFAULT 0, bytes_in INTEGER NOT NULL DEFAULT 0,"
    " bytes_out INTEGER NOT NULL DEFAULT 0, cpu_s REAL NOT NULL DEFAULT 0,"
    " stored INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX usage_t ON usage(t);"
    "CREATE TABLE usage_total ("
    " owner TEXT PRIMARY KEY, jobs INTEGER NOT NULL DEFAULT 0, items INTEGER NOT NULL DEFAULT 0,"
    " bytes_in INTEGER NOT NULL DEFAULT 0, bytes_out INTEGER NOT NULL DEFAULT 0,"
    " cpu_s REAL NOT NULL DEFAULT 0, stored INTEGER NOT NULL DEFAULT 0);"
    "CREATE TRIGGER usage_sum AFTER INSERT ON usage BEGIN"
    " INSERT INTO usage_total (owner, jobs, items, bytes_in, bytes_out, cpu_s, stored)"
    " VALUES (NEW.owner, NEW.jobs, NEW.items, NEW.bytes_in, NEW.bytes_out, NEW.cpu_s, NEW.stored)"
    " ON CONFLICT(owner) DO UPDATE SET jobs = jobs + excluded.jobs,"
    " items = items + excluded.items, bytes_in = bytes_in + excluded.bytes_in,"
    " bytes_out = bytes_out + excluded.bytes_out, cpu_s = cpu_s + excluded.cpu_s,"
    " stored = stored + excluded.stored; END;"
    /* A store from before usage was kept: what its jobs hold now is counted when they were
     * created (their CPU time was never measured). */
    "INSERT INTO usage (t, owner, jobs, items, bytes_in, bytes_out, stored)"
    " SELECT j.created, j.owner, 1,"
    " (SELECT COUNT(*) FROM results r WHERE r.job = j.id),"
    " (SELECT COALESCE(SUM(bytes_in), 0) FROM items i WHERE i.job = j.id),"
    " (SELECT COALESCE(SUM(bytes), 0) FROM results r WHERE r.job = j.id),"
    " (SELECT COALESCE(SUM(bytes_in), 0) FROM items i WHERE i.job = j.id)"
    " + (SELECT COALESCE(SUM(bytes), 0) FROM results r WHERE r.job = j.id)"
    " FROM jobs j;";

int dip__usage_schema(sqlite3 *db)
{
    sqlite3_stmt *s = NULL;
    int src, have = 0;

    /* Looked at and made in one write transaction: two processes opening an old store at once
     * (dip serve and dip usage) cannot both create the tables, and a crash between the tables and
     * the seed leaves neither. */
    src = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return src;
    src = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE name = 'usage_total'", -1, &s,
                             NULL);
    if (src == SQLITE_OK) {
        src = sqlite3_step(s);
        have = src == SQLITE_ROW;
        if (src == SQLITE_ROW || src == SQLITE_DONE)
            src = SQLITE_OK;
    }
    sqlite3_finalize(s);
    if (src == SQLITE_OK && !have)
        src = sqlite3_exec(db, usage_schema, NULL, NULL, NULL);
    if (src == SQLITE_OK)
        return sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return src;
}

int dip__usage_add(sqlite3 *db, const char *owner, double t, const struct dip_store_usage *d)
{
    sqlite3_stmt *s = NULL;
    int src;

    src = sqlite3_prepare_v2(db,
                             "INSERT INTO usage (t, owner, jobs, items, bytes_in, bytes_out,"
                             " cpu_s, stored) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             -1, &s, NULL);
    if (src != SQLITE_OK)
        return src;
    sqlite3_bind_double(s, 1, t);
    sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)d->jobs);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)d->items);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)d->bytes_in);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)d->bytes_out);
    sqlite3_bind_double(s, 7, d->cpu_s);
    sqlite3_bind_int64(s, 8, d->stored_delta);
    src = sqlite3_step(s);
    sqlite3_finalize(s);
    return src == SQLITE_DONE ? SQLITE_OK : src;
}

int dip__usage_job_created(sqlite3 *db, const struct dip_store_job *job)
{
    struct dip_store_usage d = {.jobs = 1, .cpu_s = job->cpu_s};

    for (size_t i = 0; i < job->n_items; i++)
        d.bytes_in += job->items[i].bytes_in;
    d.stored_delta = (int64_t)d.bytes_in;
    return dip__usage_add(db, job->owner, job->created, &d);
}

int dip__usage_result(sqlite3 *db, const char *job, const struct dip_store_item *r, double t)
{
    sqlite3_stmt *s = NULL;
    int src;

    src = sqlite3_prepare_v2(db,
                             "INSERT INTO usage (t, owner, items, bytes_out, cpu_s, stored)"
                             " SELECT ?, owner, 1, ?, ?, ? FROM jobs WHERE id = ?",
                             -1, &s, NULL);
    if (src != SQLITE_OK)
        return src;
    sqlite3_bind_double(s, 1, t);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)r->bytes_out);
    sqlite3_bind_double(s, 3, r->cpu_s);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)r->bytes_out);
    sqlite3_bind_text(s, 5, job, -1, SQLITE_STATIC);
    src = sqlite3_step(s);
    sqlite3_finalize(s);
    return src == SQLITE_DONE ? SQLITE_OK : src;
}

int dip__usage_job_deleted(sqlite3 *db, const char *job, double t)
{
    sqlite3_stmt *s = NULL;
    int src;

    src = sqlite3_prepare_v2(
        db,
        "INSERT INTO usage (t, owner, stored) SELECT ?1, owner,"
        " -((SELECT COALESCE(SUM(bytes_in), 0) FROM items WHERE job = ?2)"
        " + (SELECT COALESCE(SUM(bytes), 0) FROM results WHERE job = ?2)) FROM jobs WHERE id = ?2",
        -1, &s, NULL);
    if (src != SQLITE_OK)
        return src;
    sqlite3_bind_double(s, 1, t);
    sqlite3_bind_text(s, 2, job, -1, SQLITE_STATIC);
    src = sqlite3_step(s);
    sqlite3_finalize(s);
    return src == SQLITE_DONE ? SQLITE_OK : src;
}

int dip__usage_query(sqlite3 *db, const char *owner, double since, double until,
                     struct dip_store_usage **out, size_t *n)
{
    /* All time (since < 0): the totals table, one row per user, whatever the history's length.
     * Otherwise the window's figures from the rows in it; the byte-seconds from every row before
     * `until`; the bytes stored now from the totals. Biggest CPU users first. */
    static const char sql[] = "SELECT u.owner,"
                              " SUM(CASE WHEN u.t >= ?1 THEN u.jobs ELSE 0 END),"
                              " SUM(CASE WHEN u.t >= ?1 THEN u.items ELSE 0 END),"
                              " SUM(CASE WHEN u.t >= ?1 THEN u.bytes_in ELSE 0 END),"
                              " SUM(CASE WHEN u.t >= ?1 THEN u.bytes_out ELSE 0 END),"
                              " SUM(CASE WHEN u.t >= ?1 THEN u.cpu_s ELSE 0 END),"
                              " SUM(u.stored * (?2 - MAX(u.t, ?1))),"
                              " (SELECT stored FROM usage_total t WHERE t.owner = u.owner)"
                              " FROM usage u WHERE u.t < ?2 AND (?3 IS NULL OR u.owner = ?3)"
                              " GROUP BY u.owner ORDER BY 6 DESC, u.owner";
    static const char totals[] =
        "SELECT owner, jobs, items, bytes_in, bytes_out, cpu_s, 0, stored FROM usage_total"
        " WHERE (?3 IS NULL OR owner = ?3) ORDER BY cpu_s DESC, owner";
    sqlite3_stmt *s = NULL;
    struct dip_store_usage *list = NULL;
    size_t cap = 0, k = 0;
    int src;

    *out = NULL;
    *n = 0;
    src = sqlite3_prepare_v2(db, since < 0 ? totals : sql, -1, &s, NULL);
    if (src != SQLITE_OK)
        return src;
    if (since >= 0) {
        sqlite3_bind_double(s, 1, since);
        sqlite3_bind_double(s, 2, until);
    }
    if (owner != NULL)
        sqlite3_bind_text(s, 3, owner, -1, SQLITE_STATIC);
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        struct dip_store_usage *u;
        sqlite3_int64 stored;
        if (k == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct dip_store_usage *g = dip_realloc(list, nc * sizeof(*list));
            if (g == NULL) {
                src = SQLITE_NOMEM;
                break;
            }
            list = g;
            cap = nc;
        }
        u = &list[k++];
        memset(u, 0, sizeof(*u));
        snprintf(u->user, sizeof(u->user), "%s", (const char *)sqlite3_column_text(s, 0));
        u->jobs = (uint64_t)sqlite3_column_int64(s, 1);
        u->items = (uint64_t)sqlite3_column_int64(s, 2);
        u->bytes_in = (uint64_t)sqlite3_column_int64(s, 3);
        u->bytes_out = (uint64_t)sqlite3_column_int64(s, 4);
        u->cpu_s = sqlite3_column_double(s, 5);
        u->stored_byte_s = sqlite3_column_double(s, 6);
        stored = sqlite3_column_int64(s, 7);
        u->bytes_stored = stored > 0 ? (uint64_t)stored : 0;
    }
    sqlite3_finalize(s);
    if (src != SQLITE_DONE) {
        dip_free(list);
        return src;
    }
    *out = list;
    *n = k;
    return SQLITE_OK;
}
