package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// These tests run the command as a separate process, as a shell user does,
// and check exit codes, stdout and stderr. The process is this test binary
// (a build of package main) re-executed with envRunMain set: TestMain then
// calls main() itself instead of running tests, so each run goes through
// the real main, its signal handling and os.Exit. Built with -race, the
// command's own code is race-checked too.
const envRunMain = "WOODPECKER_CLI_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		return
	}
	testenv.Main(m)
}

// result is what one run of the command did.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cli runs the command in a directory with an environment of its own.
type cli struct {
	t   *testing.T
	dir string
	env []string
	// flags go before every command's arguments (connection settings).
	flags []string
}

// newCLI returns a runner in a fresh directory, with no WOODPECKER_*
// variable, so that nothing is configured: the embedded default.
func newCLI(t *testing.T) *cli {
	t.Helper()
	env := []string{envRunMain + "=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WOODPECKER_") {
			env = append(env, kv)
		}
	}
	return &cli{t: t, dir: t.TempDir(), env: env}
}

// sharedCLI returns a runner on the shared test etcd (under a key prefix
// of its own) with local storage in its directory.
func sharedCLI(t *testing.T) *cli {
	t.Helper()
	c := newCLI(t)
	c.flags = []string{"--etcd", strings.Join(testenv.EtcdEndpoints(t), ","), "--etcd-root", testenv.UniquePrefix(t),
		"--storage", "local", "--storage-root", filepath.Join(c.dir, "logs")}
	return c
}

func (c *cli) command(ctx context.Context, stdin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], append(append([]string(nil), c.flags...), args...)...)
	cmd.Dir = c.dir
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader(stdin)
	return cmd
}

// run runs the command to its end (at most two minutes).
func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := c.command(ctx, stdin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			c.t.Fatalf("running %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// ok runs the command and fails the test unless it exits 0.
func (c *cli) ok(stdin string, args ...string) result {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != 0 {
		c.t.Fatalf("woodpecker %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// wantError checks a failed run: the exit code, and one line on stderr
// (plus the usage hint for usage errors) that starts with "woodpecker: ",
// holds every substring of want, and shows no stack trace.
func wantError(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\n%s", r.code, code, r)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if code == exitUsage && len(lines) == 2 && strings.HasPrefix(lines[1], "Run 'woodpecker --help'") {
		lines = lines[:1]
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "woodpecker: ") {
		t.Fatalf("stderr is not one 'woodpecker: ...' line:\n%s", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("error %q does not mention %q", lines[0], w)
		}
	}
	for _, bad := range []string{"goroutine ", ".go:", "panic"} {
		if strings.Contains(r.stderr, bad) {
			t.Errorf("stderr holds %q (a stack trace?):\n%s", bad, r.stderr)
		}
	}
}

// closedPort returns a local TCP address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestBadUsage(t *testing.T) {
	c := newCLI(t)
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"frobnicate"}, []string{`unknown command "frobnicate"`}},
		{[]string{"log", "lst"}, []string{`unknown command "lst"`, "woodpecker log"}},
		{[]string{"log"}, []string{"needs a subcommand"}},
		{[]string{"log", "list", "--bogus"}, []string{"unknown flag: --bogus"}},
		{[]string{"tail"}, []string{"needs one log name"}},
		{[]string{"log", "create"}, []string{"needs at least one log name"}},
		{[]string{"tail", "x", "--from", "yesterday"}, []string{`--from "yesterday"`, "earliest, latest or SEG/ENTRY"}},
		{[]string{"tail", "x", "--output", "xml"}, []string{`--output "xml"`}},
		{[]string{"log", "truncate", "x", "1-2"}, []string{"1-2", "segment/entry"}},
		{[]string{"append", "x", "--format", "csv"}, []string{`--format "csv"`}},
		{[]string{"bench", "--entry-size", "big"}, []string{`--entry-size "big"`}},
		{[]string{"bench", "--concurrency", "1", "--logs", "2"}, []string{"--concurrency 1 is below --logs 2"}},
		{[]string{"bench", "--plot", "chart.png"}, []string{"SVG"}},
		{[]string{"--config", "missing.yaml", "log", "list"}, []string{"missing.yaml does not exist"}},
		{[]string{"--log-level", "loud", "config", "validate"}, []string{"log.level", "loud", "debug, info, warn, error"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			wantError(t, c.run("", tt.args...), exitUsage, tt.want...)
		})
	}
	if _, err := os.Stat(filepath.Join(c.dir, "data")); err == nil {
		t.Error("a usage error started the embedded default (./data exists)")
	}
}

