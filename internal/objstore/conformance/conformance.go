// Package conformance is the one test suite every objstore.Store backend
// must pass unchanged: create-only races, range reads, paged listings in
// key order, typed errors, context cancellation, large objects, and the
// conditional-write probe.
//
// Use it from a backend's tests:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, func(t *testing.T) objstore.Store { return open(t) },
//			conformance.Capabilities{ConditionalWrites: true})
//	}
package conformance

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
)

// Capabilities tell the suite what the store under test promises.
type Capabilities struct {
	// ConditionalWrites is true when the store honours
	// PutOptions.IfNotExists. When false, the suite checks that the probe
	// says so and that racing create-only puts all "succeed" (the last
	// one wins), which is what makes such a store unsafe for fencing.
	ConditionalWrites bool
	// LargeObjectBytes is the size of the large-object round trip;
	// 0 means 64 MiB.
	LargeObjectBytes int
}

// DefaultLargeObjectBytes is the large-object size when Capabilities leave
// it 0.
const DefaultLargeObjectBytes = 64 << 20

// Run runs the suite as subtests of t. newStore is called once per subtest
// and must return a store that is empty (a fresh bucket, root prefix or
// directory) and stays usable until the subtest's cleanups run.
func Run(t *testing.T, newStore func(t *testing.T) objstore.Store, caps Capabilities) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s objstore.Store, caps Capabilities)
	}{
		{"RoundTrip", testRoundTrip},
		{"Ownership", testOwnership},
		{"CreateOnly", testCreateOnly},
		{"CreateOnlyRace", testCreateOnlyRace},
		{"Probe", testProbe},
		{"RangeReads", testRangeReads},
		{"NotFound", testNotFound},
		{"InvalidKeys", testInvalidKeys},
		{"ListPaging", testListPaging},
		{"ListOrderAcrossDirectories", testListOrder},
		{"ListPrefix", testListPrefix},
		{"ContextCanceled", testContextCanceled},
		{"LargeObject", testLargeObject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t), caps)
		})
	}
}

func mustPut(t *testing.T, s objstore.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, data, objstore.PutOptions{}); err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

func mustGet(t *testing.T, s objstore.Store, key string) []byte {
	t.Helper()
	data, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return data
}

func testRoundTrip(t *testing.T, s objstore.Store, _ Capabilities) {
	ctx := t.Context()
	cases := []struct {
		key  string
		data []byte
	}{
		{"a", []byte("x")},
		{"dir/sub/obj-1", []byte("hello, object store")},
		{"dir/empty", []byte{}},
		{"dir/binary", []byte{0, 1, 2, 0xff, 0xfe, 0}},
		{"spaces and ünïcode/key with = & ?", []byte("odd names")},
	}
	for _, c := range cases {
		mustPut(t, s, c.key, c.data)
		got := mustGet(t, s, c.key)
		if !bytes.Equal(got, c.data) {
			t.Errorf("get %q = %q, want %q", c.key, got, c.data)
		}
		info, err := s.Stat(ctx, c.key)
		if err != nil {
			t.Fatalf("stat %q: %v", c.key, err)
		}
		if info.Key != c.key || info.Size != int64(len(c.data)) || info.LastModified.IsZero() {
			t.Errorf("stat %q = %+v, want key %q size %d and a modification time", c.key, info, c.key, len(c.data))
		}
	}

	// A plain put replaces.
	mustPut(t, s, "a", []byte("replaced"))
	if got := mustGet(t, s, "a"); string(got) != "replaced" {
		t.Errorf("after overwrite get = %q, want %q", got, "replaced")
	}

	for _, c := range cases {
		if err := s.Delete(ctx, c.key); err != nil {
			t.Fatalf("delete %q: %v", c.key, err)
		}
		if _, err := s.Get(ctx, c.key); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("get %q after delete: err = %v, want ErrNotFound", c.key, err)
		}
	}
	all, err := objstore.ListAll(ctx, s, "", "")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(all) != 0 {
		t.Errorf("after deleting everything, list = %v, want nothing", keysOf(all))
	}
}

