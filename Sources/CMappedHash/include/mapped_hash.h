#ifndef WEBSEED_MAPPED_HASH_H
#define WEBSEED_MAPPED_HASH_H
#include <stddef.h>
#include <openssl/evp.h>

/// Hashes `length` bytes at `data` as consecutive blocks of `block` bytes (the last may be
/// shorter): the SHA-256 of each block goes into `leaves` (32 bytes each) through `sha256`,
/// which is left initialised for its next message, and, when `sha1` is not NULL, every byte
/// is also fed to `sha1`.
///
/// `data` may be a read-only mapping of a file. If the file is truncated under the mapping,
/// reading it raises SIGBUS; that SIGBUS is caught (for this call's range, on this thread)
/// and the call returns -1, with `leaves` partly written and both contexts mid-message
/// (reinitialise them). Returns 0 otherwise. A SIGBUS anywhere else goes to whatever handled
/// SIGBUS before the first call (by default, it ends the process). Returns -2 if libcrypto
/// fails.
int webseed_hash_blocks(const void *data, size_t length, size_t block, unsigned char *leaves,
                        EVP_MD_CTX *sha256, EVP_MD_CTX *sha1);

#endif
