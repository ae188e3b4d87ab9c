package testenv

import (
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cockroachdb/errors"
)

var woodpecker struct {
	once sync.Once
	path string
	err  error
}

// WoodpeckerBinary builds the woodpecker command once per test binary, for
// tests that run it as separate processes (LogStores a test kills), and
// returns its path. Main removes it with the shared servers' folder.
func WoodpeckerBinary(t testing.TB) string {
	t.Helper()
	woodpecker.once.Do(func() {
		dir, err := sharedDir("bin")
		if err != nil {
			woodpecker.err = err
			return
		}
		woodpecker.path = filepath.Join(dir, "woodpecker")
		out, err := exec.Command("go", "build", "-o", woodpecker.path, "github.com/woodpecker-wal/woodpecker/cmd/woodpecker").CombinedOutput()
		if err != nil {
			woodpecker.err = errors.Wrapf(err, "go build ./cmd/woodpecker:\n%s", out)
		}
	})
	if woodpecker.err != nil {
		t.Fatal(woodpecker.err)
	}
	return woodpecker.path
}
