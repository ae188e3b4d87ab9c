package main

import (
	"context"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/woodpecker-wal/woodpecker/internal/testenv"
)

// TestMetricsCountAppendsOnLocalStorage connects as a command does, with
// local storage (no object store to instrument) and --metrics-addr, appends
// through the client, and checks that the served metrics count the
// appends, the block writes and the seal, each once.
func TestMetricsCountAppendsOnLocalStorage(t *testing.T) {
	ctx := context.Background()
	a := &app{ctx: ctx, stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
		lookup: func(string) (string, bool) { return "", false }}
	root := a.rootCommand()
	err := root.PersistentFlags().Parse([]string{
		"--etcd", strings.Join(testenv.EtcdEndpoints(t), ","), "--etcd-root", testenv.UniquePrefix(t),
		"--storage", "local", "--storage-root", filepath.Join(t.TempDir(), "logs"),
		"--metrics-addr", "127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	e, err := a.connect(ctx, connectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	if e.store != nil {
		t.Fatal("local storage went through an object store")
	}

	if err := e.client.CreateLog(ctx, "measured"); err != nil {
		t.Fatal(err)
	}
	l, err := e.client.OpenLog(ctx, "measured")
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"one", "two", "three"} {
		if _, err := w.Append(ctx, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}

	body := httpGet(t, "http://"+e.metricsSrv.Addr()+"/metrics")
	for _, want := range []string{
		`woodpecker_writer_appends_total{result="ok"} 3`,
		`woodpecker_writer_append_bytes_total 11`,
		`woodpecker_writer_append_latency_seconds_count 3`,
		`woodpecker_storage_block_writes_in_flight 0`,
		`woodpecker_storage_segments_sealed_total 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(body, "woodpecker_"))
		}
	}
	// Lone appends each cut a block; whatever the batching, at least one
	// block was written and no more than one per append.
	m := regexp.MustCompile(`(?m)^woodpecker_storage_blocks_written_total ([123])$`).FindStringSubmatch(body)
	if m == nil {
		t.Errorf("blocks written is not 1 to 3:\n%s", grepLines(body, "woodpecker_storage"))
	}
}
