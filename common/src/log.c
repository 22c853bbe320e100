#include "po/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

/* Set once at start-up, read-only afterwards (convention 7 allows no other
 * mutable global; this one is configuration, written before any work). */
static const char *log_service = "promo";
static po_log_level_t log_min = PO_LOG_INFO;

void po_log_init(const char *service, po_log_level_t min_level)
{
        if (service)
                log_service = service;
        log_min = min_level;
}

void po_log(po_log_level_t level, const char *fmt, ...)
{
        static const char *names[] = {"debug", "info", "warn", "error"};
        char ts[32];
        struct timespec now;
        struct tm tm;
        va_list ap;

        if (level < log_min)
                return;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        /* One line at a time when several threads log (the admin's workers). */
        flockfile(stderr);
        fprintf(stderr, "%s.%03ldZ %-5s %s: ", ts, now.tv_nsec / 1000000L, names[level],
                log_service);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        funlockfile(stderr);
}
