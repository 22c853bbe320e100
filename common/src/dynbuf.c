#include "po/dynbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void po_dynbuf_init(po_dynbuf_t *b, size_t max)
{
        memset(b, 0, sizeof(*b));
        b->max = max;
}

void po_dynbuf_release(po_dynbuf_t *b)
{
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
}

void po_dynbuf_reset(po_dynbuf_t *b)
{
        b->len = 0;
        b->failed = 0;
        if (b->data)
                b->data[0] = '\0';
}

static po_err_t dynbuf_fail(po_dynbuf_t *b, po_err_t err)
{
        po_dynbuf_release(b);
        b->failed = 1;
        return err;
}

static po_err_t dynbuf_reserve(po_dynbuf_t *b, size_t extra)
{
        size_t need, cap;
        char *p;

        if (b->failed)
                return PO_ERR_NOMEM;
        if (extra > b->max || b->len > b->max - extra)
                return dynbuf_fail(b, PO_ERR_INVALID_ARG);
        need = b->len + extra + 1;
        if (need <= b->cap)
                return PO_OK;
        cap = b->cap ? b->cap : 64;
        while (cap < need)
                cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        p = realloc(b->data, cap);
        if (!p)
                return dynbuf_fail(b, PO_ERR_NOMEM);
        b->data = p;
        b->cap = cap;
        return PO_OK;
}

po_err_t po_dynbuf_reserve(po_dynbuf_t *b, size_t extra)
{
        return dynbuf_reserve(b, extra);
}

po_err_t po_dynbuf_add(po_dynbuf_t *b, const void *data, size_t len)
{
        po_err_t err = dynbuf_reserve(b, len);

        if (err)
                return err;
        if (len)
                memcpy(b->data + b->len, data, len);
        b->len += len;
        b->data[b->len] = '\0';
        return PO_OK;
}

po_err_t po_dynbuf_addf(po_dynbuf_t *b, const char *fmt, ...)
{
        va_list ap;
        int n;
        po_err_t err;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return dynbuf_fail(b, PO_ERR_INVALID_ARG);
        err = dynbuf_reserve(b, (size_t)n);
        if (err)
                return err;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return PO_OK;
}

const char *po_dynbuf_str(const po_dynbuf_t *b)
{
        return b->data ? b->data : "";
}
