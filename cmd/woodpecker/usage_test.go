package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEmptyDataDirIsAUsageError: --data-dir "" would put the embedded
// default's etcd/ and logs/ in whatever directory the command runs in; it
// is refused (exit 2) and creates nothing.
func TestEmptyDataDirIsAUsageError(t *testing.T) {
	c := newCLI(t)
	for _, dir := range []string{"", " "} {
		wantError(t, c.run("", "--data-dir", dir, "log", "list"), exitUsage, "--data-dir is empty")
	}
	for _, name := range []string{"etcd", "logs", "data"} {
		if _, err := os.Stat(filepath.Join(c.dir, name)); err == nil {
			t.Errorf("./%s was created", name)
		}
	}
}

// TestConfigDirectoryIsAUsageError: --config naming a directory is bad
// usage (exit 2), as a missing file is.
func TestConfigDirectoryIsAUsageError(t *testing.T) {
	c := newCLI(t)
	wantError(t, c.run("", "--config", c.dir, "log", "list"), exitUsage, c.dir, "is a directory")
	wantError(t, c.run("", "--config", c.dir, "config", "validate"), exitUsage, "is a directory")
}

// TestBadInputGetsNoUsageHint: malformed data on stdin exits 2, with one
// error line and no "Run 'woodpecker --help'" (the command line was fine);
// usage errors keep the hint.
func TestBadInputGetsNoUsageHint(t *testing.T) {
	c := sharedCLI(t)
	c.ok("", "log", "create", "in")
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"\x00\x00\x00\x09abc", []string{"--format", "length-prefixed"}, "9 bytes, got 3"},
		{"\x00\x00\x00\x00", []string{"--format", "length-prefixed"}, "entry 1 has length 0"},
		{"\x00\x00", []string{"--format", "length-prefixed"}, "inside the length prefix"},
		{strings.Repeat("x", 17<<20) + "\n", nil, "line 1 is longer than writer.maxEntryBytes"},
	} {
		r := c.run(tc.stdin, append([]string{"append", "in"}, tc.args...)...)
		wantError(t, r, exitUsage, tc.want)
		if strings.Contains(r.stderr, "--help") {
			t.Errorf("bad input printed the usage hint:\n%s", r.stderr)
		}
	}
	if r := c.run("", "append", "in", "--depth", "0"); !strings.Contains(r.stderr, "Run 'woodpecker --help' for usage") {
		t.Errorf("a usage error lost its hint:\n%s", r)
	}
}

// TestEndpointPasswordsAreNotEchoed: a password inside an endpoint URL is
// redacted in the validation error, as config print redacts secrets.
func TestEndpointPasswordsAreNotEchoed(t *testing.T) {
	c := newCLI(t)
	for _, r := range []result{
		c.run("", "--etcd", "http://user:SECRET@host:2379", "log", "list"),
		c.run("", "--etcd", "http://user:SECRET@host:2379", "config", "print"),
		c.run("", "--storage", "minio", "--storage-endpoint", "http://ak:SECRET@minio:9000", "config", "validate"),
	} {
		wantError(t, r, exitUsage, "<redacted>", "holds credentials")
		if strings.Contains(r.stderr+r.stdout, "SECRET") {
			t.Errorf("the password is shown:\n%s", r)
		}
	}
	c.env = append(c.env, "WOODPECKER_ETCD_ENDPOINTS=http://root:SECRET@10.0.0.1:2379")
	r := c.run("", "config", "validate")
	wantError(t, r, exitUsage, "http://root:<redacted>@10.0.0.1:2379")
	if strings.Contains(r.stderr, "SECRET") {
		t.Errorf("the password is shown:\n%s", r)
	}
}
