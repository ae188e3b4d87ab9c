// Package mocks holds generated go.uber.org/mock mocks of the interfaces
// through which callers reach the replica transport and the metadata
// store: quorum.Transport and the LogStore gRPC client it returns
// (quorumpb.LogStoreClient), shared.Index (the etcd side of shared
// objects), and segment.Meta (the metadata a segment writer changes).
//
// They are for unit tests of callers only: a test scripts one definite
// answer per call (an error, a fenced status, a corrupt block) and asserts
// what the caller makes of it. Behaviour that depends on real servers
// (LogStores, etcd, object storage) stays in the integration tests, which
// use the real implementations or the fault injectors (quorum.Faults,
// metafault, memstore rules).
//
// The files are generated and checked in: after changing one of these
// interfaces, run `make mocks` (or `go generate ./mocks`).
package mocks

//go:generate go run go.uber.org/mock/mockgen@v0.6.0 -typed -write_package_comment=false -package mocks -destination transport.go github.com/woodpecker-wal/woodpecker/quorum Transport
//go:generate go run go.uber.org/mock/mockgen@v0.6.0 -typed -write_package_comment=false -package mocks -destination logstore_client.go github.com/woodpecker-wal/woodpecker/quorum/quorumpb LogStoreClient
//go:generate go run go.uber.org/mock/mockgen@v0.6.0 -typed -write_package_comment=false -package mocks -destination index.go github.com/woodpecker-wal/woodpecker/shared Index
//go:generate go run go.uber.org/mock/mockgen@v0.6.0 -typed -write_package_comment=false -package mocks -destination segment_meta.go -mock_names Meta=MockSegmentMeta github.com/woodpecker-wal/woodpecker/segment Meta
