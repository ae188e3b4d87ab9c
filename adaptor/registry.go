package adaptor

import (
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/errors"
	"gopkg.in/yaml.v3"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/walimpls"
)

// MQTypeWoodpecker is the mq.type that selects Woodpecker. Its settings are
// the top-level "woodpecker" section, in the format of configs/woodpecker.yaml:
//
//	mq:
//	  type: woodpecker
//	woodpecker:
//	  etcd:
//	    endpoints: ["etcd-0:2379"]
//	  storage:
//	    type: minio
//	    endpoint: "minio:9000"
const MQTypeWoodpecker = "woodpecker"

// ErrUnknownMQType: the configuration's mq.type names no registered
// implementation. The message lists the registered ones.
var ErrUnknownMQType = errors.New("unknown mq.type")

// Factory builds the OpenerBuilder of one mq type from the top-level
// section named after the type (nil when the document has none). env looks
// up environment overrides; nil means none. A Factory must not start
// connections: Build does.
type Factory func(section *yaml.Node, env func(string) (string, bool)) (walimpls.OpenerBuilder, error)

var registry struct {
	mu        sync.RWMutex
	factories map[string]Factory
}

func init() { Register(MQTypeWoodpecker, woodpeckerFactory) }

// Register makes mqType (lower case, as written in mq.type) select f. It is
// meant for init functions: an empty or upper-case name, a nil factory, or
// a name registered twice is a programming error and panics. Safe for
// concurrent use.
func Register(mqType string, f Factory) {
	if mqType == "" || mqType != strings.ToLower(mqType) || f == nil {
		panic("adaptor: Register needs a lower-case mq type and a factory, got " + mqType)
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.factories == nil {
		registry.factories = map[string]Factory{}
	}
	if _, dup := registry.factories[mqType]; dup {
		panic("adaptor: mq type registered twice: " + mqType)
	}
	registry.factories[mqType] = f
}

// RegisteredTypes returns the registered mq types, sorted.
func RegisteredTypes() []string {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	types := make([]string, 0, len(registry.factories))
	for t := range registry.factories {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

// NewOpenerBuilder returns the OpenerBuilder of mqType (case-insensitive)
// configured by section; see Factory. An unregistered type is an error
// matching ErrUnknownMQType that lists the registered ones.
func NewOpenerBuilder(mqType string, section *yaml.Node, env func(string) (string, bool)) (walimpls.OpenerBuilder, error) {
	key := strings.ToLower(strings.TrimSpace(mqType))
	registry.mu.RLock()
	f := registry.factories[key]
	registry.mu.RUnlock()
	if f == nil {
		return nil, errors.Wrapf(ErrUnknownMQType, "mq.type %q is not one of the registered types %s; "+
			"import the package that registers it, or fix mq.type", mqType, strings.Join(RegisteredTypes(), ", "))
	}
	b, err := f(section, env)
	if err != nil {
		return nil, errors.Wrapf(err, "configure mq.type %s from the %q section", key, key)
	}
	return b, nil
}

// FromYAML reads mq.type from a YAML document and returns the
// OpenerBuilder of that type, configured by the top-level section named
// after it. Other keys of the document are ignored, so this can read a
// database's whole configuration file. Environment variables are not
// consulted. A document that is not a mapping, or lacks mq.type, is an
// error matching options.ErrInvalidConfig.
func FromYAML(data []byte) (walimpls.OpenerBuilder, error) {
	return fromYAML(data, "", nil)
}

// LoadFile is FromYAML on the file at path, with the environment overrides
// of the chosen type applied (for Woodpecker, the WOODPECKER_* variables of
// configs/woodpecker.yaml).
func LoadFile(path string) (walimpls.OpenerBuilder, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.Wrapf(err, "read configuration file %q", path)
	}
	return fromYAML(data, path, os.LookupEnv)
}

func fromYAML(data []byte, origin string, env func(string) (string, bool)) (walimpls.OpenerBuilder, error) {
	where := "configuration"
	if origin != "" {
		where = "configuration file " + origin
	}
	invalid := func(format string, args ...any) error {
		return walerr.Mark(errors.Newf("%s: "+format, append([]any{where}, args...)...), options.ErrInvalidConfig)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, invalid("not valid YAML: %v", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, invalid("empty; set mq.type (one of %s)", strings.Join(RegisteredTypes(), ", "))
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, invalid("line %d: the document must be a mapping with an mq section", root.Line)
	}
	mq := lookup(root, "mq")
	if mq == nil {
		return nil, invalid("mq.type is not set; set it to one of %s", strings.Join(RegisteredTypes(), ", "))
	}
	if mq.Kind != yaml.MappingNode {
		return nil, invalid("line %d: mq must be a mapping", mq.Line)
	}
	typ := lookup(mq, "type")
	if typ == nil || typ.Kind != yaml.ScalarNode || typ.Tag != "!!str" || typ.Value == "" {
		line := mq.Line
		if typ != nil {
			line = typ.Line
		}
		return nil, invalid("line %d: mq.type must be a non-empty string, one of %s", line, strings.Join(RegisteredTypes(), ", "))
	}
	b, err := NewOpenerBuilder(typ.Value, lookup(root, strings.ToLower(strings.TrimSpace(typ.Value))), env)
	if err != nil {
		return nil, errors.Wrapf(err, "%s, line %d", where, typ.Line)
	}
	return b, nil
}

// lookup returns the value of key in mapping m, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// woodpeckerFactory builds a Builder from the woodpecker section: defaults,
// overlaid with the section, then the environment, then validated.
func woodpeckerFactory(section *yaml.Node, env func(string) (string, bool)) (walimpls.OpenerBuilder, error) {
	cfg := options.Default()
	if section != nil {
		if err := cfg.UnmarshalYAML(section); err != nil {
			return nil, err
		}
	}
	if env != nil {
		if err := cfg.ApplyEnv(env); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return NewBuilder(cfg), nil
}
