package configs_test

import (
	"bytes"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/woodpecker-wal/woodpecker/configs"
)

// TestDefaultYAMLShape checks that the embedded file is one YAML mapping with the
// documented sections, in order (mode is the one top-level scalar). Package options proves that its values equal the
// defaults in code.
func TestDefaultYAMLShape(t *testing.T) {
	if bytes.Contains(configs.DefaultYAML, []byte("\t")) {
		t.Errorf("woodpecker.yaml contains a tab")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(configs.DefaultYAML, &doc); err != nil {
		t.Fatalf("woodpecker.yaml is not valid YAML: %v", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("woodpecker.yaml is not one mapping")
	}
	var sections []string
	root := doc.Content[0]
	for i := 0; i < len(root.Content); i += 2 {
		sections = append(sections, root.Content[i].Value)
		if root.Content[i].Value != "mode" && root.Content[i+1].Kind != yaml.MappingNode {
			t.Errorf("section %q is not a mapping", root.Content[i].Value)
		}
	}
	want := []string{"etcd", "storage", "writer", "reader", "retention", "log", "metrics", "mode", "quorum"}
	if !slices.Equal(sections, want) {
		t.Errorf("sections %q, want %q", sections, want)
	}
}
