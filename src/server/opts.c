/* SPDX-License-Identifier: MIT */
/* The service's options from the server's: the part of dip_server_opts that the job service
 * (src/service) takes, including where the blobs live and their key (docs/storage.md). */
#include "server/http.h"

void dip__service_opts(const struct dip_server_opts *o, struct dip_service_opts *so)
{
    dip_service_opts_default(so);
    so->data_dir = o->data_dir ? o->data_dir : "./var";
    so->threads = o->threads;
    so->limits = o->limits;
    so->max_images_per_job = o->max_images_per_job;
    so->max_active_per_user = o->max_active_per_user;
    so->max_queue = o->max_queue;
    so->executor = o->executor;
    so->quiet = o->quiet;
    so->keep_s = o->keep_s;
    so->blobs = o->blobs;
    so->encrypt_key = o->encrypt_key;
    so->s3 = o->s3;
    so->log_level = o->log_level;
    so->log_json = o->log_json;
    so->shutdown_grace_s = o->shutdown_grace_s;
    so->ready_min_free = o->ready_min_free;
    so->cost_cpu_hour = o->cost_cpu_hour;
    so->cost_gb_month = o->cost_gb_month;
}