func testOwnership(t *testing.T, s objstore.Store, _ Capabilities) {
	data := []byte("original")
	mustPut(t, s, "own", data)
	copy(data, "XXXXXXXX") // the store must not have kept our slice
	got := mustGet(t, s, "own")
	if string(got) != "original" {
		t.Fatalf("get after caller reused its buffer = %q, want %q", got, "original")
	}
	copy(got, "YYYYYYYY") // nor handed out its own
	if again := mustGet(t, s, "own"); string(again) != "original" {
		t.Fatalf("get after caller modified a returned slice = %q, want %q", again, "original")
	}
	r, err := s.GetRange(t.Context(), "own", 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	copy(r, "ZZZZ")
	if again := mustGet(t, s, "own"); string(again) != "original" {
		t.Fatalf("get after caller modified a range = %q, want %q", again, "original")
	}
}

func testCreateOnly(t *testing.T, s objstore.Store, caps Capabilities) {
	ctx := t.Context()
	create := objstore.PutOptions{IfNotExists: true}
	if err := s.Put(ctx, "seg/b-0", []byte("first"), create); err != nil {
		t.Fatalf("create-only put of a new key: %v", err)
	}
	err := s.Put(ctx, "seg/b-0", []byte("second"), create)
	if !caps.ConditionalWrites {
		if err != nil {
			t.Fatalf("store without conditional writes: second create-only put: %v, want success (silent overwrite)", err)
		}
		return
	}
	if !errors.Is(err, objstore.ErrAlreadyExists) {
		t.Fatalf("second create-only put: err = %v, want ErrAlreadyExists", err)
	}
	if got := mustGet(t, s, "seg/b-0"); string(got) != "first" {
		t.Fatalf("after refused create, object = %q, want %q", got, "first")
	}
	// Existing through a plain put counts too, and a delete frees the key.
	mustPut(t, s, "seg/b-1", []byte("plain"))
	if err := s.Put(ctx, "seg/b-1", []byte("x"), create); !errors.Is(err, objstore.ErrAlreadyExists) {
		t.Fatalf("create-only over a plain put: err = %v, want ErrAlreadyExists", err)
	}
	// Empty objects are objects too.
	if err := s.Put(ctx, "seg/empty", nil, create); err != nil {
		t.Fatalf("create-only put of an empty object: %v", err)
	}
	if err := s.Put(ctx, "seg/empty", nil, create); !errors.Is(err, objstore.ErrAlreadyExists) {
		t.Fatalf("second create-only put of an empty object: err = %v, want ErrAlreadyExists", err)
	}
	if err := s.Delete(ctx, "seg/b-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "seg/b-1", []byte("again"), create); err != nil {
		t.Fatalf("create-only after delete: %v", err)
	}
	if got := mustGet(t, s, "seg/b-1"); string(got) != "again" {
		t.Fatalf("object = %q, want %q", got, "again")
	}
}

func testCreateOnlyRace(t *testing.T, s objstore.Store, caps Capabilities) {
	const racers = 16
	const rounds = 3
	for round := range rounds {
		key := fmt.Sprintf("race/%d/b-7", round)
		payload := func(i int) []byte {
			// Distinct, and long enough that a torn write would show.
			return bytes.Repeat([]byte(fmt.Sprintf("racer-%02d;", i)), 1000)
		}
		errs := make([]error, racers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				<-start
				errs[i] = s.Put(t.Context(), key, payload(i), objstore.PutOptions{IfNotExists: true})
			})
		}
		close(start)
		wg.Wait()

		got := mustGet(t, s, key)
		winners := 0
		var winner int
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
				winner = i
			case errors.Is(err, objstore.ErrAlreadyExists):
			default:
				t.Errorf("round %d racer %d: unexpected error %v", round, i, err)
			}
		}
		if !caps.ConditionalWrites {
			if winners != racers {
				t.Errorf("round %d: store without conditional writes: %d of %d create-only puts succeeded, want all", round, winners, racers)
			}
			found := false
			for i := range racers {
				found = found || bytes.Equal(got, payload(i))
			}
			if !found {
				t.Errorf("round %d: object holds no racer's bytes (torn write?)", round)
			}
			continue
		}
		if winners != 1 {
			t.Fatalf("round %d: %d of %d racing create-only puts succeeded, want exactly 1 (errors: %v)", round, winners, racers, errs)
		}
		if !bytes.Equal(got, payload(winner)) {
			t.Fatalf("round %d: object does not hold the winner's (racer %d) bytes", round, winner)
		}
	}
}

