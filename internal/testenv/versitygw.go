package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/cockroachdb/errors"
)

var sharedVersityGW struct {
	once sync.Once
	s3   S3
	err  error
}

// VersityGW returns a versitygw S3 gateway shared by all tests of this test
// binary (Name "versitygw"), started on first use with its posix backend in
// a temp folder and stopped by Main. It is a second, independent S3
// implementation for compatibility tests; it does not fsync, so it proves
// nothing about durability or speed. When the binary is missing the test is
// skipped, or fails when CI=true. Safe for concurrent use.
func VersityGW(t testing.TB) S3 {
	t.Helper()
	sharedVersityGW.once.Do(func() {
		sharedVersityGW.s3, sharedVersityGW.err = startSharedVersityGW(t)
	})
	if sharedVersityGW.err != nil {
		unavailable(t, "versitygw", sharedVersityGW.err)
	}
	return sharedVersityGW.s3
}

func startSharedVersityGW(t testing.TB) (S3, error) {
	t.Helper()
	bin, err := ToolPath("versitygw")
	if err != nil {
		return S3{}, err
	}
	dir, err := sharedDir("versitygw")
	if err != nil {
		return S3{}, err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return S3{}, errors.Wrap(err, "testenv: creating versitygw's data folder")
	}
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return S3{}, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		p := &process{
			name: "versitygw",
			bin:  bin,
			args: []string{
				"--access", localAccessKey, "--secret", localSecretKey,
				"--region", localRegion, "--port", addr, "--quiet",
				"posix", data,
			},
			logPath: filepath.Join(dir, "versitygw.log"),
			ready:   anyHTTPAnswer("http://" + addr + "/"),
		}
		if lastErr = p.start(); lastErr != nil {
			continue
		}
		onStopShared(func() { p.stop(syscall.SIGTERM) })
		announce(t, "versitygw %s at %s (pid %d, data %s)", versityGWVersion, addr, p.pid(), dir)
		return S3{
			Endpoint:  addr,
			AccessKey: localAccessKey,
			SecretKey: localSecretKey,
			Region:    localRegion,
			Name:      "versitygw",
		}, nil
	}
	return S3{}, lastErr
}

// anyHTTPAnswer is ready once the server answers HTTP at all (versitygw has
// no health endpoint; an unauthenticated request gets an S3 error).
func anyHTTPAnswer(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, _, err := httpGet(ctx, url)
		return err
	}
}
