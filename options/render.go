package options

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// RedactedValue replaces a secret in Redacted.
const RedactedValue = "<redacted>"

// Clone returns a deep copy of c: the copy shares no slice or map with c.
func (c Config) Clone() Config {
	out := c
	out.Etcd.Endpoints = slices.Clone(c.Etcd.Endpoints)
	out.Sources = maps.Clone(c.Sources)
	return out
}

// Redacted returns a deep copy of c in which every secret (the fields tagged
// secret:"true": etcd.password and storage.secretKey, and a password written
// into an endpoint URL) that is set reads RedactedValue. An empty secret stays empty, so that a printout shows whether it
// is set. Use it for anything printed or logged.
func (c Config) Redacted() Config {
	out := c.Clone()
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for _, f := range fieldsOf(t) {
			fv := v.Field(f.index)
			if fv.Kind() == reflect.Struct {
				walk(fv)
				continue
			}
			if t.Field(f.index).Tag.Get("secret") == "true" && fv.String() != "" {
				fv.SetString(RedactedValue)
			}
		}
	}
	walk(reflect.ValueOf(&out).Elem())
	// Validation refuses credentials inside endpoints, but an invalid
	// configuration may still be printed.
	for i, ep := range out.Etcd.Endpoints {
		out.Etcd.Endpoints[i] = RedactEndpoint(ep)
	}
	out.Storage.Endpoint = RedactEndpoint(out.Storage.Endpoint)
	return out
}

// String returns the redacted configuration as YAML, so that printing or logging
// a Config never shows a secret.
func (c Config) String() string {
	return string(c.Redacted().Render(false))
}

// GoString returns the redacted configuration in Go syntax, so that %#v never
// shows a secret either.
func (c Config) GoString() string {
	type plain Config // drops the methods, so Sprintf does not recurse
	return fmt.Sprintf("%#v", plain(c.Redacted()))
}

// MarshalYAML renders the configuration as a YAML mapping in the layout of the
// default file, with sizes as "4MiB" and durations as "2ms", so that Parse reads
// it back to an equal Config. Secrets are included: marshal Redacted() for
// anything shown to people.
func (c Config) MarshalYAML() (any, error) {
	return c.node(false), nil
}

// Render returns the configuration as YAML text (see MarshalYAML). With
// withSources, each key carries a line comment saying where its value came from
// ("# env:WOODPECKER_STORAGE_ENDPOINT"), for `config print`. Secrets are
// included: render Redacted() for anything shown to people.
func (c Config) Render(withSources bool) []byte {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	// Encoding a node tree built from plain values cannot fail.
	_ = enc.Encode(c.node(withSources))
	_ = enc.Close()
	return buf.Bytes()
}

// node builds the YAML node tree of c.
func (c Config) node(withSources bool) *yaml.Node {
	var build func(v reflect.Value, path string) *yaml.Node
	build = func(v reflect.Value, path string) *yaml.Node {
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, f := range fieldsOf(v.Type()) {
			key := joinKey(path, f.key)
			fv := v.Field(f.index)
			k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.key}
			var val *yaml.Node
			if fv.Kind() == reflect.Struct {
				val = build(fv, key)
			} else {
				val = scalarNode(fv)
				if withSources {
					val.LineComment = c.Source(key)
				}
			}
			m.Content = append(m.Content, k, val)
		}
		return m
	}
	return build(reflect.ValueOf(c), "")
}

// scalarNode renders one non-struct value.
func scalarNode(v reflect.Value) *yaml.Node {
	t := v.Type()
	scalar := func(tag, s string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: s}
	}
	switch {
	case t == durationType:
		return scalar("!!str", FormatDuration(time.Duration(v.Int())))
	case t.Kind() == reflect.Int64:
		s := FormatSize(v.Int())
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			return scalar("!!int", s) // no unit: a plain number of bytes
		}
		return scalar("!!str", s)
	case t.Kind() == reflect.Int:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10))
	case t.Kind() == reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool()))
	case t.Kind() == reflect.Slice:
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		for i := range v.Len() {
			seq.Content = append(seq.Content, scalar("!!str", v.Index(i).String()))
		}
		return seq
	default:
		return scalar("!!str", v.String())
	}
}