func testProbe(t *testing.T, s objstore.Store, caps Capabilities) {
	err := objstore.ProbeConditionalWrite(t.Context(), s)
	if caps.ConditionalWrites {
		if err != nil {
			t.Fatalf("probe: %v, want nil", err)
		}
	} else if !errors.Is(err, objstore.ErrConditionalWriteUnsupported) {
		t.Fatalf("probe: err = %v, want ErrConditionalWriteUnsupported", err)
	}
	left, err := objstore.ListAll(t.Context(), s, objstore.ProbeKeyPrefix, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("probe left objects behind: %v", keysOf(left))
	}
}

func testRangeReads(t *testing.T, s objstore.Store, _ Capabilities) {
	data := []byte("0123456789abcdefghij") // 20 bytes
	mustPut(t, s, "range/obj", data)
	mustPut(t, s, "range/empty", nil)
	cases := []struct {
		name           string
		key            string
		offset, length int64
		want           string
		wantErr        error
	}{
		{"whole", "range/obj", 0, 20, string(data), nil},
		{"head", "range/obj", 0, 3, "012", nil},
		{"middle", "range/obj", 5, 4, "5678", nil},
		{"last byte", "range/obj", 19, 1, "j", nil},
		{"to end", "range/obj", 15, 5, "fghij", nil},
		{"beyond end", "range/obj", 15, 100, "fghij", nil},
		{"huge length", "range/obj", 10, 1 << 62, "abcdefghij", nil},
		{"zero length", "range/obj", 7, 0, "", nil},
		{"at end", "range/obj", 20, 10, "", nil},
		{"empty object", "range/empty", 0, 10, "", nil},
		{"past end", "range/obj", 21, 1, "", objstore.ErrInvalidRange},
		{"far past end", "range/obj", 1000, 1, "", objstore.ErrInvalidRange},
		{"past end of empty", "range/empty", 1, 1, "", objstore.ErrInvalidRange},
		{"negative offset", "range/obj", -1, 5, "", objstore.ErrInvalidRange},
		{"negative length", "range/obj", 0, -5, "", objstore.ErrInvalidRange},
		{"missing object", "range/missing", 0, 5, "", objstore.ErrNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.GetRange(t.Context(), c.key, c.offset, c.length)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("GetRange(%q, %d, %d): err = %v, want %v", c.key, c.offset, c.length, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetRange(%q, %d, %d): %v", c.key, c.offset, c.length, err)
			}
			if string(got) != c.want {
				t.Fatalf("GetRange(%q, %d, %d) = %q, want %q", c.key, c.offset, c.length, got, c.want)
			}
		})
	}
}

// checkReadErrs checks that Get, GetRange and Stat of key all fail with
// want (named wantName in messages).
func checkReadErrs(t *testing.T, s objstore.Store, key string, want error, wantName string) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.Get(ctx, key); !errors.Is(err, want) {
		t.Errorf("get %q: err = %v, want %s", key, err, wantName)
	}
	if _, err := s.GetRange(ctx, key, 0, 1); !errors.Is(err, want) {
		t.Errorf("get range %q: err = %v, want %s", key, err, wantName)
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, want) {
		t.Errorf("stat %q: err = %v, want %s", key, err, wantName)
	}
}

func testNotFound(t *testing.T, s objstore.Store, _ Capabilities) {
	ctx := t.Context()
	mustPut(t, s, "nf/present", []byte("x"))
	for _, key := range []string{"nf/missing", "nf", "nf/present/below", "other/missing"} {
		checkReadErrs(t, s, key, objstore.ErrNotFound, "ErrNotFound")
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("delete of missing %q: %v, want nil", key, err)
		}
	}
	if got := mustGet(t, s, "nf/present"); string(got) != "x" {
		t.Errorf("unrelated object changed: %q", got)
	}
}

