package options

import (
	stderrors "errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"gopkg.in/yaml.v3"

	"github.com/woodpecker-wal/woodpecker/configs"
)

// withoutSources returns c without its Sources, for comparing values only.
func withoutSources(c Config) Config {
	c.Sources = nil
	return c
}

// diffConfig lists, by key path, every field where a and b differ.
func diffConfig(a, b Config) []string {
	var diffs []string
	var walk func(x, y reflect.Value, path string)
	walk = func(x, y reflect.Value, path string) {
		for _, f := range fieldsOf(x.Type()) {
			fx, fy := x.Field(f.index), y.Field(f.index)
			key := joinKey(path, f.key)
			if fx.Kind() == reflect.Struct {
				walk(fx, fy, key)
				continue
			}
			if !reflect.DeepEqual(fx.Interface(), fy.Interface()) {
				diffs = append(diffs, fmt.Sprintf("%s: %#v != %#v", key, fx.Interface(), fy.Interface()))
			}
		}
	}
	walk(reflect.ValueOf(a), reflect.ValueOf(b), "")
	return diffs
}

// requireProblems fails unless err is a *ConfigError matching ErrInvalidConfig
// whose problems name exactly wantKeys, in order.
func requireProblems(t *testing.T, err error, wantKeys ...string) *ConfigError {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want problems with %v", wantKeys)
	}
	if !errors.Is(err, ErrInvalidConfig) || !stderrors.Is(err, ErrInvalidConfig) {
		t.Fatalf("error does not match ErrInvalidConfig: %v", err)
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error is not a *ConfigError: %T %v", err, err)
	}
	if got := ce.Keys(); !slices.Equal(got, wantKeys) {
		t.Fatalf("problems name keys %q, want %q; error:\n%v", got, wantKeys, err)
	}
	return ce
}

// TestDefaultEqualsYAML is the test the design asks for: the defaults in code are
// exactly the values of configs/woodpecker.yaml, field by field.
func TestDefaultEqualsYAML(t *testing.T) {
	def := Default()

	// The YAML alone, over a zero Config, must produce every default: a key
	// missing from the file would leave a zero here.
	fromZero, err := parse(Config{}, configs.DefaultYAML, "yaml", "configs/woodpecker.yaml")
	if err != nil {
		t.Fatalf("parse default YAML: %v", err)
	}
	if d := diffConfig(withoutSources(def), withoutSources(fromZero)); len(d) > 0 {
		t.Errorf("Default() and configs/woodpecker.yaml (over a zero Config) differ:\n%s", strings.Join(d, "\n"))
	} else if !reflect.DeepEqual(withoutSources(def), withoutSources(fromZero)) {
		t.Errorf("Default() != YAML over a zero Config, outside the keyed fields:\n%#v\n%#v", def, fromZero)
	}

	// And the public path: Parse starts from Default.
	parsed, err := Parse(configs.DefaultYAML)
	if err != nil {
		t.Fatalf("Parse(configs.DefaultYAML): %v", err)
	}
	if !reflect.DeepEqual(withoutSources(def), withoutSources(parsed)) {
		t.Errorf("Default() != Parse(configs.DefaultYAML):\n%s", strings.Join(diffConfig(def, parsed), "\n"))
	}
	// Every key was set by the file.
	for _, k := range Keys() {
		if got := parsed.Source(k); got != "yaml" {
			t.Errorf("Source(%q) = %q after Parse of the full file, want yaml", k, got)
		}
		if got := def.Source(k); got != SourceDefault {
			t.Errorf("Default().Source(%q) = %q, want default", k, got)
		}
	}
	if len(def.Sources) != len(Keys()) {
		t.Errorf("Default().Sources has %d keys, want %d", len(def.Sources), len(Keys()))
	}

	if err := def.Validate(); err != nil {
		t.Errorf("Default() does not validate: %v", err)
	}
}

// yamlKeys returns every key path of the YAML mapping node (sections included)
// and, for each, whether it carries a comment.
func yamlKeys(t *testing.T, n *yaml.Node, prefix string, out map[string]bool, order *[]string) {
	t.Helper()
	if n.Kind != yaml.MappingNode {
		t.Fatalf("%q: expected a mapping", prefix)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := joinKey(prefix, k.Value)
		out[path] = k.HeadComment != "" || k.LineComment != "" || v.LineComment != ""
		if v.Kind == yaml.MappingNode {
			yamlKeys(t, v, path, out, order)
		} else {
			*order = append(*order, path)
		}
	}
}

// structKeys returns every key path of type t, sections included.
func structKeys(t reflect.Type, prefix string, out map[string]reflect.Type) {
	for _, f := range fieldsOf(t) {
		ft := t.Field(f.index).Type
		path := joinKey(prefix, f.key)
		out[path] = ft
		if ft.Kind() == reflect.Struct {
			structKeys(ft, path, out)
		}
	}
}

// TestEveryFieldInYAML proves that the YAML file and the Config type list the same
// keys, so a field added in code but not documented in the file fails here, and
// that each key in the file is documented by a comment.
func TestEveryFieldInYAML(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(configs.DefaultYAML, &doc); err != nil {
		t.Fatalf("unmarshal default YAML: %v", err)
	}
	inYAML := map[string]bool{}
	var leafOrder []string
	yamlKeys(t, doc.Content[0], "", inYAML, &leafOrder)
	inCode := map[string]reflect.Type{}
	structKeys(reflect.TypeFor[Config](), "", inCode)

	for k := range inCode {
		if _, ok := inYAML[k]; !ok {
			t.Errorf("Config has key %q but configs/woodpecker.yaml does not: add it, with a comment", k)
		}
	}
	for k, commented := range inYAML {
		if _, ok := inCode[k]; !ok {
			t.Errorf("configs/woodpecker.yaml has key %q but Config does not", k)
		}
		if !commented {
			t.Errorf("configs/woodpecker.yaml: key %q has no comment", k)
		}
	}
	if !slices.Equal(Keys(), leafOrder) {
		t.Errorf("Keys() = %q\nwant the file's order %q", Keys(), leafOrder)
	}

	// The decoder reads int64 as a size and int as a count: keep the names honest.
	allowed := map[reflect.Kind]bool{reflect.String: true, reflect.Bool: true, reflect.Int: true, reflect.Int64: true, reflect.Slice: true, reflect.Struct: true}
	for k, ft := range inCode {
		if !allowed[ft.Kind()] {
			t.Errorf("%s: type %s has no decoder", k, ft)
		}
		if ft.Kind() == reflect.Int64 && ft != durationType && !strings.HasSuffix(k, "Bytes") {
			t.Errorf("%s: int64 fields are sizes and their keys end in Bytes", k)
		}
	}
}

