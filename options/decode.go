package options

import (
	"bytes"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"gopkg.in/yaml.v3"
)

// enum is implemented by the string types whose values are a closed set.
type enum interface {
	allowedValues() []string
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	enumType     = reflect.TypeFor[enum]()
)

// field is one keyed field of a configuration struct.
type field struct {
	key   string
	index int
}

// fieldsOf returns the keyed fields of struct type t, in declaration order.
// Fields without a yaml key, or tagged yaml:"-", are skipped.
func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || key == "" || key == "-" {
			continue
		}
		fs = append(fs, field{key: key, index: i})
	}
	return fs
}

// joinKey appends key to the path prefix.
func joinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// Keys returns the path of every key of Config, in the order of the YAML file:
// "etcd.endpoints", "etcd.rootPath", ..., "metrics.addr". Sections are not
// listed, only the keys that hold values.
func Keys() []string {
	var keys []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for _, f := range fieldsOf(t) {
			ft := t.Field(f.index).Type
			path := joinKey(prefix, f.key)
			if ft.Kind() == reflect.Struct {
				walk(ft, path)
				continue
			}
			keys = append(keys, path)
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return keys
}

// Parse returns Default overlaid with the YAML document in data. A key absent from
// data keeps its default; an empty document gives Default. Unknown keys, values of
// the wrong type, unknown enumerated values and malformed sizes or durations are
// errors naming their key path; all of them are reported at once, in a
// *ConfigError that matches ErrInvalidConfig. Parse does not call Validate.
// Sources records "yaml" for the keys data sets (Load records the file's path).
func Parse(data []byte) (Config, error) {
	return parse(Default(), data, "yaml", "")
}

// Load reads the YAML file at path and returns Default overlaid with it, as Parse
// does. Sources records "file:<path>" for the keys the file sets. An error reading
// the file wraps the underlying error (errors.Is(err, fs.ErrNotExist) works); an
// error in its content matches ErrInvalidConfig. Load does not call Validate.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, errors.Wrapf(err, "read configuration file %q", path)
	}
	return parse(Default(), data, "file:"+path, path)
}

// LoadWithEnv is the usual way to build a configuration: Default, overlaid with
// the file at path (none when path is ""), overlaid with the WOODPECKER_*
// environment variables (see EnvOverrides), then validated. The result is ready
// to use.
func LoadWithEnv(path string) (Config, error) {
	cfg := Default()
	if path != "" {
		var err error
		if cfg, err = Load(path); err != nil {
			return Config{}, err
		}
	}
	if err := cfg.ApplyEnv(os.LookupEnv); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// UnmarshalYAML overlays the configuration with a YAML mapping, with the rules of
// Parse, so that a Config can be a section of a larger YAML document. It starts
// from the receiver's current values (use Default() for the defaults). Sources
// records "yaml" for the keys it sets.
func (c *Config) UnmarshalYAML(node *yaml.Node) error {
	next, err := overlay(*c, node, "yaml", "")
	if err != nil {
		return err
	}
	*c = next
	return nil
}

// parse overlays base with the YAML document in data. source labels the keys set
// in Sources; origin names the file in errors.
func parse(base Config, data []byte, source, origin string) (Config, error) {
	var ps problems
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return base, nil
	case err != nil:
		ps.add("", 0, "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return Config{}, ps.err(origin)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		ps.add("", extra.Line, "more than one YAML document; a configuration is one document")
		return Config{}, ps.err(origin)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return base, nil
		}
		root = root.Content[0]
	}
	return overlay(base, root, source, origin)
}

// overlay decodes node, which must be a mapping (or null), over a copy of base.
func overlay(base Config, node *yaml.Node, source, origin string) (Config, error) {
	d := decoder{source: source, set: map[string]string{}}
	cfg := base.Clone()
	d.value(node, reflect.ValueOf(&cfg).Elem(), "")
	if err := d.ps.err(origin); err != nil {
		return Config{}, err
	}
	if len(d.set) > 0 {
		sources := maps.Clone(cfg.Sources)
		if sources == nil {
			sources = map[string]string{}
		}
		maps.Copy(sources, d.set)
		cfg.Sources = sources
	}
	return cfg, nil
}

// decoder walks a YAML node tree alongside a configuration value.
type decoder struct {
	source string // Sources label of the keys set
	ps     problems
	set    map[string]string // key path -> origin, for each key set
}

// value decodes node into v, whose key path is path ("" for the root).
func (d *decoder) value(node *yaml.Node, v reflect.Value, path string) {
	for node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	isNull := node.Kind == yaml.ScalarNode && node.Tag == "!!null"
	t := v.Type()

	switch {
	case t.Kind() == reflect.Struct:
		if isNull {
			return // an empty section keeps its values
		}
		d.mapping(node, v, path)
		return
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		d.stringList(node, v, path, isNull)
		d.set[path] = d.source
		return
	}

	if node.Kind != yaml.ScalarNode {
		d.ps.add(path, node.Line, "expected %s, got %s", describeType(t), describeNode(node))
		return
	}
	if isNull && t.Kind() == reflect.String && !t.Implements(enumType) {
		v.SetString("")
		d.set[path] = d.source
		return
	}
	if isNull {
		d.ps.add(path, node.Line, "has no value; expected %s", describeType(t))
		return
	}
	if msg := setScalar(v, node); msg != "" {
		d.ps.add(path, node.Line, "%s", msg)
		return
	}
	d.set[path] = d.source
}

