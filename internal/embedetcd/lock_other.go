//go:build !unix

package embedetcd

import (
	"os"

	"github.com/cockroachdb/errors"
)

// tryLock opens path. Without flock, two processes on one directory are
// not detected here; etcd's own file lock on its database then makes the
// second one wait until StartTimeout.
func tryLock(path string) (f *os.File, locked bool, err error) {
	f, err = os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false, errors.Wrapf(err, "embedded etcd: open lock file %s", path)
	}
	return f, true, nil
}

// unlock releases what tryLock took.
func unlock(f *os.File) error {
	if f == nil {
		return nil
	}
	return errors.Wrapf(f.Close(), "embedded etcd: release lock %s", f.Name())
}
