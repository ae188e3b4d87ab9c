package history

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"
)

func TestRecorderAndLoadRoundTripAHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	rec, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	want := correct()
	// Several goroutines record at once; each keeps its own order.
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, len(want))
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(want); i += workers {
				if err := rec.Record(want[i]); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := rec.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("loaded %d records, want %d", len(got), len(want))
	}
	key := func(r Record) string { return fmt.Sprintf("%+v", r) }
	sortBy := func(h History) {
		sort.Slice(h, func(i, j int) bool { return key(h[i]) < key(h[j]) })
	}
	wantSorted := append(History(nil), want...)
	sortBy(wantSorted)
	gotSorted := append(History(nil), got...)
	sortBy(gotSorted)
	for i := range wantSorted {
		if !reflect.DeepEqual(normalize(gotSorted[i]), normalize(wantSorted[i])) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, gotSorted[i], wantSorted[i])
		}
	}
	if a, b := Check(got), Check(Merge(want)); !a.OK() || a.Counts != b.Counts {
		t.Fatalf("loaded history checks differently:\n%s\n%s", a.String(), b.String())
	}
}

// normalize makes an empty Entries slice nil, as JSON's omitempty does.
func normalize(r Record) Record {
	if len(r.Entries) == 0 {
		r.Entries = nil
	}
	return r
}

func TestLoadDropsATornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.jsonl")
	rec, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := correct()
	for _, r := range h[:3] {
		if err := rec.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"process":1,"log":"L","kind":"app`); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("loaded %d records, want 3", len(got))
	}

	// A bad line with lines after it is corruption, not a torn write.
	if err := os.WriteFile(path, []byte("{\"log\":\n{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil {
		t.Fatal("Load accepted a corrupt line")
	}
}

func TestRecorderRejectsWhatItCannotRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "h.jsonl")
	rec, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Record(Record{Log: "L", Kind: Append, Outcome: OK, Value: "v"}); err == nil {
		t.Fatal("recorded an ok append without an id")
	}
	if _, err := Create(path); err == nil {
		t.Fatal("Create overwrote an existing history file")
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Record(correct()[0]); err == nil {
		t.Fatal("recorded after Close")
	}
	if err := rec.Sync(); err == nil {
		t.Fatal("synced after Close")
	}
	h, err := Load(path)
	if err != nil || len(h) != 0 {
		t.Fatalf("Load = %d records, %v; want none", len(h), err)
	}
}

func TestLoadFilesMergesByInvocationTime(t *testing.T) {
	dir := t.TempDir()
	h := correct()
	var paths []string
	for p := range 2 {
		path := filepath.Join(dir, fmt.Sprintf("p%d.jsonl", p))
		rec, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := p; i < len(h); i += 2 {
			if err := rec.Record(h[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := rec.Close(); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	got, err := LoadFiles(paths...)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(h) {
		t.Fatalf("loaded %d records, want %d", len(got), len(h))
	}
	if !sort.SliceIsSorted(got, func(i, j int) bool { return got[i].Invoke < got[j].Invoke }) {
		t.Fatal("merged history is not sorted by invocation time")
	}
	if rep := Check(got); !rep.OK() {
		t.Fatalf("merged history fails:\n%s", rep.String())
	}
}

func TestIDTextForm(t *testing.T) {
	for _, s := range []string{"0/0", "3/17", "9223372036854775807/1"} {
		v, err := ParseID(s)
		if err != nil || v.String() != s {
			t.Errorf("ParseID(%q) = %v, %v", s, v, err)
		}
	}
	for _, s := range []string{"", "1", "1/", "/1", "-1/0", "+1/0", "1/ 2", "1/2/3", "99999999999999999999/0"} {
		if _, err := ParseID(s); err == nil {
			t.Errorf("ParseID(%q) succeeded", s)
		}
	}
	if !id(1, 0).Less(id(1, 1)) || !id(0, 9).Less(id(1, 0)) || id(1, 0).Compare(id(1, 0)) != 0 {
		t.Error("ids do not compare in log order")
	}
}

func TestClockIsSharedThroughItsOrigin(t *testing.T) {
	c := NewClock()
	a := c.Now()
	b := ClockAt(c.Origin()).Now()
	if a < 0 || b < a {
		t.Fatalf("times %d then %d", a, b)
	}
}
