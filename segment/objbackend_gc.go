package segment

import "strings"

// The key scheme of an ObjectBackend, for garbage collection (see
// woodpecker/internal/gc): <root>/<logID>/<segmentID, 19 digits>/<name>.

// KeyRoot returns the prefix of every key of the backend's segments: ""
// or the root with one trailing slash.
func (b *ObjectBackend) KeyRoot() string { return joinRoot(b.root) }

// LogKeyPrefix returns the prefix of every key of log logID's segments.
func (b *ObjectBackend) LogKeyPrefix(logID int64) string { return LogPrefix(b.root, logID) }

// SegmentKeyPrefix returns the prefix of every key of one segment; what
// follows it is an object name (ParseObjectName).
func (b *ObjectBackend) SegmentKeyPrefix(ref Ref) string {
	return SegmentPrefix(b.root, ref.LogID, ref.SegmentID)
}

// ParseKey returns the segment whose data a key of Store is; ok is false
// for keys outside the root and keys that are not segment data.
func (b *ObjectBackend) ParseKey(key string) (ref Ref, ok bool) {
	rest, ok := strings.CutPrefix(key, b.KeyRoot())
	if !ok || strings.Count(rest, "/") != 2 {
		return Ref{}, false
	}
	logID, segID, _, ok := ParseSegmentKey(rest)
	return Ref{LogID: logID, SegmentID: segID}, ok
}