func testInvalidKeys(t *testing.T, s objstore.Store, _ Capabilities) {
	ctx := t.Context()
	for _, key := range []string{"", "/abs", "a/../b", "..", "../escape", "a/./b", "a//b", "a/", "nul\x00byte", "bad\xffutf8"} {
		if err := s.Put(ctx, key, []byte("x"), objstore.PutOptions{}); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("put %q: err = %v, want ErrInvalidKey", key, err)
		}
		checkReadErrs(t, s, key, objstore.ErrInvalidKey, "ErrInvalidKey")
		if err := s.Delete(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("delete %q: err = %v, want ErrInvalidKey", key, err)
		}
	}
	for _, prefix := range []string{"/abs", "../", "a/../", "a//"} {
		if _, err := s.List(ctx, prefix, "", 0); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("list %q: err = %v, want ErrInvalidKey", prefix, err)
		}
	}
}

// putMany writes keys concurrently, each holding its own name.
func putMany(t *testing.T, s objstore.Store, keys []string) {
	t.Helper()
	const workers = 16
	work := make(chan string)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for k := range work {
				if err := s.Put(t.Context(), k, []byte(k), objstore.PutOptions{}); err != nil {
					errs <- errors.Wrapf(err, "put %q", k)
					for range work {
					}
					return
				}
			}
		})
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func keysOf(objs []objstore.ObjectInfo) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Key
	}
	return out
}

// listPages pages through prefix with the given limit, checking each page.
func listPages(t *testing.T, s objstore.Store, prefix, startAfter string, limit int) (keys []string, pages int) {
	t.Helper()
	maxPage := limit
	if maxPage <= 0 || maxPage > 1000 {
		maxPage = 1000
	}
	for {
		page, err := s.List(t.Context(), prefix, startAfter, limit)
		if err != nil {
			t.Fatalf("list %q after %q limit %d: %v", prefix, startAfter, limit, err)
		}
		pages++
		if len(page.Objects) > maxPage {
			t.Fatalf("list %q limit %d returned %d objects", prefix, limit, len(page.Objects))
		}
		for _, o := range page.Objects {
			if !strings.HasPrefix(o.Key, prefix) || o.Key <= startAfter {
				t.Fatalf("list %q after %q returned %q", prefix, startAfter, o.Key)
			}
			if o.Size != int64(len(o.Key)) {
				t.Fatalf("list: %q has size %d, want %d", o.Key, o.Size, len(o.Key))
			}
			keys = append(keys, o.Key)
			startAfter = o.Key
		}
		if !page.More {
			return keys, pages
		}
		if len(page.Objects) == 0 {
			t.Fatalf("list %q: empty page claims more", prefix)
		}
		if pages > 10000 {
			t.Fatalf("list %q: no end after %d pages", prefix, pages)
		}
	}
}

func checkKeys(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d keys, want %d\n got: %s\nwant: %s", what, len(got), len(want), abbrev(got), abbrev(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: key %d = %q, want %q", what, i, got[i], want[i])
		}
	}
}

func abbrev(keys []string) string {
	if len(keys) > 12 {
		return fmt.Sprintf("%q ... %q", keys[:6], keys[len(keys)-6:])
	}
	return fmt.Sprintf("%q", keys)
}

