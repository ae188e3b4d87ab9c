package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

var sharedMinIO sharedServer[S3]

// MinIO returns the S3 server shared by all tests of this test binary: the
// external one named by WOODPECKER_TEST_S3_ENDPOINT (Name "external"), or a
// MinIO server started on first use on a free port of 127.0.0.1 with a temp
// data folder (Name "minio"), stopped by Main. Tests share it, so each
// should work in its own bucket (NewBucket) or key prefix (UniquePrefix).
// When no server can be had the test is skipped, or fails when CI=true.
// Safe for concurrent use.
func MinIO(t testing.TB) S3 {
	t.Helper()
	return sharedMinIO.get(t, "MinIO", startSharedMinIO)
}

func startSharedMinIO(t testing.TB) (S3, error) {
	t.Helper()
	if os.Getenv(envS3Endpoint) == "" {
		return startSharedS3(t, minioBinary)
	}
	s, err := externalS3()
	if err == nil {
		announce(t, "external S3 at %s (secure=%t)", s.Endpoint, s.Secure)
	}
	return s, err
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

// startSharedS3 starts b, an S3 server, as a shared server (startShared).
func startSharedS3(t testing.TB, b binary) (S3, error) {
	t.Helper()
	addr, err := startShared(t, b)
	if err != nil {
		return S3{}, err
	}
	return localS3(b.tool, addr), nil
}

// localS3 describes an S3 server testenv started at addr; name is its
// S3.Name.
func localS3(name, addr string) S3 {
	return S3{
		Endpoint:  addr,
		AccessKey: localAccessKey,
		SecretKey: localSecretKey,
		Region:    localRegion,
		Name:      name,
	}
}

// launchS3 creates dir/data and starts the S3 server process newProc makes
// for a free address and that data folder; name is the server's, for
// messages. It returns the process and its address.
func launchS3(dir, name string, newProc func(addr, data string) *process) (*process, string, error) {
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, "", errors.Wrapf(err, "testenv: creating %s's data folder", name)
	}
	p, addrs, err := startOnFreePorts(1, func(addrs []string) *process {
		return newProc(addrs[0], data)
	})
	if err != nil {
		return nil, "", err
	}
	return p, addrs[0], nil
}

var minioBinary = binary{tool: "minio", name: "MinIO", version: minioVersion, launch: launchMinIO}

// launchMinIO starts MinIO with its data in dir/data and its log in
// dir/minio.log, and returns it and its address.
func launchMinIO(bin, dir string) (*process, string, error) {
	return launchMinIOCerts(bin, dir, "")
}

// launchMinIOCerts is launchMinIO serving https with the certificate in
// certsDir (MinIO's --certs-dir), or plain http when certsDir is "".
func launchMinIOCerts(bin, dir, certsDir string) (*process, string, error) {
	return launchS3(dir, "MinIO", func(addr, data string) *process {
		args := []string{"server", "--address", addr, "--quiet", data}
		ready := minioReady(addr)
		if certsDir != "" {
			args = append(args, "--certs-dir", certsDir)
			ready = minioReadyTLS(addr)
		}
		return &process{
			name: "MinIO",
			bin:  bin,
			args: args,
			env: []string{
				"MINIO_ROOT_USER=" + localAccessKey,
				"MINIO_ROOT_PASSWORD=" + localSecretKey,
				"MINIO_BROWSER=off",
				"MINIO_UPDATE=off",
			},
			logPath: filepath.Join(dir, "minio.log"),
			ready:   ready,
		}
	})
}

func minioReady(addr string) func(context.Context) error {
	return healthReady("http://"+addr+"/minio/health/ready", "")
}

// MinIOProcess is a MinIO server owned by one test, which may stop, kill and
// restart it to test crashes and outages. It keeps its port and data folder
// across restarts. Its methods must be called from the test's goroutine
// (they end the test with t.Fatal on failure); they are safe to call
// concurrently with requests to the server.
type MinIOProcess struct {
	dedicatedServer
	s3     S3
	caFile string // StartMinIOTLS's
}

// StartMinIO starts a MinIO server for this test alone, on a free port with
// a data folder under t.TempDir, and kills it at t.Cleanup. It never uses an
// external endpoint: the test needs a process it can kill. Without the
// binary the test is skipped (fails when CI=true).
func StartMinIO(t testing.TB) *MinIOProcess {
	t.Helper()
	d := startDedicated(t, minioBinary)
	return &MinIOProcess{dedicatedServer: d, s3: localS3("minio", d.addr)}
}

// S3 returns how to reach the server; the same across restarts.
func (m *MinIOProcess) S3() S3 { return m.s3 }
