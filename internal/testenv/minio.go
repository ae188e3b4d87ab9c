package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cockroachdb/errors"
)

// S3 describes how to reach an S3-compatible server. It is a plain value:
// copy it freely.
type S3 struct {
	// Endpoint is host:port, without a scheme.
	Endpoint string
	// AccessKey and SecretKey are the credentials of an account allowed to
	// create buckets.
	AccessKey, SecretKey string
	// Secure is true for https.
	Secure bool
	// Region to sign requests for.
	Region string
	// Name says which server this is: "minio", "versitygw" or "external".
	Name string
}

// Credentials of the servers testenv starts. MinIO needs a user of 3 or
// more characters and a password of 8 or more.
const (
	localAccessKey = "woodpecker"
	localSecretKey = "woodpecker-secret"
	localRegion    = "us-east-1"
)

// Environment variables naming an external S3-compatible server.
const (
	envS3Endpoint  = "WOODPECKER_TEST_S3_ENDPOINT"
	envS3AccessKey = "WOODPECKER_TEST_S3_ACCESS_KEY"
	envS3SecretKey = "WOODPECKER_TEST_S3_SECRET_KEY"
	envS3Secure    = "WOODPECKER_TEST_S3_SECURE"
	envS3Region    = "WOODPECKER_TEST_S3_REGION"
)

var sharedMinIO struct {
	once sync.Once
	s3   S3
	err  error
}

// MinIO returns the S3 server shared by all tests of this test binary: the
// external one named by WOODPECKER_TEST_S3_ENDPOINT (Name "external"), or a
// MinIO server started on first use on a free port of 127.0.0.1 with a temp
// data folder (Name "minio"), stopped by Main. Tests share it, so each
// should work in its own bucket (NewBucket) or key prefix (UniquePrefix).
// When no server can be had the test is skipped, or fails when CI=true.
// Safe for concurrent use.
func MinIO(t testing.TB) S3 {
	t.Helper()
	sharedMinIO.once.Do(func() {
		if os.Getenv(envS3Endpoint) != "" {
			sharedMinIO.s3, sharedMinIO.err = externalS3()
			if sharedMinIO.err == nil {
				announce(t, "external S3 at %s (secure=%t)", sharedMinIO.s3.Endpoint, sharedMinIO.s3.Secure)
			}
			return
		}
		sharedMinIO.s3, sharedMinIO.err = startSharedMinIO(t)
	})
	if sharedMinIO.err != nil {
		unavailable(t, "MinIO", sharedMinIO.err)
	}
	return sharedMinIO.s3
}

func externalS3() (S3, error) {
	s := S3{
		Endpoint:  os.Getenv(envS3Endpoint),
		AccessKey: os.Getenv(envS3AccessKey),
		SecretKey: os.Getenv(envS3SecretKey),
		Region:    os.Getenv(envS3Region),
		Name:      "external",
	}
	if v := os.Getenv(envS3Secure); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return S3{}, errors.Newf("%s=%q: want true or false", envS3Secure, v)
		}
		s.Secure = b
	}
	switch {
	case strings.HasPrefix(s.Endpoint, "https://"):
		s.Endpoint, s.Secure = strings.TrimPrefix(s.Endpoint, "https://"), true
	case strings.HasPrefix(s.Endpoint, "http://"):
		s.Endpoint = strings.TrimPrefix(s.Endpoint, "http://")
	}
	s.Endpoint = strings.TrimSuffix(s.Endpoint, "/")
	if s.AccessKey == "" || s.SecretKey == "" {
		return S3{}, errors.Newf("%s is set but %s or %s is empty", envS3Endpoint, envS3AccessKey, envS3SecretKey)
	}
	if s.Region == "" {
		s.Region = localRegion
	}
	return s, nil
}

