package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cockroachdb/errors"
)

// Versions of the server binaries scripts/tools.sh builds. They name the
// cache folders (.tools/<name>-<version>/) and must match the script; a test
// checks that they do.
const (
	minioVersion     = "v0.0.0-20260212201848-7aac2a2c5b7c"
	versityGWVersion = "v1.8.0"
	etcdVersion      = "v3.6.16"
)

// modulePath is the module whose root holds .tools/.
const modulePath = "github.com/woodpecker-wal/woodpecker"

// ToolMissingError reports that a server binary has not been built. Tests
// that need the tool skip with this message (or fail when CI=true).
type ToolMissingError struct {
	// Tool is the binary's name: "minio", "versitygw", "etcd" or "etcdctl".
	Tool string
	// Version is the version the tool is cached under.
	Version string
	// Path is where the binary was looked for; empty when the cache folder
	// itself could not be found.
	Path string
	// Reason says why the binary is unusable, when not simply absent.
	Reason string
}

// Error says what is missing and how to get it.
func (e *ToolMissingError) Error() string {
	where := e.Path
	if where == "" {
		where = "the tools folder"
	}
	msg := fmt.Sprintf("%s %s is not installed at %s", e.Tool, e.Version, where)
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	return msg + ": run `make tools` in the repository root (or set WOODPECKER_TOOLS_DIR to a folder built by scripts/tools.sh)"
}

// ToolPath returns the path of the cached binary name ("minio", "versitygw",
// "etcd" or "etcdctl") built by scripts/tools.sh. The cache folder is
// $WOODPECKER_TOOLS_DIR, or .tools/ in the repository root found by walking
// up from the working directory. A binary that is not there (or not
// executable) gives a *ToolMissingError that says to run `make tools`; an
// unknown name gives a plain error. Safe for concurrent use.
func ToolPath(name string) (string, error) {
	var sub, version string
	switch name {
	case "minio":
		sub, version = "minio-"+minioVersion, minioVersion
	case "versitygw":
		sub, version = "versitygw-"+versityGWVersion, versityGWVersion
	case "etcd", "etcdctl":
		sub, version = "etcd-"+etcdVersion, etcdVersion
	default:
		return "", errors.Newf("testenv: unknown tool %q (known: minio, versitygw, etcd, etcdctl)", name)
	}
	dir, err := toolsDir()
	if err != nil {
		return "", &ToolMissingError{Tool: name, Version: version, Reason: err.Error()}
	}
	p := filepath.Join(dir, sub, name)
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return "", &ToolMissingError{Tool: name, Version: version, Path: p}
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return "", &ToolMissingError{Tool: name, Version: version, Path: p, Reason: "not an executable file"}
	}
	return p, nil
}

var repoRoot = sync.OnceValues(findRepoRoot)

// toolsDir returns the folder scripts/tools.sh installs into.
func toolsDir() (string, error) {
	if d := os.Getenv("WOODPECKER_TOOLS_DIR"); d != "" {
		return filepath.Abs(d)
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".tools"), nil
}

// findRepoRoot walks up from the working directory to the folder whose
// go.mod declares this module. Nested modules (adaptor/milvus) are passed
// over because their module path differs.
func findRepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", errors.Wrap(err, "testenv: finding the repository root")
	}
	for dir := wd; ; {
		if isModuleRoot(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.Newf("no go.mod of %s above %s; set WOODPECKER_TOOLS_DIR", modulePath, wd)
		}
		dir = parent
	}
}

func isModuleRoot(gomod string) bool {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == modulePath {
			return true
		}
	}
	return false
}
