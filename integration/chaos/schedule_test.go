package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// kind is a kind of fault.
type kind string

// Kinds of faults. Every kind runs at least once in a run of at least
// len(kindsOf(mode)) cycles: the schedule starts with a shuffled pass over all
// of them.
const (
	killWriter    kind = "kill-writer"    // SIGKILL a log's writer process; a new one (next epoch) takes over
	killReader    kind = "kill-reader"    // SIGKILL a reader process; a new one starts from remembered positions
	killLogStore  kind = "kill-logstore"  // SIGKILL a LogStore, restart it (empty memory, or its journal) after the hold
	killLogStores kind = "kill-logstores" // journaled mode: SIGKILL all 3 LogStores at once, restart them from their journals after the hold
	killMinIO     kind = "kill-minio"     // SIGKILL MinIO, restart it after the hold
	killEtcd      kind = "kill-etcd"      // SIGKILL etcd, restart it after the hold
	pauseMinIO    kind = "pause-minio"    // SIGSTOP MinIO longer than the upload timeout, SIGCONT
	pauseEtcd     kind = "pause-etcd"     // SIGSTOP etcd longer than a LogStore's lease, SIGCONT
	pauseWriter   kind = "pause-writer"   // SIGSTOP a writer longer than the upload timeout, maybe replace it, SIGCONT: the zombie
	pauseReader   kind = "pause-reader"   // SIGSTOP a reader process, SIGCONT
	pauseLogStore kind = "pause-logstore" // SIGSTOP a LogStore longer than its lease and the call timeout, SIGCONT
	netDrop       kind = "net-drop"       // partition a link both ways
	netOneWay     kind = "net-oneway"     // partition a link one way
	netLatency    kind = "net-latency"    // delay every chunk on a link
	netBandwidth  kind = "net-bandwidth"  // limit a link's bandwidth
	netReset      kind = "net-reset"      // reset every connection of a link, refuse new ones for the hold
	s3Errors      kind = "s3-5xx"         // answer a share of a link's S3 requests 503 SlowDown / 500 InternalError, before or after the server ran them
	s3SlowPuts    kind = "s3-slow-put"    // delay every PUT on a link by hundreds of milliseconds
	objCorrupt    kind = "obj-corrupt"    // corrupt a block object behind the engine's back: readers must fail with ErrCorrupt
	objDelete     kind = "obj-delete"     // delete a block object of a sealed segment: readers must fail with ErrCorrupt
	sameEpoch     kind = "same-epoch"     // two new writers of one log start at the same epoch
	racingEpochs  kind = "racing-epochs"  // two new writers of one log start at once with consecutive epochs
)

// memoryKinds are the kinds of MemoryBuffer mode; quorum mode adds the
// LogStore kinds.
var memoryKinds = []kind{
	killWriter, killReader, killMinIO, killEtcd,
	pauseWriter, pauseReader, pauseMinIO, pauseEtcd,
	netDrop, netOneWay, netLatency, netBandwidth, netReset,
	s3Errors, s3SlowPuts,
	objCorrupt, objDelete,
	sameEpoch, racingEpochs,
}

func kindsOf(mode string) []kind {
	switch mode {
	case modeQuorum:
		return append(slices.Clone(memoryKinds), killLogStore, pauseLogStore)
	case modeJournaled:
		return append(slices.Clone(memoryKinds), killLogStore, pauseLogStore, killLogStores)
	case modeQuorumShared:
		// Object damage rewrites one block object of a victim log; a
		// shared object holds the blocks of the other logs too.
		kinds := slices.DeleteFunc(slices.Clone(memoryKinds), func(k kind) bool { return k == objCorrupt || k == objDelete })
		return append(kinds, killLogStore, pauseLogStore)
	case modeLocalFS:
		// No object store: no MinIO or S3 faults, and no object damage
		// (a segment is one file; damaging it is not built).
		return slices.DeleteFunc(slices.Clone(memoryKinds), func(k kind) bool {
			switch k {
			case killMinIO, pauseMinIO, s3Errors, s3SlowPuts, objCorrupt, objDelete:
				return true
			}
			return false
		})
	}
	return memoryKinds
}

// Modes.
const (
	modeMemory = "memory"
	modeQuorum = "quorum"
	// modeLocalFS is MemoryBuffer on a local folder the processes share
	// (acks after fsync) instead of MinIO.
	modeLocalFS = "localfs"
	// modeJournaled is QuorumBuffer on LogStores that keep journals
	// (--data-dir): they may all crash at once.
	modeJournaled = "journaled"
	// modeQuorumShared is QuorumBuffer whose LogStores pack the blocks of
	// every log into shared objects (writer.batchWindow > 0).
	modeQuorumShared = "quorum-shared"
)

// quorumMode reports whether mode runs LogStores.
func quorumMode(mode string) bool {
	return mode == modeQuorum || mode == modeJournaled || mode == modeQuorumShared
}

