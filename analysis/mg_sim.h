/*
 * mg_sim.h — a seeded, deterministic generator of non-human identity
 * traffic with labelled attacks (`mintgate simulate`).
 *
 * It invents a population of identities (service accounts, CI runners,
 * SaaS integrations, AI agents, workloads; some shared by several
 * applications, some going dormant) with their clients, home networks,
 * user agents, resources, scopes and daily/weekly rhythm, and lets them
 * authenticate and use their tokens over a number of days. A share of the
 * identities is attacked once each (stolen token, scope escalation,
 * credential stuffing, off-hours exfiltration, dormant reactivation,
 * leaked secret); every attack is reported as a label with the times of
 * its first and last malicious event, so a detector can be scored
 * against ground truth.
 *
 * Events are struct mg_event, delivered in non-decreasing time order;
 * every one passes mg_event_validate() and mg_event_to_json() gives the
 * JSON-lines form `mintgate produce` and `replay` read. The same options
 * give the same events and labels, byte for byte: all randomness comes
 * from explicit PRNGs seeded from opts->seed, never from the clock or
 * rand() (rates go through the C library's exp/log/cos, so the guarantee
 * is per C library, not across every libm ever written).
 *
 * Memory is bounded by the population, not by the number of events: each
 * identity generates lazily, one session (a token and its uses) at a time;
 * about 12 KiB per identity, whatever the number of days.
 *
 * Thread-safety: mg_sim_run() uses only its own state; several runs may go
 * on at once in different threads.
 */
#ifndef MG_SIM_H
#define MG_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "mg_err.h"
#include "mg_event.h"

/* Behaviour profiles of the population; each maps to one identity_kind
 * (shared and dormant identities borrow a kind). */
enum mg_sim_profile {
        MG_SIM_PROFILE_SERVICE,     /* steady service account, 24/7 */
        MG_SIM_PROFILE_WORKLOAD,    /* workload, 24/7 with a daily swing */
        MG_SIM_PROFILE_CI,          /* CI runner: office-hours jobs */
        MG_SIM_PROFILE_INTEGRATION, /* SaaS integration: periodic polling */
        MG_SIM_PROFILE_AGENT,       /* AI agent: bursts, token exchange */
        MG_SIM_PROFILE_SHARED,      /* one identity, 2-4 applications */
        MG_SIM_PROFILE_DORMANT,     /* active early, then silent */
        MG_SIM_PROFILE__CNT
};

/* Attack types, in label order. */
enum mg_sim_attack {
        MG_SIM_ATTACK_STOLEN_TOKEN,
        MG_SIM_ATTACK_SCOPE_ESCALATION,
        MG_SIM_ATTACK_CREDENTIAL_STUFFING,
        MG_SIM_ATTACK_OFFHOURS_EXFILTRATION,
        MG_SIM_ATTACK_DORMANT_REACTIVATION,
        MG_SIM_ATTACK_LEAKED_SECRET,
        MG_SIM_ATTACK__CNT
};

/* Names, index = enum value: "service", "workload", "ci", "integration",
 * "agent", "shared", "dormant"; "stolen_token", "scope_escalation", ... */
extern const char *const mg_sim_profile_names[MG_SIM_PROFILE__CNT];
extern const char *const mg_sim_attack_names[MG_SIM_ATTACK__CNT];

/* Limits of the options, checked by mg_sim_run(). */
#define MG_SIM_DAYS_MAX       366
#define MG_SIM_IDENTITIES_MAX 100000 /* ~1.2 GB of state */

/* 2026-11-02T00:00:00Z, a Monday: the default first instant. */
#define MG_SIM_START_DEFAULT_MS 1793577600000LL

/* What to generate. Start from mg_sim_opts_default(). */
struct mg_sim_opts {
        uint64_t seed;       /* PRNG seed; same seed, same output */
        int64_t start_ms;    /* first instant, epoch ms UTC */
        int days;            /* length of the run, 1..MG_SIM_DAYS_MAX */
        int identities;      /* population, 1..MG_SIM_IDENTITIES_MAX */
        double attack_rate;  /* share of identities attacked, 0..1 */
        /* Relative weight of each profile in the population (>= 0, not
         * all 0); counts are apportioned exactly, not sampled. */
        double mix[MG_SIM_PROFILE__CNT];
};

/* One attack: what, on whom, when. identity points into the generator's
 * memory and is valid only during the label callback. */
struct mg_sim_label {
        const char *identity;      /* the attacked identity */
        enum mg_sim_attack attack; /* its type */
        int64_t start_ms;          /* first malicious event */
        int64_t end_ms;            /* last malicious event */
        uint64_t events;           /* malicious events in between */
};

/* Counters of a run, filled by mg_sim_run(). */
struct mg_sim_stats {
        uint64_t events[MG_EVENT_TYPE__CNT];  /* emitted, by type */
        uint64_t identities[MG_SIM_PROFILE__CNT]; /* population by profile */
        uint64_t kinds[MG_IDENTITY_KIND__CNT];    /* population by kind */
        uint64_t attacks[MG_SIM_ATTACK__CNT];     /* labels, by type */
        uint64_t attacks_unplaced; /* attacks with no eligible identity */
        int stopped;               /* emit_cb asked to stop */
};

/* Called for each event, in time order; ev is valid only during the call.
 * Return nonzero to stop the run (mg_sim_run() then returns MG_OK with
 * stats->stopped set). */
typedef int (*mg_sim_emit_cb)(void *opaque, const struct mg_event *ev);

/* Called for each attack right after its last event was emitted, so
 * labels come in order of their end. */
typedef void (*mg_sim_label_cb)(void *opaque,
                                const struct mg_sim_label *lab);

/* Fill opts with the defaults: seed 1, MG_SIM_START_DEFAULT_MS, 7 days,
 * 2000 identities, attack rate 0.05, the default mix (service 25,
 * workload 12, ci 20, integration 15, agent 12, shared 8, dormant 8). */
void mg_sim_opts_default(struct mg_sim_opts *opts);

/* Parse a mix such as "service=30,agent=20,dormant=0" into mix: named
 * profiles get the given weights, the others keep theirs. Errors name the
 * bad entry (MG_ERR_INVALID). */
mg_err_t mg_sim_mix_parse(const char *s, double mix[MG_SIM_PROFILE__CNT],
                          char *errstr, size_t errstr_size);

/* Check opts; the first bad option is named in errstr (MG_ERR_INVALID). */
mg_err_t mg_sim_opts_check(const struct mg_sim_opts *opts, char *errstr,
                           size_t errstr_size);

/* Generate the whole run: emit_cb for every event in non-decreasing time
 * order, label_cb (may be NULL) for every attack. stats (may be NULL) is
 * filled. Errors: MG_ERR_INVALID for bad options, MG_ERR_NOMEM. Blocks
 * the calling thread until done. */
mg_err_t mg_sim_run(const struct mg_sim_opts *opts, mg_sim_emit_cb emit_cb,
                    mg_sim_label_cb label_cb, void *opaque,
                    struct mg_sim_stats *stats, char *errstr,
                    size_t errstr_size);

/* Format lab as one JSON line without newline:
 * {"identity":"…","attack":"stolen_token","start":"…","end":"…"}.
 * Returns a malloc'd string the caller frees, NULL when out of memory. */
char *mg_sim_label_to_json(const struct mg_sim_label *lab);

#endif /* MG_SIM_H */
