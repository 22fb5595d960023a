/*
 * fuzz_event_json.c — libFuzzer target for mg_event_from_json(), the parser
 * of the JSON-lines event form (DESIGN.md "Input events").
 *
 * Besides "never crash, never leak, never read out of bounds" it checks the
 * codec's round-trip property: whatever mg_event_from_json() accepts,
 * mg_event_to_json() writes as a line that mg_event_from_json() accepts
 * again, and writing that second event gives the very same line (the
 * written form is a fixed point). A violation abort()s so libFuzzer keeps
 * the input. "Now" is pinned so a run is reproducible.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_event.h"

#define FUZZ_NOW_MS 1795219200000LL /* 2026-11-21T00:00:00Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct mg_event ev, ev2; /* 17 KiB each: not on the stack */
        char errstr[512];
        char *json = NULL, *json2 = NULL;
        mg_err_t err;

        errstr[0] = '\0';
        err = mg_event_from_json(&ev, (const char *)data, size, FUZZ_NOW_MS,
                                 errstr, sizeof(errstr));
        if (err) {
                /* Every failure explains itself. */
                if (!errstr[0] || strlen(errstr) >= sizeof(errstr))
                        abort();
                return 0;
        }
        if (ev.arena_used > MG_EVENT_ARENA_SIZE)
                abort();

        json = mg_event_to_json(&ev);
        if (!json)
                abort();
        err = mg_event_from_json(&ev2, json, strlen(json), FUZZ_NOW_MS,
                                 errstr, sizeof(errstr));
        if (err) {
                fprintf(stderr, "round trip failed: %s\n%s\n", errstr, json);
                abort();
        }
        json2 = mg_event_to_json(&ev2);
        if (!json2)
                abort();
        if (strcmp(json, json2) != 0) {
                fprintf(stderr, "not a fixed point:\n%s\n%s\n", json, json2);
                abort();
        }
        free(json);
        free(json2);
        return 0;
}
