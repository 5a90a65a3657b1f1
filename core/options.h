/* Command-line value parsing shared by the lodge subcommands (sizes, counts). */
#ifndef LODGE_CORE_OPTIONS_H
#define LODGE_CORE_OPTIONS_H

#include <stdint.h>

/* Parse a size: decimal or 0x-hex bytes, optionally followed by one binary unit
 * letter K, M, G or T (either case; 1K = 1024). Returns 0, -EINVAL for anything
 * else (empty, junk, negative, unknown suffix) or -ERANGE when it overflows 64 bits. */
int options_parse_size(const char *s, uint64_t *out);

/* Parse a decimal integer in [min, max]. 0, -EINVAL (junk) or -ERANGE (out of range). */
int options_parse_int(const char *s, long min, long max, long *out);

#endif