func TestHelp(t *testing.T) {
	r := newCLI(t).ok("", "--help")
	for _, cmd := range []string{"bench", "log", "append", "tail", "segment", "config", "Exit codes"} {
		if !strings.Contains(r.stdout, cmd) {
			t.Errorf("--help does not mention %q:\n%s", cmd, r.stdout)
		}
	}
}

func TestUnreachableEtcd(t *testing.T) {
	c := newCLI(t)
	addr := closedPort(t)
	r := c.run("", "--etcd", addr, "log", "list")
	wantError(t, r, exitUnavailable, "cannot reach etcd at "+addr, "connection refused", "etcd.endpoints")

	c.env = append(c.env, "WOODPECKER_ETCD_ENDPOINTS="+addr)
	r = c.run("", "tail", "orders")
	wantError(t, r, exitUnavailable, "cannot reach etcd at "+addr)
}

func TestUnreachableObjectStore(t *testing.T) {
	c := newCLI(t)
	addr := closedPort(t)
	r := c.run("", "--etcd", strings.Join(testenv.EtcdEndpoints(t), ","), "--storage", "minio",
		"--storage-endpoint", addr, "log", "list")
	wantError(t, r, exitUnavailable, "cannot reach the object store at "+addr, "storage.endpoint")
}

func TestMissingLog(t *testing.T) {
	c := sharedCLI(t)
	for _, args := range [][]string{
		{"tail", "nope"},
		{"log", "stat", "nope"},
		{"log", "delete", "nope"},
		{"log", "truncate", "nope", "0/1"},
		{"segment", "verify", "nope"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			wantError(t, c.run("", args...), exitNotFound, `log "nope" does not exist`)
		})
	}
	t.Run("append", func(t *testing.T) {
		wantError(t, c.run("a\n", "append", "nope"), exitNotFound, `log "nope" does not exist`)
	})
}

func TestConfigValidate(t *testing.T) {
	c := newCLI(t)
	write := func(name, text string) string {
		path := filepath.Join(c.dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.yaml", "etcd:\n  endpoints: [\"10.0.0.1:2379\"]\nstorage:\n  type: minio\n  endpoint: \"10.0.0.2:9000\"\n")
	r := c.ok("", "config", "validate", good)
	if !strings.Contains(r.stdout, "good.yaml is valid") {
		t.Errorf("validate of a good file said:\n%s", r)
	}
	tests := []struct {
		name, text string
		want       []string
	}{
		{"enum", "storage:\n  type: floppy\n", []string{"storage.type", `"floppy"`, "minio, s3, local", "line 2"}},
		{"unknown key", "writer:\n  maxEntryByte: 1MiB\n", []string{"writer.maxEntryByte"}},
		{"range", "writer:\n  maxEntryBytes: 1GiB\n", []string{"writer.maxEntryBytes", "writer.memoryBudgetBytes"}},
		{"size", "writer:\n  maxBlockBytes: lots\n", []string{"writer.maxBlockBytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := write(strings.ReplaceAll(tt.name, " ", "-")+".yaml", tt.text)
			r := c.run("", "config", "validate", path)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d\n%s", r.code, exitUsage, r)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("error does not name %q:\n%s", w, r.stderr)
				}
			}
		})
	}
	t.Run("environment", func(t *testing.T) {
		c := newCLI(t)
		c.env = append(c.env, "WOODPECKER_STORAGE_TYPE=tape")
		wantError(t, c.run("", "config", "validate"), exitUsage, "WOODPECKER_STORAGE_TYPE", "storage.type")
	})
}

