/*
 * errno_name(err) -> "ENOENT", "EACCES"...: the `code` Node gives its own fs errors, so that
 * callers test the addon's errors the same way. Values not listed here are "EIO".
 */
#include <errno.h>
#include "errno-name.h"

const char *errno_name(int err) {
  switch (err) {
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ESPIPE: return "ESPIPE";
    case EOVERFLOW: return "EOVERFLOW";
    case ENXIO: return "ENXIO";
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EEXIST: return "EEXIST";
    case ENOTSUP: return "ENOTSUP";
    case ERANGE: return "ERANGE";
    case E2BIG: return "E2BIG";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOTDIR: return "ENOTDIR";
    case ELOOP: return "ELOOP";
    case ENOMEM: return "ENOMEM";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ESTALE: return "ESTALE";
    case ECANCELED: return "ECANCELED";
    default: return "EIO";
  }
}
