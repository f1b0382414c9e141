#ifndef WEBSEED_CLIBCRYPTO_SHIM_H
#define WEBSEED_CLIBCRYPTO_SHIM_H
#include <openssl/evp.h>
#include <openssl/crypto.h>
#endif
