package main

import (
	"strconv"
	"testing"

	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// TestAppendEpochOutOfRangeIsAUsageError: an epoch no writer could ever
// follow (the top of int64) or a negative one is refused as bad usage
// (exit 2) before anything changes, naming the range.
func TestAppendEpochOutOfRangeIsAUsageError(t *testing.T) {
	c := sharedCLI(t)
	c.ok("", "log", "create", "ep")
	for _, epoch := range []string{"9223372036854775807", strconv.FormatInt(woodpecker.MaxEpoch+1, 10), "-3"} {
		wantError(t, c.run("a\n", "append", "ep", "--epoch", epoch), exitUsage, "--epoch "+epoch, "0 to 4611686018427387903")
	}
	// Nothing changed: a writer at epoch 1 still opens the log.
	c.ok("a\n", "append", "ep", "--epoch", "1")
}

// TestAppendFencedAdviceIsTrue: refused for a lower epoch, append says
// which epoch takes the log over, and that epoch does, even at MaxEpoch
// where "a higher --epoch" does not exist.
func TestAppendFencedAdviceIsTrue(t *testing.T) {
	c := sharedCLI(t)
	max := strconv.FormatInt(woodpecker.MaxEpoch, 10)
	c.ok("a\n", "append", "top", "--create", "--epoch", max)
	wantError(t, c.run("b\n", "append", "top", "--epoch", "7"), exitFailure, "pass --epoch "+max+" to take it over")
	c.ok("c\n", "append", "top", "--epoch", max)
	c.ok("d\n", "append", "top") // the default: the log's current epoch
	if got := c.ok("", "tail", "top", "--no-follow").stdout; got != "a\nc\nd\n" {
		t.Fatalf("tail printed %q", got)
	}
}
