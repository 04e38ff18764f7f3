/*
 * N-API binding of libsecp256k1's BIP-340 module (schnorrsig + extrakeys), for fast verification
 * of Nostr event signatures. Every cryptographic operation is libsecp256k1's; this file only
 * moves bytes between JavaScript and the library and checks argument lengths.
 *
 *   verifySchnorr(msg32, xonlyPub32, sig64) -> boolean      (unparsable key -> false)
 *   verifyMany(items: N*128 bytes [msg32|pub32|sig64]) -> Uint8Array(N) of 0/1
 *   signSchnorr(msg32, seckey32, aux32) -> Uint8Array(64)   (deterministic given aux32)
 *   xonlyPublicKey(seckey32) -> Uint8Array(32)
 *   ecdhXonly(seckey32, xonlyPub32) -> Uint8Array(32): x of seckey32*P, P the even-y point with x = xonlyPub32
 *                                      (the shared x NIP-44 hashes); null when xonlyPub32 is not on the curve
 *
 * Arguments are Uint8Arrays (Buffers included); a wrong type or length throws a TypeError that
 * names the argument; an invalid secret key throws a RangeError.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <node_api.h>
#include <secp256k1.h>
#include <secp256k1_ecdh.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>

static secp256k1_context *ctx = NULL;

#define CALL(env, call)                                                              \
  do {                                                                               \
    if ((call) != napi_ok) {                                                         \
      napi_throw_error((env), "ERR_MARMOT_NATIVE_NAPI", "N-API call failed: " #call); \
      return NULL;                                                                   \
    }                                                                                \
  } while (0)

/* Reads argument `i` as a Uint8Array of exactly `want` bytes (any length when want == 0). */
static int bytes_arg(napi_env env, napi_value v, const char *name, size_t want, const unsigned char **out, size_t *len) {
  bool is_ta = false;
  char msg[128];
  if (napi_is_typedarray(env, v, &is_ta) == napi_ok && is_ta) {
    napi_typedarray_type type;
    size_t n;
    void *data;
    napi_value ab;
    size_t off;
    if (napi_get_typedarray_info(env, v, &type, &n, &data, &ab, &off) == napi_ok && type == napi_uint8_array) {
      if (want != 0 && n != want) {
        snprintf(msg, sizeof msg, "%s must be %zu bytes, got %zu", name, want, n);
        napi_throw_type_error(env, "ERR_MARMOT_NATIVE_ARG", msg);
        return 0;
      }
      *out = (const unsigned char *)data;
      if (len) *len = n;
      return 1;
    }
  }
  snprintf(msg, sizeof msg, "%s must be a Uint8Array", name);
  napi_throw_type_error(env, "ERR_MARMOT_NATIVE_ARG", msg);
  return 0;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < want) {
    napi_throw_type_error(env, "ERR_MARMOT_NATIVE_ARG", "too few arguments");
    return 0;
  }
  return 1;
}

static int verify_one(const unsigned char *msg32, const unsigned char *pub32, const unsigned char *sig64) {
  secp256k1_xonly_pubkey pk;
  if (!secp256k1_xonly_pubkey_parse(ctx, &pk, pub32)) return 0;
  return secp256k1_schnorrsig_verify(ctx, sig64, msg32, 32, &pk);
}

static napi_value verify_schnorr(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  const unsigned char *msg, *pub, *sig;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!bytes_arg(env, argv[0], "msg32", 32, &msg, NULL)) return NULL;
  if (!bytes_arg(env, argv[1], "xonlyPub32", 32, &pub, NULL)) return NULL;
  if (!bytes_arg(env, argv[2], "sig64", 64, &sig, NULL)) return NULL;
  CALL(env, napi_get_boolean(env, verify_one(msg, pub, sig) == 1, &result));
  return result;
}

static napi_value verify_many(napi_env env, napi_callback_info info) {
  napi_value argv[1], ab, result;
  const unsigned char *items;
  size_t len, n, i;
  void *out;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (!bytes_arg(env, argv[0], "items", 0, &items, &len)) return NULL;
  if (len % 128 != 0) {
    napi_throw_type_error(env, "ERR_MARMOT_NATIVE_ARG", "items must be a multiple of 128 bytes (msg32|pub32|sig64 each)");
    return NULL;
  }
  n = len / 128;
  CALL(env, napi_create_arraybuffer(env, n, &out, &ab));
  for (i = 0; i < n; i++) {
    const unsigned char *p = items + 128 * i;
    ((unsigned char *)out)[i] = (unsigned char)(verify_one(p, p + 32, p + 64) == 1);
  }
  CALL(env, napi_create_typedarray(env, napi_uint8_array, n, ab, 0, &result));
  return result;
}

static napi_value new_bytes(napi_env env, const unsigned char *src, size_t n) {
  napi_value ab, result;
  void *out;
  CALL(env, napi_create_arraybuffer(env, n, &out, &ab));
  memcpy(out, src, n);
  CALL(env, napi_create_typedarray(env, napi_uint8_array, n, ab, 0, &result));
  return result;
}

