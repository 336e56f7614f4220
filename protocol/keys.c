/*
 * keys: key files (include/sharehub/keys.h). Files are written to a temporary
 * name and renamed, so a crash never leaves half a key; secret files are
 * opened with mode 0600 from the start rather than chmod-ed afterwards.
 */
#include "sharehub/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

int shub_keys_z85_decode(const char *z85, uint8_t out[SHUB_KEY_SIZE])
{
    if (!z85 || strlen(z85) != 40)
        return SHUB_EVALUE;
    uint8_t tmp[SHUB_KEY_SIZE];
    if (!zmq_z85_decode(tmp, z85))
        return SHUB_EVALUE;
    memcpy(out, tmp, sizeof tmp);
    return 0;
}

void shub_keys_z85_encode(const uint8_t key[SHUB_KEY_SIZE], char out[SHUB_KEY_Z85])
{
    zmq_z85_encode(out, key, SHUB_KEY_SIZE);
}

int shub_keys_generate(shub_curve_keys_t *keys, shub_err_t *err)
{
    char pub[SHUB_KEY_Z85], sec[SHUB_KEY_Z85];
    if (zmq_curve_keypair(pub, sec) != 0)
        return shub_err_set(err, SHUB_ECRYPTO, "curve keypair: %s", zmq_strerror(errno));
    shub_keys_z85_decode(pub, keys->public_key);
    shub_keys_z85_decode(sec, keys->secret_key);
    memcpy(keys->public_z85, pub, sizeof pub);
    sodium_memzero(sec, sizeof sec);
    return 0;
}

int shub_keys_write_file(const char *path, const void *data, size_t n, unsigned mode,
                         bool force, shub_err_t *err)
{
    if (!force && access(path, F_OK) == 0)
        return shub_err_set(err, SHUB_EEXIST, "'%s' exists; not overwriting it", path);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return shub_err_set(err, SHUB_EINVAL, "path '%s' too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    if (fd < 0)
        return shub_err_set(err, SHUB_EIO, "cannot create '%s': %s", path,
                            strerror(errno));
    bool ok = write(fd, data, n) == (ssize_t)n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return shub_err_set(err, SHUB_EIO, "cannot write '%s': %s", path, strerror(e));
    }
    return 0;
}

static int write_file(const char *path, const char *text, mode_t mode, bool force,
                      shub_err_t *err)
{
    return shub_keys_write_file(path, text, strlen(text), mode, force, err);
}

static int key_path(char *out, size_t size, const char *dir, const char *name, const char *ext,
                    shub_err_t *err)
{
    if (snprintf(out, size, "%s/%s%s", dir, name, ext) >= (int)size)
        return shub_err_set(err, SHUB_EINVAL, "path '%s/%s%s' too long", dir, name, ext);
    return 0;
}

int shub_keys_write(const char *dir, const char *name, const shub_curve_keys_t *keys,
                    bool force, shub_err_t *err)
{
    char pub_path[4096], sec_path[4096], text[SHUB_KEY_Z85 + 1];
    int rc;
    if ((rc = key_path(pub_path, sizeof pub_path, dir, name, ".pub", err)) ||
        (rc = key_path(sec_path, sizeof sec_path, dir, name, ".key", err)))
        return rc;
    if (!force && (access(pub_path, F_OK) == 0 || access(sec_path, F_OK) == 0))
        return shub_err_set(err, SHUB_EEXIST, "keys for '%s' exist in '%s'; not overwriting",
                            name, dir);
    shub_keys_z85_encode(keys->secret_key, text);
    strcat(text, "\n");
    rc = write_file(sec_path, text, 0600, force, err);
    sodium_memzero(text, sizeof text);
    if (rc)
        return rc;
    snprintf(text, sizeof text, "%s\n", keys->public_z85);
    return write_file(pub_path, text, 0644, force, err);
}

