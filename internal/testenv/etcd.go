package testenv

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	etcdversion "go.etcd.io/etcd/api/v3/version"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// envEtcdEndpoints names external etcd endpoints, comma-separated.
const envEtcdEndpoints = "WOODPECKER_TEST_ETCD_ENDPOINTS"

var sharedEtcd sharedServer[[]string]

// EtcdEndpoints returns the endpoints of the etcd shared by all tests of
// this test binary: those in WOODPECKER_TEST_ETCD_ENDPOINTS, or an etcd
// server embedded in the test binary (go.etcd.io/etcd/server/v3/embed, same
// version as the client), started on first use on 127.0.0.1 with a temp
// data folder and stopped by Main. The embedded server does not fsync (it
// is never killed, so nothing is lost); tests of crashes use StartEtcd.
// Tests share it, so each should keep to its own key prefix (UniquePrefix).
// The caller may modify the returned slice. Safe for concurrent use.
func EtcdEndpoints(t testing.TB) []string {
	t.Helper()
	return append([]string(nil), sharedEtcd.get(t, "etcd", startSharedEtcd)...)
}

func startSharedEtcd(t testing.TB) ([]string, error) {
	t.Helper()
	if v := os.Getenv(envEtcdEndpoints); v != "" {
		return externalEtcd(t, v)
	}
	return startEmbeddedEtcd(t)
}

// externalEtcd parses v, the value of WOODPECKER_TEST_ETCD_ENDPOINTS.
func externalEtcd(t testing.TB, v string) ([]string, error) {
	t.Helper()
	var eps []string
	for _, ep := range strings.Split(v, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			eps = append(eps, ep)
		}
	}
	if len(eps) == 0 {
		return nil, errors.Newf("%s=%q names no endpoint", envEtcdEndpoints, v)
	}
	announce(t, "external etcd at %s", strings.Join(eps, ","))
	return eps, nil
}

// Etcd returns a client of the shared etcd (see EtcdEndpoints), closed at
// t.Cleanup. The client is the caller's to use from any goroutine until
// then; it must not be closed by the caller twice (closing it early is fine).
func Etcd(t testing.TB) *clientv3.Client {
	t.Helper()
	eps := EtcdEndpoints(t)
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("testenv: connecting to etcd at %v: %v", eps, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func startEmbeddedEtcd(t testing.TB) ([]string, error) {
	t.Helper()
	dir, err := sharedDir("etcd")
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "testenv"
	cfg.Dir = filepath.Join(dir, "data")
	any0 := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{any0}, []url.URL{any0}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{any0}, []url.URL{any0}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true // never killed; see EtcdEndpoints

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, errors.Wrap(err, "testenv: starting embedded etcd")
	}
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, errors.Wrap(err, "testenv: embedded etcd failed while starting")
	case <-timer.C:
		e.Close()
		return nil, errors.Newf("testenv: embedded etcd not ready after %s", readyTimeout)
	}
	if len(e.Clients) == 0 {
		e.Close()
		return nil, errors.New("testenv: embedded etcd has no client listener")
	}
	ep := "http://" + e.Clients[0].Addr().String()
	onStopShared(func() {
		e.Close()
		<-e.Server.StopNotify()
	})
	announce(t, "etcd %s (embedded) at %s (data %s)", etcdversion.Version, ep, dir)
	return []string{ep}, nil
}

// EtcdProcess is an etcd server process owned by one test, which may stop,
// kill and restart it. It keeps its ports and data folder across restarts
// and fsyncs like a production server, so a kill loses nothing it
// acknowledged. Its methods must be called from the test's goroutine (they
// end the test with t.Fatal on failure); they are safe to call concurrently
// with requests to the server.
type EtcdProcess struct {
	dedicatedServer
}

// StartEtcd starts a single-member etcd server (the binary built by make
// tools) for this test alone, on free ports with a data folder under
// t.TempDir, and kills it at t.Cleanup. Without the binary the test is
// skipped (fails when CI=true).
func StartEtcd(t testing.TB) *EtcdProcess {
	t.Helper()
	return &EtcdProcess{startDedicated(t, etcdBinary)}
}

var etcdBinary = binary{tool: "etcd", name: "etcd", version: etcdVersion, launch: launchEtcd}

// launchEtcd starts a single-member etcd with its data in dir/data and its
// log in dir/etcd.log, and returns it and its client URL.
func launchEtcd(bin, dir string) (*process, string, error) {
	p, addrs, err := startOnFreePorts(2, func(addrs []string) *process {
		curl, purl := "http://"+addrs[0], "http://"+addrs[1]
		return &process{
			name: "etcd",
			bin:  bin,
			args: []string{
				"--name", "testenv",
				"--data-dir", filepath.Join(dir, "data"),
				"--listen-client-urls", curl, "--advertise-client-urls", curl,
				"--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
				"--initial-cluster", "testenv=" + purl,
				"--logger", "zap", "--log-level", "warn", "--log-outputs", "stderr",
			},
			logPath: filepath.Join(dir, "etcd.log"),
			ready:   etcdReady(curl),
		}
	})
	if err != nil {
		return nil, "", err
	}
	return p, "http://" + addrs[0], nil
}

func etcdReady(clientURL string) func(context.Context) error {
	return healthReady(clientURL+"/health", `"health":"true"`)
}

// Endpoints returns the client endpoints; the same across restarts. The
// caller may modify the returned slice.
func (e *EtcdProcess) Endpoints() []string { return []string{e.addr} }
