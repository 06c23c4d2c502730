/*
 * common/units.h — the number forms users type for the catalog (modelctl
 * list/search options) and how they are printed back. Pure; shared by the
 * CLI and the daemon.
 */
#ifndef MD_UNITS_H
#define MD_UNITS_H

#include <stddef.h>
#include <stdint.h>

/*
 * A count such as a parameter count: "7B", "350M", "1.5e9", "125k",
 * "7000000000" (suffixes k/K, m/M, b/B/g/G and t/T are powers of 1000; an
 * exponent is allowed; surrounding spaces are not). The result must be
 * a whole number in 0..2^62 after scaling: a decimal is exact ("8.03B" is
 * 8030000000, not one less as binary floating point would give), a real
 * fraction is rounded down ("1.5" is 1).
 * 0, or MD_EINVAL with a detail naming s.
 */
int units_parse_count(const char *s, uint64_t *out);

/*
 * A memory size: "24GiB", "24GB", "512MiB", "80G" (powers of 1024 for
 * KiB/MiB/GiB/TiB and the bare K/M/G/T, also lower-case k/m/g/t as curl
 * takes them; powers of 1000 for kB/KB/MB/GB/TB), "1.5GiB", "100B" or plain
 * bytes. Nothing may follow the unit. 0..2^62. 0 or MD_EINVAL.
 */
int units_parse_bytes(const char *s, uint64_t *out);

/*
 * A bandwidth cap in bytes per second, in units_parse_bytes' forms ("50M",
 * "50m", "50MiB": 50 * 2^20; "50MB": 50 * 10^6; "1048576"): the one parser
 * for modelctl --limit-rate and modeld's limit_rate. 0, or MD_EINVAL with a
 * one-line detail starting with what ("--limit-rate", "limit_rate").
 */
int units_parse_rate(const char *s, const char *what, uint64_t *out);

/* "7.24B", "350M", "124K", "999" into out (n >= 16). */
void units_format_count(uint64_t v, char *out, size_t n);

/*
 * Size-class thresholds: "100M,1B,10B,100B" — 1..UNITS_MAX_CLASSES counts,
 * strictly increasing, the first > 0. The first is the small/large boundary
 * (issue: small language model under 100 million parameters, large at or
 * above). 0 or MD_EINVAL.
 */
#define UNITS_MAX_CLASSES 8
#define UNITS_DEFAULT_CLASSES "100M,1B,10B,100B"
int units_parse_thresholds(const char *s, uint64_t t[UNITS_MAX_CLASSES], size_t *n);

/* A threshold as a class-name part: "100m", "1b", "1.5b" (n >= 24). */
void units_class_part(uint64_t v, char *out, size_t n);

#endif
