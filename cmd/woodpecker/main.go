// Command woodpecker runs, measures and administers Woodpecker logs.
//
// With no etcd and no storage configured (no --config file setting them, no
// WOODPECKER_ETCD_* or WOODPECKER_STORAGE_* variable, no --etcd or --storage*
// flag) it runs on an embedded default: an etcd server inside the process,
// with its data in ./data/etcd, and log data in ./data/logs (--data-dir moves
// both). Nothing needs installing:
//
//	woodpecker bench --raw              # measure the engine against the disk
//	woodpecker log create orders
//	seq 10 | woodpecker append orders
//	woodpecker tail orders              # follow it, like tail -f
//	woodpecker segment verify orders    # check every block's CRC
//
// Exit codes: 0 success, 1 failure, 2 bad usage or invalid configuration,
// 3 log not found, 4 etcd or object store unreachable, 5 corrupt data found,
// 130 interrupted.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// interruptGrace is how long an interrupted command may take to wind down
// (stop waiting, close what it opened, report what it knows) before it
// exits regardless. A second interrupt ends it at once.
const interruptGrace = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go exitWhenStuck(ctx, done)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv)
	close(done)
	stop()
	os.Exit(code)
}

// exitWhenStuck ends the process after an interrupt (ctx ends) once a
// second one comes or interruptGrace has passed, for a command stuck on
// something that does not end with ctx: reading stdin, or a server that
// stopped answering. It says that the outcome of what was in flight is
// unknown.
func exitWhenStuck(ctx context.Context, done <-chan struct{}) {
	select {
	case <-ctx.Done():
	case <-done:
		return
	}
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	why := fmt.Sprintf("not done %s after the interrupt", interruptGrace)
	select {
	case <-done:
		return
	case <-again:
		why = "interrupted again"
	case <-time.After(interruptGrace):
	}
	fmt.Fprintf(os.Stderr, "woodpecker: interrupted (%s): exiting without waiting further; "+
		"what was not reported done may or may not have happened (appends: read the log back to know)\n", why)
	os.Exit(exitInterrupted)
}
