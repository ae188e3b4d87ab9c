package segment

import (
	"strconv"
	"strings"
)

// The key scheme of a FileBackend's Store, for garbage collection (see
// woodpecker/internal/gc): <logID>/<segmentID, 19 digits>.<seg|fence|seal>.

// KeyRoot returns the prefix of every key of the backend's segments: the
// directory itself, "".
func (b *FileBackend) KeyRoot() string { return "" }

// LogKeyPrefix returns the prefix of every key of log logID's segments.
func (b *FileBackend) LogKeyPrefix(logID int64) string {
	return strconv.FormatInt(logID, 10) + "/"
}

// SegmentKeyPrefix returns the prefix of every key of one segment; what
// follows it is the file's extension.
func (b *FileBackend) SegmentKeyPrefix(ref Ref) string {
	return b.LogKeyPrefix(ref.LogID) + padID(ref.SegmentID) + "."
}

// ParseKey returns the segment whose file a key of Store names; ok is
// false for keys that are not segment files.
func (b *FileBackend) ParseKey(key string) (ref Ref, ok bool) {
	logStr, file, ok := strings.Cut(key, "/")
	if !ok || strings.Contains(file, "/") || (len(logStr) > 1 && logStr[0] == '0') {
		return Ref{}, false
	}
	segStr, _, ok := strings.Cut(file, ".")
	if !ok {
		return Ref{}, false
	}
	logID, ok1 := parseDigits(logStr)
	segID, ok2 := parsePadded(segStr)
	if !ok1 || !ok2 {
		return Ref{}, false
	}
	return Ref{LogID: logID, SegmentID: segID}, true
}
