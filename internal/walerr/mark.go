package walerr

import (
	stderrors "errors"
	"fmt"

	"github.com/cockroachdb/errors"
)

// Mark returns an error with err's message and chain that also matches each
// of sentinels under errors.Is: the standard library's and cockroachdb's
// alike. nil stays nil.
//
// Use it instead of cockroachdb's errors.Mark, whose marks only
// cockroachdb's errors.Is sees: a caller testing an outcome with the
// standard library's errors.Is would miss it (an unknown outcome taken for a
// definite failure, and the entry sent twice).
func Mark(err error, sentinels ...error) error {
	if err == nil {
		return nil
	}
	return &marked{cause: err, marks: sentinels}
}

// marked is err with extra sentinels. It matches them through an Is method,
// which both errors.Is functions consult, and unwraps to the cause, so
// everything the cause matches (errors.Is, errors.As) still holds.
type marked struct {
	cause error
	marks []error
}

func (m *marked) Error() string { return m.cause.Error() }

// Unwrap returns the cause.
func (m *marked) Unwrap() error { return m.cause }

// Is reports whether target is one of the marks (or what a mark wraps).
func (m *marked) Is(target error) bool {
	for _, s := range m.marks {
		if stderrors.Is(s, target) {
			return true
		}
	}
	return false
}

// Format prints the cause: %+v shows its details and stack, as for any
// cockroachdb error.
func (m *marked) Format(s fmt.State, verb rune) { errors.FormatError(m, s, verb) }

// SafeFormatError adds nothing to the cause's message.
func (m *marked) SafeFormatError(errors.Printer) error { return m.cause }