// Links a network fault can cut: a proxy between a group of client
// processes and a server. Clients are writers, readers (reader processes)
// and logstores; LogStores are reached by writers and readers alike through
// one proxy each (their registered address).
func linksOf(mode string) []string {
	if mode == modeLocalFS {
		return []string{"writer>etcd", "reader>etcd"}
	}
	links := []string{"writer>minio", "writer>etcd", "reader>minio", "reader>etcd"}
	if quorumMode(mode) {
		links = append(links, "logstore>minio", "logstore>etcd", "client>ls0", "client>ls1", "client>ls2")
	}
	return links
}

// minioLinks are the indexes (into linksOf) of the links to MinIO, which
// the S3 faults hit.
func minioLinks(mode string) []int {
	var out []int
	for i, l := range linksOf(mode) {
		if strings.HasSuffix(l, ">minio") {
			out = append(out, i)
		}
	}
	return out
}

// timing are the durations a schedule draws from. The engine's timeouts
// (childConfig) are chosen against them: a pause lasts longer than the
// upload timeout and a LogStore's lease.
type timing struct {
	killHold  [2]time.Duration // how long a killed server stays down
	pauseHold [2]time.Duration
	netHold   [2]time.Duration
	resetHold [2]time.Duration
}

var defaultTiming = timing{
	killHold:  [2]time.Duration{200 * time.Millisecond, 1200 * time.Millisecond},
	pauseHold: [2]time.Duration{uploadTimeout + 300*time.Millisecond, uploadTimeout + 1200*time.Millisecond},
	netHold:   [2]time.Duration{300 * time.Millisecond, 2000 * time.Millisecond},
	resetHold: [2]time.Duration{0, 600 * time.Millisecond},
}

// fault is one fault of a cycle, fully drawn from the seed: rerunning a
// seed reruns the same faults on the same targets with the same durations.
type fault struct {
	Kind kind
	// Log is the log of a writer fault (index into the run's logs).
	Log int
	// Target is the reader process (index into the reader slots), the
	// LogStore, or the link (index into linksOf) the fault hits.
	Target int
	// Hold is how long the fault lasts before it heals.
	Hold time.Duration
	// Replace: a paused writer is replaced by a writer of the next epoch
	// while it sleeps, so that it wakes up as a zombie.
	Replace bool
	// Up: a one-way partition stalls client-to-server bytes (else
	// server-to-client).
	Up bool
	// Latency and Rate shape a link.
	Latency time.Duration
	Rate    int
	// Damage selects how an object is damaged (obj-corrupt).
	Damage int
	// ErrorPct and PutDelay shape S3 answers on a link (s3-5xx,
	// s3-slow-put).
	ErrorPct int
	PutDelay time.Duration
}

// cycle is a step of the schedule: one fault, sometimes two that overlap.
type cycle struct {
	N      int
	Faults []fault
}

func (f fault) String(mode string) string {
	var b strings.Builder
	b.WriteString(string(f.Kind))
	switch f.Kind {
	case killWriter, sameEpoch, racingEpochs:
		fmt.Fprintf(&b, " log%d", f.Log)
	case pauseWriter:
		fmt.Fprintf(&b, " log%d for %s", f.Log, f.Hold)
		if f.Replace {
			b.WriteString(", replaced")
		}
	case killReader:
		fmt.Fprintf(&b, " reader%d", f.Target)
	case pauseReader:
		fmt.Fprintf(&b, " reader%d for %s", f.Target, f.Hold)
	case killLogStore, pauseLogStore:
		fmt.Fprintf(&b, " ls%d for %s", f.Target, f.Hold)
	case killMinIO, killEtcd, pauseMinIO, pauseEtcd, killLogStores:
		fmt.Fprintf(&b, " for %s", f.Hold)
	case netDrop, netReset:
		fmt.Fprintf(&b, " %s for %s", linksOf(mode)[f.Target], f.Hold)
	case netOneWay:
		dir := "down"
		if f.Up {
			dir = "up"
		}
		fmt.Fprintf(&b, " %s %s for %s", linksOf(mode)[f.Target], dir, f.Hold)
	case netLatency:
		fmt.Fprintf(&b, " %s +%s for %s", linksOf(mode)[f.Target], f.Latency, f.Hold)
	case netBandwidth:
		fmt.Fprintf(&b, " %s %dKiB/s for %s", linksOf(mode)[f.Target], f.Rate>>10, f.Hold)
	case s3Errors:
		fmt.Fprintf(&b, " %s %d%% for %s", linksOf(mode)[f.Target], f.ErrorPct, f.Hold)
	case s3SlowPuts:
		fmt.Fprintf(&b, " %s +%s for %s", linksOf(mode)[f.Target], f.PutDelay, f.Hold)
	case objCorrupt:
		fmt.Fprintf(&b, " (%s)", damages[f.Damage].name)
	}
	return b.String()
}

