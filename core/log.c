#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_MAX_RULES 32

struct log_rule {
    char tag[48];          /* "" matches every tag */
    enum log_level level;  /* most verbose level printed for this tag */
};

/* Process-wide logger configuration; written once at start-up (or by tests). */
static struct {
    struct log_rule rules[LOG_MAX_RULES];
    int nrules;
    int from_env;
} log_cfg;

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static int log_parse_level(const char *s, enum log_level *out)
{
    static const char *const names[] = {"off", "error", "warn", "info", "debug", "trace"};
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

int log_configure(const char *spec)
{
    struct log_rule rules[LOG_MAX_RULES];
    int n = 0;
    char *copy = strdup(spec ? spec : "");
    if (!copy) {
        return -ENOMEM;
    }
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (n == LOG_MAX_RULES) {
            free(copy);
            return -EINVAL;
        }
        char *eq = strchr(item, '=');
        const char *lvl = item;
        rules[n].tag[0] = '\0';
        if (eq) {
            *eq = '\0';
            if (strlen(item) >= sizeof(rules[n].tag)) {
                free(copy);
                return -EINVAL;
            }
            strcpy(rules[n].tag, item);
            lvl = eq + 1;
        }
        if (log_parse_level(lvl, &rules[n].level) < 0) {
            free(copy);
            return -EINVAL;
        }
        n++;
    }
    free(copy);
    memcpy(log_cfg.rules, rules, sizeof(rules[0]) * (size_t)n);
    log_cfg.nrules = n;
    return 0;
}

static void log_init_from_env(void)
{
    const char *env = getenv("LODGE_LOG");
    if (env && log_cfg.nrules == 0 && log_configure(env) < 0) {
        fprintf(stderr, "lodge: LODGE_LOG=%s: bad log spec (want LEVEL or TAG=LEVEL,...)\n", env);
    }
}

static bool log_tag_matches(const char *rule, const char *tag)
{
    size_t n = strlen(rule);
    return n == 0 || (strncmp(rule, tag, n) == 0 && (tag[n] == '\0' || tag[n] == '.'));
}

bool log_enabled(const char *tag, enum log_level level)
{
    pthread_once(&log_once, log_init_from_env);
    enum log_level max = LOG_LEVEL_OFF;
    size_t best = 0;
    bool any = false;
    for (int i = 0; i < log_cfg.nrules; i++) {
        size_t len = strlen(log_cfg.rules[i].tag);
        if (log_tag_matches(log_cfg.rules[i].tag, tag) && (!any || len >= best)) {
            max = log_cfg.rules[i].level;
            best = len;
            any = true;
        }
    }
    return level != LOG_LEVEL_OFF && level <= max;
}

void log_msg(const char *tag, enum log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"off", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* One write per line so threads do not interleave within a line; \r for raw-mode ttys. */
    fprintf(stderr, "[%5ld.%03ld] %s %s: %s\r\n", (long)ts.tv_sec % 100000, ts.tv_nsec / 1000000,
            names[level], tag, buf);
}
