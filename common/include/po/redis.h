/* po_redis: what the Redis users of common/ (reference data, usage counters)
 * share. */
#ifndef PO_REDIS_H
#define PO_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "po/err.h"

/* Puts "redis: <why>" in errstr: the error reply r, else the connection's
 * error, else "unexpected reply"; frees r (may be NULL); returns
 * PO_ERR_DEPENDENCY. */
po_err_t po_redis_fail(redisContext *rc, redisReply *r, char *errstr, size_t errstr_size);

#endif
