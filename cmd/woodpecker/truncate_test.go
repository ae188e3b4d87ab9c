package main

import (
	"strings"
	"testing"
)

// TestTruncatePastTheEndKeepsLaterAppends replays the reported session: a
// truncation beyond the last entry is refused (exit 2) and changes nothing,
// so the entries appended afterwards are all read back.
func TestTruncatePastTheEndKeepsLaterAppends(t *testing.T) {
	c := sharedCLI(t)
	c.ok("", "log", "create", "t1")
	c.ok("1\n2\n3\n", "append", "t1")
	wantError(t, c.run("", "log", "truncate", "t1", "5/0"), exitUsage, "5/0", "last durable entry is 0/2", "highest point is 0/3")
	if got := c.ok("7\n8\n9\n", "append", "t1", "--ids").stdout; got != "1/0\n1/1\n1/2\n" {
		t.Fatalf("append --ids printed %q", got)
	}
	if got := c.ok("", "tail", "t1", "--no-follow").stdout; got != "1\n2\n3\n7\n8\n9\n" {
		t.Fatalf("tail --no-follow printed %q: acknowledged entries are hidden", got)
	}
	r := c.ok("", "log", "truncate", "t1", "1/1")
	if !strings.Contains(r.stdout, "administrator truncation") || !strings.Contains(r.stdout, "1/1") {
		t.Fatalf("log truncate printed %q, want it to say it is an administrator truncation at 1/1", r.stdout)
	}
	if got := c.ok("", "tail", "t1", "--no-follow").stdout; got != "8\n9\n" {
		t.Fatalf("tail after truncating at 1/1 printed %q", got)
	}
}
