#include "po/redis.h"

#include <stdio.h>

po_err_t po_redis_fail(redisContext *rc, redisReply *r, char *errstr, size_t errstr_size)
{
        snprintf(errstr, errstr_size, "redis: %s",
                 r && r->type == REDIS_REPLY_ERROR ? r->str
                 : rc->err                         ? rc->errstr
                                                   : "unexpected reply");
        if (r)
                freeReplyObject(r);
        return PO_ERR_DEPENDENCY;
}

void po_redis_drain(redisContext *rc, size_t n)
{
        while (n) {
                redisReply *r = NULL;

                if (redisGetReply(rc, (void **)&r) != REDIS_OK)
                        break;
                freeReplyObject(r);
                n--;
        }
}
