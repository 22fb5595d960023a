/*
 * mg_asn.h — which autonomous system originates an address: a prefix ->
 * AS number table loaded from a file the operator provides
 * (scoring.asn_file), for the new_source signal ("a source IP, network or
 * AS this identity has not used"). There is no routing feed on a scoring
 * host, so the file is the routing data: a CAIDA RouteViews pfx2as
 * snapshot, or a hand-written list of the organisation's own ranges.
 *
 * The file
 * --------
 * One prefix per line, in either of two forms (they may be mixed):
 *
 *   203.0.113.0/24 64500          PREFIX ASN, PREFIX in CIDR notation
 *   2001:db8::/32  AS64501        (IPv4 or IPv6; "AS" before the number
 *                                 is allowed)
 *   1.0.0.0<TAB>24<TAB>13335      CAIDA pfx2as: address, length, ASN
 *
 * Fields are separated by spaces or tabs. '#' starts a comment that runs
 * to the end of the line; blank lines are ignored; CRLF line ends are
 * accepted. A multi-origin prefix ("13335_4826") or an AS set
 * ("4826,38803") counts as its first AS. A prefix must not have host bits
 * set (203.0.113.5/24 is refused, naming 203.0.113.0/24), AS 0 is refused
 * (RFC 7607: never an origin), and a prefix listed twice must name the
 * same AS both times. An IPv4-mapped IPv6 prefix (::ffff:0:0/96 or
 * longer) is the IPv4 prefix it maps. Every error names the file, the
 * line and what is wrong. Prefixes may nest: an address takes the AS of the longest prefix
 * that covers it (longest-prefix match), and an address no prefix covers
 * has no AS.
 *
 * Lookups are pure reads of an immutable table: any number of threads may
 * share one struct mg_asn once it is loaded.
 */
#ifndef MG_ASN_H
#define MG_ASN_H

#include <stddef.h>
#include <stdint.h>

#include "mg_err.h"

/* Largest file accepted. A full pfx2as snapshot (1.1M IPv4 and 0.3M IPv6
 * prefixes) is about 30 MB; anything ten times that is not routing
 * data. */
#define MG_ASN_FILE_MAX (256u * 1024 * 1024)
/* Longest line accepted, in bytes, without its line end. The longest
 * valid line (an IPv6 address, its length and a multi-origin AS list) is
 * far shorter; a longer one is not this format. */
#define MG_ASN_LINE_MAX 1024

struct mg_asn;

/* What a loaded table holds. */
struct mg_asn_stats {
        size_t prefixes4;  /* distinct IPv4 prefixes loaded */
        size_t prefixes6;  /* distinct IPv6 prefixes loaded */
        size_t ranges4;    /* IPv4 address ranges after flattening */
        size_t ranges6;    /* IPv6 address ranges after flattening */
        size_t bytes;      /* memory of the lookup tables */
};

/* Load the table from the file at path (format above). On success *asnp
 * is the table, owned by the caller (mg_asn_destroy()). On failure *asnp
 * is NULL and errstr says why: MG_ERR_CONFIG for a file that cannot be
 * read or is not valid ("FILE:LINE: what is wrong"), MG_ERR_NOMEM. A file
 * without a single prefix is an error too: an empty download is far
 * likelier than an intent (leave scoring.asn_file empty for no ASNs). */
mg_err_t mg_asn_load_file(const char *path, struct mg_asn **asnp,
                          char *errstr, size_t errstr_size);

/* The same from len bytes at buf (need not be NUL-terminated); name
 * labels error messages in place of a file name. */
mg_err_t mg_asn_load_buf(const char *name, const char *buf, size_t len,
                         struct mg_asn **asnp, char *errstr,
                         size_t errstr_size);

/* The AS originating an address: family 4 with 4 bytes at addr, or 6 with
 * 16 bytes (an IPv4-mapped IPv6 address is looked up as IPv4). Returns 0
 * when no prefix covers it, when asn is NULL, or for another family.
 * O(log ranges), no allocation, any thread. */
uint32_t mg_asn_lookup(const struct mg_asn *asn, int family,
                       const unsigned char *addr);

void mg_asn_stats_get(const struct mg_asn *asn, struct mg_asn_stats *st);

/* Free the table; NULL is a no-op. */
void mg_asn_destroy(struct mg_asn *asn);

#endif /* MG_ASN_H */
