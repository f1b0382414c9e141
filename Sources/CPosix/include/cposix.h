#ifndef WEBSEED_CPOSIX_H
#define WEBSEED_CPOSIX_H
#include <sys/types.h>

/// pread that never waits for the disk: -1 with errno EAGAIN when the data is not in the
/// page cache (preadv2 with RWF_NOWAIT, Linux 4.14+). Elsewhere it always says EAGAIN.
ssize_t webseed_pread_cached(int fd, void *buffer, size_t length, off_t offset);

#endif
