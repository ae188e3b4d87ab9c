//go:build !linux

package vfs

import "github.com/cockroachdb/errors"

// renameNoReplace is not available on this platform.
func renameNoReplace(oldpath, newpath string) error {
	return errors.New("rename without replace is not available on this platform")
}
