// Package testenv gives tests real servers: a MinIO server, an S3-compatible
// versitygw server, an embedded etcd server, and etcd / MinIO processes that
// a test can kill and restart. It is the one place tests get servers from.
//
// Binaries are built once by scripts/tools.sh (make tools) and cached in
// .tools/<name>-<version>/ (or $WOODPECKER_TOOLS_DIR). Externally provided
// endpoints are honoured:
//
//	WOODPECKER_TEST_S3_ENDPOINT    host:port of a MinIO / S3-compatible server
//	WOODPECKER_TEST_S3_ACCESS_KEY, WOODPECKER_TEST_S3_SECRET_KEY
//	WOODPECKER_TEST_S3_SECURE      "true" for https
//	WOODPECKER_TEST_S3_REGION      region, default us-east-1
//	WOODPECKER_TEST_ETCD_ENDPOINTS comma-separated etcd endpoints
//
// When CI=true a test that needs a server and cannot get one fails; it never
// skips. Elsewhere it skips with a message saying how to get the server
// (make tools). A server binary that is present but does not start fails
// the test everywhere, with the tail of the server's log.
//
// # Shared and dedicated servers
//
// MinIO, VersityGW and Etcd / EtcdEndpoints return servers shared by every
// test of a test binary, started on first use. Tests keep apart by using
// their own bucket (NewBucket) and key prefix (UniquePrefix). A package that
// uses them declares
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// so the servers are stopped and their data removed at the end, after which
// Main checks for leaked goroutines (it replaces goleak.VerifyTestMain).
// Should a test binary die without Main, the kernel kills the server
// processes (Linux parent-death signal) and the next run removes their temp
// folders.
//
// StartMinIO and StartEtcd start servers owned by one test, which it may
// stop, kill and restart on the same ports and data; they are killed at
// t.Cleanup.
//
// Every server runs as its own process (except the embedded etcd), is
// stopped by its PID, and logs to a file in its temp folder.
package testenv
