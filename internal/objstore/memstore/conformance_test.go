package memstore_test

import (
	"testing"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/conformance"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) objstore.Store { return memstore.New() },
		conformance.Capabilities{ConditionalWrites: true})
}

func TestConformanceWithoutConditionalWrites(t *testing.T) {
	conformance.Run(t, func(t *testing.T) objstore.Store { return memstore.New(memstore.WithoutConditionalWrites()) },
		conformance.Capabilities{ConditionalWrites: false})
}
