package options

import (
	"maps"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// EnvOverride binds an environment variable to the key it overrides.
type EnvOverride struct {
	// Var is the environment variable, such as "WOODPECKER_STORAGE_SECRET_KEY".
	Var string
	// Key is the key path it sets, such as "storage.secretKey".
	Key string
}

// EnvOverrides lists the environment variables ApplyEnv reads, in the order it
// applies them. WOODPECKER_ETCD_ENDPOINTS is a comma-separated list. Callers must
// not modify it.
var EnvOverrides = []EnvOverride{
	{Var: "WOODPECKER_MODE", Key: "mode"},
	{Var: "WOODPECKER_ETCD_ENDPOINTS", Key: "etcd.endpoints"},
	{Var: "WOODPECKER_ETCD_USERNAME", Key: "etcd.username"},
	{Var: "WOODPECKER_ETCD_PASSWORD", Key: "etcd.password"},
	{Var: "WOODPECKER_STORAGE_TYPE", Key: "storage.type"},
	{Var: "WOODPECKER_STORAGE_ENDPOINT", Key: "storage.endpoint"},
	{Var: "WOODPECKER_STORAGE_BUCKET", Key: "storage.bucket"},
	{Var: "WOODPECKER_STORAGE_ACCESS_KEY", Key: "storage.accessKey"},
	{Var: "WOODPECKER_STORAGE_SECRET_KEY", Key: "storage.secretKey"},
}

// ApplyEnv overrides keys with the environment variables of EnvOverrides, read
// through lookup (os.LookupEnv in production, a fake in tests). A variable that is
// unset or empty changes nothing. Sources records "env:<VARIABLE>" for each key
// set. A value that cannot be used (an unknown storage type, an endpoint list with
// no endpoint) is an error that names the variable and the key and matches
// ErrInvalidConfig; the configuration is then left unchanged. ApplyEnv does not
// call Validate.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	next := c.Clone()
	var ps problems
	set := map[string]string{}
	for _, o := range EnvOverrides {
		raw, ok := lookup(o.Var)
		if !ok || raw == "" {
			continue
		}
		v, found := fieldByPath(reflect.ValueOf(&next).Elem(), o.Key)
		if !found {
			ps.add(o.Key, 0, "internal error: %s names no key", o.Var)
			continue
		}
		var msg string
		if v.Kind() == reflect.Slice {
			msg = setList(v, raw)
		} else {
			msg = setScalar(v, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: raw})
		}
		if msg != "" {
			ps.add(o.Key, 0, "from %s: %s", o.Var, msg)
			continue
		}
		set[o.Key] = "env:" + o.Var
	}
	if err := ps.err("environment"); err != nil {
		return err
	}
	if len(set) > 0 {
		sources := maps.Clone(next.Sources)
		if sources == nil {
			sources = map[string]string{}
		}
		maps.Copy(sources, set)
		next.Sources = sources
	}
	*c = next
	return nil
}

// setList stores a comma-separated list in the []string v, dropping blank items.
func setList(v reflect.Value, raw string) string {
	var items []string
	for item := range strings.SplitSeq(raw, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	if len(items) == 0 {
		return "no item in " + `"` + raw + `"` + " (write a comma-separated list)"
	}
	v.Set(reflect.ValueOf(items))
	return ""
}

// fieldByPath returns the field of the struct v at the dotted key path.
func fieldByPath(v reflect.Value, path string) (reflect.Value, bool) {
	for key := range strings.SplitSeq(path, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		found := false
		for _, f := range fieldsOf(v.Type()) {
			if f.key == key {
				v, found = v.Field(f.index), true
				break
			}
		}
		if !found {
			return reflect.Value{}, false
		}
	}
	return v, true
}
