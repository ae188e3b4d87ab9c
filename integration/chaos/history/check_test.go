package history

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// Helpers that build hand-made histories on log "L".

func id(seg, ent int64) ID { return ID{Segment: seg, Entry: ent} }

func idp(seg, ent int64) *ID { v := id(seg, ent); return &v }

func d(seg, ent int64, value string) Delivery { return Delivery{ID: id(seg, ent), Value: value} }

func openW(writer string, epoch, inv, comp int64, out Outcome) Record {
	return Record{Process: 1, Log: "L", Kind: Open, Writer: writer, Epoch: epoch, Invoke: inv, Complete: comp, Outcome: out}
}

// app is an append; at is the id returned, for an ok append.
func app(writer, value string, inv, comp int64, out Outcome, at ...ID) Record {
	r := Record{Process: 1, Log: "L", Kind: Append, Writer: writer, Value: value, Invoke: inv, Complete: comp, Outcome: out}
	if len(at) > 0 {
		r.ID = &at[0]
	}
	return r
}

func rd(reader string, from StartMode, inv, comp int64, dels ...Delivery) Record {
	return Record{Process: 2, Log: "L", Kind: Read, Reader: reader, From: from, Invoke: inv, Complete: comp, Outcome: OK, Entries: dels}
}

func rdFrom(reader string, from StartMode, at ID, inv, comp int64, dels ...Delivery) Record {
	r := rd(reader, from, inv, comp, dels...)
	r.FromID = &at
	return r
}

func endAt(r Record, t int64) Record { r.EndAt = t; return r }

func opened(r Record, t int64) Record { r.Opened = t; return r }

func trunc(by Truncator, writer string, at ID, inv, comp int64, out Outcome) Record {
	return Record{Process: 3, Log: "L", Kind: Truncate, By: by, Writer: writer, ID: &at, Invoke: inv, Complete: comp, Outcome: out}
}

// correct is a history that keeps every guarantee: acks, a definite
// failure, unknown outcomes that became visible (once, at one id) or not at
// all, a reader in two chunks, readers from earliest, latest and a
// remembered id, a writer fenced by a newer one, and a truncation.
func correct() History {
	return History{
		openW("w1", 1, 0, 1, OK),
		app("w1", "a1", 10, 20, OK, id(0, 0)),
		app("w1", "a2", 11, 21, OK, id(0, 1)),
		app("w1", "a3", 12, 30, Unknown), // lands at 0/2
		app("w1", "a4", 13, 22, Fail),
		app("w1", "a5", 14, 31, Unknown), // never lands
		app("w1", "a6", 40, 50, OK, id(0, 3)),
		// r1 reads in two chunks and ends at the end of the log.
		rd("r1", Earliest, 5, 25, d(0, 0, "a1"), d(0, 1, "a2")),
		endAt(rd("r1", Earliest, 25, 60, d(0, 2, "a3"), d(0, 3, "a6")), 55),
		endAt(rdFrom("r2", At, id(0, 1), 52, 70, d(0, 1, "a2"), d(0, 2, "a3"), d(0, 3, "a6")), 65),
		// Opened at Latest after a1 and a2 were acked: may or may not see
		// a3, which was in flight; must see a6, appended after it opened.
		opened(rd("r3", Latest, 25, 70, d(0, 3, "a6")), 26),
		// w2 fences w1; w1's append invoked before the fence completed may
		// land, its append after it fails.
		openW("w2", 2, 80, 90, OK),
		app("w1", "a9", 85, 95, Unknown), // lands at 0/4
		app("w1", "a7", 95, 100, Fenced),
		app("w2", "a8", 100, 110, OK, id(1, 0)),
		trunc(ByAdmin, "", id(0, 2), 120, 125, OK),
		trunc(ByWriter, "w1", id(0, 4), 121, 126, Fenced),
		endAt(rd("r4", Earliest, 130, 200, d(0, 2, "a3"), d(0, 3, "a6"), d(0, 4, "a9"), d(1, 0, "a8")), 190),
		endAt(rdFrom("r5", After, id(0, 3), 130, 200, d(0, 4, "a9"), d(1, 0, "a8")), 190),
	}
}

