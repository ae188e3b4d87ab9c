package chaos

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestScheduleIsSeededAndCoversEveryKind: a seed gives the same schedule
// every time (a failing seed reruns it), every kind of the mode runs in the
// first cycles, overlapping faults never share a resource, and pauses last
// longer than the upload timeout.
func TestScheduleIsSeededAndCoversEveryKind(t *testing.T) {
	for _, mode := range []string{modeMemory, modeQuorum, modeJournaled, modeLocalFS, modeQuorumShared} {
		for seed := uint64(1); seed <= 50; seed++ {
			a := schedule(rand.New(rand.NewPCG(seed, 0)), mode, 40, numLogs, readerSlots, defaultTiming)
			b := schedule(rand.New(rand.NewPCG(seed, 0)), mode, 40, numLogs, readerSlots, defaultTiming)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%s seed %d: two schedules differ", mode, seed)
			}
			kinds := kindsOf(mode)
			seen := map[kind]bool{}
			for _, c := range a[:len(kinds)] {
				seen[c.Faults[0].Kind] = true
			}
			for _, k := range kinds {
				if !seen[k] {
					t.Fatalf("%s seed %d: %s not in the first %d cycles", mode, seed, k, len(kinds))
				}
			}
			for _, c := range a {
				if len(c.Faults) == 2 && conflict(mode, c.Faults[0], c.Faults[1]) {
					t.Fatalf("%s seed %d cycle %d: overlapping faults conflict: %s", mode, seed, c.N, c.String(mode))
				}
				for _, f := range c.Faults {
					if !slices.Contains(kinds, f.Kind) {
						t.Fatalf("%s: kind %s is not of the mode", mode, f.Kind)
					}
					switch f.Kind {
					case s3Errors, s3SlowPuts:
						if !strings.HasSuffix(linksOf(mode)[f.Target], ">minio") {
							t.Fatalf("%s seed %d cycle %d: %s on a link that is not to MinIO", mode, seed, c.N, f.String(mode))
						}
						if f.ErrorPct <= 0 && f.PutDelay <= 0 {
							t.Fatalf("%s seed %d cycle %d: %s does nothing", mode, seed, c.N, f.String(mode))
						}
					}
					switch f.Kind {
					case pauseWriter, pauseReader, pauseLogStore, pauseMinIO, pauseEtcd:
						if f.Hold <= uploadTimeout || f.Hold <= logstoreLease {
							t.Fatalf("%s seed %d cycle %d: pause of %s is not longer than the upload timeout and the lease", mode, seed, c.N, f.Hold)
						}
					}
				}
			}
		}
	}
	if a, b := schedule(rand.New(rand.NewPCG(1, 0)), modeMemory, 30, 3, 2, defaultTiming),
		schedule(rand.New(rand.NewPCG(2, 0)), modeMemory, 30, 3, 2, defaultTiming); reflect.DeepEqual(a, b) {
		t.Fatal("seeds 1 and 2 give the same schedule")
	}
}
