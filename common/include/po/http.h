/* po_http: a tiny HTTP/1.0 responder for /healthz, /readyz and /metrics,
 * polled from a service's single-threaded loop (convention 8). It is not a
 * general web server: one request per connection, GET only, 4 KiB at most. */
#ifndef PO_HTTP_H
#define PO_HTTP_H

#include <stddef.h>

#include "po/dynbuf.h"
#include "po/err.h"

typedef struct po_http po_http_t;

/* Called for each GET; writes the body into body and returns the status
 * code (200, 404, 503...). content_type is preset to text/plain. */
typedef int (*po_http_handler_fn)(const char *path, po_dynbuf_t *body,
                                  const char **content_type, void *opaque);

/* Listens on 127.0.0.1:port (0 picks a free port; see po_http_port).
 * Returns NULL with a message in errstr on failure. */
po_http_t *po_http_new(int port, po_http_handler_fn handler, void *opaque, char *errstr,
                       size_t errstr_size);

/* The port actually bound. */
int po_http_port(const po_http_t *http);

/* Serves the connections waiting now, waiting at most timeout_ms for the
 * first one. A slow or hostile client is cut off after 200 ms. */
void po_http_poll(po_http_t *http, int timeout_ms);

/* Closes the socket and frees http. Accepts NULL. */
void po_http_destroy(po_http_t *http);

#endif