func TestUnknownKeyNamesFullPath(t *testing.T) {
	tests := []struct {
		name, yaml, key string
	}{
		{"root", "etcdd:\n  rootPath: x\n", "etcdd"},
		{"section", "storage:\n  bucketName: b\n", "storage.bucketName"},
		{"depth 3", "storage:\n  tls:\n    caFil: x\n", "storage.tls.caFil"},
		{"depth 3 fencing", "storage:\n  fencing:\n    conditional: required\n", "storage.fencing.conditional"},
		{"depth 3 retry", "writer:\n  uploadRetry:\n    attempts: 3\n", "writer.uploadRetry.attempts"},
		{"depth 3 compaction", "retention:\n  compaction:\n    enable: true\n", "retention.compaction.enable"},
		{"depth 3 etcd tls", "etcd:\n  tls:\n    ca: x\n", "etcd.tls.ca"},
		{"wrong case", "storage:\n  usessl: true\n", "storage.usessl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			ce := requireProblems(t, err, tt.key)
			if !strings.Contains(err.Error(), tt.key+": unknown key") {
				t.Errorf("error %q does not say %q", err, tt.key+": unknown key")
			}
			if ce.Problems[0].Line == 0 {
				t.Errorf("problem has no line: %+v", ce.Problems[0])
			}
		})
	}

	// A near miss gets a suggestion; a far one lists the known keys.
	_, err := Parse([]byte("storage:\n  tls:\n    caFil: x\n"))
	if !strings.Contains(err.Error(), `did you mean "caFile"?`) {
		t.Errorf("no suggestion in %q", err)
	}
	_, err = Parse([]byte("storage:\n  usessl: true\n"))
	if !strings.Contains(err.Error(), `did you mean "useSSL"?`) {
		t.Errorf("no suggestion in %q", err)
	}
	_, err = Parse([]byte("foo: 1\n"))
	if strings.Contains(err.Error(), "did you mean") || !strings.Contains(err.Error(), "known keys here: etcd, storage,") {
		t.Errorf("unexpected message %q", err)
	}
}

