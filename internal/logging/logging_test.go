package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/woodpecker-wal/woodpecker/options"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLevels(t *testing.T) {
	tests := []struct {
		level options.LogLevel
		want  []string // messages written, of debug, info, warn, error
	}{
		{options.LogDebug, []string{"d", "i", "w", "e"}},
		{options.LogInfo, []string{"i", "w", "e"}},
		{options.LogWarn, []string{"w", "e"}},
		{options.LogError, []string{"e"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.level), func(t *testing.T) {
			var buf bytes.Buffer
			lg, err := New(options.LogConfig{Level: tt.level, Format: options.LogJSON}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			lg.Debug("d")
			lg.Info("i")
			lg.Warn("w")
			lg.Error("e")
			var got []string
			for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("line %q is not JSON: %v", line, err)
				}
				got = append(got, m["msg"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("level %s wrote %v, want %v", tt.level, got, tt.want)
			}
		})
	}
}

// TestErrorsWithoutStack: an error field is its message, in both formats,
// never a stack trace, including fields added with With.
func TestErrorsWithoutStack(t *testing.T) {
	for _, format := range []options.LogFormat{options.LogConsole, options.LogJSON} {
		t.Run(string(format), func(t *testing.T) {
			var buf bytes.Buffer
			lg, err := New(options.LogConfig{Level: options.LogInfo, Format: format}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			cause := errors.Wrap(errors.New("disk on fire"), "upload block 7")
			lg.With(zap.Error(errors.New("context error"))).Warn("upload failed", zap.Error(cause), zap.Int("attempt", 2))
			out := buf.String()
			for _, want := range []string{"upload failed", "upload block 7: disk on fire", "context error", "attempt"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			for _, bad := range []string{"Verbose", ".go:", "goroutine"} {
				if strings.Contains(out, bad) {
					t.Errorf("output holds %q (a stack trace):\n%s", bad, out)
				}
			}
			if n := strings.Count(strings.TrimSpace(out), "\n"); n != 0 {
				t.Errorf("one entry took %d lines:\n%s", n+1, out)
			}
		})
	}
}

func TestConsoleFormat(t *testing.T) {
	var buf bytes.Buffer
	lg, err := New(options.LogConfig{Level: options.LogInfo, Format: options.LogConsole}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	lg.Named("bench").Info("started", zap.String("log", "a"))
	out := buf.String()
	if strings.HasPrefix(strings.TrimSpace(out), "{") {
		t.Fatalf("console output is JSON: %s", out)
	}
	for _, want := range []string{"INFO", "bench", "started", `"log": "a"`} {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %q: %s", want, out)
		}
	}
}

func TestBadConfig(t *testing.T) {
	tests := []struct {
		cfg options.LogConfig
		key string
	}{
		{options.LogConfig{Level: "loud", Format: options.LogJSON}, "log.level"},
		{options.LogConfig{Level: options.LogInfo, Format: "xml"}, "log.format"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg, &bytes.Buffer{})
		if !errors.Is(err, options.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig naming %s", tt.cfg, err, tt.key)
		}
	}
}