func startSharedMinIO(t testing.TB) (S3, error) {
	t.Helper()
	bin, err := ToolPath("minio")
	if err != nil {
		return S3{}, err
	}
	dir, err := sharedDir("minio")
	if err != nil {
		return S3{}, err
	}
	p, s, err := launchMinIO(bin, dir)
	if err != nil {
		return S3{}, err
	}
	onStopShared(func() { p.stop(syscall.SIGTERM) })
	announce(t, "MinIO %s at %s (pid %d, data %s)", minioVersion, s.Endpoint, p.pid(), dir)
	return s, nil
}

// launchMinIO starts MinIO with its data in dir/data and its log in
// dir/minio.log. A port taken between picking and binding is retried.
func launchMinIO(bin, dir string) (*process, S3, error) {
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, S3{}, errors.Wrap(err, "testenv: creating MinIO's data folder")
	}
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, S3{}, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		p := &process{
			name: "MinIO",
			bin:  bin,
			args: []string{"server", "--address", addr, "--quiet", data},
			env: []string{
				"MINIO_ROOT_USER=" + localAccessKey,
				"MINIO_ROOT_PASSWORD=" + localSecretKey,
				"MINIO_BROWSER=off",
				"MINIO_UPDATE=off",
			},
			logPath: filepath.Join(dir, "minio.log"),
			ready:   minioReady(addr),
		}
		if lastErr = p.start(); lastErr == nil {
			return p, S3{
				Endpoint:  addr,
				AccessKey: localAccessKey,
				SecretKey: localSecretKey,
				Region:    localRegion,
				Name:      "minio",
			}, nil
		}
	}
	return nil, S3{}, lastErr
}

func minioReady(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		code, _, err := httpGet(ctx, "http://"+addr+"/minio/health/ready")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return errors.Newf("/minio/health/ready answered %d", code)
		}
		return nil
	}
}

// MinIOProcess is a MinIO server owned by one test, which may stop, kill and
// restart it to test crashes and outages. It keeps its port and data folder
// across restarts. Its methods must be called from the test's goroutine
// (they end the test with t.Fatal on failure); they are safe to call
// concurrently with requests to the server.
type MinIOProcess struct {
	t    testing.TB
	proc *process
	s3   S3
}

// StartMinIO starts a MinIO server for this test alone, on a free port with
// a data folder under t.TempDir, and kills it at t.Cleanup. It never uses an
// external endpoint: the test needs a process it can kill. Without the
// binary the test is skipped (fails when CI=true).
func StartMinIO(t testing.TB) *MinIOProcess {
	t.Helper()
	bin, err := ToolPath("minio")
	if err != nil {
		unavailable(t, "MinIO", err)
	}
	dir := t.TempDir()
	p, s, err := launchMinIO(bin, dir)
	if err != nil {
		t.Fatalf("testenv: starting a dedicated MinIO: %v", err)
	}
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	t.Logf("testenv: dedicated MinIO %s at %s (pid %d)", minioVersion, s.Endpoint, p.pid())
	return &MinIOProcess{t: t, proc: p, s3: s}
}

// S3 returns how to reach the server; the same across restarts.
func (m *MinIOProcess) S3() S3 { return m.s3 }

// Stop sends SIGTERM and waits for the server to exit (SIGKILL after 30s).
// Stopping a stopped server does nothing.
func (m *MinIOProcess) Stop() { m.proc.stop(syscall.SIGTERM) }

// Kill sends SIGKILL and waits for the server to exit, like a crash.
func (m *MinIOProcess) Kill() { m.proc.stop(syscall.SIGKILL) }

// Start starts a stopped server again on the same port and data folder and
// waits until it is ready; the test fails if it does not come up.
func (m *MinIOProcess) Start() {
	m.t.Helper()
	if err := m.proc.start(); err != nil {
		m.t.Fatalf("testenv: restarting MinIO: %v", err)
	}
}

// String names the server, for test logs.
func (m *MinIOProcess) String() string {
	return fmt.Sprintf("MinIO at %s (pid %d)", m.s3.Endpoint, m.proc.pid())
}
