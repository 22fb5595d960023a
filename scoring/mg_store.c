/*
 * mg_store.c — what every store backend shares: records (an identity's
 * baseline, generation and offsets as the scorer holds them), their origin
 * table, and the risk record's JSON (the data model in mg_store.h).
 */
#include "mg_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

void mg_store_destroy(struct mg_store *store) {
        if (store && store->ops)
                store->ops->destroy_cb(store->st);
        if (store) {
                store->ops = NULL;
                store->st = NULL;
        }
}

struct mg_store_rec *mg_store_rec_new(const char *identity) {
        struct mg_store_rec *rec = calloc(1, sizeof(*rec));

        if (!rec)
                return NULL;
        rec->bl = malloc(mg_baseline_size());
        if (!rec->bl) {
                free(rec);
                return NULL;
        }
        mg_baseline_init(rec->bl);
        snprintf(rec->identity, sizeof(rec->identity), "%s", identity);
        return rec;
}

void mg_store_rec_destroy(struct mg_store_rec *rec) {
        if (!rec)
                return;
        free(rec->bl);
        free(rec->risk_json);
        free(rec);
}

struct mg_store_origin *mg_store_rec_origin(struct mg_store_rec *rec,
                                            const char *topic,
                                            int32_t partition) {
        struct mg_store_origin *o;
        int i;

        for (i = 0; i < rec->origin_cnt; i++)
                if (rec->origins[i].partition == partition &&
                    !strcmp(rec->origins[i].topic, topic))
                        return &rec->origins[i];
        if (rec->origin_cnt == MG_STORE_ORIGINS_MAX ||
            strlen(topic) >= sizeof(o->topic))
                return NULL;
        o = &rec->origins[rec->origin_cnt++];
        snprintf(o->topic, sizeof(o->topic), "%s", topic);
        o->partition = partition;
        o->offset = -1;
        return o;
}

char *mg_store_risk_json(const char *identity, const struct mg_risk *risk,
                         int64_t updated_ms) {
        json_t *obj = json_object(), *reasons = json_array();
        char *out;
        int i;

        if (!obj || !reasons) {
                json_decref(obj);
                json_decref(reasons);
                return NULL;
        }
        for (i = 0; i < risk->reason_cnt; i++) {
                const struct mg_reason *r = &risk->reasons[i];

                json_array_append_new(
                        reasons,
                        json_pack("{s:s, s:f, s:s}", "signal",
                                  mg_signal_names[r->signal], "points",
                                  r->points, "detail", r->detail));
        }
        json_object_set_new(obj, "identity", json_string(identity));
        json_object_set_new(obj, "risk", json_real(risk->score));
        json_object_set_new(obj, "level",
                            json_string(mg_risk_level_names[risk->level]));
        json_object_set_new(obj, "ts", json_integer(risk->ts_ms));
        json_object_set_new(obj, "reasons", reasons);
        json_object_set_new(obj, "updated", json_integer(updated_ms));
        out = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6));
        json_decref(obj);
        return out;
}
