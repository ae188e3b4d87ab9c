package memstore_test

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"go.uber.org/goleak"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errBoom = errors.New("boom")

func put(ctx context.Context, s *memstore.Store, key, data string) error {
	return s.Put(ctx, key, []byte(data), objstore.PutOptions{})
}

func create(ctx context.Context, s *memstore.Store, key, data string) error {
	return s.Put(ctx, key, []byte(data), objstore.PutOptions{IfNotExists: true})
}

// TestRuleSelection checks which operations a rule fires on: by kind, key
// glob or regexp, Nth and Times.
func TestRuleSelection(t *testing.T) {
	keys := []string{"s/b-1", "s/x", "s/b-2", "t/b-3", "s/b-4", "s/b-5", "s/deep/b-6"}
	cases := []struct {
		name string
		rule memstore.Rule
		// failing lists the keys whose put must fail.
		failing []string
	}{
		{"nth matching put", memstore.Rule{Op: memstore.OpPut, KeyPattern: "*/b-*", Nth: 3, Err: errBoom},
			[]string{"t/b-3"}},
		{"glob does not cross slashes", memstore.Rule{Op: memstore.OpPut, KeyPattern: "s/b-*", Err: errBoom},
			[]string{"s/b-1", "s/b-2", "s/b-4", "s/b-5"}},
		{"every match", memstore.Rule{KeyPattern: "s/x", Err: errBoom},
			[]string{"s/x"}},
		{"nth and times", memstore.Rule{Op: memstore.OpPut, KeyPattern: "*/b-*", Nth: 2, Times: 2, Err: errBoom},
			[]string{"s/b-2", "t/b-3"}},
		{"from nth on", memstore.Rule{Op: memstore.OpPut, Nth: 5, Times: -1, Err: errBoom},
			[]string{"s/b-4", "s/b-5", "s/deep/b-6"}},
		{"regexp", memstore.Rule{KeyRegexp: regexp.MustCompile(`b-[35]$`), Err: errBoom},
			[]string{"t/b-3", "s/b-5"}},
		{"glob and regexp both", memstore.Rule{KeyPattern: "s/*", KeyRegexp: regexp.MustCompile(`[35]$`), Err: errBoom},
			[]string{"s/b-5"}},
		{"other kind", memstore.Rule{Op: memstore.OpGet, Err: errBoom},
			nil},
		{"malformed glob matches nothing", memstore.Rule{KeyPattern: "[", Err: errBoom},
			nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := memstore.New()
			inj := s.Inject(c.rule)
			fail := map[string]bool{}
			for _, k := range c.failing {
				fail[k] = true
			}
			for _, k := range keys {
				err := put(t.Context(), s, k, k)
				if fail[k] {
					if !errors.Is(err, errBoom) {
						t.Errorf("put %q: err = %v, want the injected error", k, err)
					}
					if _, ok := s.Peek(k); ok {
						t.Errorf("failed put %q stored the object", k)
					}
				} else if err != nil {
					t.Errorf("put %q: %v, want success", k, err)
				}
			}
			if inj.Fired() != len(c.failing) {
				t.Errorf("Fired() = %d, want %d", inj.Fired(), len(c.failing))
			}
		})
	}
}

func TestDefaultErrorAndRemove(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	inj := s.Inject(memstore.Rule{Op: memstore.OpStat, Action: memstore.ActionFail})
	if err := put(ctx, s, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "k"); !errors.Is(err, memstore.ErrInjected) {
		t.Fatalf("stat: err = %v, want ErrInjected", err)
	}
	inj.Remove()
	inj.Remove() // harmless
	if _, err := s.Stat(ctx, "k"); err != nil {
		t.Fatalf("stat after Remove: %v", err)
	}
	s.Inject(memstore.Rule{Op: memstore.OpList, Err: errBoom})
	s.Inject(memstore.Rule{Op: memstore.OpGet, Err: errBoom})
	if _, err := s.List(ctx, "", "", 0); !errors.Is(err, errBoom) {
		t.Fatalf("list: err = %v, want the injected error", err)
	}
	s.ClearRules()
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatalf("get after ClearRules: %v", err)
	}
}

func TestFirstInjectedRuleDecides(t *testing.T) {
	s := memstore.New()
	first := s.Inject(memstore.Rule{Op: memstore.OpPut, Nth: 2, Err: errBoom})
	second := s.Inject(memstore.Rule{Op: memstore.OpPut, Action: memstore.ActionDrop})
	ctx := t.Context()
	_ = put(ctx, s, "a", "1") // second drops it
	err := put(ctx, s, "b", "2")
	if !errors.Is(err, errBoom) {
		t.Fatalf("put b: %v, want the first rule's error", err)
	}
	_ = put(ctx, s, "c", "3")
	if first.Fired() != 1 || second.Fired() != 2 {
		t.Fatalf("fired: first %d, second %d; want 1 and 2", first.Fired(), second.Fired())
	}
	if keys := s.Keys(); len(keys) != 0 {
		t.Fatalf("stored %v, want nothing", keys)
	}
}

