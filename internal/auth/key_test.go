package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash/crc32"
	"math/big"
	"strings"
	"testing"
)

func TestGenerateKey(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		k, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != KeyLen || !strings.HasPrefix(k, KeyPrefix) {
			t.Fatalf("GenerateKey() = %q, want %d characters starting with %s", k, KeyLen, KeyPrefix)
		}
		if err := ParseKey(k); err != nil {
			t.Fatalf("ParseKey(GenerateKey() = %q) = %v, want nil", k, err)
		}
		if seen[k] {
			t.Fatalf("GenerateKey() repeated %q", k)
		}
		seen[k] = true
	}
}

func TestFormatKeyEncodesAllBytes(t *testing.T) {
	for _, b := range [][secretBytes]byte{{}, {0: 1}, {31: 1}, fill(0xff)} {
		k := formatKey(b)
		n, ok := new(big.Int).SetString(k[len(KeyPrefix):len(KeyPrefix)+secretChars], 62)
		if !ok || n.Cmp(new(big.Int).SetBytes(b[:])) != 0 {
			t.Errorf("formatKey(%x) = %q: the secret part does not decode back", b, k)
		}
		if ParseKey(k) != nil {
			t.Errorf("ParseKey(formatKey(%x)) failed", b)
		}
	}
}

func fill(v byte) (b [secretBytes]byte) {
	for i := range b {
		b[i] = v
	}
	return b
}

func TestParseKey(t *testing.T) {
	good := formatKey(fill(7))
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		name string
		key  string
		ok   bool
	}{
		{"valid", good, true},
		{"empty", "", false},
		{"prefix only", KeyPrefix, false},
		{"truncated", good[:KeyLen-1], false},
		{"extra character", good + "a", false},
		{"wrong prefix", "rak_" + good[4:], false},
		{"upper-case prefix", "RAC_" + good[4:], false},
		{"secret typo", flip(10), false},
		{"checksum typo", flip(KeyLen - 1), false},
		{"non-base62", good[:20] + "-" + good[21:], false},
		{"non-ASCII", good[:20] + "é" + good[22:], false},
		{"whitespace", " " + good[1:], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ParseKey(tt.key); (err == nil) != tt.ok {
				t.Errorf("ParseKey(%q) = %v, want ok=%v", tt.key, err, tt.ok)
			}
		})
	}
}

// FuzzParseKey checks ParseKey against an oracle written with math/big and
// crc32 the slow way, and that it never panics.
func FuzzParseKey(f *testing.F) {
	f.Add(formatKey(fill(7)))
	f.Add(formatKey([secretBytes]byte{}))
	f.Add("rac_")
	f.Add("")
	f.Add(strings.Repeat("z", KeyLen))
	f.Fuzz(func(t *testing.T, s string) {
		got := ParseKey(s) == nil
		if got != parseOracle(s) {
			t.Fatalf("ParseKey(%q) ok=%v, oracle says %v", s, got, !got)
		}
		if got && DisplayPrefix(s) != s[:len(KeyPrefix)+displayChars] {
			t.Fatalf("DisplayPrefix(%q) = %q", s, DisplayPrefix(s))
		}
	})
}

func parseOracle(s string) bool {
	body, ok := strings.CutPrefix(s, "rac_")
	if !ok || len(body) != secretChars+checkChars {
		return false
	}
	for _, r := range body {
		if !strings.ContainsRune(base62, r) {
			return false
		}
	}
	want := new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(s[:len(s)-checkChars]))))
	got, ok := new(big.Int).SetString(body[secretChars:], 62)
	return ok && got.Cmp(want) == 0
}

func TestHasherMatchesCryptoHMAC(t *testing.T) {
	key := formatKey(fill(3))
	tests := []struct {
		name   string
		pepper []byte
		want   func() []byte
	}{
		{"no pepper", nil, func() []byte { s := sha256.Sum256([]byte(key)); return s[:] }},
		{"short pepper", []byte("pepper"), hmacOf([]byte("pepper"), key)},
		{"block-size pepper", []byte(strings.Repeat("p", 64)), hmacOf([]byte(strings.Repeat("p", 64)), key)},
		{"long pepper", []byte(strings.Repeat("q", 100)), hmacOf([]byte(strings.Repeat("q", 100)), key)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHasher(tt.pepper)
			got := h.digest(key)
			if want := tt.want(); !hmac.Equal(got[:], want) {
				t.Errorf("digest = %x, want %x", got, want)
			}
		})
	}
}

func hmacOf(pepper []byte, key string) func() []byte {
	return func() []byte {
		m := hmac.New(sha256.New, pepper)
		m.Write([]byte(key))
		return m.Sum(nil)
	}
}

func BenchmarkParseKey(b *testing.B) {
	k := formatKey(fill(9))
	b.ReportAllocs()
	for b.Loop() {
		if ParseKey(k) != nil {
			b.Fatal("rejected")
		}
	}
}