func TestWrongTypes(t *testing.T) {
	tests := []struct {
		name, yaml, key, msg string
	}{
		{"endpoints scalar", "etcd:\n  endpoints: localhost:2379\n", "etcd.endpoints", "expected a list of strings"},
		{"endpoints item mapping", "etcd:\n  endpoints:\n    - a:1\n    - {host: b}\n", "etcd.endpoints[1]", "expected a string, got a mapping"},
		{"endpoints item null", "etcd:\n  endpoints: [a:1, ~]\n", "etcd.endpoints[1]", "expected a string"},
		{"bool as string", "etcd:\n  tls:\n    enabled: \"yes please\"\n", "etcd.tls.enabled", "expected true or false"},
		{"bool as int", "storage:\n  useSSL: 1\n", "storage.useSSL", "expected true or false"},
		{"count as string", "writer:\n  maxInflightUploads: four\n", "writer.maxInflightUploads", "expected an integer"},
		{"count as float", "writer:\n  maxInflightUploads: 1.5\n", "writer.maxInflightUploads", "expected an integer"},
		{"count null", "writer:\n  maxInflightUploads:\n", "writer.maxInflightUploads", "has no value"},
		{"size as bool", "writer:\n  maxBlockBytes: true\n", "writer.maxBlockBytes", "expected a size"},
		{"size as float", "writer:\n  maxBlockBytes: 1.5\n", "writer.maxBlockBytes", "must be whole"},
		{"size as list", "writer:\n  maxBlockBytes: [1]\n", "writer.maxBlockBytes", "expected a size, got a list"},
		{"duration as list", "etcd:\n  dialTimeout: [5s]\n", "etcd.dialTimeout", "expected a duration, got a list"},
		{"duration as bool", "etcd:\n  dialTimeout: true\n", "etcd.dialTimeout", "expected a duration"},
		{"string as mapping", "storage:\n  bucket: {a: b}\n", "storage.bucket", "expected a string, got a mapping"},
		{"enum as list", "storage:\n  type: [minio]\n", "storage.type", "expected one of minio, s3, local"},
		{"enum null", "storage:\n  type:\n", "storage.type", "has no value"},
		{"section as scalar", "writer: 5\n", "writer", "expected a section"},
		{"section as list", "storage: [a]\n", "storage", "expected a section"},
		{"root as list", "- a\n", "", "expected a mapping of sections"},
		{"key not scalar", "storage:\n  ? [a]\n  : b\n", "storage", "a key must be a plain name"},
		{"duplicate key", "storage:\n  bucket: a\n  bucket: b\n", "storage.bucket", "duplicate key (first at line 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			requireProblems(t, err, tt.key)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	in := "storage:\n  type: gcs\nwriter:\n  maxBlockBytes: 4XB\n  flushDelay: 2\n"
	_, err := Parse([]byte(in))
	requireProblems(t, err, "storage.type", "writer.maxBlockBytes", "writer.flushDelay")
	for _, want := range []string{
		"\n  storage.type: unknown value \"gcs\" (allowed: minio, s3, local) (line 2)",
		"\n  writer.maxBlockBytes: \"4XB\" is not a size",
		"\n  writer.flushDelay: \"2\" is not a duration",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestParseDocuments(t *testing.T) {
	def := Default()
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c Config)
	}{
		{"empty", "", func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c, def) {
				t.Errorf("empty document is not Default()")
			}
		}},
		{"comments only", "# nothing\n", func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c, def) {
				t.Errorf("comment-only document is not Default()")
			}
		}},
		{"empty section keeps defaults", "storage:\nwriter:\n", func(t *testing.T, c Config) {
			if !reflect.DeepEqual(withoutSources(c), withoutSources(def)) {
				t.Errorf("empty sections changed values:\n%s", strings.Join(diffConfig(def, c), "\n"))
			}
		}},
		{"partial overlay", "storage:\n  bucket: other\nwriter:\n  maxBlockBytes: 1MiB\n", func(t *testing.T, c Config) {
			want := def.Clone()
			want.Storage.Bucket = "other"
			want.Writer.MaxBlockBytes = MiB
			if d := diffConfig(want, c); len(d) > 0 {
				t.Errorf("unexpected values:\n%s", strings.Join(d, "\n"))
			}
			if c.Source("storage.bucket") != "yaml" || c.Source("storage.endpoint") != SourceDefault {
				t.Errorf("sources: %v", c.Sources)
			}
		}},
		{"null string is empty", "storage:\n  region:\n", func(t *testing.T, c Config) {
			if c.Storage.Region != "" {
				t.Errorf("region = %q", c.Storage.Region)
			}
		}},
		{"numeric string kept as written", "etcd:\n  password: 0123\n", func(t *testing.T, c Config) {
			if c.Etcd.Password != "0123" {
				t.Errorf("password = %q", c.Etcd.Password)
			}
		}},
		{"enum case-insensitive", "storage:\n  type: MinIO\n  fencing:\n    conditionalWrite: ALLOWETCDONLY\n", func(t *testing.T, c Config) {
			if c.Storage.Type != StorageMinIO || c.Storage.Fencing.ConditionalWrite != ConditionalWriteAllowEtcdOnly {
				t.Errorf("type %q, conditionalWrite %q", c.Storage.Type, c.Storage.Fencing.ConditionalWrite)
			}
		}},
		{"endpoints list", "etcd:\n  endpoints: [a:1, b:2]\n", func(t *testing.T, c Config) {
			if !slices.Equal(c.Etcd.Endpoints, []string{"a:1", "b:2"}) {
				t.Errorf("endpoints %q", c.Etcd.Endpoints)
			}
		}},
		{"anchor and alias", "etcd:\n  dialTimeout: &t 7s\n  requestTimeout: *t\n", func(t *testing.T, c Config) {
			if c.Etcd.DialTimeout != 7*time.Second || c.Etcd.RequestTimeout != 7*time.Second {
				t.Errorf("timeouts %v %v", c.Etcd.DialTimeout, c.Etcd.RequestTimeout)
			}
		}},
		{"zero duration without unit", "writer:\n  flushDelay: 0\n", func(t *testing.T, c Config) {
			if c.Writer.FlushDelay != 0 {
				t.Errorf("flushDelay %v", c.Writer.FlushDelay)
			}
		}},
		{"plain integer size", "writer:\n  maxBlockBytes: 1048576\n", func(t *testing.T, c Config) {
			if c.Writer.MaxBlockBytes != MiB {
				t.Errorf("maxBlockBytes %d", c.Writer.MaxBlockBytes)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, c)
		})
	}

	bad := []struct {
		name, yaml, msg string
	}{
		{"syntax", "storage:\n  bucket: [a\n", "not valid YAML"},
		{"two documents", "storage: {}\n---\nwriter: {}\n", "more than one YAML document"},
		{"tabs", "storage:\n\tbucket: a\n", "not valid YAML"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			requireProblems(t, err, "")
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{in: "0", want: 0},
		{in: "4194304", want: 4 * MiB},
		{in: "4MiB", want: 4 * MiB},
		{in: "4mib", want: 4 * MiB},
		{in: "4 MiB", want: 4 * MiB},
		{in: " 64MB ", want: 64_000_000},
		{in: "1B", want: 1},
		{in: "2KiB", want: 2048},
		{in: "2KB", want: 2000},
		{in: "1.5KiB", want: 1536},
		{in: "1.5GiB", want: 3 * GiB / 2},
		{in: "3GB", want: 3_000_000_000},
		{in: "1TiB", want: TiB},
		{in: "2TB", want: 2_000_000_000_000},
		{in: "-1", want: -1},
		{in: "4XB", err: `"4XB" is not a size: unknown unit "XB"`},
		{in: "4M", err: `unknown unit "M"`},
		{in: "4 k", err: `unknown unit "k"`},
		{in: "", err: `"" is not a size`},
		{in: "MiB", err: `"MiB" is not a size`},
		{in: "4.5", err: `"4.5" is not a whole number of bytes`},
		{in: "1.1B", err: "not a whole number of bytes"},
		{in: "1e3", err: `unknown unit "e3"`},
		{in: "1/2MiB", err: "is not a size"},
		{in: "9000000TiB", err: "too large"},
		{in: "99999999999999999999", err: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseSize(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}

	format := []struct {
		n    int64
		want string
	}{
		{0, "0"}, {1, "1"}, {1000, "1KB"}, {1024, "1KiB"}, {1500, "1500"},
		{4 * MiB, "4MiB"}, {64_000_000, "64MB"}, {16 * MiB, "16MiB"}, {TiB, "1TiB"},
		{3 * GiB / 2, "1536MiB"}, {-2 * KiB, "-2KiB"},
	}
	for _, tt := range format {
		if got := FormatSize(tt.n); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.n, got, tt.want)
		}
		back, err := ParseSize(FormatSize(tt.n))
		if err != nil || back != tt.n {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", tt.n, back, err)
		}
	}

	// Through YAML: strings with units, plain integers, and the key in errors.
	c, err := Parse([]byte("writer:\n  maxBlockBytes: 2MiB\n  memoryBudgetBytes: 100000000\n  rollMaxBytes: \"1GB\"\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Writer.MaxBlockBytes != 2*MiB || c.Writer.MemoryBudgetBytes != 100_000_000 || c.Writer.RollMaxBytes != 1_000_000_000 {
		t.Errorf("sizes %d %d %d", c.Writer.MaxBlockBytes, c.Writer.MemoryBudgetBytes, c.Writer.RollMaxBytes)
	}
	_, err = Parse([]byte("writer:\n  maxBlockBytes: 4XB\n"))
	requireProblems(t, err, "writer.maxBlockBytes")
	if !strings.Contains(err.Error(), `writer.maxBlockBytes: "4XB" is not a size`) {
		t.Errorf("error %q", err)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "2ms", want: 2 * time.Millisecond},
		{in: "10m", want: 10 * time.Minute},
		{in: "72h", want: 72 * time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "250us", want: 250 * time.Microsecond},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "-5s", want: -5 * time.Second},
		{in: "-1d", want: -24 * time.Hour},
		{in: "2", err: `"2" is not a duration`},
		{in: "", err: `"" is not a duration`},
		{in: "ms", err: "is not a duration"},
		{in: "5 s", err: "is not a duration"},
		{in: "1x", err: "is not a duration"},
		{in: "1d-2h", err: "is not a duration"},
		{in: "1dx", err: "is not a duration"},
		{in: "999999d", err: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseDuration(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}

	format := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {2 * time.Millisecond, "2ms"}, {10 * time.Minute, "10m"}, {72 * time.Hour, "72h"},
		{90 * time.Minute, "1h30m"}, {time.Hour + 30*time.Second, "1h0m30s"}, {1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range format {
		if got := FormatDuration(tt.d); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
		back, err := ParseDuration(FormatDuration(tt.d))
		if err != nil || back != tt.d {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", tt.d, back, err)
		}
	}

	_, err := Parse([]byte("writer:\n  flushDelay: 2\n"))
	requireProblems(t, err, "writer.flushDelay")
	if !strings.Contains(err.Error(), "needs a unit") {
		t.Errorf("error %q", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		keys   []string
	}{
		{"defaults", func(c *Config) {}, nil},

		// etcd
		{"no endpoints", func(c *Config) { c.Etcd.Endpoints = nil }, []string{"etcd.endpoints"}},
		{"empty endpoint", func(c *Config) { c.Etcd.Endpoints = []string{"a:1", ""} }, []string{"etcd.endpoints[1]"}},
		{"endpoint without port", func(c *Config) { c.Etcd.Endpoints = []string{"localhost"} }, []string{"etcd.endpoints[0]"}},
		{"endpoint bad port", func(c *Config) { c.Etcd.Endpoints = []string{"localhost:http"} }, []string{"etcd.endpoints[0]"}},
		{"endpoint bad scheme", func(c *Config) { c.Etcd.Endpoints = []string{"grpc://a:1"} }, []string{"etcd.endpoints[0]"}},
		{"endpoint forms", func(c *Config) {
			c.Etcd.Endpoints = []string{"a:1", "http://b:2", "[::1]:2379", "unix://sock"}
		}, nil},
		{"https without tls", func(c *Config) { c.Etcd.Endpoints = []string{"https://a:1"} }, []string{"etcd.endpoints[0]"}},
		{"http with tls", func(c *Config) {
			c.Etcd.TLS.Enabled = true
			c.Etcd.Endpoints = []string{"https://a:1", "http://b:2"}
		}, []string{"etcd.endpoints[1]"}},
		{"empty etcd root", func(c *Config) { c.Etcd.RootPath = "" }, []string{"etcd.rootPath"}},
		{"etcd root slash", func(c *Config) { c.Etcd.RootPath = "/wp" }, []string{"etcd.rootPath"}},
		{"etcd root nested", func(c *Config) { c.Etcd.RootPath = "by-dev/wp" }, nil},
		{"etcd root empty segment", func(c *Config) { c.Etcd.RootPath = "a//b" }, []string{"etcd.rootPath"}},
		{"zero dial timeout", func(c *Config) { c.Etcd.DialTimeout = 0 }, []string{"etcd.dialTimeout"}},
		{"negative request timeout", func(c *Config) { c.Etcd.RequestTimeout = -time.Second }, []string{"etcd.requestTimeout"}},
		{"password without user", func(c *Config) { c.Etcd.Password = "pw" }, []string{"etcd.password"}},
		{"user without password", func(c *Config) { c.Etcd.Username = "root" }, nil},
		{"tls files while disabled", func(c *Config) {
			c.Etcd.TLS = EtcdTLS{CAFile: "ca", CertFile: "c", KeyFile: "k", ServerName: "s", InsecureSkipVerify: true}
		}, []string{"etcd.tls.caFile", "etcd.tls.certFile", "etcd.tls.keyFile", "etcd.tls.serverName", "etcd.tls.insecureSkipVerify"}},
		{"tls enabled with files", func(c *Config) {
			c.Etcd.TLS = EtcdTLS{Enabled: true, CAFile: "ca", CertFile: "c", KeyFile: "k", ServerName: "s"}
		}, nil},
		{"cert without key", func(c *Config) { c.Etcd.TLS = EtcdTLS{Enabled: true, CertFile: "c"} }, []string{"etcd.tls.keyFile"}},
		{"key without cert", func(c *Config) { c.Etcd.TLS = EtcdTLS{Enabled: true, KeyFile: "k"} }, []string{"etcd.tls.certFile"}},

		// storage
		{"unknown type", func(c *Config) { c.Storage.Type = "gcs" }, []string{"storage.type"}},
		{"minio without endpoint", func(c *Config) { c.Storage.Endpoint = "" }, []string{"storage.endpoint"}},
		{"s3 without endpoint", func(c *Config) { c.Storage.Type = StorageS3; c.Storage.Endpoint = "" }, nil},
		{"endpoint with scheme", func(c *Config) { c.Storage.Endpoint = "http://localhost:9000" }, []string{"storage.endpoint"}},
		{"endpoint with path", func(c *Config) { c.Storage.Endpoint = "localhost:9000/x" }, []string{"storage.endpoint"}},
		{"endpoint bad port", func(c *Config) { c.Storage.Endpoint = "localhost:99999" }, []string{"storage.endpoint"}},
		{"endpoint without port", func(c *Config) { c.Storage.Endpoint = "s3.amazonaws.com" }, nil},
		{"no bucket", func(c *Config) { c.Storage.Bucket = "" }, []string{"storage.bucket"}},
		{"bad bucket", func(c *Config) { c.Storage.Bucket = "My_Bucket" }, []string{"storage.bucket"}},
		{"short bucket", func(c *Config) { c.Storage.Bucket = "ab" }, []string{"storage.bucket"}},
		{"ip bucket", func(c *Config) { c.Storage.Bucket = "10.0.0.1" }, []string{"storage.bucket"}},
		{"object root slash", func(c *Config) { c.Storage.RootPath = "wp/" }, []string{"storage.rootPath"}},
		{"object root empty", func(c *Config) { c.Storage.RootPath = "" }, nil},
		{"s3 without region", func(c *Config) { c.Storage.Type = StorageS3; c.Storage.Region = "" }, []string{"storage.region"}},
		{"minio without region", func(c *Config) { c.Storage.Region = "" }, nil},
		{"access without secret", func(c *Config) { c.Storage.AccessKey = "ak" }, []string{"storage.secretKey"}},
		{"secret without access", func(c *Config) { c.Storage.SecretKey = "sk" }, []string{"storage.accessKey"}},
		{"ssl settings without ssl", func(c *Config) {
			c.Storage.TLS = StorageTLS{CAFile: "ca", InsecureSkipVerify: true}
		}, []string{"storage.tls.caFile", "storage.tls.insecureSkipVerify"}},
		{"ssl settings with ssl", func(c *Config) {
			c.Storage.UseSSL = true
			c.Storage.TLS = StorageTLS{CAFile: "ca", InsecureSkipVerify: true}
		}, nil},
		{"zero storage timeout", func(c *Config) { c.Storage.RequestTimeout = 0 }, []string{"storage.requestTimeout"}},
		{"unknown fencing", func(c *Config) { c.Storage.Fencing.ConditionalWrite = "maybe" }, []string{"storage.fencing.conditionalWrite"}},
		{"local needs directory", func(c *Config) { c.Storage.Type = StorageLocal; c.Storage.RootPath = "" }, []string{"storage.rootPath"}},
		{"local ignores object keys", func(c *Config) {
			c.Storage = StorageConfig{Type: StorageLocal, RootPath: "/var/lib/wp", RequestTimeout: time.Second,
				Endpoint: "http://x", AccessKey: "ak", TLS: StorageTLS{CAFile: "ca"},
				Fencing: Fencing{ConditionalWrite: ConditionalWriteRequired}}
		}, nil},

		// writer
		{"zero entry size", func(c *Config) { c.Writer.MaxEntryBytes = 0 }, []string{"writer.maxEntryBytes"}},
		{"negative block size", func(c *Config) { c.Writer.MaxBlockBytes = -1 }, []string{"writer.maxBlockBytes"}},
		{"zero budget", func(c *Config) { c.Writer.MemoryBudgetBytes = 0 }, []string{"writer.memoryBudgetBytes"}},
		{"block over budget", func(c *Config) {
			c.Writer.MaxBlockBytes = 100 * MiB
			c.Reader.MaxBufferBytes = 100 * MiB
			c.Retention.Compaction.TargetObjectBytes = 100 * MiB
		},
			[]string{"writer.maxBlockBytes"}},
		{"entry over budget", func(c *Config) { c.Writer.MaxEntryBytes = 128 * MiB; c.Reader.MaxBufferBytes = 128 * MiB },
			[]string{"writer.maxEntryBytes"}},
		{"entry above the block format's limit", func(c *Config) {
			c.Writer.MaxEntryBytes = 512 * MiB
			c.Writer.MemoryBudgetBytes = GiB
			c.Reader.MaxBufferBytes = GiB
		}, []string{"writer.maxEntryBytes"}},
		{"entry just above the block format's limit", func(c *Config) {
			c.Writer.MaxEntryBytes = MaxEntryBytesLimit + 1
			c.Writer.MaxBlockBytes = 1
			c.Writer.MemoryBudgetBytes = GiB
			c.Reader.MaxBufferBytes = GiB
		}, []string{"writer.maxEntryBytes"}},
		{"largest entry the format holds", func(c *Config) {
			c.Writer.MaxEntryBytes = MaxEntryBytesLimit
			c.Writer.MaxBlockBytes = 1
			c.Writer.MemoryBudgetBytes = GiB
			c.Reader.MaxBufferBytes = GiB
		}, nil},
		{"blocks that can outgrow the block format", func(c *Config) {
			c.Writer.MaxBlockBytes = 120 * MiB // 2 x 120MiB + 16MiB + 4 bytes
			c.Writer.MemoryBudgetBytes = GiB
			c.Reader.MaxBufferBytes = GiB
			c.Retention.Compaction.TargetObjectBytes = GiB
		}, []string{"writer.maxBlockBytes"}},
		{"largest blocks with the default entry size", func(c *Config) {
			c.Writer.MaxBlockBytes = 120*MiB - 1
			c.Writer.MemoryBudgetBytes = GiB
			c.Reader.MaxBufferBytes = GiB
			c.Retention.Compaction.TargetObjectBytes = GiB
		}, nil},
		{"negative flush delay", func(c *Config) { c.Writer.FlushDelay = -time.Millisecond }, []string{"writer.flushDelay"}},
		{"zero flush delay", func(c *Config) { c.Writer.FlushDelay = 0 }, nil},
		{"zero inflight", func(c *Config) { c.Writer.MaxInflightUploads = 0 }, []string{"writer.maxInflightUploads"}},
		{"unknown compression", func(c *Config) { c.Writer.Compression = "lz4" }, []string{"writer.compression"}},
		{"zstd", func(c *Config) { c.Writer.Compression = CompressionZstd }, nil},
		{"zero attempts", func(c *Config) { c.Writer.UploadRetry.MaxAttempts = 0 }, []string{"writer.uploadRetry.maxAttempts"}},
		{"zero initial backoff", func(c *Config) { c.Writer.UploadRetry.InitialBackoff = 0 }, []string{"writer.uploadRetry.initialBackoff"}},
		{"max backoff below initial", func(c *Config) { c.Writer.UploadRetry.MaxBackoff = time.Millisecond }, []string{"writer.uploadRetry.maxBackoff"}},
		{"zero total timeout", func(c *Config) { c.Writer.UploadRetry.TotalTimeout = 0 }, []string{"writer.uploadRetry.totalTimeout"}},
		{"zero roll bytes", func(c *Config) { c.Writer.RollMaxBytes = 0 }, []string{"writer.rollMaxBytes"}},
		{"zero roll age", func(c *Config) { c.Writer.RollMaxAge = 0 }, []string{"writer.rollMaxAge"}},
		{"zero roll blocks", func(c *Config) { c.Writer.RollMaxBlocks = 0 }, []string{"writer.rollMaxBlocks"}},
		{"negative local flush delay", func(c *Config) { c.Writer.LocalFlushDelay = -1 }, []string{"writer.localFlushDelay"}},

		// reader
		{"zero prefetch", func(c *Config) { c.Reader.PrefetchBlocks = 0 }, []string{"reader.prefetchBlocks"}},
		{"zero reader buffer", func(c *Config) { c.Reader.MaxBufferBytes = 0 }, []string{"reader.maxBufferBytes"}},
		{"reader buffer below entry", func(c *Config) { c.Reader.MaxBufferBytes = 8 * MiB }, []string{"reader.maxBufferBytes"}},
		{"zero tail backoff", func(c *Config) { c.Reader.TailBackoffMin = 0 }, []string{"reader.tailBackoffMin"}},
		{"tail max below min", func(c *Config) { c.Reader.TailBackoffMax = time.Millisecond }, []string{"reader.tailBackoffMax"}},

		// retention
		{"negative ttl", func(c *Config) { c.Retention.TTL = -time.Hour }, []string{"retention.ttl"}},
		{"zero ttl", func(c *Config) { c.Retention.TTL = 0 }, nil},
		{"zero gc interval", func(c *Config) { c.Retention.GCInterval = 0 }, []string{"retention.gcInterval"}},
		{"zero orphan grace", func(c *Config) { c.Retention.OrphanGracePeriod = 0 }, []string{"retention.orphanGracePeriod"}},
		{"orphan grace below upload timeout", func(c *Config) { c.Retention.OrphanGracePeriod = 30 * time.Second }, []string{"retention.orphanGracePeriod"}},
		{"zero compaction target", func(c *Config) { c.Retention.Compaction.TargetObjectBytes = 0 }, []string{"retention.compaction.targetObjectBytes"}},
		{"compaction target below block", func(c *Config) { c.Retention.Compaction.TargetObjectBytes = MiB }, []string{"retention.compaction.targetObjectBytes"}},
		{"one min block", func(c *Config) { c.Retention.Compaction.MinBlocks = 1 }, []string{"retention.compaction.minBlocks"}},
		{"zero old blocks grace", func(c *Config) { c.Retention.Compaction.OldBlocksGracePeriod = 0 }, []string{"retention.compaction.oldBlocksGracePeriod"}},
		{"short lease", func(c *Config) { c.Retention.ReaderLeaseTTL = 500 * time.Millisecond }, []string{"retention.readerLeaseTTL"}},
		{"fractional lease", func(c *Config) { c.Retention.ReaderLeaseTTL = 1500 * time.Millisecond }, []string{"retention.readerLeaseTTL"}},

		// log, metrics
		{"unknown level", func(c *Config) { c.Log.Level = "trace" }, []string{"log.level"}},
		{"unknown format", func(c *Config) { c.Log.Format = "xml" }, []string{"log.format"}},
		{"metrics addr", func(c *Config) { c.Metrics.Addr = ":9091" }, nil},
		{"metrics port zero", func(c *Config) { c.Metrics.Addr = "127.0.0.1:0" }, nil},
		{"bad metrics addr", func(c *Config) { c.Metrics.Addr = "9091" }, []string{"metrics.addr"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			if len(tt.keys) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			requireProblems(t, err, tt.keys...)
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := Default()
	c.Storage.Endpoint = ""
	c.Writer.MaxBlockBytes = 100 * MiB
	c.Etcd.TLS.CAFile = "ca.pem"
	err := c.Validate()
	requireProblems(t, err, "etcd.tls.caFile", "storage.endpoint", "writer.maxBlockBytes",
		"reader.maxBufferBytes", "retention.compaction.targetObjectBytes")
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "invalid configuration, 5 problems") {
		t.Fatalf("want a heading and one line per problem, got:\n%s", err)
	}
	if !strings.Contains(err.Error(), "\n  writer.maxBlockBytes: 100MiB is larger than writer.memoryBudgetBytes (64MiB)") {
		t.Errorf("message %q", err)
	}
	// Each problem is reachable through the multi-error chain.
	var p Problem
	if !errors.As(err, &p) || p.Key != "etcd.tls.caFile" {
		t.Errorf("errors.As Problem = %+v", p)
	}
	// Wrapping keeps the sentinel.
	if !errors.Is(errors.Wrap(err, "start"), ErrInvalidConfig) {
		t.Errorf("wrapped error lost ErrInvalidConfig")
	}

	one := Default()
	one.Writer.RollMaxBlocks = 0
	if got, want := one.Validate().Error(), "invalid configuration: writer.rollMaxBlocks: must be at least 1, got 0"; got != want {
		t.Errorf("single problem: %q, want %q", got, want)
	}
}

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{"nothing set", nil, func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c, Default()) {
				t.Errorf("config changed")
			}
		}},
		{"empty values ignored", map[string]string{"WOODPECKER_STORAGE_BUCKET": "", "WOODPECKER_ETCD_ENDPOINTS": ""}, func(t *testing.T, c Config) {
			if c.Storage.Bucket != "woodpecker" || len(c.Etcd.Endpoints) != 1 {
				t.Errorf("empty variables changed values")
			}
		}},
		{"endpoints", map[string]string{"WOODPECKER_ETCD_ENDPOINTS": " a:1, b:2 ,,c:3"}, func(t *testing.T, c Config) {
			if !slices.Equal(c.Etcd.Endpoints, []string{"a:1", "b:2", "c:3"}) {
				t.Errorf("endpoints %q", c.Etcd.Endpoints)
			}
			if c.Source("etcd.endpoints") != "env:WOODPECKER_ETCD_ENDPOINTS" {
				t.Errorf("source %q", c.Source("etcd.endpoints"))
			}
		}},
		{"all", map[string]string{
			"WOODPECKER_ETCD_USERNAME":      "root",
			"WOODPECKER_ETCD_PASSWORD":      "etcd-pw",
			"WOODPECKER_STORAGE_TYPE":       "S3",
			"WOODPECKER_STORAGE_ENDPOINT":   "minio:9000",
			"WOODPECKER_STORAGE_BUCKET":     "wal",
			"WOODPECKER_STORAGE_ACCESS_KEY": "ak",
			"WOODPECKER_STORAGE_SECRET_KEY": "sk",
			"WOODPECKER_MODE":               "quorumBuffer",
		}, func(t *testing.T, c Config) {
			want := Default()
			want.Mode = ModeQuorumBuffer
			want.Etcd.Username, want.Etcd.Password = "root", "etcd-pw"
			want.Storage.Type, want.Storage.Endpoint, want.Storage.Bucket = StorageS3, "minio:9000", "wal"
			want.Storage.AccessKey, want.Storage.SecretKey = "ak", "sk"
			if d := diffConfig(want, c); len(d) > 0 {
				t.Errorf("values:\n%s", strings.Join(d, "\n"))
			}
			for _, o := range EnvOverrides {
				if o.Var == "WOODPECKER_ETCD_ENDPOINTS" {
					continue
				}
				if got := c.Source(o.Key); got != "env:"+o.Var {
					t.Errorf("Source(%q) = %q", o.Key, got)
				}
			}
			if c.Source("etcd.endpoints") != SourceDefault {
				t.Errorf("etcd.endpoints source %q", c.Source("etcd.endpoints"))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			before := c.Clone()
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			orig := c // shares Sources with c
			if err := c.ApplyEnv(lookup); err != nil {
				t.Fatalf("ApplyEnv: %v", err)
			}
			tt.check(t, c)
			if !reflect.DeepEqual(orig, before) {
				t.Errorf("ApplyEnv modified a copy's shared Sources or slices")
			}
		})
	}

	bad := []struct {
		name string
		env  map[string]string
		keys []string
		msg  string
	}{
		{"unknown type", map[string]string{"WOODPECKER_STORAGE_TYPE": "gcs"}, []string{"storage.type"},
			`storage.type: from WOODPECKER_STORAGE_TYPE: unknown value "gcs" (allowed: minio, s3, local)`},
		{"no endpoint", map[string]string{"WOODPECKER_ETCD_ENDPOINTS": " , "}, []string{"etcd.endpoints"},
			"etcd.endpoints: from WOODPECKER_ETCD_ENDPOINTS: no item"},
		{"two bad, one good", map[string]string{"WOODPECKER_STORAGE_TYPE": "gcs", "WOODPECKER_ETCD_ENDPOINTS": ",", "WOODPECKER_STORAGE_BUCKET": "b2"},
			[]string{"etcd.endpoints", "storage.type"}, "invalid configuration in environment"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			before := c.Clone()
			err := c.ApplyEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			requireProblems(t, err, tt.keys...)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if !reflect.DeepEqual(c, before) {
				t.Errorf("a failed ApplyEnv changed the configuration")
			}
		})
	}

	// Every override names a real key.
	for _, o := range EnvOverrides {
		if !slices.Contains(Keys(), o.Key) {
			t.Errorf("%s overrides unknown key %q", o.Var, o.Key)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wp.yaml")
	if err := os.WriteFile(path, []byte("storage:\n  type: local\n  rootPath: /data/wp\nwriter:\n  localFlushDelay: 1ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Storage.Type != StorageLocal || c.Storage.RootPath != "/data/wp" || c.Writer.LocalFlushDelay != time.Millisecond {
		t.Errorf("values %+v", c.Storage)
	}
	if got := c.Source("storage.rootPath"); got != "file:"+path {
		t.Errorf("source %q", got)
	}
	if got := c.Source("storage.bucket"); got != SourceDefault {
		t.Errorf("source %q", got)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}

	badPath := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badPath, []byte("storage:\n  type: gcs\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(badPath)
	requireProblems(t, err, "storage.type")
	if !strings.Contains(err.Error(), "invalid configuration in "+badPath+": storage.type: unknown value") {
		t.Errorf("error %q", err)
	}
}

func TestLoadWithEnv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wp.yaml")
	if err := os.WriteFile(path, []byte("storage:\n  accessKey: from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, o := range EnvOverrides {
		t.Setenv(o.Var, "")
	}
	t.Setenv("WOODPECKER_STORAGE_SECRET_KEY", "from-env")
	t.Setenv("WOODPECKER_STORAGE_ENDPOINT", "minio.internal:9000")

	c, err := LoadWithEnv(path)
	if err != nil {
		t.Fatalf("LoadWithEnv: %v", err)
	}
	if c.Storage.AccessKey != "from-file" || c.Storage.SecretKey != "from-env" || c.Storage.Endpoint != "minio.internal:9000" {
		t.Errorf("values %+v", c.Redacted().Storage)
	}
	wantSources := map[string]string{
		"storage.accessKey": "file:" + path,
		"storage.secretKey": "env:WOODPECKER_STORAGE_SECRET_KEY",
		"storage.endpoint":  "env:WOODPECKER_STORAGE_ENDPOINT",
		"storage.bucket":    SourceDefault,
	}
	for k, want := range wantSources {
		if got := c.Source(k); got != want {
			t.Errorf("Source(%q) = %q, want %q", k, got, want)
		}
	}

	// No file: defaults and environment; the secret key from the environment now
	// lacks its access key.
	_, err = LoadWithEnv("")
	requireProblems(t, err, "storage.accessKey")

	// The result is validated: the file's access key alone is fine with a secret
	// from the environment, but not without it.
	t.Setenv("WOODPECKER_STORAGE_SECRET_KEY", "")
	_, err = LoadWithEnv(path)
	requireProblems(t, err, "storage.secretKey")

	t.Setenv("WOODPECKER_STORAGE_TYPE", "gcs")
	_, err = LoadWithEnv(path)
	requireProblems(t, err, "storage.type")
}

func TestRedacted(t *testing.T) {
	c := Default()
	c.Etcd.Username, c.Etcd.Password = "root", "etcd-secret-pw"
	c.Storage.AccessKey, c.Storage.SecretKey = "access-id", "storage-secret-key"

	r := c.Redacted()
	if r.Etcd.Password != RedactedValue || r.Storage.SecretKey != RedactedValue {
		t.Errorf("secrets not hidden: %q %q", r.Etcd.Password, r.Storage.SecretKey)
	}
	if r.Etcd.Username != "root" || r.Storage.AccessKey != "access-id" {
		t.Errorf("non-secrets changed: %q %q", r.Etcd.Username, r.Storage.AccessKey)
	}
	if c.Etcd.Password != "etcd-secret-pw" || c.Storage.SecretKey != "storage-secret-key" {
		t.Errorf("Redacted modified the original")
	}
	r.Etcd.Endpoints[0] = "changed:1"
	if c.Etcd.Endpoints[0] == "changed:1" {
		t.Errorf("Redacted shares the endpoints slice")
	}
	if empty := Default().Redacted(); empty.Etcd.Password != "" || empty.Storage.SecretKey != "" {
		t.Errorf("an unset secret should stay empty")
	}

	for _, shown := range []string{
		c.String(), fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%v", &c), fmt.Sprintf("%#v", c),
		string(c.Redacted().Render(true)),
	} {
		if strings.Contains(shown, "etcd-secret-pw") || strings.Contains(shown, "storage-secret-key") {
			t.Errorf("printed configuration shows a secret:\n%s", shown)
		}
		if !strings.Contains(shown, RedactedValue) {
			t.Errorf("printed configuration does not show that secrets are set:\n%s", shown)
		}
	}

	// The secret-tagged fields are exactly the known secrets.
	var secrets []string
	var walk func(rt reflect.Type, path string)
	walk = func(rt reflect.Type, path string) {
		for _, f := range fieldsOf(rt) {
			sf := rt.Field(f.index)
			if sf.Type.Kind() == reflect.Struct {
				walk(sf.Type, joinKey(path, f.key))
			} else if sf.Tag.Get("secret") == "true" {
				secrets = append(secrets, joinKey(path, f.key))
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	if want := []string{"etcd.password", "storage.secretKey"}; !slices.Equal(secrets, want) {
		t.Errorf("secret fields %q, want %q", secrets, want)
	}
}

func TestRenderRoundTrip(t *testing.T) {
	c := Default()
	c.Etcd.Endpoints = []string{"https://e1:2379", "https://e2:2379"}
	c.Etcd.TLS = EtcdTLS{Enabled: true, CAFile: "/ca.pem", ServerName: "etcd"}
	c.Storage.Type = StorageS3
	c.Storage.SecretKey, c.Storage.AccessKey = "123", "0123"
	c.Writer.MaxBlockBytes = 1500
	c.Writer.FlushDelay = 1500 * time.Microsecond
	c.Writer.Compression = CompressionZstd
	c.Retention.TTL = 7 * 24 * time.Hour
	c.Retention.GCEnabled = true
	c.Log.Format = LogJSON
	c.Metrics.Addr = ":9091"

	for _, withSources := range []bool{false, true} {
		text := c.Render(withSources)
		back, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(Render(%v)): %v\n%s", withSources, err, text)
		}
		if d := diffConfig(c, back); len(d) > 0 {
			t.Errorf("round trip (sources %v) changed:\n%s\n%s", withSources, strings.Join(d, "\n"), text)
		}
	}

	// yaml.Marshal uses MarshalYAML; yaml.Unmarshal into a Config embedded in a
	// larger document uses UnmarshalYAML, with keys relative to the section.
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "maxBlockBytes: 1500\n") || !strings.Contains(string(out), "ttl: 168h\n") {
		t.Errorf("marshalled:\n%s", out)
	}
	var outer struct {
		MQ  string `yaml:"mq"`
		WAL Config `yaml:"woodpecker"`
	}
	outer.WAL = Default()
	if err := yaml.Unmarshal([]byte("mq: woodpecker\nwoodpecker:\n  storage:\n    bucket: inner\n"), &outer); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if outer.WAL.Storage.Bucket != "inner" || outer.WAL.Storage.Endpoint != "localhost:9000" || outer.WAL.Source("storage.bucket") != "yaml" {
		t.Errorf("embedded section: %+v", outer.WAL.Storage)
	}
	err = yaml.Unmarshal([]byte("woodpecker:\n  storage:\n    bucket2: x\n"), &outer)
	requireProblems(t, err, "storage.bucket2")
}

func TestDefaultIsFresh(t *testing.T) {
	a := Default()
	a.Etcd.Endpoints[0] = "x:1"
	a.Sources["etcd.endpoints"] = "changed"
	b := Default()
	if b.Etcd.Endpoints[0] != "localhost:2379" || b.Source("etcd.endpoints") != SourceDefault {
		t.Errorf("Default shares state between calls")
	}
}
