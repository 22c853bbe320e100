/* po_metrics: counters, gauges and latency histograms rendered in the
 * Prometheus text format. Single-threaded, like the services that own it.
 * Series are created on first use and live until po_metrics_destroy; a
 * service has a few dozen, so lookups are a short linear scan. */
#ifndef PO_METRICS_H
#define PO_METRICS_H

#include <stdint.h>

#include "po/dynbuf.h"

typedef struct po_metrics po_metrics_t;

/* Creates an empty registry; every series gets the label service="<service>"
 * (the string is copied). Returns NULL when out of memory. */
po_metrics_t *po_metrics_new(const char *service);
/* Accepts NULL. */
void po_metrics_destroy(po_metrics_t *m);

/* Adds delta to the counter name{labels}. labels is the inside of the braces
 * without the service label, e.g. "topic=\"orders.raw\"" or NULL. help is
 * used the first time the metric name is seen. Fails silently when out of
 * memory (metrics must never stop the pipeline). */
void po_metrics_add(po_metrics_t *m, const char *name, const char *help,
                    const char *labels, uint64_t delta);
/* Sets the gauge name{labels}. */
void po_metrics_set(po_metrics_t *m, const char *name, const char *help,
                    const char *labels, int64_t value);
/* Records one observation, in microseconds, into the histogram name (seconds
 * buckets 0.0005 .. 10, rendered as name_bucket/_sum/_count). */
void po_metrics_observe_us(po_metrics_t *m, const char *name, const char *help,
                           uint64_t us);

/* The current value of a counter or gauge (0 when unknown); for tests. */
int64_t po_metrics_get(const po_metrics_t *m, const char *name, const char *labels);

/* Appends the Prometheus text exposition of every series to out. */
void po_metrics_render(const po_metrics_t *m, po_dynbuf_t *out);

#endif