static napi_value sign_schnorr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  const unsigned char *msg, *sk, *aux;
  secp256k1_keypair kp;
  unsigned char sig[64];
  int ok;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!bytes_arg(env, argv[0], "msg32", 32, &msg, NULL)) return NULL;
  if (!bytes_arg(env, argv[1], "seckey32", 32, &sk, NULL)) return NULL;
  if (!bytes_arg(env, argv[2], "aux32", 32, &aux, NULL)) return NULL;
  if (!secp256k1_keypair_create(ctx, &kp, sk)) {
    napi_throw_range_error(env, "ERR_MARMOT_NATIVE_SECKEY", "seckey32 is not a valid secp256k1 secret key");
    return NULL;
  }
  ok = secp256k1_schnorrsig_sign32(ctx, sig, msg, &kp, aux);
  memset(&kp, 0, sizeof kp);
  if (!ok) {
    napi_throw_error(env, "ERR_MARMOT_NATIVE_SIGN", "secp256k1_schnorrsig_sign32 failed");
    return NULL;
  }
  return new_bytes(env, sig, 64);
}

static napi_value xonly_public_key(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  const unsigned char *sk;
  secp256k1_keypair kp;
  secp256k1_xonly_pubkey xpk;
  unsigned char out[32];
  if (!get_args(env, info, 1, argv)) return NULL;
  if (!bytes_arg(env, argv[0], "seckey32", 32, &sk, NULL)) return NULL;
  if (!secp256k1_keypair_create(ctx, &kp, sk)) {
    napi_throw_range_error(env, "ERR_MARMOT_NATIVE_SECKEY", "seckey32 is not a valid secp256k1 secret key");
    return NULL;
  }
  if (!secp256k1_keypair_xonly_pub(ctx, &xpk, NULL, &kp) || !secp256k1_xonly_pubkey_serialize(ctx, out, &xpk)) {
    memset(&kp, 0, sizeof kp);
    napi_throw_error(env, "ERR_MARMOT_NATIVE_KEY", "could not derive the x-only public key");
    return NULL;
  }
  memset(&kp, 0, sizeof kp);
  return new_bytes(env, out, 32);
}

/* secp256k1_ecdh hash function that keeps the shared point's x coordinate unhashed (what NIP-44 uses). */
static int copy_x(unsigned char *output, const unsigned char *x32, const unsigned char *y32, void *data) {
  (void)y32;
  (void)data;
  memcpy(output, x32, 32);
  return 1;
}

static napi_value ecdh_xonly(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  const unsigned char *sk, *xpub;
  unsigned char compressed[33], shared[32];
  secp256k1_pubkey pk;
  int ok;
  if (!get_args(env, info, 2, argv)) return NULL;
  if (!bytes_arg(env, argv[0], "seckey32", 32, &sk, NULL)) return NULL;
  if (!bytes_arg(env, argv[1], "xonlyPub32", 32, &xpub, NULL)) return NULL;
  compressed[0] = 0x02; /* the even-y point of the x-only key */
  memcpy(compressed + 1, xpub, 32);
  if (!secp256k1_ec_pubkey_parse(ctx, &pk, compressed, 33)) {
    CALL(env, napi_get_null(env, &result));
    return result;
  }
  ok = secp256k1_ecdh(ctx, shared, &pk, sk, copy_x, NULL);
  if (!ok) {
    napi_throw_range_error(env, "ERR_MARMOT_NATIVE_SECKEY", "seckey32 is not a valid secp256k1 secret key");
    return NULL;
  }
  result = new_bytes(env, shared, 32);
  memset(shared, 0, sizeof shared);
  return result;
}
static int export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, name, fn) == napi_ok;
}

/* One context per process, shared by every thread (worker threads load the addon again): it is
   created and randomized (side-channel blinding only; results do not depend on it) exactly once,
   and is read-only afterwards, which libsecp256k1 documents as safe to share. */
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void create_context(void) {
  unsigned char seed[32];
  FILE *f;
  secp256k1_context *c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
  if (c == NULL) return;
  f = fopen("/dev/urandom", "rb");
  if (f != NULL) {
    if (fread(seed, 1, sizeof seed, f) == sizeof seed && !secp256k1_context_randomize(c, seed)) {
      secp256k1_context_destroy(c);
      c = NULL;
    }
    fclose(f);
    memset(seed, 0, sizeof seed);
  }
  ctx = c;
}

NAPI_MODULE_INIT() {
  napi_value library;
  pthread_once(&ctx_once, create_context);
  if (ctx == NULL) {
    napi_throw_error(env, "ERR_MARMOT_NATIVE_INIT", "secp256k1_context_create failed");
    return NULL;
  }
  if (!export_fn(env, exports, "verifySchnorr", verify_schnorr) || !export_fn(env, exports, "verifyMany", verify_many) ||
      !export_fn(env, exports, "signSchnorr", sign_schnorr) || !export_fn(env, exports, "xonlyPublicKey", xonly_public_key) ||
      !export_fn(env, exports, "ecdhXonly", ecdh_xonly))
    return NULL;
  if (napi_create_string_utf8(env, "libsecp256k1 (system library)", NAPI_AUTO_LENGTH, &library) != napi_ok ||
      napi_set_named_property(env, exports, "library", library) != napi_ok)
    return NULL;
  return exports;
}
