package vfs

import (
	"io/fs"
	"os"
	"syscall"

	"github.com/cockroachdb/errors"
)

// linkNoReplace makes newpath name the file at oldpath, failing with an
// error matching fs.ErrExist when newpath exists; it never replaces
// anything. It uses link(2). On a file system without hard links it falls
// back to renaming without replacement where the platform has that
// (renameNoReplace), after which oldpath no longer exists.
func linkNoReplace(oldpath, newpath string) error {
	err := os.Link(oldpath, newpath)
	if err == nil || errors.Is(err, fs.ErrExist) || !linkUnsupported(err) {
		return err
	}
	if rerr := renameNoReplace(oldpath, newpath); rerr != nil {
		return errors.Wrapf(rerr, "create-only put: link(2) is not supported here (%v), and neither is rename without replace", err)
	}
	return nil
}

func linkUnsupported(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) ||
		errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EXDEV)
}
