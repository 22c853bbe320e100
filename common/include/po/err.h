/* po_err: the project's one error scheme. 0 is success. */
#ifndef PO_ERR_H
#define PO_ERR_H

typedef enum po_err {
        PO_OK = 0,
        PO_ERR_INVALID_ARG, /* a caller passed something out of contract */
        PO_ERR_NOMEM,       /* an allocation failed */
        PO_ERR_IO,          /* a socket or file operation failed */
        PO_ERR_TIMEOUT,     /* a dependency did not answer in time */
        PO_ERR_DEPENDENCY,  /* a dependency answered with an error */
        PO_ERR_BAD_INPUT,   /* external input failed to parse or validate */
} po_err_t;

/* Returns a static, lower-case description of err; never NULL. */
const char *po_err_str(po_err_t err);

#endif
