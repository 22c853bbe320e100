#define _GNU_SOURCE /* accept4 */
#include "po/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define HTTP_MAX_REQUEST 4096
#define HTTP_MAX_BODY (1024 * 1024)
#define HTTP_CLIENT_TIMEOUT_MS 200

struct po_http {
        int fd;
        int port;
        po_http_handler_fn handler;
        void *opaque;
        po_dynbuf_t body;
        po_dynbuf_t out;
};

po_http_t *po_http_new(int port, po_http_handler_fn handler, void *opaque, char *errstr,
                       size_t errstr_size)
{
        struct sockaddr_in addr;
        socklen_t len = sizeof(addr);
        po_http_t *http;
        int one = 1;

        http = calloc(1, sizeof(*http));
        if (!http) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        http->handler = handler;
        http->opaque = opaque;
        po_dynbuf_init(&http->body, HTTP_MAX_BODY);
        po_dynbuf_init(&http->out, HTTP_MAX_BODY + 512);
        http->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (http->fd < 0) {
                snprintf(errstr, errstr_size, "socket: %s", strerror(errno));
                goto error_free;
        }
        setsockopt(http->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        memset(&addr, 0, sizeof(addr));
        addr.sin_family = AF_INET;
        addr.sin_port = htons((uint16_t)port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(http->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
            listen(http->fd, 64) < 0) {
                snprintf(errstr, errstr_size, "listen on 127.0.0.1:%d: %s", port,
                         strerror(errno));
                goto error_close;
        }
        getsockname(http->fd, (struct sockaddr *)&addr, &len);
        http->port = ntohs(addr.sin_port);
        return http;

error_close:
        close(http->fd);
error_free:
        free(http);
        return NULL;
}

int po_http_port(const po_http_t *http)
{
        return http->port;
}

/* Reads until the end of the request head, the size limit or the deadline.
 * Returns the bytes read, or -1. */
static ssize_t read_request(int fd, char *buf, size_t size)
{
        size_t n = 0;

        while (n < size - 1) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                ssize_t r;

                if (poll(&p, 1, HTTP_CLIENT_TIMEOUT_MS) <= 0)
                        return -1;
                r = recv(fd, buf + n, size - 1 - n, 0);
                if (r <= 0)
                        return -1;
                n += (size_t)r;
                buf[n] = '\0';
                if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
                        return (ssize_t)n;
        }
        return -1;
}

static void write_all(int fd, const char *data, size_t len)
{
        while (len > 0) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                ssize_t w;

                if (poll(&p, 1, HTTP_CLIENT_TIMEOUT_MS) <= 0)
                        return;
                w = send(fd, data, len, MSG_NOSIGNAL);
                if (w <= 0)
                        return;
                data += w;
                len -= (size_t)w;
        }
}

static const char *status_text(int status)
{
        switch (status) {
        case 200:
                return "OK";
        case 400:
                return "Bad Request";
        case 404:
                return "Not Found";
        case 405:
                return "Method Not Allowed";
        case 503:
                return "Service Unavailable";
        default:
                return "Internal Server Error";
        }
}

static void serve_one(po_http_t *http, int fd)
{
        char req[HTTP_MAX_REQUEST];
        char path[256];
        const char *ctype = "text/plain; version=0.0.4; charset=utf-8";
        const char *sp, *end;
        int status;

        po_dynbuf_reset(&http->body);
        po_dynbuf_reset(&http->out);
        if (read_request(fd, req, sizeof(req)) < 0)
                return;
        if (strncmp(req, "GET ", 4) != 0) {
                status = 405;
                po_dynbuf_addf(&http->body, "only GET is served here\n");
        } else {
                sp = req + 4;
                end = strpbrk(sp, " ?\r\n");
                if (!end || (size_t)(end - sp) >= sizeof(path)) {
                        status = 400;
                        po_dynbuf_addf(&http->body, "bad request line\n");
                } else {
                        memcpy(path, sp, (size_t)(end - sp));
                        path[end - sp] = '\0';
                        status = http->handler(path, &http->body, &ctype, http->opaque);
                }
        }
        if (http->body.failed) {
                status = 500;
                po_dynbuf_reset(&http->body);
        }
        po_dynbuf_addf(&http->out,
                       "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n",
                       status, status_text(status), ctype, http->body.len);
        po_dynbuf_add(&http->out, po_dynbuf_str(&http->body), http->body.len);
        if (!http->out.failed)
                write_all(fd, http->out.data, http->out.len);
}

void po_http_poll(po_http_t *http, int timeout_ms)
{
        struct pollfd p = {.fd = http->fd, .events = POLLIN};
        int i;

        if (poll(&p, 1, timeout_ms) <= 0)
                return;
        /* Bounded, so a flood of connections cannot starve the service loop. */
        for (i = 0; i < 16; i++) {
                int fd = accept4(http->fd, NULL, NULL, SOCK_CLOEXEC);

                if (fd < 0)
                        return;
                serve_one(http, fd);
                close(fd);
        }
}

void po_http_destroy(po_http_t *http)
{
        if (!http)
                return;
        close(http->fd);
        po_dynbuf_release(&http->body);
        po_dynbuf_release(&http->out);
        free(http);
}