func (c cycle) String(mode string) string {
	parts := make([]string, len(c.Faults))
	for i, f := range c.Faults {
		parts[i] = f.String(mode)
	}
	return strings.Join(parts, " + ")
}

// resources names what a fault occupies; two faults of one cycle share none.
// "solo" faults run alone.
func (f fault) resources(mode string) []string {
	switch f.Kind {
	case objCorrupt, objDelete:
		return []string{"solo"}
	case killWriter, pauseWriter, sameEpoch, racingEpochs:
		return []string{fmt.Sprintf("writer%d", f.Log)}
	case killReader, pauseReader:
		return []string{fmt.Sprintf("reader%d", f.Target)}
	case killLogStore, killLogStores:
		// QuorumBuffer tolerates one LogStore failure at a time. A killed
		// LogStore's restart needs etcd and MinIO, and the runner's steps
		// run in turn: the restart of a MinIO or etcd fault overlapping it
		// would wait behind it (for a minute, wedging every log; seed
		// 1206008, quorum mode, cycle 24).
		return []string{"logstore", "minio", "etcd"}
	case pauseLogStore:
		return []string{"logstore"}
	case killMinIO, pauseMinIO:
		return []string{"minio"}
	case killEtcd, pauseEtcd:
		return []string{"etcd"}
	}
	link := linksOf(mode)[f.Target]
	if strings.HasPrefix(link, "client>ls") {
		return []string{"link:" + link, "logstore"}
	}
	return []string{"link:" + link}
}

// schedule draws cycles from rng: first every kind of the mode once, in a
// shuffled order, then kinds at random; a quarter of the cycles add a second,
// overlapping fault on other resources.
func schedule(rng *rand.Rand, mode string, cycles, logs, readers int, tm timing) []cycle {
	kinds := kindsOf(mode)
	first := slices.Clone(kinds)
	rng.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	out := make([]cycle, 0, cycles)
	for n := 1; n <= cycles; n++ {
		var k kind
		if n <= len(first) {
			k = first[n-1]
		} else {
			k = kinds[rng.IntN(len(kinds))]
		}
		c := cycle{N: n, Faults: []fault{drawFault(rng, mode, k, logs, readers, tm)}}
		if rng.IntN(4) == 0 {
			second := drawFault(rng, mode, kinds[rng.IntN(len(kinds))], logs, readers, tm)
			if !conflict(mode, c.Faults[0], second) {
				c.Faults = append(c.Faults, second)
			}
		}
		out = append(out, c)
	}
	return out
}

func conflict(mode string, a, b fault) bool {
	ra, rb := a.resources(mode), b.resources(mode)
	if slices.Contains(ra, "solo") || slices.Contains(rb, "solo") {
		return true
	}
	for _, r := range ra {
		if slices.Contains(rb, r) {
			return true
		}
	}
	return false
}

func between(rng *rand.Rand, r [2]time.Duration) time.Duration {
	if r[1] <= r[0] {
		return r[0]
	}
	d := r[0] + time.Duration(rng.Int64N(int64(r[1]-r[0])))
	return d.Round(10 * time.Millisecond)
}

func drawFault(rng *rand.Rand, mode string, k kind, logs, readers int, tm timing) fault {
	f := fault{Kind: k, Log: rng.IntN(logs)}
	switch k {
	case killReader, pauseReader:
		f.Target = rng.IntN(readers)
	case killLogStore, pauseLogStore:
		f.Target = rng.IntN(3)
	case netDrop, netOneWay, netLatency, netBandwidth, netReset:
		f.Target = rng.IntN(len(linksOf(mode)))
	case s3Errors, s3SlowPuts:
		ml := minioLinks(mode)
		f.Target = ml[rng.IntN(len(ml))]
	}
	switch k {
	case killMinIO, killEtcd, killLogStore, killLogStores:
		f.Hold = between(rng, tm.killHold)
	case pauseWriter, pauseReader, pauseLogStore, pauseMinIO, pauseEtcd:
		f.Hold = between(rng, tm.pauseHold)
		f.Replace = rng.IntN(3) > 0
	case netDrop, netOneWay, netLatency, netBandwidth:
		f.Hold = between(rng, tm.netHold)
		f.Up = rng.IntN(2) == 0
		f.Latency = time.Duration(20+rng.IntN(181)) * time.Millisecond
		f.Rate = (8 + rng.IntN(57)) << 10
	case netReset:
		f.Hold = between(rng, tm.resetHold)
	case s3Errors:
		f.Hold = between(rng, tm.netHold)
		f.ErrorPct = 20 + rng.IntN(51)
	case s3SlowPuts:
		f.Hold = between(rng, tm.netHold)
		f.PutDelay = time.Duration(200+rng.IntN(601)) * time.Millisecond
	case objCorrupt:
		f.Damage = rng.IntN(len(damages))
	}
	if k != pauseWriter {
		f.Replace = false
	}
	return f
}
