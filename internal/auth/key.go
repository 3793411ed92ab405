// Package auth holds Abacus API keys: their format, their permissions, and a
// store that keeps them in a JetStream KV bucket with a watched in-memory
// index, so that every replica verifies a key with one digest and one map
// lookup, and a key created or revoked on one replica takes effect on all of
// them within a second.
//
// A key's plaintext exists only in the answer to its creation. The bucket
// holds its SHA-256 digest (HMAC-SHA256 with a server-side pepper when one is
// configured) and a short display prefix; logs and other answers carry the
// key id or the prefix, never the key.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"math/big"
	"strings"
)

// Key format: "rac_" + 43 base62 characters (32 random bytes) + 6 base62
// characters of CRC-32 over what precedes them. The checksum lets a parser
// reject a mistyped or truncated key without any lookup, and the fixed prefix
// lets secret scanners recognise a leaked key.
const (
	KeyPrefix    = "rac_"
	secretBytes  = 32
	secretChars  = 43 // ceil(256 / log2(62))
	checkChars   = 6  // ceil(32 / log2(62))
	KeyLen       = len(KeyPrefix) + secretChars + checkChars
	displayChars = 8 // secret characters shown in a key's display prefix
)

const base62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" // as math/big spells base 62

// ErrMalformed is returned for a string that is not a well-formed key: wrong
// length, prefix, alphabet or checksum.
var ErrMalformed = errors.New("malformed API key")

// GenerateKey returns a new random key.
func GenerateKey() (string, error) {
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return formatKey(b), nil
}

func formatKey(b [secretBytes]byte) string {
	var out [KeyLen]byte
	copy(out[:], KeyPrefix)
	encodeBase62(out[len(KeyPrefix):len(KeyPrefix)+secretChars], new(big.Int).SetBytes(b[:]))
	sum := crc32.ChecksumIEEE(out[:len(KeyPrefix)+secretChars])
	encodeBase62(out[len(KeyPrefix)+secretChars:], new(big.Int).SetUint64(uint64(sum)))
	return string(out[:])
}

// encodeBase62 writes n into dst, most significant digit first, left-padded
// with '0'. dst must be wide enough.
func encodeBase62(dst []byte, n *big.Int) {
	base := big.NewInt(62)
	var m big.Int
	for i := len(dst) - 1; i >= 0; i-- {
		n.DivMod(n, base, &m)
		dst[i] = base62[m.Int64()]
	}
}

// ParseKey checks that s is a well-formed key (length, prefix, alphabet and
// checksum). It does not allocate, and looks nothing up.
func ParseKey(s string) error {
	if len(s) != KeyLen || !strings.HasPrefix(s, KeyPrefix) {
		return ErrMalformed
	}
	for i := len(KeyPrefix); i < KeyLen; i++ {
		if !isBase62(s[i]) {
			return ErrMalformed
		}
	}
	// CRC-32 (IEEE) by table over the string: crc32.ChecksumIEEE would make
	// a []byte escape, and this runs on every request.
	crc := ^uint32(0)
	for i := range len(KeyPrefix) + secretChars {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ (crc >> 8)
	}
	sum := uint64(^crc)
	var got uint64
	for i := len(KeyPrefix) + secretChars; i < KeyLen; i++ {
		got = got*62 + uint64(strings.IndexByte(base62, s[i]))
	}
	if got != sum { // the checksum is not secret: no need for constant time
		return ErrMalformed
	}
	return nil
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// DisplayPrefix is the non-secret part of a key shown to humans in listings:
// "rac_" and the first 8 secret characters (about 48 of its 256 bits).
func DisplayPrefix(key string) string {
	if len(key) < len(KeyPrefix)+displayChars {
		return KeyPrefix
	}
	return key[:len(KeyPrefix)+displayChars]
}

// Digest is a key's stored form.
type Digest [sha256.Size]byte

// hasher digests keys: HMAC-SHA256 with the pepper when one is set, else
// SHA-256. It is written out over sha256.Sum256 with stack buffers so that
// verifying a key does not allocate; a test checks it against crypto/hmac.
type hasher struct {
	peppered bool
	ipad     [sha256.BlockSize]byte
	opad     [sha256.BlockSize]byte
}

// Hash names for Record.Hash.
const (
	hashSHA256     = "sha256"
	hashHMACSHA256 = "hmac-sha256"
)

func newHasher(pepper []byte) hasher {
	h := hasher{peppered: len(pepper) > 0}
	if !h.peppered {
		return h
	}
	k := pepper
	if len(k) > sha256.BlockSize {
		s := sha256.Sum256(k)
		k = s[:]
	}
	for i := range sha256.BlockSize {
		var b byte
		if i < len(k) {
			b = k[i]
		}
		h.ipad[i] = b ^ 0x36
		h.opad[i] = b ^ 0x5c
	}
	return h
}

func (h *hasher) name() string {
	if h.peppered {
		return hashHMACSHA256
	}
	return hashSHA256
}

// digest hashes a parsed key (len(key) == KeyLen).
func (h *hasher) digest(key string) Digest {
	if !h.peppered {
		var buf [KeyLen]byte
		n := copy(buf[:], key)
		return sha256.Sum256(buf[:n])
	}
	var inner [sha256.BlockSize + KeyLen]byte
	copy(inner[:], h.ipad[:])
	n := copy(inner[sha256.BlockSize:], key)
	is := sha256.Sum256(inner[:sha256.BlockSize+n])
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], h.opad[:])
	copy(outer[sha256.BlockSize:], is[:])
	return sha256.Sum256(outer[:])
}
