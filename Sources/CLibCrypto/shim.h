#ifndef WEBSEED_CLIBCRYPTO_SHIM_H
#define WEBSEED_CLIBCRYPTO_SHIM_H
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/err.h>
#endif