/* Reads the first line of a small file into buf (without the newline). */
static int read_line(const char *path, char *buf, size_t size, bool secret, shub_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return shub_err_set(err, errno == ENOENT ? SHUB_ENOTFOUND : SHUB_EIO,
                            "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return shub_err_set(err, SHUB_EIO, "cannot stat '%s': %s", path, strerror(errno));
    }
    if (secret && (st.st_mode & 077)) {
        close(fd);
        return shub_err_set(err, SHUB_ECRYPTO,
                            "secret key '%s' is readable by others (mode %03o); chmod 600 it",
                            path, (unsigned)(st.st_mode & 0777));
    }
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return shub_err_set(err, SHUB_EIO, "cannot read '%s': %s", path, strerror(errno));
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

int shub_keys_read_public(const char *path, shub_curve_keys_t *keys, shub_err_t *err)
{
    char line[128];
    int rc = read_line(path, line, sizeof line, false, err);
    if (rc)
        return rc;
    if (shub_keys_z85_decode(line, keys->public_key) != 0)
        return shub_err_set(err, SHUB_ECRYPTO, "'%s' does not hold a z85 public key", path);
    memcpy(keys->public_z85, line, SHUB_KEY_Z85 - 1);
    keys->public_z85[SHUB_KEY_Z85 - 1] = '\0';
    return 0;
}

int shub_keys_read_pair(const char *dir, const char *name, shub_curve_keys_t *keys,
                        shub_err_t *err)
{
    char pub_path[4096], sec_path[4096], line[128];
    int rc;
    if ((rc = key_path(pub_path, sizeof pub_path, dir, name, ".pub", err)) ||
        (rc = key_path(sec_path, sizeof sec_path, dir, name, ".key", err)) ||
        (rc = shub_keys_read_public(pub_path, keys, err)) ||
        (rc = read_line(sec_path, line, sizeof line, true, err)))
        return rc;
    rc = shub_keys_z85_decode(line, keys->secret_key);
    sodium_memzero(line, sizeof line);
    if (rc)
        return shub_err_set(err, SHUB_ECRYPTO, "'%s' does not hold a z85 secret key", sec_path);
    uint8_t derived[SHUB_KEY_SIZE];
    crypto_scalarmult_base(derived, keys->secret_key);
    if (sodium_memcmp(derived, keys->public_key, SHUB_KEY_SIZE) != 0)
        return shub_err_set(err, SHUB_ECRYPTO, "'%s' and '%s' are not one keypair", pub_path,
                            sec_path);
    return 0;
}

int shub_keys_read_hex(const char *path, uint8_t *out, size_t size, bool secret,
                       shub_err_t *err)
{
    char line[512];
    int rc = read_line(path, line, sizeof line, secret, err);
    if (rc)
        return rc;
    size_t got = 0;
    rc = sodium_hex2bin(out, size, line, strlen(line), NULL, &got, NULL);
    sodium_memzero(line, sizeof line);
    if (rc != 0 || got != size)
        return shub_err_set(err, SHUB_ECRYPTO, "'%s' does not hold %zu bytes of hex", path,
                            size);
    return 0;
}

static int write_hex(const char *path, const uint8_t *data, size_t size, mode_t mode,
                     shub_err_t *err)
{
    char hex[2 * SHUB_SIGN_SECRET + 2];
    sodium_bin2hex(hex, sizeof hex - 1, data, size);
    strcat(hex, "\n");
    int rc = write_file(path, hex, mode, false, err);
    sodium_memzero(hex, sizeof hex);
    return rc;
}

int shub_keys_ensure_broker(const char *dir, shub_err_t *err)
{
    if (sodium_init() < 0)
        return shub_err_set(err, SHUB_ECRYPTO, "libsodium failed to initialise");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return shub_err_set(err, SHUB_EIO, "cannot create '%s': %s", dir, strerror(errno));
    char path[4096], path2[4096];
    int rc;

    if ((rc = key_path(path, sizeof path, dir, "broker", ".key", err)))
        return rc;
    if (access(path, F_OK) != 0) {
        shub_curve_keys_t keys;
        if ((rc = shub_keys_generate(&keys, err)) ||
            (rc = shub_keys_write(dir, "broker", &keys, false, err)))
            return rc;
        sodium_memzero(&keys, sizeof keys);
    }
    if ((rc = key_path(path, sizeof path, dir, "checkpoint", ".key", err)) ||
        (rc = key_path(path2, sizeof path2, dir, "checkpoint", ".pub", err)))
        return rc;
    if (access(path, F_OK) != 0) {
        uint8_t pk[SHUB_SIGN_PUBLIC], sk[SHUB_SIGN_SECRET];
        crypto_sign_keypair(pk, sk);
        rc = write_hex(path, sk, sizeof sk, 0600, err);
        sodium_memzero(sk, sizeof sk);
        if (rc || (rc = write_hex(path2, pk, sizeof pk, 0644, err)))
            return rc;
    }
    if ((rc = key_path(path, sizeof path, dir, "subject", ".key", err)))
        return rc;
    if (access(path, F_OK) != 0) {
        uint8_t key[32];
        randombytes_buf(key, sizeof key);
        rc = write_hex(path, key, sizeof key, 0600, err);
        sodium_memzero(key, sizeof key);
        if (rc)
            return rc;
    }
    return 0;
}
