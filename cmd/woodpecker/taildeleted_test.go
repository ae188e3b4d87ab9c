package main

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestTailOfADeletedLogEndsWithNotFound: a tail following a log that is
// deleted ends with exit code 3 and says so, instead of following nothing
// forever.
func TestTailOfADeletedLogEndsWithNotFound(t *testing.T) {
	c := sharedCLI(t)
	c.ok("a\nb\n", "append", "gone", "--create")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.command(ctx, "", "tail", "gone")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// Wait until tail printed what the log holds: it follows the tail now.
	for _, want := range []string{"a", "b"} {
		select {
		case got, ok := <-lines:
			if !ok || got != want {
				t.Fatalf("tail printed %q (open %v), want %q", got, ok, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("tail printed no %q in 30s", want)
		}
	}
	ended := make(chan error, 1)
	go func() {
		for range lines {
		}
		ended <- cmd.Wait()
	}()
	c.ok("", "log", "delete", "gone")
	select {
	case err := <-ended:
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != exitNotFound {
			t.Fatalf("tail ended with %v, want exit code %d\nstderr:\n%s", err, exitNotFound, errb.String())
		}
		if !strings.Contains(errb.String(), `log "gone" was deleted`) {
			t.Errorf("stderr does not say the log was deleted:\n%s", errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("tail still follows 15s after the log was deleted")
	}
}