// mapping decodes a YAML mapping into struct v.
func (d *decoder) mapping(node *yaml.Node, v reflect.Value, path string) {
	if node.Kind != yaml.MappingNode {
		what := "a section"
		if path == "" {
			what = "a mapping of sections (etcd, storage, ...)"
		}
		d.ps.add(path, node.Line, "expected %s, got %s", what, describeNode(node))
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, val := node.Content[i], node.Content[i+1]
		keyPath := joinKey(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			d.ps.add(path, k.Line, "a key must be a plain name, got %s", describeNode(k))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.ps.add(keyPath, k.Line, "duplicate key (first at line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		idx := slices.IndexFunc(fields, func(f field) bool { return f.key == k.Value })
		if idx < 0 {
			d.ps.add(keyPath, k.Line, "unknown key%s (known keys here: %s)", suggest(k.Value, fields), knownKeys(fields))
			continue
		}
		d.value(val, v.Field(fields[idx].index), keyPath)
	}
}

// stringList decodes a sequence of scalars into a []string.
func (d *decoder) stringList(node *yaml.Node, v reflect.Value, path string, isNull bool) {
	if isNull {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if node.Kind != yaml.SequenceNode {
		d.ps.add(path, node.Line, "expected a list of strings, got %s", describeNode(node))
		return
	}
	out := reflect.MakeSlice(v.Type(), 0, len(node.Content))
	ok := true
	for i, item := range node.Content {
		for item.Kind == yaml.AliasNode && item.Alias != nil {
			item = item.Alias
		}
		if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
			d.ps.add(path+"["+strconv.Itoa(i)+"]", item.Line, "expected a string, got %s", describeNode(item))
			ok = false
			continue
		}
		out = reflect.Append(out, reflect.ValueOf(item.Value).Convert(v.Type().Elem()))
	}
	if ok {
		v.Set(out)
	}
}

// setScalar stores the scalar node in v; on failure it returns a message and
// leaves v unchanged.
func setScalar(v reflect.Value, node *yaml.Node) string {
	t := v.Type()
	text := node.Value
	switch {
	case t == durationType:
		if node.Tag == "!!int" || node.Tag == "!!float" {
			if n, err := strconv.ParseFloat(text, 64); err == nil && n == 0 {
				v.SetInt(0)
				return ""
			}
			return strconv.Quote(text) + " is not a duration: a duration needs a unit (" + durationHint + ")"
		}
		if node.Tag != "!!str" {
			return "expected a duration, got " + describeNode(node)
		}
		dur, err := ParseDuration(text)
		if err != nil {
			return err.Error()
		}
		v.SetInt(int64(dur))
	case t.Kind() == reflect.Int64: // sizes
		if node.Tag != "!!str" && node.Tag != "!!int" {
			if node.Tag == "!!float" {
				return strconv.Quote(text) + " is not a size: a plain number is a number of bytes and must be whole"
			}
			return "expected a size, got " + describeNode(node)
		}
		var n int64
		var err error
		if node.Tag == "!!int" {
			err = node.Decode(&n)
		} else {
			n, err = ParseSize(text)
		}
		if err != nil {
			return err.Error()
		}
		v.SetInt(n)
	case t.Kind() == reflect.Int: // counts
		var n int
		if node.Tag != "!!int" || node.Decode(&n) != nil {
			return "expected an integer, got " + describeNode(node)
		}
		v.SetInt(int64(n))
	case t.Kind() == reflect.Bool:
		var b bool
		if node.Tag != "!!bool" || node.Decode(&b) != nil {
			return "expected true or false, got " + describeNode(node)
		}
		v.SetBool(b)
	case t.Kind() == reflect.String && t.Implements(enumType):
		allowed := reflect.Zero(t).Interface().(enum).allowedValues()
		for _, a := range allowed {
			if strings.EqualFold(a, text) {
				v.SetString(a)
				return ""
			}
		}
		return "unknown value " + strconv.Quote(text) + " (allowed: " + strings.Join(allowed, ", ") + ")"
	case t.Kind() == reflect.String:
		// Any scalar is taken as written: `password: 0123` is the string "0123".
		v.SetString(text)
	default:
		return "internal error: no decoder for " + t.String()
	}
	return ""
}

// describeType names what a value of type t is written as, for messages.
func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration"
	case t.Kind() == reflect.Int64:
		return "a size"
	case t.Kind() == reflect.Int:
		return "an integer"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.String && t.Implements(enumType):
		return "one of " + strings.Join(reflect.Zero(t).Interface().(enum).allowedValues(), ", ")
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Slice:
		return "a list of strings"
	case t.Kind() == reflect.Struct:
		return "a section"
	}
	return t.String()
}

// describeNode names what a YAML node is, for messages.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "no value"
		case "!!str":
			return "the string " + strconv.Quote(n.Value)
		case "!!int":
			return "the integer " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return strconv.Quote(n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a YAML node of kind " + strconv.Itoa(int(n.Kind))
}

func knownKeys(fields []field) string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return strings.Join(keys, ", ")
}

// suggest returns ` (did you mean "x"?)` when a known key differs from key only
// in letter case or by a few edits (one per four letters, at least one).
func suggest(key string, fields []field) string {
	best, bestDist := "", max(1, len(key)/4)+1
	for _, f := range fields {
		dist := editDistance(strings.ToLower(key), strings.ToLower(f.key))
		if dist < bestDist {
			best, bestDist = f.key, dist
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + strconv.Quote(best) + "?)"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
