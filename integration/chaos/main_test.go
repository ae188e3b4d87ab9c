package chaos

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/testenv"
)

var (
	flagCycles  = flag.Int("chaos.cycles", 0, "fault cycles per mode (0: the short run's "+shortCyclesText+")")
	flagSeed    = flag.Uint64("chaos.seed", 0, "seed of the fault schedule (0: a random one, printed)")
	flagMode    = flag.String("chaos.mode", "memory,quorum,journaled,quorum-shared", "modes to run, comma-separated: memory, quorum, journaled (QuorumBuffer on LogStores with journals), quorum-shared (QuorumBuffer whose LogStores write shared objects), localfs, both (memory and quorum) or all")
	flagTime    = flag.Duration("chaos.duration", 0, "stop starting fault cycles after this long per mode (0: no limit); the report gives the cycles run")
	flagHistory = flag.String("chaos.history", "", "folder to keep the history files, child logs and report in (default: a temp folder, kept only on failure)")
)

// The woodpecker binary, built once per test binary on first use.
var (
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		// A child process: TestChaosChild exits by itself.
		flag.Parse()
		os.Exit(m.Run())
	}
	testenv.Main(m)
}

// woodpeckerBinary builds cmd/woodpecker (the LogStore processes of quorum
// mode run it) once, into a temp folder of t, the top-level test, and
// returns its path.
func woodpeckerBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binPath = filepath.Join(t.TempDir(), "woodpecker")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "github.com/woodpecker-wal/woodpecker/cmd/woodpecker")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			binError = errors.Newf("go build cmd/woodpecker: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}
