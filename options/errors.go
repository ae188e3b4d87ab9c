package options

import (
	"fmt"
	"strings"

	"github.com/cockroachdb/errors"
)

// ErrInvalidConfig matches, with errors.Is, every error this package returns for a
// bad configuration: a syntax error, an unknown key, a value of the wrong type, a
// bad environment override or a failed validation. Errors reading a file are not
// configuration errors and do not match it (they match fs.ErrNotExist and such).
var ErrInvalidConfig = errors.New("invalid configuration")

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Key is the key path concerned, such as "storage.endpoint" or
	// "etcd.endpoints[1]"; empty for a problem with the document as a whole.
	Key string
	// Message says what is wrong and, where it helps, what to write instead.
	Message string
	// Line is the line of the YAML file, or 0 when not from a file.
	Line int
}

// Error returns "key: message", with the line when known.
func (p Problem) Error() string {
	var b strings.Builder
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	if p.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", p.Line)
	}
	return b.String()
}

// ConfigError lists every problem found in a configuration. It matches
// ErrInvalidConfig with errors.Is, and errors.As finds it (and each Problem, through
// its multi-error Unwrap).
type ConfigError struct {
	// Origin says where the configuration came from: a file name, "environment",
	// or empty when unknown.
	Origin string
	// Problems are in the order found: the order of the keys for validation.
	Problems []Problem
}

// Error lists the problems, one per line after a heading.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration")
	if e.Origin != "" {
		fmt.Fprintf(&b, " in %s", e.Origin)
	}
	if len(e.Problems) == 1 {
		b.WriteString(": ")
		b.WriteString(e.Problems[0].Error())
		return b.String()
	}
	fmt.Fprintf(&b, ", %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns the problems as errors.
func (e *ConfigError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// Keys returns the key path of each problem, in order.
func (e *ConfigError) Keys() []string {
	keys := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		keys[i] = p.Key
	}
	return keys
}

// problems accumulates Problems; its zero value is ready to use.
type problems struct {
	list []Problem
}

func (ps *problems) add(key string, line int, format string, args ...any) {
	ps.list = append(ps.list, Problem{Key: key, Message: fmt.Sprintf(format, args...), Line: line})
}

// err returns nil when nothing was added, else a *ConfigError.
func (ps *problems) err(origin string) error {
	if len(ps.list) == 0 {
		return nil
	}
	return &ConfigError{Origin: origin, Problems: ps.list}
}
