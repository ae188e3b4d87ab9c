package objstore_test

import (
	"math"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
)

// checkValidation checks that validate (named name) accepts in when ok, and
// rejects it with ErrInvalidKey otherwise.
func checkValidation(t *testing.T, name string, validate func(string) error, in string, ok bool) {
	t.Helper()
	err := validate(in)
	if ok && err != nil {
		t.Errorf("%s(%q) = %v, want nil", name, in, err)
	}
	if !ok && !errors.Is(err, objstore.ErrInvalidKey) {
		t.Errorf("%s(%q) = %v, want ErrInvalidKey", name, in, err)
	}
}

func TestValidateKey(t *testing.T) {
	cases := []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"a/b/c", true},
		{"logs/1/seg/0/b-10", true},
		{"..a/b..", true},
		{".hidden/x", true},
		{"ünï code/with spaces", true},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{".", false},
		{"..", false},
		{"a/./b", false},
		{"a/../b", false},
		{"../a", false},
		{"a/..", false},
		{"nul\x00", false},
		{"\xff", false},
		{strings.Repeat("k", objstore.MaxKeyLen), true},
		{strings.Repeat("k", objstore.MaxKeyLen+1), false},
	}
	for _, c := range cases {
		checkValidation(t, "ValidateKey", objstore.ValidateKey, c.key, c.ok)
	}
}

func TestValidatePrefix(t *testing.T) {
	cases := []struct {
		prefix string
		ok     bool
	}{
		{"", true},
		{"a", true},
		{"a/", true},
		{"a/b/se", true},
		{"a/..", true}, // ends mid-name: matches "a/..x"
		{"a/.", true},
		{"/", false},
		{"/a", false},
		{"a//", false},
		{"../", false},
		{"a/../b", false},
		{"a/./", false},
		{"\x00", false},
	}
	for _, c := range cases {
		checkValidation(t, "ValidatePrefix", objstore.ValidatePrefix, c.prefix, c.ok)
	}
}

func TestRangeEnd(t *testing.T) {
	cases := []struct {
		size, offset, length int64
		end                  int64
		wantErr              bool
	}{
		{10, 0, 10, 10, false},
		{10, 0, 3, 3, false},
		{10, 4, 3, 7, false},
		{10, 8, 5, 10, false},
		{10, 10, 5, 10, false},
		{10, 5, 0, 5, false},
		{0, 0, 1, 0, false},
		{10, 3, math.MaxInt64, 10, false},
		{math.MaxInt64, math.MaxInt64 - 1, math.MaxInt64, math.MaxInt64, false},
		{10, 11, 1, 0, true},
		{0, 1, 1, 0, true},
		{10, -1, 1, 0, true},
		{10, 0, -1, 0, true},
	}
	for _, c := range cases {
		end, err := objstore.RangeEnd(c.size, c.offset, c.length)
		if c.wantErr {
			if !errors.Is(err, objstore.ErrInvalidRange) {
				t.Errorf("RangeEnd(%d, %d, %d) err = %v, want ErrInvalidRange", c.size, c.offset, c.length, err)
			}
			continue
		}
		if err != nil || end != c.end {
			t.Errorf("RangeEnd(%d, %d, %d) = %d, %v; want %d", c.size, c.offset, c.length, end, err, c.end)
		}
	}
}
