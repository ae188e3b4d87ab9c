package conformance

import (
	stderrors "errors"

	"github.com/cockroachdb/errors"
)

// is reports whether err matches target under both errors.Is functions a
// caller may test outcomes with: the standard library's and cockroachdb's.
// An implementation that marks its errors so that only one of them sees the
// sentinel (cockroachdb's errors.Mark) fails the suite: a caller using the
// other would take a fenced WAL for a transient failure and retry.
func is(err, target error) bool {
	return stderrors.Is(err, target) && errors.Is(err, target)
}
