package testenv

import (
	"context"
	"path/filepath"
	"testing"
)

var sharedVersityGW sharedServer[S3]

// VersityGW returns a versitygw S3 gateway shared by all tests of this test
// binary (Name "versitygw"), started on first use with its posix backend in
// a temp folder and stopped by Main. It is a second, independent S3
// implementation for compatibility tests; it does not fsync, so it proves
// nothing about durability or speed. When the binary is missing the test is
// skipped, or fails when CI=true. Safe for concurrent use.
func VersityGW(t testing.TB) S3 {
	t.Helper()
	return sharedVersityGW.get(t, "versitygw", func(t testing.TB) (S3, error) {
		return startSharedS3(t, versityGWBinary)
	})
}

var versityGWBinary = binary{tool: "versitygw", name: "versitygw", version: versityGWVersion, launch: launchVersityGW}

// launchVersityGW starts versitygw with its posix backend in dir/data and
// its log in dir/versitygw.log, and returns it and its address.
func launchVersityGW(bin, dir string) (*process, string, error) {
	return launchS3(dir, "versitygw", func(addr, data string) *process {
		return &process{
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
	})
}

// anyHTTPAnswer is ready once the server answers HTTP at all (versitygw has
// no health endpoint; an unauthenticated request gets an S3 error).
func anyHTTPAnswer(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, _, err := httpGet(ctx, url)
		return err
	}
}
