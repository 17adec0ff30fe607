/* SPDX-License-Identifier: MIT */
/* Per-user usage inside the store (usage.c): called by store.c with the store's lock held and,
 * for the hooks, inside the transaction that makes the change, so a job, a result or a deletion
 * is counted exactly once. Functions return sqlite3 result codes (SQLITE_OK); store.c maps them. */
#ifndef DIP_STORE_USAGE_H
#define DIP_STORE_USAGE_H

#include <sqlite3.h>

#include "dip/store.h"

/** Creates the usage tables when missing; a store from before them is seeded from its jobs. */
int dip__usage_schema(sqlite3 *db);
/** A job was recorded: one job, its input bytes (read in and now stored). */
int dip__usage_job_created(sqlite3 *db, const struct dip_store_job *job);
/** Item `idx` of `job` got its result (only call when the result row was new). */
int dip__usage_result(sqlite3 *db, const char *job, const struct dip_store_item *r, double t);
/** Job `job` is about to be deleted: its inputs and results are no longer stored. */
int dip__usage_job_deleted(sqlite3 *db, const char *job, double t);
/** One usage row for `owner` at time t. */
int dip__usage_add(sqlite3 *db, const char *owner, double t, const struct dip_store_usage *d);
/** See dip_store_usage_query. */
int dip__usage_query(sqlite3 *db, const char *owner, double since, double until,
                     struct dip_store_usage **out, size_t *n);

#endif
