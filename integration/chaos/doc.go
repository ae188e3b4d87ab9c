// Package chaos is Woodpecker's chaos suite (issue 10): TestChaos starts
// real processes on 127.0.0.1 (an etcd and a MinIO the test owns, writer and
// reader client processes, and in QuorumBuffer mode three `woodpecker
// logstore` servers), runs a workload of several logs, injects faults from a
// seeded schedule, and checks the history of every operation with the
// history package's checker.
//
//	go test ./integration/chaos                         # the short run (part of make test)
//	go test ./integration/chaos -chaos.cycles=1000 -timeout 0   # the long run (make chaos)
//	go test ./integration/chaos -chaos.seed=N -chaos.mode=quorum -chaos.history=/tmp/h
//
// Flags: -chaos.cycles (per mode; 0, the default, is the short run: 30
// cycles in memory mode, 22 in quorum mode, 23 in journaled mode, 20 in
// quorum-shared mode and 20 in localfs mode, every kind at least once), -chaos.seed (0: random; printed,
// and a failing seed reruns the same schedule, also for one mode alone),
// -chaos.mode (memory: MemoryBuffer on MinIO; quorum: QuorumBuffer;
// journaled: QuorumBuffer on LogStores that keep journals (--data-dir),
// which adds the fault kill-logstores, all three at once; quorum-shared:
// QuorumBuffer whose LogStores write shared objects (no object damage: a
// shared object holds other logs' blocks too); localfs:
// MemoryBuffer on a local folder the processes share; both: memory and
// quorum; all; or a comma-separated list; the default is
// memory,quorum,journaled,quorum-shared), -chaos.duration (stop starting cycles after this long per mode,
// then end as usual: for a run that must fit a time budget; the report
// gives the cycles run), -chaos.history (keep the history files, process logs,
// timeline.ndjson, report.txt and chaos.svg there; by default they are kept
// only when the test fails, in a temp folder the test names).
//
// # Processes
//
// Writers and readers are the test binary itself, re-executed to run
// TestChaosChild with a JSON spec in WOODPECKER_CHAOS_CHILD. Each writes its
// own history file (history.Recorder) with times from one history.Clock
// whose origin the runner passes down. A writer appends unique values
// ("p<process>-<seq>") to one log in bursts at a fixed pace, several in
// flight; after a failure it opens the writer again at the same epoch, and
// once fenced it makes a few more appends (all must fail) and exits. Each
// log keeps a standby writer process, connected and waiting for its epoch,
// so that a writer fault measures the engine's takeover, not a process
// start. A reader process runs
// one session per log, from Earliest, Latest, or an id remembered from
// earlier acknowledgements (At, After), records deliveries in chunks, and
// resumes after its last entry when a session fails. Every process runs in
// its own process group with a parent-death signal and is killed at the
// test's end.
//
// Clients reach etcd and MinIO through TCP proxies in the test process, one
// per group of client processes and server (writer>minio, reader>etcd,
// logstore>minio, ...), and each LogStore through a proxy whose address it
// registers. A proxy stalls one or both directions (a partition: TCP bytes
// are held, not dropped, as retransmission would), delays, limits
// bandwidth, or resets connections. Behind each proxy to MinIO an HTTP
// proxy (s3Proxy) forwards the S3 requests unchanged, or answers a share of
// them 503 SlowDown / 500 InternalError with an S3 XML error body (before
// the request reaches MinIO, or after MinIO ran it: a PUT that happened but
// looks failed), or delays every PUT.
//
// # Faults
//
// A cycle injects one fault, or two on different resources that overlap
// (a quarter of the cycles), heals them after their hold, then waits until
// every log has acknowledged a write again (the recovery time reported per
// kind). The kinds are listed in schedule_test.go: kill -9 and restart of a
// writer, a reader, a LogStore, MinIO, etcd; SIGSTOP/SIGCONT of MinIO and
// etcd (longer than the upload timeout and a LogStore's lease), of a writer
// (longer than the upload timeout, often replaced by a writer of the next
// epoch meanwhile: the zombie that wakes up and keeps writing), a reader, a
// LogStore (longer than its lease); network faults; two writers started with
// the same epoch or with racing epochs; S3 5xx answers and slow PUTs; and
// object damage (localfs mode has neither MinIO nor object faults). Damage is checked
// on a log of its own (a block of a sealed segment corrupted or deleted
// behind the engine's back: a reader must deliver the entries before it and
// then fail with ErrCorrupt, never skip), so that deliberate damage never
// enters the history the checker judges.
//
// In QuorumBuffer mode at most one LogStore is faulty at a time, and after a
// LogStore restarts (losing its memory) the runner waits until every segment
// then open is sealed in object storage before the next cycle: the mode
// tolerates one LogStore failure, not two.
//
// # The end
//
// Faults stop; writers stop appending and record what they had in flight; a
// final writer of the next epoch recovers every log and appends; the reader
// processes read until idle (then record EndAt, see package history), and so
// do new readers from Earliest and from a remembered id. All history files
// are loaded and history.Check runs; the test fails on any violation, on a
// wedged log (no write acknowledged within a minute of the faults healing),
// on a failed damage check, and on a data race or panic in a child. The
// report gives cycles, faults of each kind with recovery times,
// acked/read/lost/duplicated counts and the seed; chaos.svg plots
// acknowledged appends a second and the slowest ack per log with the fault
// windows shaded.
package chaos
