//go:build test

package milvus

import (
	"testing"

	"github.com/milvus-io/milvus/pkg/v2/streaming/util/message"
	mwal "github.com/milvus-io/milvus/pkg/v2/streaming/walimpls"
	"github.com/milvus-io/milvus/pkg/v2/streaming/walimpls/registry"
)

// TestMilvusFramework runs Milvus's own walimpls test framework (three
// channels, terms 1 to 3, 1000 messages per term) against the builder
// registered in Milvus's registry, on MinIO + etcd and on a local
// directory + etcd. Milvus builds that framework only with -tags test.
func TestMilvusFramework(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			setParams(t, b.params(t))
			mwal.NewWALImplsTestFramework(t, 1000, registry.MustGetBuilder(message.WALNameWoodpecker)).Run()
		})
	}
}
