package localfs_test

import (
	"testing"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/conformance"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/localfs"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) objstore.Store {
		s, err := localfs.Open(t.Context(), localfs.Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, conformance.Capabilities{ConditionalWrites: true})
}