// TestFailAfter: the operation takes effect but its caller gets an error,
// an unknown outcome.
func TestFailAfter(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	s.Inject(memstore.Rule{Op: memstore.OpPut, KeyPattern: "seg/*", Action: memstore.ActionFailAfter, Err: errBoom})
	s.Inject(memstore.Rule{Op: memstore.OpDelete, Action: memstore.ActionFailAfter})
	if err := create(ctx, s, "seg/b-0", "data"); !errors.Is(err, errBoom) {
		t.Fatalf("put: err = %v, want the injected error", err)
	}
	if got, ok := s.Peek("seg/b-0"); !ok || string(got) != "data" {
		t.Fatalf("the put should have landed; have %q, %v", got, ok)
	}
	// A create-only put that is refused is not turned into a success.
	if err := create(ctx, s, "seg/b-0", "other"); !errors.Is(err, objstore.ErrAlreadyExists) {
		t.Fatalf("second create: err = %v, want ErrAlreadyExists", err)
	}
	if err := s.Delete(ctx, "seg/b-0"); !errors.Is(err, memstore.ErrInjected) {
		t.Fatalf("delete: err = %v, want ErrInjected", err)
	}
	if _, ok := s.Peek("seg/b-0"); ok {
		t.Fatal("the delete should have taken effect")
	}
}