func TestCorrectHistoryPasses(t *testing.T) {
	rep := Check(correct())
	if !rep.OK() {
		t.Fatalf("want no violations, got:\n%s", rep.String())
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("Err() = %v", err)
	}
	want := Counts{
		Appends: 9, Acked: 4, Failed: 2, Unknown: 3, Read: 6, Deliveries: 14, Readers: 5,
		UnknownVisible: 2, UnknownInvisible: 1, Opens: 2, Truncations: 2,
	}
	if rep.Counts != want {
		t.Fatalf("counts:\n got %+v\nwant %+v", rep.Counts, want)
	}
	if rep.PerLog["L"] != want {
		t.Fatalf("per-log counts %+v, want %+v", rep.PerLog["L"], want)
	}
}

func TestUnknownOutcomeVisibleOnceOrNotAtAllPasses(t *testing.T) {
	h := History{
		openW("w1", 1, 0, 1, OK),
		app("w1", "a", 10, 20, OK, id(0, 0)),
		app("w1", "u-visible", 11, 50, Unknown),
		app("w1", "u-invisible", 12, 50, Unknown),
		app("w1", "b", 60, 70, OK, id(0, 2)),
		endAt(rd("r1", Earliest, 5, 100, d(0, 0, "a"), d(0, 1, "u-visible"), d(0, 2, "b")), 90),
		endAt(rd("r2", Earliest, 110, 200, d(0, 0, "a"), d(0, 1, "u-visible"), d(0, 2, "b")), 190),
	}
	rep := Check(h)
	if !rep.OK() {
		t.Fatalf("want no violations, got:\n%s", rep.String())
	}
	if rep.Counts.UnknownVisible != 1 || rep.Counts.UnknownInvisible != 1 {
		t.Fatalf("unknown visible %d, invisible %d; want 1 and 1", rep.Counts.UnknownVisible, rep.Counts.UnknownInvisible)
	}
}

