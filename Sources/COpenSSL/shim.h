#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H

// The OpenSSL 3 headers BrokerCrypto uses, plus wrappers for the few things Swift cannot call
// directly because OpenSSL defines them as macros. Every symbol defined here starts with
// `COpenSSL_`.

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/encoder.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/// `EVP_PKEY_KEYPAIR` (a macro built from other macros).
static inline int COpenSSL_EVP_PKEY_KEYPAIR(void) { return EVP_PKEY_KEYPAIR; }

/// `EVP_PKEY_PUBLIC_KEY` (a macro built from other macros).
static inline int COpenSSL_EVP_PKEY_PUBLIC_KEY(void) { return EVP_PKEY_PUBLIC_KEY; }

/// `OPENSSL_MODULES_DIR` for `OpenSSL_version`: where providers are looked for by default.
static inline int COpenSSL_MODULES_DIR(void) { return OPENSSL_MODULES_DIR; }

/// `OSSL_STORE_INFO_PKEY`.
static inline int COpenSSL_STORE_INFO_PKEY(void) { return OSSL_STORE_INFO_PKEY; }

/// `OPENSSL_free` (a macro that passes the call site to `CRYPTO_free`).
static inline void COpenSSL_free(void *pointer) { OPENSSL_free(pointer); }

/// `BIO_get_mem_data` (a macro over `BIO_ctrl`).
static inline long COpenSSL_BIO_get_mem_data(BIO *bio, char **data) {
    return BIO_get_mem_data(bio, data);
}

/// `XN_FLAG_RFC2253` (a macro built from other macros).
static inline unsigned long COpenSSL_XN_FLAG_RFC2253(void) { return XN_FLAG_RFC2253; }

/// A PEM passphrase callback that never prompts: encrypted keys fail to load instead of
/// blocking a daemon on a terminal read.
static inline int COpenSSL_no_passphrase(char *buffer, int size, int rwflag, void *userdata) {
    (void)buffer; (void)size; (void)rwflag; (void)userdata;
    return -1;
}

#endif
