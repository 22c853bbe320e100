/* po_log: one-line structured logs on stderr: time, level, service, message. */
#ifndef PO_LOG_H
#define PO_LOG_H

typedef enum po_log_level {
        PO_LOG_DEBUG,
        PO_LOG_INFO,
        PO_LOG_WARN,
        PO_LOG_ERROR
} po_log_level_t;

/* Sets the service name printed on every line (the pointer is kept; pass a
 * string literal or one that outlives every log call) and the lowest level
 * printed. Call once at start-up, before any other thread exists. */
void po_log_init(const char *service, po_log_level_t min_level);

void po_log(po_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define po_log_info(...) po_log(PO_LOG_INFO, __VA_ARGS__)
#define po_log_warn(...) po_log(PO_LOG_WARN, __VA_ARGS__)
#define po_log_error(...) po_log(PO_LOG_ERROR, __VA_ARGS__)
#define po_log_debug(...) po_log(PO_LOG_DEBUG, __VA_ARGS__)

#endif