// TestHistoriesThatMustFail breaks one guarantee in each case, mostly by
// changing the correct history, and wants the checker to name it.
func TestHistoriesThatMustFail(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(h History) History
		want  ViolationKind
		count int             // violations of kind want; 0: at least one
		also  []ViolationKind // other kinds the change breaks too
	}{
		{
			name: "AnAcknowledgedEntryIsReadByEveryReaderThatReadsPastIt",
			edit: func(h History) History {
				// r1 skips a2 (0/1), acked, and delivers 0/2 after it.
				h[7].Entries = h[7].Entries[:1]
				return h
			},
			want: Lost, count: 1,
		},
		{
			name: "AnAcknowledgedEntryIsReadByEveryReaderThatReachesTheEndAfterTheAck",
			edit: func(h History) History {
				// r4 stops at 1/0... without a8, acked at 110, though it
				// reached the end at 190.
				h[17].Entries = h[17].Entries[:3]
				return h
			},
			want: Lost,
		},
		{
			name: "AReaderReadsEachEntryOnce",
			edit: func(h History) History {
				h[9].Entries = []Delivery{d(0, 1, "a2"), d(0, 2, "a3"), d(0, 2, "a3"), d(0, 3, "a6")}
				return h
			},
			want: Duplicate, count: 1, also: []ViolationKind{Order},
		},
		{
			name: "AReaderReadsIdsInIncreasingOrder",
			edit: func(h History) History {
				h[9].Entries = []Delivery{d(0, 2, "a3"), d(0, 1, "a2"), d(0, 3, "a6")}
				return h
			},
			want: Order, count: 1,
		},
		{
			name: "ReadersAgreeOnTheValueAtEachId",
			edit: func(h History) History {
				// r2 sees a6 at 0/2 and a3 at 0/3: the reverse of r1.
				h[9].Entries = []Delivery{d(0, 1, "a2"), d(0, 2, "a6"), d(0, 3, "a3")}
				return h
			},
			want: Disagree,
		},
		{
			name: "ReadersAgreeOnTheRelativeOrderOfCommonValues",
			edit: func(h History) History {
				// r2 sees the unknown a3 after a6 (at 0/4) rather than
				// before it: one value, two ids.
				h[9].Entries = []Delivery{d(0, 1, "a2"), d(0, 3, "a6"), d(0, 4, "a3")}
				return h
			},
			want: Disagree,
		},
		{
			name: "ADefiniteFailureIsNeverRead",
			edit: func(h History) History {
				h[17].Entries = append(h[17].Entries, d(1, 1, "a4"))
				return h
			},
			want: FailedVisible, count: 1,
		},
		{
			name: "AFencedAppendIsNeverRead",
			edit: func(h History) History {
				h[17].Entries = append(h[17].Entries, d(1, 1, "a7"))
				return h
			},
			// a7 was also invoked after the fence, but with no ok or
			// unknown attempt it is a definite failure that became visible.
			want: FailedVisible, count: 1,
		},
		{
			name: "AnUnknownOutcomeIsReadAtMostOnce",
			edit: func(h History) History {
				// The unknown a3 is in the log twice: r4 reads it at 0/2
				// and again at 0/5.
				h[17].Entries = []Delivery{d(0, 2, "a3"), d(0, 3, "a6"), d(0, 4, "a9"), d(0, 5, "a3"), d(1, 0, "a8")}
				return h
			},
			// r1 read it at 0/2, and r5 read past 0/5 without it.
			want: Duplicate, count: 1, also: []ViolationKind{Disagree, Vanished},
		},
		{
			name: "AFencedWritersAppendAfterTheFenceIsNeverVisible",
			edit: func(h History) History {
				// w1 appends after w2's open completed; the outcome is
				// unknown but the value shows up.
				h = append(h, app("w1", "zombie", 96, 99, Unknown))
				h[17].Entries = []Delivery{d(0, 2, "a3"), d(0, 3, "a6"), d(0, 4, "a9"), d(0, 5, "zombie"), d(1, 0, "a8")}
				return h
			},
			want: Zombie, count: 1,
		},
		{
			name: "AFencedWritersAppendAfterTheFenceIsNeverAcknowledged",
			edit: func(h History) History {
				h[13] = app("w1", "a7", 95, 100, OK, id(0, 5))
				return h
			},
			want: Zombie, count: 1,
		},
		{
			name: "AFencedWritersTruncationAfterTheFenceChangesNothing",
			edit: func(h History) History {
				h[16].Outcome = OK
				return h
			},
			// r4 then read below the new point 0/4.
			want: Zombie, count: 1, also: []ViolationKind{BeforeStart},
		},
		{
			name: "TruncationNeverRemovesAnEntryAtOrAboveItsPoint",
			edit: func(h History) History {
				// Truncated at 0/3, r4 (from earliest) starts above a6,
				// acked at 0/3.
				h[15].ID = idp(0, 3)
				h[17].Entries = h[17].Entries[2:]
				return h
			},
			want: TruncatedAbove, count: 1,
		},
		{
			name: "ALaterReaderSeesWhatAnEarlierReaderSaw",
			edit: func(h History) History {
				// r1 saw the unknown a3 at 0/2; r4, started later from
				// earliest, reads past it without it.
				h[15].ID = idp(0, 1)
				h[17].Entries = []Delivery{d(0, 1, "a2"), d(0, 3, "a6"), d(0, 4, "a9"), d(1, 0, "a8")}
				return h
			},
			want: Vanished, count: 1,
		},
		{
			name: "AnAppendInvokedAfterAnEntryWasVisibleGetsAHigherId",
			edit: func(History) History {
				// b, invoked after a was acked at 0/5, got 0/3.
				return History{
					openW("w1", 1, 0, 1, OK),
					app("w1", "a", 10, 20, OK, id(0, 5)),
					app("w1", "b", 30, 40, OK, id(0, 3)),
				}
			},
			want: RealTime, count: 1,
		},
		{
			name: "AReaderFromAnIdStartsThere",
			edit: func(h History) History {
				h[9].Entries = append([]Delivery{d(0, 0, "a1")}, h[9].Entries...)
				return h
			},
			want: BeforeStart, count: 1,
		},
		{
			name: "AReaderAfterAnIdStartsAfterIt",
			edit: func(h History) History {
				h[18].Entries = append([]Delivery{d(0, 3, "a6")}, h[18].Entries...)
				return h
			},
			want: BeforeStart, count: 1,
		},
		{
			name: "AReaderFromLatestSeesNothingAckedBeforeItOpened",
			edit: func(h History) History {
				h[10].Entries = []Delivery{d(0, 1, "a2"), d(0, 2, "a3"), d(0, 3, "a6")}
				return h
			},
			want: BeforeStart, count: 1,
		},
		{
			name: "AReaderFromEarliestStartsAtTheTruncationPoint",
			edit: func(h History) History {
				h[17].Entries = append([]Delivery{d(0, 1, "a2")}, h[17].Entries...)
				return h
			},
			want: BeforeStart, count: 1,
		},
		{
			name: "AReaderFromLatestReadsWhatWasAppendedAfterItOpened",
			edit: func(h History) History {
				// r3 opened at 26, before a6 was invoked, and reached the
				// end at 65 without it.
				h[10] = endAt(opened(rd("r3", Latest, 25, 70), 26), 65)
				return h
			},
			want: Lost, count: 1,
		},
		{
			name: "RecordsFollowTheFormat",
			edit: func(h History) History {
				h[1].Complete = 5 // before its invocation
				return h
			},
			want: Malformed,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := Check(tc.edit(correct()))
			if !rep.Has(tc.want) {
				t.Fatalf("want a %s violation, got:\n%s", tc.want, rep.String())
			}
			if tc.count > 0 && rep.ViolationCounts[tc.want] != tc.count {
				t.Fatalf("want %d %s violations, got:\n%s", tc.count, tc.want, rep.String())
			}
			for k := range rep.ViolationCounts {
				if k != tc.want && !slices.Contains(tc.also, k) {
					t.Errorf("unexpected %s violation:\n%s", k, rep.String())
				}
			}
			if rep.Err() == nil {
				t.Fatal("Err() is nil for a failing history")
			}
			for _, v := range rep.Violations {
				if len(v.Records) == 0 {
					t.Errorf("violation names no record: %s", v)
				}
			}
		})
	}
}