func testListPaging(t *testing.T, s objstore.Store, _ Capabilities) {
	const n = 1203
	var keys []string
	for i := range n {
		keys = append(keys, fmt.Sprintf("many/k-%05d", i))
	}
	// Neighbours that must not show up under "many/".
	others := []string{"man", "many-1", "manyx/k-1", "mano/k", "manz"}
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	putMany(t, s, append(append([]string{}, keys...), others...))
	sort.Strings(keys)

	got, pages := listPages(t, s, "many/", "", 0)
	checkKeys(t, "default pages", got, keys)
	if pages < 2 {
		t.Errorf("listing %d keys took %d page(s); pages hold at most 1000", n, pages)
	}

	got, pages = listPages(t, s, "many/", "", 100)
	checkKeys(t, "pages of 100", got, keys)
	if pages < 13 || pages > 14 {
		t.Errorf("listing %d keys 100 at a time took %d pages, want 13 (or 14 with a final empty page)", n, pages)
	}

	page, err := s.List(t.Context(), "many/", "", 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 7 || !page.More {
		t.Fatalf("list limit 7: %d objects, more=%v; want 7 and more", len(page.Objects), page.More)
	}
	checkKeys(t, "limit 7", keysOf(page.Objects), keys[:7])

	// startAfter anywhere: an existing key, a point between keys, the end.
	got, _ = listPages(t, s, "many/", keys[599], 250)
	checkKeys(t, "after an existing key", got, keys[600:])
	got, _ = listPages(t, s, "many/", "many/k-01000x", 0)
	checkKeys(t, "after a point between keys", got, keys[1001:])
	got, _ = listPages(t, s, "many/", keys[n-1], 0)
	checkKeys(t, "after the last key", got, nil)
	got, _ = listPages(t, s, "many/", "a", 0)
	checkKeys(t, "startAfter before the prefix", got, keys)
	got, _ = listPages(t, s, "many/", "zzz", 0)
	checkKeys(t, "startAfter after the prefix", got, nil)

	page, err = s.List(t.Context(), "many/", keys[n-4], 3)
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "last page", keysOf(page.Objects), keys[n-3:])
	if page.More {
		// Allowed by the interface ("may match"), but then the next page
		// must be empty and final.
		next, err := s.List(t.Context(), "many/", keys[n-1], 3)
		if err != nil || len(next.Objects) != 0 || next.More {
			t.Fatalf("after the last page: %v, %d objects, more=%v", err, len(next.Objects), next.More)
		}
	}
}

func testListOrder(t *testing.T, s objstore.Store, _ Capabilities) {
	// Byte-wise order of whole keys, whatever the backend's layout: '-' and
	// '.' sort before '/', which sorts before '0'.
	keys := []string{
		"ord/a", "ord/a-b", "ord/a.b", "ord/a0", "ord/ab",
		"ord/b/c-d", "ord/b/c.d", "ord/b/c/d", "ord/b/c/e/f", "ord/b/c0", "ord/b-c", "ord/b0",
		"ord/c/d/e/f", "ord/c/d/e-f", "ord/c/d-e", "ord/c-d/e",
	}
	// On a file system "ord/a" (a file) and "ord/a/x" (below a directory
	// "ord/a") cannot coexist, so the set avoids that.
	putMany(t, s, keys)
	want := append([]string{}, keys...)
	sort.Strings(want)
	got, _ := listPages(t, s, "ord/", "", 0)
	checkKeys(t, "all", got, want)
	for _, limit := range []int{1, 2, 3, 5} {
		got, _ = listPages(t, s, "ord/", "", limit)
		checkKeys(t, fmt.Sprintf("pages of %d", limit), got, want)
	}
	for i, after := range want {
		got, _ = listPages(t, s, "ord/", after, 2)
		checkKeys(t, fmt.Sprintf("after %q", after), got, want[i+1:])
	}
	got, _ = listPages(t, s, "ord/b/c", "", 0)
	checkKeys(t, "prefix ord/b/c", got, []string{"ord/b/c-d", "ord/b/c.d", "ord/b/c/d", "ord/b/c/e/f", "ord/b/c0"})
	got, _ = listPages(t, s, "ord/b/c/", "", 0)
	checkKeys(t, "prefix ord/b/c/", got, []string{"ord/b/c/d", "ord/b/c/e/f"})
	got, _ = listPages(t, s, "ord/b/c", "ord/b/c.d", 1)
	checkKeys(t, "prefix ord/b/c after ord/b/c.d", got, []string{"ord/b/c/d", "ord/b/c/e/f", "ord/b/c0"})
}

