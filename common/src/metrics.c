#include "po/metrics.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum series_kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

/* Upper bounds of the latency buckets, in microseconds: finer from 5 to
 * 25 ms, where the stages' targets lie (a p99 read off the buckets is only
 * as exact as they are). */
static const uint64_t bucket_us[] = {500,    1000,    2500,    5000,    7500,   10000,
                                     15000,  20000,   25000,   50000,   100000, 250000,
                                     500000, 1000000, 2500000, 10000000};
#define NBUCKETS (sizeof(bucket_us) / sizeof(bucket_us[0]))

typedef struct series {
        uint64_t hash; /* of name and labels: most lookups compare only this */
        char *name, *help, *labels;
        enum series_kind kind;
        int64_t value;              /* counter or gauge */
        uint64_t buckets[NBUCKETS]; /* histogram: cumulative at render time */
        uint64_t count, sum_us;
} series_t;

struct po_metrics {
        char *service;
        series_t *series;
        size_t n, cap;
};

po_metrics_t *po_metrics_new(const char *service)
{
        po_metrics_t *m = calloc(1, sizeof(*m));

        if (!m)
                return NULL;
        m->service = strdup(service);
        if (!m->service) {
                free(m);
                return NULL;
        }
        return m;
}

void po_metrics_destroy(po_metrics_t *m)
{
        size_t i;

        if (!m)
                return;
        for (i = 0; i < m->n; i++) {
                free(m->series[i].name);
                free(m->series[i].help);
                free(m->series[i].labels);
        }
        free(m->series);
        free(m->service);
        free(m);
}

static int labels_eq(const char *a, const char *b)
{
        return strcmp(a ? a : "", b ? b : "") == 0;
}

/* FNV-1a over name, a separator and labels (NULL = ""). The stages count
 * every message, so a lookup must not strcmp its way through every series. */
static uint64_t series_hash(const char *name, const char *labels)
{
        uint64_t h = 14695981039346656037ull;
        const unsigned char *p;

        for (p = (const unsigned char *)name; *p; p++)
                h = (h ^ *p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
        for (p = (const unsigned char *)(labels ? labels : ""); *p; p++)
                h = (h ^ *p) * 1099511628211ull;
        return h;
}

static series_t *find(const po_metrics_t *m, uint64_t hash, const char *name,
                      const char *labels)
{
        size_t i;

        for (i = 0; i < m->n; i++)
                if (m->series[i].hash == hash && strcmp(m->series[i].name, name) == 0 &&
                    labels_eq(m->series[i].labels, labels))
                        return &m->series[i];
        return NULL;
}

static series_t *get(po_metrics_t *m, const char *name, const char *help,
                     const char *labels, enum series_kind kind)
{
        uint64_t hash = series_hash(name, labels);
        series_t *s = find(m, hash, name, labels);

        if (s)
                return s;
        if (m->n == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 16;
                series_t *p = realloc(m->series, cap * sizeof(*p));

                if (!p)
                        return NULL;
                m->series = p;
                m->cap = cap;
        }
        s = &m->series[m->n];
        memset(s, 0, sizeof(*s));
        s->hash = hash;
        s->name = strdup(name);
        s->help = strdup(help ? help : "");
        s->labels = strdup(labels ? labels : "");
        s->kind = kind;
        if (!s->name || !s->help || !s->labels) {
                free(s->name);
                free(s->help);
                free(s->labels);
                return NULL;
        }
        m->n++;
        return s;
}

void po_metrics_add(po_metrics_t *m, const char *name, const char *help,
                    const char *labels, uint64_t delta)
{
        series_t *s = get(m, name, help, labels, KIND_COUNTER);

        if (s)
                s->value += (int64_t)delta;
}

void po_metrics_set(po_metrics_t *m, const char *name, const char *help,
                    const char *labels, int64_t value)
{
        series_t *s = get(m, name, help, labels, KIND_GAUGE);

        if (s)
                s->value = value;
}

void po_metrics_observe_us(po_metrics_t *m, const char *name, const char *help,
                           uint64_t us)
{
        series_t *s = get(m, name, help, NULL, KIND_HISTOGRAM);
        size_t i;

        if (!s)
                return;
        for (i = 0; i < NBUCKETS; i++)
                if (us <= bucket_us[i]) {
                        s->buckets[i]++;
                        break;
                }
        s->count++;
        s->sum_us += us;
}

int64_t po_metrics_get(const po_metrics_t *m, const char *name, const char *labels)
{
        const series_t *s = find(m, series_hash(name, labels), name, labels);

        return s ? s->value : 0;
}

/* Whether an earlier series has the same name (HELP and TYPE once per name). */
static int first_of_name(const po_metrics_t *m, size_t i)
{
        size_t j;

        for (j = 0; j < i; j++)
                if (strcmp(m->series[j].name, m->series[i].name) == 0)
                        return 0;
        return 1;
}

void po_metrics_render(const po_metrics_t *m, po_dynbuf_t *out)
{
        static const char *types[] = {"counter", "gauge", "histogram"};
        size_t i, b;

        for (i = 0; i < m->n; i++) {
                const series_t *s = &m->series[i];
                const char *sep = s->labels[0] ? "," : "";
                uint64_t cum = 0;

                if (first_of_name(m, i))
                        po_dynbuf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", s->name,
                                       s->help, s->name, types[s->kind]);
                if (s->kind != KIND_HISTOGRAM) {
                        po_dynbuf_addf(out, "%s{service=\"%s\"%s%s} %" PRId64 "\n",
                                       s->name, m->service, sep, s->labels, s->value);
                        continue;
                }
                for (b = 0; b < NBUCKETS; b++) {
                        cum += s->buckets[b];
                        po_dynbuf_addf(out,
                                       "%s_bucket{service=\"%s\",le=\"%" PRIu64
                                       ".%06" PRIu64 "\"} %" PRIu64 "\n",
                                       s->name, m->service, bucket_us[b] / 1000000,
                                       bucket_us[b] % 1000000, cum);
                }
                po_dynbuf_addf(out, "%s_bucket{service=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
                               s->name, m->service, s->count);
                po_dynbuf_addf(out, "%s_sum{service=\"%s\"} %" PRIu64 ".%06" PRIu64 "\n",
                               s->name, m->service, s->sum_us / 1000000,
                               s->sum_us % 1000000);
                po_dynbuf_addf(out, "%s_count{service=\"%s\"} %" PRIu64 "\n", s->name,
                               m->service, s->count);
        }
}