func TestLostCountsEachEntryOnce(t *testing.T) {
	h := History{
		openW("w1", 1, 0, 1, OK),
		app("w1", "a", 10, 20, OK, id(0, 0)),
		app("w1", "b", 11, 21, OK, id(0, 1)),
		app("w1", "c", 12, 22, OK, id(0, 2)),
		rd("r1", Earliest, 30, 40, d(0, 0, "a"), d(0, 2, "c")),
		rd("r2", Earliest, 30, 40, d(0, 0, "a"), d(0, 2, "c")),
	}
	rep := Check(h)
	if rep.ViolationCounts[Lost] != 2 || rep.Counts.Lost != 1 {
		t.Fatalf("want 2 lost reads of 1 entry, got %d reads, %d entries:\n%s",
			rep.ViolationCounts[Lost], rep.Counts.Lost, rep.String())
	}
}

func TestAReaderThatHasNotPassedAnEntryNeedNotReadIt(t *testing.T) {
	h := History{
		openW("w1", 1, 0, 1, OK),
		app("w1", "a", 10, 20, OK, id(0, 0)),
		app("w1", "b", 11, 21, OK, id(0, 1)),
		// Stopped without reaching the end (no EndAt): b is not required.
		rd("r1", Earliest, 5, 40, d(0, 0, "a")),
		// Reached the end at 15, before b was acked.
		endAt(rd("r2", Earliest, 5, 40, d(0, 0, "a")), 15),
		// Started at 0/1 but was killed before delivering anything.
		rdFrom("r3", At, id(0, 1), 30, 40),
	}
	if rep := Check(h); !rep.OK() {
		t.Fatalf("want no violations, got:\n%s", rep.String())
	}
}

func TestATruncationInFlightExcusesEarliestReadersBelowItsPoint(t *testing.T) {
	h := History{
		openW("w1", 1, 0, 1, OK),
		app("w1", "a", 10, 20, OK, id(0, 0)),
		app("w1", "b", 11, 21, OK, id(0, 1)),
		app("w1", "c", 12, 22, OK, id(0, 2)),
		// Outcome unknown, concurrent with the reader: it may have started
		// at 0/0 or at 0/2.
		trunc(ByAdmin, "", id(0, 2), 25, 40, Unknown),
		endAt(rd("r1", Earliest, 30, 60, d(0, 2, "c")), 50),
		endAt(rd("r2", Earliest, 30, 60, d(0, 0, "a"), d(0, 1, "b"), d(0, 2, "c")), 50),
	}
	if rep := Check(h); !rep.OK() {
		t.Fatalf("want no violations, got:\n%s", rep.String())
	}
	// A reader that started below the point must not skip.
	h = append(h, endAt(rd("r3", Earliest, 30, 60, d(0, 0, "a"), d(0, 2, "c")), 50))
	if rep := Check(h); rep.ViolationCounts[Lost] != 1 {
		t.Fatalf("want one lost read, got:\n%s", rep.String())
	}
}