// TestDrop: a dropped put or delete reports success and changes nothing.
func TestDrop(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	if err := put(ctx, s, "keep", "v"); err != nil {
		t.Fatal(err)
	}
	s.Inject(memstore.Rule{Op: memstore.OpPut, Action: memstore.ActionDrop, KeyPattern: "lost"})
	s.Inject(memstore.Rule{Op: memstore.OpDelete, Action: memstore.ActionDrop})
	s.Inject(memstore.Rule{Op: memstore.OpGet, KeyPattern: "keep", Action: memstore.ActionDrop, Err: errBoom})
	if err := create(ctx, s, "lost", "v"); err != nil {
		t.Fatalf("dropped put: %v, want success", err)
	}
	if _, err := s.Stat(ctx, "lost"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("stat of a dropped put: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "keep"); err != nil {
		t.Fatalf("dropped delete: %v", err)
	}
	if _, ok := s.Peek("keep"); !ok {
		t.Fatal("a dropped delete removed the object")
	}
	if _, err := s.Get(ctx, "keep"); !errors.Is(err, errBoom) {
		t.Fatalf("dropped get: %v, want it to fail like ActionFail", err)
	}
}

func TestDelay(t *testing.T) {
	s := memstore.New()
	short := s.Inject(memstore.Rule{Op: memstore.OpPut, Delay: time.Millisecond})
	if err := put(t.Context(), s, "k", "v"); err != nil {
		t.Fatalf("delayed put: %v", err)
	}
	if _, ok := s.Peek("k"); !ok || short.Fired() != 1 {
		t.Fatalf("delayed put landed: %v, rule fired %d times; want true, 1", ok, short.Fired())
	}
	short.Remove()

	// A cancelled context ends the delay, and the operation does not happen.
	slow := s.Inject(memstore.Rule{Op: memstore.OpPut, KeyPattern: "slow", Delay: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- put(ctx, s, "slow", "v") }()
	for i := 0; slow.Fired() == 0; i++ { // wait until the put is in its delay
		if i == 60000 {
			t.Fatal("the delayed put never reached its rule")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("delayed put with cancelled ctx: err = %v, want context.Canceled", err)
	}
	if _, ok := s.Peek("slow"); ok {
		t.Fatal("a put cancelled during its delay landed")
	}
}

// startHeld starts a create-only put that a hold rule blocks, and returns
// its result channel once the store holds it.
func startHeld(t *testing.T, s *memstore.Store, key, data string, held int) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- create(t.Context(), s, key, data) }()
	if err := s.WaitHeld(t.Context(), held); err != nil {
		t.Fatal(err)
	}
	return done
}

func TestHoldRelease(t *testing.T) {
	s := memstore.New()
	s.Inject(memstore.Rule{Op: memstore.OpPut, KeyPattern: "seg/b-6", Action: memstore.ActionHold})
	done := startHeld(t, s, "seg/b-6", "six", 1)
	if h := s.Held(); len(h) != 1 || h[0] != (memstore.HeldOp{Op: memstore.OpPut, Key: "seg/b-6"}) {
		t.Fatalf("Held() = %v", h)
	}
	if _, ok := s.Peek("seg/b-6"); ok {
		t.Fatal("a held put is visible")
	}
	if n := s.Release(); n != 1 {
		t.Fatalf("Release() = %d, want 1", n)
	}
	if err := <-done; err != nil {
		t.Fatalf("released put: %v", err)
	}
	if got, ok := s.Peek("seg/b-6"); !ok || string(got) != "six" {
		t.Fatalf("released put: object %q, %v", got, ok)
	}
	if n := s.Release(); n != 0 {
		t.Fatalf("Release() with nothing held = %d", n)
	}
}

func TestHoldCancel(t *testing.T) {
	s := memstore.New()
	s.Inject(memstore.Rule{Op: memstore.OpGet, Action: memstore.ActionHold})
	if err := put(t.Context(), s, "k", "v"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := s.Get(ctx, "k"); done <- err }()
	if err := s.WaitHeld(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("held get with cancelled ctx: %v, want context.Canceled", err)
	}
	if h := s.Held(); len(h) != 0 {
		t.Fatalf("still held after cancel: %v", h)
	}
}

// TestCrash: in-flight puts end with ErrCrashed; the ones the test says
// landed are visible as soon as Crash returns, the others never appear.
func TestCrash(t *testing.T) {
	s := memstore.New()
	s.Inject(memstore.Rule{Op: memstore.OpPut, KeyPattern: "seg/b-*", Action: memstore.ActionHold})
	ctx := t.Context()
	var dones []<-chan error
	for i := range 4 {
		dones = append(dones, startHeld(t, s, fmt.Sprintf("seg/b-%d", i), "data", i+1))
	}
	landed := map[string]bool{"seg/b-0": true, "seg/b-2": true}
	if n := s.Crash(func(h memstore.HeldOp) bool { return landed[h.Key] }); n != 4 {
		t.Fatalf("Crash() = %d, want 4", n)
	}
	for i := range 4 {
		key := fmt.Sprintf("seg/b-%d", i)
		if _, ok := s.Peek(key); ok != landed[key] {
			t.Errorf("%s visible = %v after Crash, want %v", key, ok, landed[key])
		}
	}
	for i, done := range dones {
		if err := <-done; !errors.Is(err, memstore.ErrCrashed) {
			t.Errorf("put %d: err = %v, want ErrCrashed", i, err)
		}
	}
	// The store works on after the "restart".
	s.ClearRules()
	if err := create(ctx, s, "seg/b-1", "retry"); err != nil {
		t.Fatalf("put after crash: %v", err)
	}
}

// TestFencingRace plays the race the segment recovery must handle: the
// listing shows blocks 0..5 and 7 while 6 is in flight; recovery fences the
// first gap with a create-only put, and the old writer's block 6 then
// fails against the fence.
func TestFencingRace(t *testing.T) {
	s := memstore.New()
	ctx := t.Context()
	s.Inject(memstore.Rule{Op: memstore.OpPut, KeyPattern: "seg/b-6", Nth: 1, Action: memstore.ActionHold})
	for i := range 6 {
		if err := create(ctx, s, fmt.Sprintf("seg/b-%d", i), "old"); err != nil {
			t.Fatal(err)
		}
	}
	inflight := startHeld(t, s, "seg/b-6", "old", 1)
	if err := create(ctx, s, "seg/b-7", "old"); err != nil {
		t.Fatal(err)
	}
	page, err := s.List(ctx, "seg/", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 7 || page.Objects[6].Key != "seg/b-7" {
		t.Fatalf("listing = %v, want b-0..b-5 and b-7", page.Objects)
	}
	if err := create(ctx, s, "seg/b-6", "fence"); err != nil {
		t.Fatalf("fence: %v", err)
	}
	s.Release()
	if err := <-inflight; !errors.Is(err, objstore.ErrAlreadyExists) {
		t.Fatalf("old writer's block 6: err = %v, want ErrAlreadyExists", err)
	}
	if got, _ := s.Peek("seg/b-6"); string(got) != "fence" {
		t.Fatalf("slot 6 holds %q, want the fence", got)
	}
}

func TestCorruptAndMutate(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	if err := put(ctx, s, "k", "abc"); err != nil {
		t.Fatal(err)
	}
	if err := s.Corrupt("k", 1, 0x01); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "k"); string(got) != "acc" {
		t.Fatalf("after flipping bit 0 of byte 1: %q, want %q", got, "acc")
	}
	if err := s.Corrupt("k", 0, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Peek("k"); got[0] != ^byte('a') {
		t.Fatalf("mask 0 should flip all bits: byte 0 = %#x", got[0])
	}
	if err := s.Corrupt("k", 3, 1); !errors.Is(err, objstore.ErrInvalidRange) {
		t.Fatalf("corrupt past the end: %v, want ErrInvalidRange", err)
	}
	if err := s.Corrupt("missing", 0, 1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("corrupt missing: %v, want ErrNotFound", err)
	}
	if err := s.Mutate("k", func(b []byte) []byte { return b[:1] }); err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Stat(ctx, "k"); info.Size != 1 {
		t.Fatalf("truncated object has size %d", info.Size)
	}
}

func TestCounts(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	s.Inject(memstore.Rule{Op: memstore.OpGet, Err: errBoom})
	for i := range 3 {
		_ = put(ctx, s, fmt.Sprintf("k%d", i), "v")
	}
	_, _ = s.Get(ctx, "k0") // failed calls count too
	_, _ = s.GetRange(ctx, "k0", 0, 1)
	_, _ = s.Stat(ctx, "k0")
	_, _ = s.List(ctx, "", "", 0)
	_ = s.Delete(ctx, "k0")
	_ = s.Delete(ctx, "") // and invalid ones
	want := map[memstore.Op]int64{
		memstore.OpPut: 3, memstore.OpGet: 1, memstore.OpGetRange: 1,
		memstore.OpStat: 1, memstore.OpList: 1, memstore.OpDelete: 2, memstore.OpAny: 9,
	}
	for op, n := range want {
		if got := s.Count(op); got != n {
			t.Errorf("Count(%s) = %d, want %d", op, got, n)
		}
	}
	_ = s.Keys() // uncounted
	_, _ = s.Peek("k1")
	if got := s.Count(memstore.OpAny); got != 9 {
		t.Errorf("Keys and Peek were counted: %d", got)
	}
	s.ResetCounts()
	if got := s.Count(memstore.OpAny); got != 0 {
		t.Errorf("after ResetCounts: %d", got)
	}
}

func TestSetConditionalWrites(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	if err := objstore.ProbeConditionalWrite(ctx, s); err != nil {
		t.Fatalf("probe: %v", err)
	}
	s.SetConditionalWrites(false)
	if err := objstore.ProbeConditionalWrite(ctx, s); !errors.Is(err, objstore.ErrConditionalWriteUnsupported) {
		t.Fatalf("probe without conditions: %v", err)
	}
	s.SetConditionalWrites(true)
	if err := objstore.ProbeConditionalWrite(ctx, s); err != nil {
		t.Fatalf("probe after switching back: %v", err)
	}
}

// TestConcurrentFaults runs many goroutines against rules, holds and
// crashes at once, for the race detector.
func TestConcurrentFaults(t *testing.T) {
	s := memstore.New()
	s.Inject(memstore.Rule{Op: memstore.OpPut, Nth: 10, Times: -1, KeyPattern: "w*/b-1*", Action: memstore.ActionHold})
	s.Inject(memstore.Rule{Op: memstore.OpGet, Nth: 3, Times: 5, Err: errBoom})
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				key := fmt.Sprintf("w%d/b-%d", w, i)
				_ = create(ctx, s, key, "x")
				_, _ = s.Get(ctx, key)
				_, _ = s.List(ctx, fmt.Sprintf("w%d/", w), "", 10)
			}
		})
	}
	crashCtx, stop := context.WithCancel(ctx)
	var crasher sync.WaitGroup
	crasher.Go(func() {
		for s.WaitHeld(crashCtx, 1) == nil {
			s.Crash(func(h memstore.HeldOp) bool { return len(h.Key)%2 == 0 })
		}
	})
	wg.Wait()
	stop()
	crasher.Wait()
	if n := s.Release(); n != 0 {
		t.Fatalf("%d operations still held after all callers returned", n)
	}
}

// TestReleaseReachesAnOperationNotYetHeld: an operation a hold rule
// matched, but which had not registered as held when the test cleared its
// rules and released, is released too: it does not stay held for good
// (a cursor test hung so, once in about 70 runs).
func TestReleaseReachesAnOperationNotYetHeld(t *testing.T) {
	s := memstore.New()
	ctx := context.Background()
	if err := s.Put(ctx, "k", []byte("v"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// The delay puts the operation between its match and its hold.
	s.Inject(memstore.Rule{Op: memstore.OpGet, KeyPattern: "k", Delay: 200 * time.Millisecond, Action: memstore.ActionHold})
	got := make(chan error, 1)
	gctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	go func() {
		_, err := s.Get(gctx, "k")
		got <- err
	}()
	time.Sleep(20 * time.Millisecond) // the Get is in its delay, or held if this slept long
	s.ClearRules()
	s.Release()
	if err := <-got; err != nil {
		t.Fatalf("the Get released before it was held: %v", err)
	}
}
