/* error.c -- codes to names and messages, from the one table in xoscar.h. */
#include "xoscar/xoscar.h"

const char *xo_strerror(int err)
{
    switch (err) {
#define XO_ERR_MSG_(name, value, msg) \
    case value:                       \
        return msg;
        XO_ERRNO_MAP(XO_ERR_MSG_)
#undef XO_ERR_MSG_
    case 0:
        return "success";
    default:
        return "unknown error";
    }
}

const char *xo_err_name(int err)
{
    switch (err) {
#define XO_ERR_NAME_(name, value, msg) \
    case value:                        \
        return #name;
        XO_ERRNO_MAP(XO_ERR_NAME_)
#undef XO_ERR_NAME_
    case 0:
        return "OK";
    default:
        return "UNKNOWN";
    }
}
