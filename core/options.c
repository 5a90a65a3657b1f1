#include "core/options.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

int options_parse_size(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)s[0])) {
        /* strtoull would accept leading blanks and a minus sign: a size has neither. */
        return -EINVAL;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (end == s) {
        return -EINVAL;
    }
    unsigned shift = 0;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    case 't':
    case 'T':
        shift = 40;
        break;
    default:
        return -EINVAL;
    }
    if (shift) {
        end++;
        if (*end != '\0') {
            return -EINVAL;
        }
        if (v > (UINT64_MAX >> shift)) {
            return -ERANGE;
        }
    }
    *out = (uint64_t)v << shift;
    return 0;
}

int options_parse_int(const char *s, long min, long max, long *out)
{
    if (!s || !(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1])))) {
        return -EINVAL;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end != '\0') {
        return -EINVAL;
    }
    if (errno == ERANGE || v < min || v > max) {
        return -ERANGE;
    }
    *out = v;
    return 0;
}