func testListPrefix(t *testing.T, s objstore.Store, _ Capabilities) {
	keys := []string{
		"logs/1/seg/0/b-0", "logs/1/seg/0/b-1", "logs/1/seg/0/b-10", "logs/1/seg/0/seal",
		"logs/1/seg/1/b-0", "logs/10/seg/0/b-0", "logs/2/seg/0/b-0",
	}
	putMany(t, s, keys)
	cases := []struct {
		prefix, startAfter string
		want               []string
	}{
		{"", "", keys},
		{"logs/", "", []string{"logs/1/seg/0/b-0", "logs/1/seg/0/b-1", "logs/1/seg/0/b-10", "logs/1/seg/0/seal", "logs/1/seg/1/b-0", "logs/10/seg/0/b-0", "logs/2/seg/0/b-0"}},
		{"logs/1/", "", keys[:5]},
		{"logs/1", "", keys[:6]},
		{"logs/1/seg/0/b-", "", []string{"logs/1/seg/0/b-0", "logs/1/seg/0/b-1", "logs/1/seg/0/b-10"}},
		{"logs/1/seg/0/b-1", "", []string{"logs/1/seg/0/b-1", "logs/1/seg/0/b-10"}},
		{"logs/1/seg/0/b-", "logs/1/seg/0/b-0", []string{"logs/1/seg/0/b-1", "logs/1/seg/0/b-10"}},
		{"logs/1/seg/0/s", "", []string{"logs/1/seg/0/seal"}},
		{"logs/1/seg/0/b-100", "", nil},
		{"logs/3", "", nil},
		{"nothing/here/", "", nil},
		{"logs/1/seg/0/b-0/", "", nil}, // a key is not a directory
	}
	for _, c := range cases {
		got, _ := listPages(t, s, c.prefix, c.startAfter, 0)
		checkKeys(t, fmt.Sprintf("prefix %q after %q", c.prefix, c.startAfter), got, c.want)
	}
}

func testContextCanceled(t *testing.T, s objstore.Store, _ Capabilities) {
	mustPut(t, s, "ctx/present", []byte("x"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ops := []struct {
		name string
		fn   func() error
	}{
		{"put", func() error { return s.Put(ctx, "ctx/new", []byte("x"), objstore.PutOptions{}) }},
		{"create-only put", func() error { return s.Put(ctx, "ctx/new", []byte("x"), objstore.PutOptions{IfNotExists: true}) }},
		{"get", func() error { _, err := s.Get(ctx, "ctx/present"); return err }},
		{"get range", func() error { _, err := s.GetRange(ctx, "ctx/present", 0, 1); return err }},
		{"stat", func() error { _, err := s.Stat(ctx, "ctx/present"); return err }},
		{"list", func() error { _, err := s.List(ctx, "ctx/", "", 0); return err }},
		{"delete", func() error { return s.Delete(ctx, "ctx/present") }},
	}
	for _, op := range ops {
		if err := op.fn(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v, want context.Canceled", op.name, err)
		}
	}
	// Nothing happened.
	if _, err := s.Stat(t.Context(), "ctx/new"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("put with a cancelled context left an object (stat err = %v)", err)
	}
	if got := mustGet(t, s, "ctx/present"); string(got) != "x" {
		t.Errorf("delete with a cancelled context removed the object")
	}
}

func testLargeObject(t *testing.T, s objstore.Store, caps Capabilities) {
	size := caps.LargeObjectBytes
	if size <= 0 {
		size = DefaultLargeObjectBytes
	}
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(size), 42))
	for i := 0; i+8 <= len(data); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	ctx := t.Context()
	if err := s.Put(ctx, "large/obj", data, objstore.PutOptions{IfNotExists: true}); err != nil {
		t.Fatalf("create-only put of %d bytes: %v", size, err)
	}
	got := mustGet(t, s, "large/obj")
	if !bytes.Equal(got, data) {
		t.Fatalf("large object (%d bytes) came back different (%d bytes)", size, len(got))
	}
	got = nil
	info, err := s.Stat(ctx, "large/obj")
	if err != nil || info.Size != int64(size) {
		t.Fatalf("stat: %+v, %v; want size %d", info, err, size)
	}
	tail, err := s.GetRange(ctx, "large/obj", int64(size)-1000, 5000)
	if err != nil || !bytes.Equal(tail, data[size-1000:]) {
		t.Fatalf("range read of the last 1000 bytes: %d bytes, %v", len(tail), err)
	}
	mid, err := s.GetRange(ctx, "large/obj", int64(size)/2, 1<<20)
	if err != nil || !bytes.Equal(mid, data[size/2:size/2+1<<20]) {
		t.Fatalf("range read of 1 MiB from the middle: %d bytes, %v", len(mid), err)
	}
	if caps.ConditionalWrites {
		err := s.Put(ctx, "large/obj", data[:1024], objstore.PutOptions{IfNotExists: true})
		if !errors.Is(err, objstore.ErrAlreadyExists) {
			t.Fatalf("second create-only put of the large key: err = %v, want ErrAlreadyExists", err)
		}
	}
}
