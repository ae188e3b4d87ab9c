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
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}
