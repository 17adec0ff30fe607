/* SPDX-License-Identifier: MIT */
/* Sealing for data at rest (the blob store) and in transit (cluster messages): AES-256-GCM, HKDF
 * (SHA-256), random bytes and 32-byte key files, all from one maintained library (nettle) behind
 * this one module. No key or plaintext ever reaches a log line or an error message; keys are
 * wiped after use. Every failure has its own sentence in the caller's struct dip_err, and a
 * failed authentication is DIP_EINTEGRITY with the output left zeroed, never garbage. */
#ifndef DIP_CRYPTO_H
#define DIP_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIP_KEY_BYTES   32 /* AES-256 */
#define DIP_NONCE_BYTES 12 /* GCM's 96-bit nonce */
#define DIP_TAG_BYTES   16
#define DIP_KEY_ID_HEX  17 /* 16 hex digits and a NUL */

/** A 32-byte key. Wipe with dip_key_wipe() when done. */
struct dip_key {
    uint8_t b[DIP_KEY_BYTES];
};

/** Fills `buf` with `len` bytes from the kernel's CSPRNG (getrandom). DIP_EIO on failure. */
int dip_random(void *buf, size_t len, struct dip_err *err);

/** Creates key file `path`: 32 random bytes, mode 0600, created exclusively (an existing file is
 * never overwritten: DIP_EINVAL) and fsynced. DIP_EIO when it cannot be written. */
int dip_key_create(const char *path, struct dip_err *err);
/** Loads key file `path` into `key`. Refused with a sentence naming the file: DIP_EIO when it
 * cannot be read, DIP_EINVAL when it is readable or writable by group or others (as OpenSSH refuses
 * an unprotected private key; chmod 600 fixes it), is not a regular file, or does not hold exactly
 * 32 bytes. */
int dip_key_load(const char *path, struct dip_key *key, struct dip_err *err);
/** Zeroes the key (explicit_bzero, which the compiler may not drop). NULL is a no-op. */
void dip_key_wipe(struct dip_key *key);
/** A public fingerprint of the key (HKDF with its own label, 8 bytes as 16 hex digits): tells two
 * keys apart in an error message without revealing either. */
void dip_key_id(const struct dip_key *key, char hex[DIP_KEY_ID_HEX]);
/** The 8 raw bytes behind dip_key_id(). */
void dip_key_id_bytes(const struct dip_key *key, uint8_t id[8]);

/** HKDF-SHA256 (RFC 5869): extract with `salt` (may be NULL/0), expand with `info` into `out_len`
 * bytes (at most 255 * 32; DIP_EINVAL beyond). */
int dip_hkdf_sha256(const void *ikm, size_t ikm_len, const void *salt, size_t salt_len,
                    const void *info, size_t info_len, void *out, size_t out_len,
                    struct dip_err *err);

/* ---- AEAD: AES-256-GCM with a caller-chosen nonce ---- */

/** An expanded key. Seal and open only read it, so one context serves many threads at once. */
typedef struct dip_aead dip_aead;

/** Expands `key` into a new context (which keeps a copy of the key for the one-shot calls).
 * DIP_ENOMEM. Free with dip_aead_free(), which wipes it. */
int dip_aead_new(const struct dip_key *key, dip_aead **out);
/** Wipes and frees. NULL is a no-op. */
void dip_aead_free(dip_aead *a);
/** Encrypts `len` bytes of `in` into `out` (len + DIP_TAG_BYTES bytes: ciphertext then tag),
 * authenticating `ad` too. `out` may equal `in`. The caller guarantees that `nonce` is never used
 * twice with the same key (a counter, or random with a bound on the number of messages). */
void dip_aead_seal(const dip_aead *a, const uint8_t nonce[DIP_NONCE_BYTES], const void *ad,
                   size_t ad_len, const void *in, size_t len, uint8_t *out);
/** Decrypts and verifies `len` bytes (ciphertext then tag) into `out` (len - DIP_TAG_BYTES bytes;
 * may equal `in`). DIP_EINTEGRITY "truncated" when len < DIP_TAG_BYTES, DIP_EINTEGRITY
 * "authentication failed" when the tag does not match (a wrong key, wrong associated data or an
 * altered byte); then `out` is zeroed. The tag is compared in constant time. */
int dip_aead_open(const dip_aead *a, const uint8_t nonce[DIP_NONCE_BYTES], const void *ad,
                  size_t ad_len, const void *in, size_t len, uint8_t *out, struct dip_err *err);

/* ---- Incremental AEAD, for messages too large to copy ---- */

/** The state of one message being sealed or opened piece by piece. A plain value: copy it to go
 * back to a point (a retried upload part). */
struct dip_aead_stream {
    const dip_aead *a;
    uint64_t st[12]; /* the library's GCM state */
};
/** Starts a message with `nonce` (the same rule as dip_aead_seal: never twice per key). */
void dip_aead_stream_init(struct dip_aead_stream *s, const dip_aead *a,
                          const uint8_t nonce[DIP_NONCE_BYTES]);
/** Adds associated data; every call but the last gives a multiple of 16 bytes, and all come
 * before the first encrypt/decrypt. */
void dip_aead_stream_ad(struct dip_aead_stream *s, const void *ad, size_t len);
/** Encrypts (or decrypts) the next `len` bytes; every call but the last gives a multiple of 16
 * bytes. `out` may equal `in`. */
