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
