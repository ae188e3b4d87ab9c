package walerr_test

import (
	"context"
	stderrors "errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

var other = errors.New("some other sentinel")

// TestMarkMatchesUnderBothErrorsIs: a marked error matches its sentinels,
// and everything its cause matches, under the standard library's errors.Is
// and cockroachdb's, keeps the cause's message, and matches nothing else.
func TestMarkMatchesUnderBothErrorsIs(t *testing.T) {
	cause := errors.Wrap(context.Canceled, "wait for append")
	err := errors.Wrap(walerr.Mark(cause, walerr.ErrUnknownOutcome, walerr.ErrClosed), "append to log \"a\"")
	for _, target := range []error{walerr.ErrUnknownOutcome, walerr.ErrClosed, context.Canceled} {
		if !stderrors.Is(err, target) {
			t.Errorf("standard errors.Is(%v, %v) = false", err, target)
		}
		if !errors.Is(err, target) {
			t.Errorf("cockroachdb errors.Is(%v, %v) = false", err, target)
		}
	}
	if stderrors.Is(err, other) || errors.Is(err, other) || errors.Is(err, walerr.ErrFenced) {
		t.Errorf("%v matches a sentinel it was not marked with", err)
	}
	if got, want := err.Error(), `append to log "a": wait for append: context canceled`; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if got := fmt.Sprintf("%v", err); got != err.Error() {
		t.Errorf("%%v gives %q, want %q", got, err.Error())
	}
	if got := fmt.Sprintf("%+v", err); !strings.Contains(got, "wait for append") {
		t.Errorf("%%+v lost the cause: %q", got)
	}
	var target interface{ Timeout() bool }
	if errors.As(err, &target) {
		t.Errorf("errors.As found a type the chain does not hold")
	}
	if walerr.Mark(nil, walerr.ErrClosed) != nil {
		t.Errorf("Mark(nil) is not nil")
	}
}

// TestNoCockroachMarkInTheModule keeps the guarantee from eroding: errors
// built with cockroachdb's errors.Mark match their mark only under
// cockroachdb's errors.Is, so no code (in any module of the repository)
// may use it; walerr.Mark matches under both. A test that needs such an
// error (to check that a suite catches it) ends the line with
// "// cockroach-only on purpose".
func TestNoCockroachMarkInTheModule(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	use := regexp.MustCompile(`\berrors\.Mark\(`)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n != "." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(data), "\n") {
			trimmed := strings.TrimSpace(line)
			if use.MatchString(line) && !strings.HasPrefix(trimmed, "//") && !strings.HasSuffix(trimmed, "// cockroach-only on purpose") {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d uses errors.Mark, invisible to the standard errors.Is; use walerr.Mark: %s",
					rel, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
