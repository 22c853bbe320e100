#include "po/profile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROFILES_MAX 256

typedef struct section {
        char *channel; /* NULL for [default] */
        char *account; /* NULL for [default] and [channel x] */
        po_channel_profile_t p;
} section_t;

struct po_profiles {
        section_t s[PROFILES_MAX];
        size_t n; /* s[0] is [default] */
        char *strings[PROFILES_MAX * 12];
        size_t nstrings;
};

static char *keep(po_profiles_t *ps, const char *s, size_t len)
{
        char *c;

        if (ps->nstrings == sizeof(ps->strings) / sizeof(ps->strings[0]))
                return NULL;
        c = malloc(len + 1);
        if (!c)
                return NULL;
        memcpy(c, s, len);
        c[len] = '\0';
        ps->strings[ps->nstrings++] = c;
        return c;
}

void po_profiles_destroy(po_profiles_t *ps)
{
        size_t i;

        if (!ps)
                return;
        for (i = 0; i < ps->nstrings; i++)
                free(ps->strings[i]);
        free(ps);
}

static void trim(const char **s, size_t *len)
{
        while (*len && (**s == ' ' || **s == '\t')) {
                (*s)++;
                (*len)--;
        }
        while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' ||
                        (*s)[*len - 1] == '\r'))
                (*len)--;
}

static section_t *find(const po_profiles_t *ps, const char *channel, const char *account)
{
        size_t i;

        for (i = 1; i < ps->n; i++) {
                const section_t *s = &ps->s[i];

                if (strcmp(s->channel, channel) != 0)
                        continue;
                if ((!account && !s->account) ||
                    (account && s->account && strcmp(s->account, account) == 0))
                        return (section_t *)s;
        }
        return NULL;
}

static int parse_bool(const char *v, int *out)
{
        if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0) {
                *out = 1;
                return 0;
        }
        if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0) {
                *out = 0;
                return 0;
        }
        return -1;
}

static int set_key(po_profiles_t *ps, section_t *s, const char *key, const char *v,
                   char *err, size_t size)
{
        po_channel_profile_t *p = &s->p;

        if (strcmp(key, "default_category") == 0) {
                p->default_category = *v ? keep(ps, v, strlen(v)) : NULL;
        } else if (strcmp(key, "default_currency") == 0) {
                if (*v && (strlen(v) != 3 || v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' ||
                           v[1] > 'Z' || v[2] < 'A' || v[2] > 'Z'))
                        return snprintf(err, size,
                                        "default_currency must be an ISO 4217 code"),
                               -1;
                p->default_currency = *v ? keep(ps, v, 3) : NULL;
        } else if (strcmp(key, "require_email") == 0) {
                if (parse_bool(v, &p->require_email))
                        return snprintf(err, size, "require_email must be true or false"),
                               -1;
        } else if (strcmp(key, "require_customer") == 0) {
                if (parse_bool(v, &p->require_customer))
                        return snprintf(err, size,
                                        "require_customer must be true or false"),
                               -1;
        } else if (strcmp(key, "total_tolerance") == 0) {
                char *end = NULL;
                long long t;

                errno = 0;
                t = strtoll(v, &end, 10);
                if (errno || *end || t < 0 || t > 1000000)
                        return snprintf(err, size,
                                        "total_tolerance must be 0..1000000 minor units"),
                               -1;
                p->total_tolerance = t;
        } else if (strcmp(key, "require") == 0) {
                /* A comma-separated list of order attributes, replacing the inherited
                 * one. */
                const char *c = v;

                p->required_attr_count = 0;
                while (*c) {
                        const char *e = strchr(c, ',');
                        size_t len = e ? (size_t)(e - c) : strlen(c);
                        const char *t = c;

                        trim(&t, &len);
                        if (len) {
                                if (p->required_attr_count == 8)
                                        return snprintf(err, size,
                                                        "at most 8 required attributes"),
                                               -1;
                                p->required_attrs[p->required_attr_count] =
                                    keep(ps, t, len);
                                if (!p->required_attrs[p->required_attr_count++])
                                        return snprintf(err, size, "out of memory"), -1;
                        }
                        c = e ? e + 1 : c + strlen(c);
                }
        } else {
                return snprintf(err, size, "unknown key \"%s\"", key), -1;
        }
        return 0;
}

