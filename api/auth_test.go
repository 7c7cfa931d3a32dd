package api

import (
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header, token string
		ok            bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER a.b-c_d~e+f/g=", "a.b-c_d~e+f/g=", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer  abc", "", false},
		{"Bearer abc def", "", false},
		{"Basic abc", "", false},
		{"Bearerabc", "", false},
		{"Bearer ab\x00c", "", false},
		{"Bearer ab\tc", "", false},
		{"Bearer é", "", false},
		{"Bearer " + strings.Repeat("x", 512), strings.Repeat("x", 512), true},
		{"Bearer " + strings.Repeat("x", 513), "", false},
	} {
		tok, ok := BearerToken(tc.header)
		if tok != tc.token || ok != tc.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tc.header, tok, ok, tc.token, tc.ok)
		}
	}
}

// FuzzBearerToken: whatever the header, a token is returned only when the
// header is exactly "<bearer in any case> <token>" with a token of 1 to 512
// printable ASCII bytes, and then "Bearer "+token parses to the same token.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer x", "Basic y", "Bearer  z", "Bearer a b", "", " ", "Bearer \x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, ok := BearerToken(header)
		if !ok {
			if tok != "" {
				t.Fatalf("%q: a token %q without ok", header, tok)
			}
			return
		}
		if len(tok) == 0 || len(tok) > 512 {
			t.Fatalf("%q: token of %d bytes", header, len(tok))
		}
		for i := 0; i < len(tok); i++ {
			if tok[i] <= ' ' || tok[i] >= 0x7f {
				t.Fatalf("%q: byte %#x in the token", header, tok[i])
			}
		}
		scheme, rest, _ := strings.Cut(header, " ")
		if !strings.EqualFold(scheme, "bearer") || rest != tok {
			t.Fatalf("%q: parsed to %q", header, tok)
		}
		if again, ok := BearerToken("Bearer " + tok); !ok || again != tok {
			t.Fatalf("%q does not round-trip", tok)
		}
	})
}
