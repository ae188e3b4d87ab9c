package testenv

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

var sharedEtcd struct {
	once      sync.Once
	endpoints []string
	err       error
}

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
	sharedEtcd.once.Do(func() {
		if v := os.Getenv(envEtcdEndpoints); v != "" {
			for _, ep := range strings.Split(v, ",") {
				if ep = strings.TrimSpace(ep); ep != "" {
					sharedEtcd.endpoints = append(sharedEtcd.endpoints, ep)
				}
			}
			if len(sharedEtcd.endpoints) == 0 {
				sharedEtcd.err = errors.Newf("%s=%q names no endpoint", envEtcdEndpoints, v)
				return
			}
			announce(t, "external etcd at %s", strings.Join(sharedEtcd.endpoints, ","))
			return
		}
		sharedEtcd.endpoints, sharedEtcd.err = startEmbeddedEtcd(t)
	})
	if sharedEtcd.err != nil {
		unavailable(t, "etcd", sharedEtcd.err)
	}
	return append([]string(nil), sharedEtcd.endpoints...)
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
	t         testing.TB
	proc      *process
	clientURL string
}

// StartEtcd starts a single-member etcd server (the binary built by make
// tools) for this test alone, on free ports with a data folder under
// t.TempDir, and kills it at t.Cleanup. Without the binary the test is
// skipped (fails when CI=true).
func StartEtcd(t testing.TB) *EtcdProcess {
	t.Helper()
	bin, err := ToolPath("etcd")
	if err != nil {
		unavailable(t, "etcd binary", err)
	}
	dir := t.TempDir()
	var lastErr error
	for range 3 {
		cport, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		pport, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if pport == cport {
			continue
		}
		curl := "http://127.0.0.1:" + strconv.Itoa(cport)
		purl := "http://127.0.0.1:" + strconv.Itoa(pport)
		p := &process{
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
		if lastErr = p.start(); lastErr != nil {
			continue
		}
		t.Cleanup(func() { p.stop(syscall.SIGKILL) })
		t.Logf("testenv: dedicated etcd %s at %s (pid %d)", etcdVersion, curl, p.pid())
		return &EtcdProcess{t: t, proc: p, clientURL: curl}
	}
	t.Fatalf("testenv: starting a dedicated etcd: %v", lastErr)
	return nil
}

func etcdReady(clientURL string) func(context.Context) error {
	return func(ctx context.Context) error {
		code, body, err := httpGet(ctx, clientURL+"/health")
		if err != nil {
			return err
		}
		if code != http.StatusOK || !strings.Contains(body, `"health":"true"`) {
			return errors.Newf("/health answered %d %q", code, body)
		}
		return nil
	}
}

// Endpoints returns the client endpoints; the same across restarts. The
// caller may modify the returned slice.
func (e *EtcdProcess) Endpoints() []string { return []string{e.clientURL} }

// Stop sends SIGTERM and waits for the server to exit (SIGKILL after 30s).
// Stopping a stopped server does nothing.
func (e *EtcdProcess) Stop() { e.proc.stop(syscall.SIGTERM) }

// Kill sends SIGKILL and waits for the server to exit, like a crash.
func (e *EtcdProcess) Kill() { e.proc.stop(syscall.SIGKILL) }

// Start starts a stopped server again on the same ports and data folder and
// waits until /health reports it healthy; the test fails if it does not.
func (e *EtcdProcess) Start() {
	e.t.Helper()
	if err := e.proc.start(); err != nil {
		e.t.Fatalf("testenv: restarting etcd: %v", err)
	}
}

// String names the server, for test logs.
func (e *EtcdProcess) String() string {
	return fmt.Sprintf("etcd at %s (pid %d)", e.clientURL, e.proc.pid())
}
