/* The name of an errno value (errno-name.c), for the `code` of the errors the addon throws. */
#ifndef COFFER_ERRNO_NAME_H
#define COFFER_ERRNO_NAME_H
const char *errno_name(int err);
#endif
