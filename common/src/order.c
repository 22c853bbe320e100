#include "po/order.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK 4096

struct po_arena_block {
        struct po_arena_block *next;
        size_t used, size;
        max_align_t data[];
};

void po_arena_init(po_arena_t *a, size_t limit)
{
        a->head = NULL;
        a->total = 0;
        a->limit = limit;
}

void po_arena_release(po_arena_t *a)
{
        struct po_arena_block *b = a->head, *next;

        for (; b; b = next) {
                next = b->next;
                free(b);
        }
        a->head = NULL;
        a->total = 0;
}

void *po_arena_alloc(po_arena_t *a, size_t size)
{
        const size_t align = sizeof(max_align_t);
        struct po_arena_block *b = a->head;
        size_t rounded;
        void *p;

        if (size > a->limit || a->total > a->limit - size)
                return NULL;
        rounded = (size + align - 1) / align * align;
        if (!b || b->size - b->used < rounded) {
                size_t bsize = rounded > ARENA_BLOCK ? rounded : ARENA_BLOCK;

                b = malloc(sizeof(*b) + bsize);
                if (!b)
                        return NULL;
                b->used = 0;
                b->size = bsize;
                b->next = a->head;
                a->head = b;
        }
        p = (char *)b->data + b->used;
        b->used += rounded;
        a->total += size;
        return p;
}

char *po_arena_strndup(po_arena_t *a, const char *s, size_t len)
{
        char *p = len + 1 > len ? po_arena_alloc(a, len + 1) : NULL;

        if (!p)
                return NULL;
        memcpy(p, s, len);
        p[len] = '\0';
        return p;
}

void po_order_init(po_order_t *o, size_t arena_limit)
{
        memset(o, 0, sizeof(*o));
        po_arena_init(&o->arena, arena_limit);
}

void po_order_release(po_order_t *o)
{
        po_arena_release(&o->arena);
        memset(o, 0, sizeof(*o));
}

int64_t po_order_value(const po_order_t *o)
{
        po_i128 v = 0;
        size_t i;

        for (i = 0; i < o->line_count; i++)
                v += (po_i128)o->lines[i].unit_price * o->lines[i].quantity;
        return v > INT64_MAX ? INT64_MAX : (v < 0 ? 0 : (int64_t)v);
}
