/* Lodge logger: one logger, levels, a tag per subsystem ("dev.uart", "cpu", "kvm").
 * Silent by default; turned on with --log SPEC or LODGE_LOG=SPEC, where SPEC is
 * "LEVEL" or "TAG=LEVEL[,TAG=LEVEL...]" (a tag matches itself and its dotted children). */
#ifndef LODGE_CORE_LOG_H
#define LODGE_CORE_LOG_H

#include <stdbool.h>

enum log_level {
    LOG_LEVEL_OFF = 0,
    LOG_LEVEL_ERROR,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_TRACE,
};

/* Parse SPEC and make it the process-wide configuration. Returns 0 or -EINVAL. */
int log_configure(const char *spec);
bool log_enabled(const char *tag, enum log_level level);
void log_msg(const char *tag, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_AT(lvl, tag, ...)                                                                      \
    do {                                                                                           \
        if (log_enabled((tag), (lvl))) {                                                           \
            log_msg((tag), (lvl), __VA_ARGS__);                                                    \
        }                                                                                          \
    } while (0)
#define log_error(tag, ...) LOG_AT(LOG_LEVEL_ERROR, tag, __VA_ARGS__)
#define log_warn(tag, ...) LOG_AT(LOG_LEVEL_WARN, tag, __VA_ARGS__)
#define log_info(tag, ...) LOG_AT(LOG_LEVEL_INFO, tag, __VA_ARGS__)
#define log_debug(tag, ...) LOG_AT(LOG_LEVEL_DEBUG, tag, __VA_ARGS__)
#define log_trace(tag, ...) LOG_AT(LOG_LEVEL_TRACE, tag, __VA_ARGS__)

#endif