void dip_aead_stream_encrypt(struct dip_aead_stream *s, const void *in, size_t len, uint8_t *out);
void dip_aead_stream_decrypt(struct dip_aead_stream *s, const void *in, size_t len, uint8_t *out);
/** The tag of everything so far. */
void dip_aead_stream_tag(struct dip_aead_stream *s, uint8_t tag[DIP_TAG_BYTES]);

/* ---- Sealed envelopes at rest: magic, key id, random nonce, ciphertext, tag ---- */

/* "DIPSEAL1" (8) | key id (8) | nonce (12) | zero (4) | ciphertext | tag (16). The header is
 * authenticated too (it leads the associated data), and its 32 bytes keep the ciphertext of a
 * part that starts at a multiple of 16 aligned to AES blocks. */
#define DIP_ENVELOPE_HEADER   32
#define DIP_ENVELOPE_OVERHEAD (DIP_ENVELOPE_HEADER + DIP_TAG_BYTES)

/** 1 when `data` starts with the envelope's magic. */
int dip_envelope_is_sealed(const void *data, size_t len);
/** Seals `len` bytes into `out` (len + DIP_ENVELOPE_OVERHEAD bytes) with a fresh random 96-bit
 * nonce and `ad` as associated data. Random nonces keep the chance of a repeat below 2^-32 for up
 * to 2^32 envelopes per key (NIST SP 800-38D, 8.3). `key_id` is dip_key_id_bytes() of the key.
 * DIP_EIO when the CSPRNG fails. */
int dip_envelope_seal(const dip_aead *a, const uint8_t key_id[8], const void *ad, size_t ad_len,
                      const void *in, size_t len, uint8_t *out, struct dip_err *err);
/** Opens an envelope into `out` (len - DIP_ENVELOPE_OVERHEAD bytes; *out_len gets that). Each
 * failure kind has its own DIP_EINTEGRITY sentence: "not sealed" (no magic), "truncated",
 * "sealed with another key (key id X, this key Y)", "authentication failed: altered or wrong
 * associated data". */
int dip_envelope_open(const dip_aead *a, const uint8_t key_id[8], const void *ad, size_t ad_len,
                      const void *in, size_t len, uint8_t *out, size_t *out_len,
                      struct dip_err *err);

/** Produces an envelope piece by piece from a plaintext that stays where it is, so a large blob
 * is sealed while it is written or uploaded instead of being copied. */
struct dip_envelope_writer {
    struct dip_aead_stream s, mark; /* now, and at `mark_pos` */
    const uint8_t *plain;
    uint64_t len, pos, mark_pos, enc; /* envelope bytes handed out; plaintext bytes encrypted */
    uint8_t header[DIP_ENVELOPE_HEADER];
    uint8_t tag[DIP_TAG_BYTES];
    uint8_t pend[16]; /* one block encrypted ahead of a reader that asked for fewer bytes */
    uint8_t mark_pend[16];
    uint64_t mark_enc;
    int have_tag;
    const void *ad;
    size_t ad_len;
};
/** Starts sealing `len` bytes of `plain` (borrowed until the last read) with a fresh random nonce
 * and `ad` (borrowed too). The envelope has len + DIP_ENVELOPE_OVERHEAD bytes. DIP_EIO when the
 * CSPRNG fails. */
int dip_envelope_writer_init(struct dip_envelope_writer *w, const dip_aead *a,
                             const uint8_t key_id[8], const void *ad, size_t ad_len,
                             const void *plain, size_t len, struct dip_err *err);
/** Copies the next up to `n` envelope bytes into `buf`; returns how many (0 at the end). */
size_t dip_envelope_writer_read(struct dip_envelope_writer *w, uint8_t *buf, size_t n);
/** Goes to envelope offset `pos` for the next read: the current position (which marks it), the
 * last marked one, or anywhere else (then sealing restarts from the beginning: the same nonce
 * and plaintext give the same bytes, so this is not a nonce reuse). */
void dip_envelope_writer_seek(struct dip_envelope_writer *w, uint64_t pos);

/** Opens an envelope piece by piece (a large blob decrypted in chunks). init checks the 32-byte
 * header (magic, key id: the same sentences as dip_envelope_open); update decrypts the next bytes
 * of ciphertext (every call but the last a multiple of 16 bytes); final compares the tag in
 * constant time. Nothing decrypted may be released before final returns 0. */
struct dip_envelope_reader {
    struct dip_aead_stream s;
};
int dip_envelope_reader_init(struct dip_envelope_reader *r, const dip_aead *a,
                             const uint8_t key_id[8], const void *ad, size_t ad_len,
                             const uint8_t header[DIP_ENVELOPE_HEADER], struct dip_err *err);
void dip_envelope_reader_update(struct dip_envelope_reader *r, const void *in, size_t len,
                                uint8_t *out);
int dip_envelope_reader_final(struct dip_envelope_reader *r, const uint8_t tag[DIP_TAG_BYTES],
                              struct dip_err *err);

/** HMAC-SHA256 of `msg` under `key` (RFC 2104), e.g. for SigV4 query signing. */
void dip_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                     uint8_t out[32]);

/** "nettle 3.8, GnuTLS 3.7.9": the linked crypto libraries (static string). */
const char *dip_crypto_version(void);

#ifdef __cplusplus
}
#endif
#endif