static int open_section(po_profiles_t *ps, const char *hdr, size_t len, section_t **cur,
                        char *err, size_t size)
{
        char name[200];
        const char *slash;
        section_t *base, *s;

        if (len >= sizeof(name))
                return snprintf(err, size, "section name too long"), -1;
        memcpy(name, hdr, len);
        name[len] = '\0';
        if (strcmp(name, "default") == 0) {
                *cur = &ps->s[0];
                return 0;
        }
        if (ps->n == PROFILES_MAX)
                return snprintf(err, size, "more than %d sections", PROFILES_MAX), -1;
        s = &ps->s[ps->n];
        if (strncmp(name, "channel ", 8) == 0 && name[8]) {
                if (find(ps, name + 8, NULL))
                        return snprintf(err, size, "[%.100s] appears twice", name), -1;
                s->channel = keep(ps, name + 8, strlen(name + 8));
                s->account = NULL;
                base = &ps->s[0];
        } else if (strncmp(name, "account ", 8) == 0 && (slash = strchr(name + 8, '/')) &&
                   slash > name + 8 && slash[1]) {
                s->channel = keep(ps, name + 8, (size_t)(slash - name - 8));
                s->account = keep(ps, slash + 1, strlen(slash + 1));
                if (!s->channel || !s->account)
                        return snprintf(err, size, "out of memory"), -1;
                if (find(ps, s->channel, s->account))
                        return snprintf(err, size, "[%.100s] appears twice", name), -1;
                base = find(ps, s->channel, NULL);
                if (!base)
                        base = &ps->s[0];
        } else {
                return snprintf(err, size,
                                "expected [default], [channel <name>] or "
                                "[account <channel>/<account>]"),
                       -1;
        }
        if (!s->channel)
                return snprintf(err, size, "out of memory"), -1;
        /* Sections inherit what is defined above them in the file. */
        s->p = base->p;
        ps->n++;
        *cur = s;
        return 0;
}

po_profiles_t *po_profiles_parse(const char *text, size_t len, const char *name,
                                 char *errstr, size_t errstr_size)
{
        po_profiles_t *ps = calloc(1, sizeof(*ps));
        section_t *cur;
        size_t i = 0, lineno = 0;
        char err[160];

        if (!ps) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        ps->n = 1;
        ps->s[0].p.default_category = "uncategorized";
        cur = &ps->s[0];
        while (i < len) {
                size_t end = i, l;
                const char *line, *eq;

                while (end < len && text[end] != '\n')
                        end++;
                line = text + i;
                l = end - i;
                i = end + 1;
                lineno++;
                trim(&line, &l);
                if (l == 0 || line[0] == '#')
                        continue;
                if (line[0] == '[') {
                        if (line[l - 1] != ']') {
                                snprintf(err, sizeof(err), "unclosed section header");
                                goto error;
                        }
                        if (open_section(ps, line + 1, l - 2, &cur, err, sizeof(err)))
                                goto error;
                        continue;
                }
                eq = memchr(line, '=', l);
                if (!eq) {
                        snprintf(err, sizeof(err), "expected key = value");
                        goto error;
                }
                {
                        char key[64], val[256];
                        const char *k = line, *v = eq + 1;
                        size_t kl = (size_t)(eq - line), vl = l - kl - 1;

                        trim(&k, &kl);
                        trim(&v, &vl);
                        if (kl == 0 || kl >= sizeof(key) || vl >= sizeof(val)) {
                                snprintf(err, sizeof(err), "key or value too long");
                                goto error;
                        }
                        memcpy(key, k, kl);
                        key[kl] = '\0';
                        memcpy(val, v, vl);
                        val[vl] = '\0';
                        if (set_key(ps, cur, key, val, err, sizeof(err)))
                                goto error;
                }
        }
        return ps;

error:
        snprintf(errstr, errstr_size, "%s:%zu: %s", name, lineno, err);
        po_profiles_destroy(ps);
        return NULL;
}

po_profiles_t *po_profiles_load(const char *path, char *errstr, size_t errstr_size)
{
        FILE *f;
        char *buf;
        long n;
        po_profiles_t *ps;

        if (!path)
                return po_profiles_parse("", 0, "(built-in)", errstr, errstr_size);
        f = fopen(path, "rb");
        if (!f) {
                snprintf(errstr, errstr_size, "cannot open %s: %s", path,
                         strerror(errno));
                return NULL;
        }
        if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || n > (1 << 20) ||
            fseek(f, 0, SEEK_SET)) {
                snprintf(errstr, errstr_size, "%s: unreadable or larger than 1 MiB",
                         path);
                fclose(f);
                return NULL;
        }
        buf = malloc((size_t)n + 1);
        if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
                snprintf(errstr, errstr_size, "%s: read failed", path);
                free(buf);
                fclose(f);
                return NULL;
        }
        fclose(f);
        ps = po_profiles_parse(buf, (size_t)n, path, errstr, errstr_size);
        free(buf);
        return ps;
}

const po_channel_profile_t *po_profiles_lookup(const po_profiles_t *ps,
                                               const char *channel, const char *account)
{
        const section_t *s = NULL;

        if (channel && account && *account)
                s = find(ps, channel, account);
        if (!s && channel)
                s = find(ps, channel, NULL);
        return s ? &s->p : &ps->s[0].p;
}
