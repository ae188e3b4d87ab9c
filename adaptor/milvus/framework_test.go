//go:build test

package milvus

import (
	"testing"

	mwal "github.com/milvus-io/milvus/pkg/v2/streaming/walimpls"
)

// TestMilvusFramework runs Milvus's own walimpls test framework (three
// channels, terms 1 to 3, 1000 messages per term, 100 with shared objects)
// against the builder registered in Milvus's registry, on each backend
// (for shared objects, a builder on the configuration of the same
// parameters; see backend.builder). Milvus builds that framework only with
// -tags test.
func TestMilvusFramework(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			setParams(t, b.params(t))
			mwal.NewWALImplsTestFramework(t, b.perTerm(), b.builder(t)).Run()
		})
	}
}