func TestWritersOfTheSameEpochFenceInOpenOrder(t *testing.T) {
	h := History{
		openW("w1", 5, 0, 1, OK),
		openW("w2", 5, 10, 20, OK), // same epoch, opened later: fences w1
		app("w1", "late", 30, 40, OK, id(0, 0)),
		app("w2", "b", 30, 40, OK, id(1, 0)),
	}
	rep := Check(h)
	if rep.ViolationCounts[Zombie] != 1 {
		t.Fatalf("want one zombie violation, got:\n%s", rep.String())
	}
	// Opens that overlap fence nobody: either may have won.
	h[1] = openW("w2", 5, 0, 20, OK)
	h = h[:2]
	if rep := Check(h); !rep.OK() {
		t.Fatalf("want no violations, got:\n%s", rep.String())
	}
}

func TestARetriedAppendIsOneEntry(t *testing.T) {
	h := History{
		openW("w1", 1, 0, 1, OK),
		app("w1", "a", 10, 20, Unknown),
		app("w1", "a", 30, 40, OK, id(0, 0)), // idempotent retry
		endAt(rd("r1", Earliest, 5, 60, d(0, 0, "a")), 50),
	}
	if rep := Check(h); !rep.OK() {
		t.Fatalf("want no violations, got:\n%s", rep.String())
	}
}

func TestViolationsAreListedUpToACapAndAllCounted(t *testing.T) {
	h := History{openW("w1", 1, 0, 1, OK)}
	var dels []Delivery
	n := MaxViolationsPerKind + 20
	for i := range n {
		h = append(h, app("w1", fmt.Sprint("v", i), 10, 20, Fail))
		dels = append(dels, d(0, int64(i), fmt.Sprint("v", i)))
	}
	h = append(h, rd("r1", Earliest, 30, 40, dels...))
	rep := Check(h)
	if rep.ViolationCounts[FailedVisible] != n || len(rep.Violations) != MaxViolationsPerKind {
		t.Fatalf("counted %d, listed %d; want %d and %d", rep.ViolationCounts[FailedVisible], len(rep.Violations), n, MaxViolationsPerKind)
	}
}

func TestCheckIsDeterministicAndLeavesTheHistoryAlone(t *testing.T) {
	h := correct()
	h[7].Entries = h[7].Entries[:1]
	h[17].Entries = append(h[17].Entries, d(1, 1, "a4"))
	h = append(h, Record{Process: 1, Log: "M", Kind: Append, Value: "x", Invoke: 1, Complete: 2, Outcome: OK}) // no id
	before := append(History(nil), h...)
	first := Check(h)
	for range 5 {
		if again := Check(h); !reflect.DeepEqual(first, again) {
			t.Fatalf("reports differ:\n%s\n%s", first.String(), again.String())
		}
	}
	if !reflect.DeepEqual(before, h) {
		t.Fatal("Check changed the history")
	}
}

// BenchmarkCheck checks a history of 100,000 acked entries read by 10
// readers from earliest.
func BenchmarkCheck(b *testing.B) {
	const n, readers = 100_000, 10
	h := History{openW("w1", 1, 0, 1, OK)}
	dels := make([]Delivery, 0, n)
	for i := range n {
		v := fmt.Sprint("v", i)
		t := int64(10 + 2*i)
		h = append(h, app("w1", v, t, t+1, OK, id(0, int64(i))))
		dels = append(dels, d(0, int64(i), v))
	}
	for r := range readers {
		h = append(h, endAt(rd(fmt.Sprint("r", r), Earliest, 5, 3*n, dels...), 2*n+20))
	}
	b.ResetTimer()
	for b.Loop() {
		if rep := Check(h); !rep.OK() {
			b.Fatal(rep.String())
		}
	}
}
