// Package integration holds end-to-end tests of the embedded (MemoryBuffer)
// engine against real servers: MinIO and etcd processes from
// internal/testenv, and local directories. They check the invariants of
// docs/DESIGN.md under load, process crashes, zombie writers, corrupted or
// torn data, storage outages and a slow store.
//
// The package has no non-test code. Run it with
//
//	go test -race ./integration/...
//
// Longer soak variants run only without -short and with WOODPECKER_SOAK=1.
package integration
