#include "po/err.h"

const char *po_err_str(po_err_t err)
{
        switch (err) {
        case PO_OK:
                return "success";
        case PO_ERR_INVALID_ARG:
                return "invalid argument";
        case PO_ERR_NOMEM:
                return "out of memory";
        case PO_ERR_IO:
                return "i/o error";
        case PO_ERR_TIMEOUT:
                return "timed out";
        case PO_ERR_DEPENDENCY:
                return "dependency error";
        case PO_ERR_BAD_INPUT:
                return "bad input";
        }
        return "unknown error";
}