func TestConfigPrint(t *testing.T) {
	c := newCLI(t)
	r := c.ok("", "config", "print")
	for _, want := range []string{"Embedded default", "type: local", "# " + sourceEmbedded, "level: info # default"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("config print (embedded) lacks %q:\n%s", want, r.stdout)
		}
	}
	path := filepath.Join(c.dir, "prod.yaml")
	if err := os.WriteFile(path, []byte("storage:\n  endpoint: \"s3.local:9000\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.env = append(c.env, "WOODPECKER_STORAGE_SECRET_KEY=hunter2-secret", "WOODPECKER_STORAGE_ACCESS_KEY=ak")
	r = c.ok("", "--config", path, "--log-level", "warn", "config", "print")
	for _, want := range []string{
		`endpoint: s3.local:9000 # file:` + path,
		"secretKey: <redacted> # env:WOODPECKER_STORAGE_SECRET_KEY",
		"level: warn # flag:--log-level",
		`endpoints: ['localhost:2379'] # default`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("config print lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "hunter2") || strings.Contains(r.stdout, "Embedded") {
		t.Errorf("config print shows the secret or claims the embedded default:\n%s", r.stdout)
	}
}

// TestEmbeddedDefault runs the command with nothing configured in a fresh
// directory: it must work on its own, keep everything under ./data, keep
// the data across runs, and let a second process (a follower) share the
// embedded etcd of the first.
func TestEmbeddedDefault(t *testing.T) {
	c := newCLI(t)
	c.ok("", "log", "create", "orders")
	r := c.ok("one\ntwo\n\nthree\r\n", "append", "orders")
	if !strings.Contains(r.stderr, `appended 3 entries`) || !strings.Contains(r.stderr, "skipped 1 empty lines") {
		t.Errorf("append summary: %s", r.stderr)
	}
	for _, sub := range []string{"etcd/member", "logs"} {
		if _, err := os.Stat(filepath.Join(c.dir, "data", sub)); err != nil {
			t.Errorf("embedded default did not create ./data/%s: %v", sub, err)
		}
	}
	if got := c.ok("", "tail", "orders", "--no-follow").stdout; got != "one\ntwo\nthree\n" {
		t.Fatalf("tail = %q", got)
	}
	if got := c.ok("", "log", "list").stdout; got != "orders\n" {
		t.Fatalf("log list = %q", got)
	}

	// A follower holds the embedded etcd; an appender started meanwhile
	// uses it, and the follower sees its entries.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	metricsAddr := closedPort(t)
	follow := c.command(ctx, "", "--metrics-addr", metricsAddr, "tail", "orders", "--after", "0/2", "--ids")
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	follow.Stderr = &stderr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// Wait until the follower serves metrics: it runs the embedded etcd
	// then, and the appender below joins it.
	waitHTTP(t, "http://"+metricsAddr+"/metrics")
	c.ok("four\nfive\n", "append", "orders")
	for _, want := range []string{"1/0\tfour", "1/1\tfive"} {
		select {
		case got, ok := <-lines:
			if !ok || got != want {
				t.Fatalf("follower printed %q (open %v), want %q; stderr: %s", got, ok, want, stderr.String())
			}
		case <-ctx.Done():
			t.Fatalf("follower printed nothing for %q", want)
		}
	}
	body := httpGet(t, "http://"+metricsAddr+"/metrics")
	if !strings.Contains(body, "woodpecker_reader_entries_total 2") {
		t.Errorf("follower's metrics do not count the 2 entries read:\n%s", grepLines(body, "woodpecker_reader"))
	}
	// The lag is sampled every second: caught up, it reaches 0.
	lagZero := `woodpecker_reader_lag_entries{log="orders"} 0`
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(body, lagZero); {
		if time.Now().After(deadline) {
			t.Fatalf("follower's lag never reached 0:\n%s", grepLines(body, "woodpecker_reader"))
		}
		time.Sleep(200 * time.Millisecond)
		body = httpGet(t, "http://"+metricsAddr+"/metrics")
	}
	if err := follow.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	err = follow.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitInterrupted {
		t.Fatalf("follower stopped by SIGINT: %v, want exit %d; stderr: %s", err, exitInterrupted, stderr.String())
	}
	if got := c.ok("", "tail", "orders", "--after", "0/1", "--no-follow").stdout; got != "three\nfour\nfive\n" {
		t.Fatalf("tail --after 0/1 = %q", got)
	}
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within a minute", url)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grepLines(text, substr string) string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestAppendAndTail covers the input and output formats and the starting
// points, on the shared etcd.
func TestAppendAndTail(t *testing.T) {
	c := sharedCLI(t)
	r := c.ok("alpha\nbeta\n", "append", "events", "--create", "--ids")
	if r.stdout != "0/0\n0/1\n" {
		t.Fatalf("append --ids printed %q", r.stdout)
	}
	var framed bytes.Buffer
	for _, p := range [][]byte{{0xff, 0x00, 0x01}, []byte("line\nbreak")} {
		_ = binary.Write(&framed, binary.BigEndian, uint32(len(p)))
		framed.Write(p)
	}
	c.ok(framed.String(), "append", "events", "--format", "length-prefixed")

	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--no-follow"}, "alpha\nbeta\n\xff\x00\x01\nline\nbreak\n"},
		{[]string{"-n", "1", "--from", "1/0", "-o", "hex"}, "1/0\tff0001\n"},
		{[]string{"--after", "0/1", "-n", "1", "--ids"}, "1/0\t\xff\x00\x01\n"},
		{[]string{"--from", "0/1", "--no-follow", "-o", "json"},
			`{"id":"0/1","segment":0,"entry":1,"size":4,"text":"beta"}` + "\n" +
				`{"id":"1/0","segment":1,"entry":0,"size":3,"base64":"/wAB"}` + "\n" +
				`{"id":"1/1","segment":1,"entry":1,"size":10,"text":"line\nbreak"}` + "\n"},
		{[]string{"--from", "latest", "--no-follow"}, ""},
		{[]string{"--from", "5/0", "--no-follow"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := c.ok("", append([]string{"tail", "events"}, tt.args...)...)
			if r.stdout != tt.want {
				t.Fatalf("tail %v printed %q, want %q", tt.args, r.stdout, tt.want)
			}
		})
	}

	t.Run("bad input", func(t *testing.T) {
		wantError(t, c.run("\x00\x00\x00\x09abc", "append", "events", "--format", "length-prefixed"),
			exitUsage, "entry 1", "9 bytes, got 3")
		wantError(t, c.run("\x00\x00\x00\x00", "append", "events", "--format", "length-prefixed"),
			exitUsage, "entry 1 has length 0")
	})

	r = c.ok("", "log", "stat", "events", "--json")
	var v logView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("log stat --json: %v\n%s", err, r.stdout)
	}
	if v.Entries != 4 || len(v.Segments) != 2 || v.Segments[1].State != "sealed" {
		t.Fatalf("log stat: %+v", v)
	}
	c.ok("", "log", "truncate", "events", "1/0")
	if got := c.ok("", "tail", "events", "--no-follow", "-o", "hex").stdout; !strings.HasPrefix(got, "1/0\t") {
		t.Fatalf("tail after truncate starts with %q, want 1/0", got)
	}
	c.ok("", "log", "delete", "events")
	wantError(t, c.run("", "log", "stat", "events"), exitNotFound, `log "events" does not exist`)
}

// corruptByte flips a byte of a file.
func corruptByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestSegmentVerifyLocal corrupts one byte of a local segment file and
// checks that verify reports exactly that block, with the file and offset,
// and that a reader refuses it.
func TestSegmentVerifyLocal(t *testing.T) {
	c := sharedCLI(t)
	c.ok("", "log", "create", "audit")
	for i := range 3 {
		c.ok(fmt.Sprintf("s%d-a\ns%d-b\n", i, i), "append", "audit")
	}
	r := c.ok("", "segment", "verify", "audit")
	if !regexp.MustCompile(`verified 3 segments, \d+ blocks, 6 entries: 0 problems`).MatchString(r.stdout) {
		t.Fatalf("verify of a healthy log:\n%s", r)
	}
	r = c.ok("", "segment", "inspect", "audit", "1", "--entries")
	for _, want := range []string{"segment 1", "entries 0..1 (2)", `1/1	4 B	"s1-b"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inspect lacks %q:\n%s", want, r.stdout)
		}
	}

	files, err := filepath.Glob(filepath.Join(c.dir, "logs", "*", "0000000000000000001.seg"))
	if err != nil || len(files) != 1 {
		t.Fatalf("segment 1's file: %v %v", files, err)
	}
	// The payload of the first block's only entry... or its body: byte 66
	// is inside the entries section of block 0 (after the 64-byte header).
	corruptByte(t, files[0], segment.BlockHeaderSize+2)

	r = c.run("", "segment", "verify", "audit")
	if r.code != exitCorrupt {
		t.Fatalf("verify of a corrupt log: exit %d, want %d\n%s", r.code, exitCorrupt, r)
	}
	re := regexp.MustCompile(`CORRUPT log "audit" segment 1 at ` + regexp.QuoteMeta(files[0]) +
		` at offset 0: block 0: corrupt block at byte \d+ of the block \(file offset \d+\): body CRC mismatch`)
	if !re.MatchString(r.stdout) {
		t.Errorf("verify does not name the block, file and offset:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, `segment 0: CORRUPT`) || strings.Contains(r.stdout, `segment 2: CORRUPT`) {
		t.Errorf("verify reports healthy segments as corrupt:\n%s", r.stdout)
	}
	wantError(t, r, exitCorrupt, "1 problem found")

	r = c.run("", "tail", "audit", "--no-follow")
	if r.code != exitCorrupt || !strings.HasPrefix(r.stdout, "s0-a\ns0-b\n") {
		t.Fatalf("tail over a corrupt block: %s", r)
	}
	wantError(t, r, exitCorrupt, "segment 1")
}

// TestSegmentVerifyObjectStore corrupts one block object in MinIO.
func TestSegmentVerifyObjectStore(t *testing.T) {
	s3 := testenv.MinIO(t)
	bucket := testenv.NewBucket(t, s3)
	c := newCLI(t)
	root := testenv.UniquePrefix(t)
	c.flags = []string{"--etcd", strings.Join(testenv.EtcdEndpoints(t), ","), "--etcd-root", root,
		"--storage", "minio", "--storage-endpoint", s3.Endpoint, "--storage-bucket", bucket, "--storage-root", root}
	c.env = append(c.env, "WOODPECKER_STORAGE_ACCESS_KEY="+s3.AccessKey, "WOODPECKER_STORAGE_SECRET_KEY="+s3.SecretKey)
	c.ok("x\ny\nz\n", "append", "ledger", "--create")
	c.ok("", "segment", "verify", "ledger")

	ctx := context.Background()
	store, err := s3store.Open(ctx, s3store.Config{Endpoint: s3.Endpoint, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey,
		Bucket: bucket, Region: s3.Region, RootPath: root})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	objs, err := objstore.ListAll(ctx, store, "", "")
	if err != nil {
		t.Fatal(err)
	}
	var key string
	for _, o := range objs {
		if _, _, no, ok := segment.ParseBlockKey(o.Key); ok && no == 0 {
			key = o.Key
		}
	}
	if key == "" {
		t.Fatalf("no block 0 among %v", objs)
	}
	data, err := store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-5] ^= 0x01 // the last payload byte, before the body CRC
	if err := store.Put(ctx, key, data, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	r := c.run("", "segment", "verify")
	if r.code != exitCorrupt || !strings.Contains(r.stdout, `CORRUPT log "ledger" segment 0 at `+key+": block 0: corrupt block at byte") {
		t.Fatalf("verify does not name the object %s:\n%s", key, r)
	}

	// A compacted segment: one block per entry, merged by the engine's
	// compaction, then verified through the index of its new layout.
	c.ok(strings.Repeat("entry\n", 6), "append", "compacted", "--create", "--depth", "1")
	cfg := options.Default()
	cfg.Etcd.Endpoints, cfg.Etcd.RootPath = testenv.EtcdEndpoints(t), root
	cfg.Storage.Endpoint, cfg.Storage.Bucket, cfg.Storage.RootPath = s3.Endpoint, bucket, root
	cfg.Storage.AccessKey, cfg.Storage.SecretKey, cfg.Storage.Region = s3.AccessKey, s3.SecretKey, s3.Region
	cfg.Retention.Compaction.Enabled, cfg.Retention.Compaction.MinBlocks = true, 2
	client, err := woodpecker.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := client.RunGC(ctx)
	client.Close()
	if err != nil || rep.CompactedSegments == 0 {
		t.Fatalf("compaction: %+v, %v", rep, err)
	}
	r = c.ok("", "segment", "inspect", "compacted")
	if !strings.Contains(r.stdout, "compacted into") || !regexp.MustCompile(`-c0000000000000000001 at offset \d+`).MatchString(r.stdout) {
		t.Fatalf("inspect of a compacted segment:\n%s", r.stdout)
	}
	r = c.ok("", "segment", "verify", "compacted")
	if !strings.Contains(r.stdout, "6 entries: 0 problems") {
		t.Fatalf("verify of a compacted segment:\n%s", r.stdout)
	}
}

// TestBench runs a small benchmark with the raw measurement on the
// embedded default, and checks the JSON, the table and the chart.
func TestBench(t *testing.T) {
	c := newCLI(t)
	r := c.ok("", "bench", "--raw", "--total", "4MiB", "--entry-size", "1KiB", "--json", "res.json", "--plot", "chart.svg")
	for _, want := range []string{"write throughput", "raw limit", "ratio", "append p99.9", "read throughput", "blocks per GiB", "peak heap"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("bench output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "appends") || !strings.Contains(r.stderr, "done") {
		t.Errorf("bench printed no progress on stderr:\n%s", r.stderr)
	}
	raw, err := os.ReadFile(filepath.Join(c.dir, "res.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Write struct {
			Bytes   int64 `json:"bytes"`
			Latency struct {
				P99Ms float64 `json:"p99_ms"`
			} `json:"latency"`
		} `json:"write"`
		Read struct {
			Bytes int64 `json:"bytes"`
		} `json:"read"`
		Raw *struct {
			Throughput struct {
				MiBps float64 `json:"mib_per_s"`
			} `json:"throughput"`
		} `json:"raw"`
		Ratios *struct {
			WriteMiBps float64 `json:"write_mib_per_s"`
		} `json:"ratios"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("--json file: %v", err)
	}
	if res.Write.Bytes != 4<<20 || res.Read.Bytes != 4<<20 || res.Write.Latency.P99Ms <= 0 ||
		res.Raw == nil || res.Raw.Throughput.MiBps <= 0 || res.Ratios == nil || res.Ratios.WriteMiBps <= 0 {
		t.Errorf("--json results: %s", raw)
	}
	svg, err := os.ReadFile(filepath.Join(c.dir, "chart.svg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "Append latency over time", "Append latency histogram", "Append throughput", "<circle", "</svg>"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("chart lacks %q", want)
		}
	}
	// The benchmark's logs are gone, with their data.
	if got := c.ok("", "log", "list").stdout; got != "" {
		t.Errorf("logs left after bench: %q", got)
	}
	entries, err := os.ReadDir(filepath.Join(c.dir, "data", "logs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("bench left data in data/logs/%s", e.Name())
		}
	}

	// The in-memory backend, JSON on stdout.
	r = c.ok("", "bench", "--backend", "memory", "--total", "1MiB", "--entry-size", "512", "--json", "-", "--progress", "none")
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Write.Bytes != 1<<20 {
		t.Fatalf("bench --json -: %v\n%s", err, r)
	}
	if r.stderr != "" {
		t.Errorf("bench --progress none wrote to stderr: %q", r.stderr)
	}

	// Paced logs with shared objects: the PUT rate, its bound, the cost and
	// the raw GETs the catch-up reads are compared with.
	r = c.ok("", "bench", "--backend", "memory", "--raw", "--logs", "3", "--rate", "50", "--duration", "300ms",
		"--entry-size", "1KiB", "--batch-window", "10ms", "--progress", "none")
	for _, want := range []string{"3 log(s) at 50 appends/s each", "shared objects (window 10ms", "PUTs/s while appending",
		"(bound)", "PUTs per 1,000 appends", "/day", "append p50 vs window + 1.5 x PUT", "(GET)", "RSS peak",
		"mean etcd commit"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("paced bench output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := c.run("", "bench", "--backend", "memory", "--rate", "-1", "--duration", "1s"); r.code != exitUsage {
		t.Errorf("bench --rate -1: %s", r)
	}
}

func TestHuman(t *testing.T) {
	tests := map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.00 KiB", 1536: "1.50 KiB", 10 << 20: "10.0 MiB",
		300 << 30: "300 GiB"}
	for n, want := range tests {
		if got := human(n); got != want {
			t.Errorf("human(%d) = %q, want %q", n, got, want)
		}
	}
	if got := preview([]byte("hello"), 64); got != strconv.Quote("hello") {
		t.Errorf("preview(text) = %s", got)
	}
	if got := preview([]byte{0, 1, 2}, 2); got != "0x0001..." {
		t.Errorf("preview(binary) = %s", got)
	}
}

func TestLagEntries(t *testing.T) {
	id := func(seg, ent int64) *woodpecker.EntryID { return &woodpecker.EntryID{Segment: seg, Entry: ent} }
	// Segments 0 (entries 0..9, sealed), 1 (0..4, sealed), 2 (open, up to 2).
	st := woodpecker.Stats{
		Segments: []woodpecker.SegmentInfo{
			{ID: 0, Sealed: true, LastEntry: 9}, {ID: 1, Sealed: true, LastEntry: 4}, {ID: 2, LastEntry: -1},
		},
		First: woodpecker.EntryID{}, Last: woodpecker.EntryID{Segment: 2, Entry: 2}, NonEmpty: true,
	}
	tests := []struct {
		name string
		st   woodpecker.Stats
		pos  *woodpecker.EntryID
		want int64
	}{
		{"nothing read", st, nil, 18},
		{"inside the first segment", st, id(0, 3), 6 + 5 + 3},
		{"end of a sealed segment", st, id(0, 9), 5 + 3},
		{"caught up", st, id(2, 2), 0},
		{"empty log", woodpecker.Stats{}, nil, 0},
		{"truncated", func() woodpecker.Stats { s := st; s.First = woodpecker.EntryID{Segment: 1, Entry: 2}; return s }(), nil, 3 + 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lagEntries(tt.st, tt.pos); got != tt.want {
				t.Errorf("lag = %d, want %d", got, tt.want)
			}
		})
	}
}
