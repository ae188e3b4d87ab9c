package objstore

import (
	"strings"
	"unicode/utf8"

	"github.com/cockroachdb/errors"
)

// ErrInvalidKey: a key or a listing prefix is malformed (empty, absolute,
// with "." or ".." or empty segments, a trailing slash, a NUL byte, invalid
// UTF-8, or longer than MaxKeyLen). Every backend rejects such keys the same
// way, so a key that works on one backend works on all.
var ErrInvalidKey = errors.New("invalid object key")

// MaxKeyLen is the longest key, in bytes, that every backend accepts (the S3
// limit on object names, with room left for a backend's root prefix).
const MaxKeyLen = 900

// ValidateKey returns nil when key is acceptable to every backend, and an
// error wrapping ErrInvalidKey that names the problem otherwise. Keys are
// slash-separated, relative ("a/b/c"): not empty, no leading or trailing
// slash, no empty, "." or ".." segment, no NUL byte, valid UTF-8.
func ValidateKey(key string) error {
	if key == "" {
		return errors.Wrap(ErrInvalidKey, "empty key")
	}
	if strings.HasSuffix(key, "/") {
		return errors.Wrapf(ErrInvalidKey, "key %q ends with a slash", key)
	}
	return validatePath(key, false)
}

// ValidatePrefix is ValidateKey for listing prefixes: the empty prefix is
// valid, and the prefix may end with a slash or in the middle of a segment
// ("a/b/se" matches "a/b/seg-1"). Complete segments (those followed by a
// slash) obey the key rules.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return validatePath(prefix, true)
}

func validatePath(s string, isPrefix bool) error {
	what := "key"
	if isPrefix {
		what = "prefix"
	}
	if len(s) > MaxKeyLen {
		return errors.Wrapf(ErrInvalidKey, "%s of %d bytes is longer than %d", what, len(s), MaxKeyLen)
	}
	if !utf8.ValidString(s) {
		return errors.Wrapf(ErrInvalidKey, "%s %q is not valid UTF-8", what, s)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return errors.Wrapf(ErrInvalidKey, "%s %q contains a NUL byte", what, s)
	}
	if strings.HasPrefix(s, "/") {
		return errors.Wrapf(ErrInvalidKey, "%s %q is absolute: keys are relative to the store's root", what, s)
	}
	segs := strings.Split(s, "/")
	for i, seg := range segs {
		last := i == len(segs)-1
		if last && isPrefix {
			// A prefix may end anywhere, even in ".." (it then matches "..x").
			break
		}
		switch seg {
		case "":
			return errors.Wrapf(ErrInvalidKey, "%s %q has an empty segment", what, s)
		case ".", "..":
			return errors.Wrapf(ErrInvalidKey, "%s %q has a %q segment", what, s, seg)
		}
	}
	return nil
}
