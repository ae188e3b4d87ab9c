//go:build unix

package embedetcd

import (
	"os"
	"syscall"

	"github.com/cockroachdb/errors"
)

// tryLock opens path and takes an exclusive lock on it without waiting.
// locked is false (and f nil) when another process holds it. The kernel
// drops the lock when the process ends, however it ends.
func tryLock(path string) (f *os.File, locked bool, err error) {
	f, err = os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false, errors.Wrapf(err, "embedded etcd: open lock file %s", path)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, errors.Wrapf(err, "embedded etcd: lock %s", path)
	}
	return f, true, nil
}

// unlock releases a lock taken by tryLock.
func unlock(f *os.File) error {
	if f == nil {
		return nil
	}
	return errors.Wrapf(f.Close(), "embedded etcd: release lock %s", f.Name())
}
