#define _GNU_SOURCE
#include "cposix.h"
#include <errno.h>
#include <sys/uio.h>

ssize_t webseed_pread_cached(int fd, void *buffer, size_t length, off_t offset) {
#if defined(__linux__) && defined(RWF_NOWAIT)
    struct iovec iov = { buffer, length };
    return preadv2(fd, &iov, 1, offset, RWF_NOWAIT);
#else
    (void)fd; (void)buffer; (void)length; (void)offset;
    errno = EAGAIN;
    return -1;
#endif
}
