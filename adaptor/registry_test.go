package adaptor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"gopkg.in/yaml.v3"

	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/walimpls"
)

func TestFromYAMLWoodpecker(t *testing.T) {
	doc := `
# A database's configuration: other sections are ignored.
etcd:
  endpoints: [ignored:1]
mq:
  type: woodpecker
  enablePursuitMode: true
pulsar:
  address: ignored
woodpecker:
  etcd:
    endpoints: ["etcd-a:2379", "etcd-b:2379"]
    rootPath: db/wal
  storage:
    type: local
    rootPath: /var/lib/wal
  writer:
    flushDelay: 7ms
`
	b, err := FromYAML([]byte(doc))
	if err != nil {
		t.Fatalf("FromYAML: %v", err)
	}
	wb, ok := b.(*Builder)
	if !ok {
		t.Fatalf("FromYAML returned %T, want *Builder", b)
	}
	if b.Name() != walimpls.WALNameWoodpecker {
		t.Errorf("Name() = %v", b.Name())
	}
	cfg := wb.Config()
	want := options.Default()
	if strings.Join(cfg.Etcd.Endpoints, ",") != "etcd-a:2379,etcd-b:2379" || cfg.Etcd.RootPath != "db/wal" ||
		cfg.Storage.Type != options.StorageLocal || cfg.Storage.RootPath != "/var/lib/wal" ||
		cfg.Writer.FlushDelay != 7*time.Millisecond || cfg.Reader.PrefetchBlocks != want.Reader.PrefetchBlocks {
		t.Errorf("config not taken from the woodpecker section: %v", cfg)
	}
}

func TestFromYAMLDefaultsWithoutSection(t *testing.T) {
	b, err := FromYAML([]byte("mq:\n  type: Woodpecker\n"))
	if err != nil {
		t.Fatalf("FromYAML: %v", err)
	}
	if got, want := b.(*Builder).Config().Etcd.RootPath, options.Default().Etcd.RootPath; got != want {
		t.Errorf("rootPath %q, want the default %q", got, want)
	}
}

func TestFromYAMLErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		is   error
		msg  []string // substrings the message must hold
	}{
		{"unknown-type", "mq:\n  type: kafka\n", ErrUnknownMQType, []string{`"kafka"`, "woodpecker"}},
		{"no-mq", "woodpecker: {}\n", options.ErrInvalidConfig, []string{"mq.type is not set", "woodpecker"}},
		{"no-type", "mq:\n  other: 1\n", options.ErrInvalidConfig, []string{"mq.type must be"}},
		{"type-not-string", "mq:\n  type: [a]\n", options.ErrInvalidConfig, []string{"line 2", "mq.type must be"}},
		{"empty-type", "mq:\n  type: \"\"\n", options.ErrInvalidConfig, []string{"mq.type must be"}},
		{"mq-not-mapping", "mq: woodpecker\n", options.ErrInvalidConfig, []string{"mq must be a mapping"}},
		{"not-mapping", "- a\n", options.ErrInvalidConfig, []string{"must be a mapping"}},
		{"empty", "", options.ErrInvalidConfig, []string{"empty"}},
		{"bad-yaml", "mq: [\n", options.ErrInvalidConfig, []string{"not valid YAML"}},
		{"unknown-key", "mq:\n  type: woodpecker\nwoodpecker:\n  storage:\n    tpye: local\n", options.ErrInvalidConfig, []string{"storage.tpye"}},
		{"invalid-value", "mq:\n  type: woodpecker\nwoodpecker:\n  writer:\n    maxInflightUploads: 0\n", options.ErrInvalidConfig, []string{"writer.maxInflightUploads"}},
		{"section-not-mapping", "mq:\n  type: woodpecker\nwoodpecker: 3\n", options.ErrInvalidConfig, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := FromYAML([]byte(tc.doc))
			if !errors.Is(err, tc.is) {
				t.Fatalf("FromYAML = %v, %v; want an error matching %v", b, err, tc.is)
			}
			for _, s := range tc.msg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestLoadFileAppliesEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.yaml")
	if err := os.WriteFile(path, []byte("mq:\n  type: woodpecker\nwoodpecker:\n  storage:\n    type: local\n    rootPath: /data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WOODPECKER_ETCD_ENDPOINTS", "env-etcd:2379")
	b, err := LoadFile(path)
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	cfg := b.(*Builder).Config()
	if strings.Join(cfg.Etcd.Endpoints, ",") != "env-etcd:2379" || cfg.Storage.RootPath != "/data" {
		t.Errorf("LoadFile config: %v", cfg)
	}
	// FromYAML ignores the environment.
	data, _ := os.ReadFile(path)
	b, err = FromYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.(*Builder).Config().Etcd.Endpoints; strings.Join(got, ",") == "env-etcd:2379" {
		t.Error("FromYAML applied the environment")
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadFile(missing) = %v, want ErrNotExist", err)
	}
}

func TestRegister(t *testing.T) {
	if got := RegisteredTypes(); len(got) < 1 || got[0] != MQTypeWoodpecker {
		t.Fatalf("RegisteredTypes() = %v", got)
	}
	called := false
	Register("test-mq", func(section *yaml.Node, env func(string) (string, bool)) (walimpls.OpenerBuilder, error) {
		called = true
		if section == nil || lookup(section, "x").Value != "1" {
			return nil, errors.New("section not passed")
		}
		return NewBuilder(options.Default()), nil
	})
	if _, err := FromYAML([]byte("mq:\n  type: test-mq\ntest-mq:\n  x: 1\n")); err != nil || !called {
		t.Fatalf("FromYAML with a registered test type: %v (called %t)", err, called)
	}
	_, err := FromYAML([]byte("mq:\n  type: nope\n"))
	if err == nil || !strings.Contains(err.Error(), "test-mq, woodpecker") {
		t.Errorf("unknown type error %v does not list the registered types", err)
	}
	for name, fn := range map[string]func(){
		"twice":      func() { Register(MQTypeWoodpecker, woodpeckerFactory) },
		"upper-case": func() { Register("Kafka", woodpeckerFactory) },
		"empty":      func() { Register("", woodpeckerFactory) },
		"nil":        func() { Register("nil-factory", nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			fn()
		})
	}
}
