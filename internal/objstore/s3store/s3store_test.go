package s3store_test

import (
	"context"
	"testing"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/internal/s3test"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestS3 runs the suite both S3 backends share (package s3test) through
// minio-go.
func TestS3(t *testing.T) {
	s3test.Run(t, s3test.Backend{
		Name: "s3store",
		Open: func(ctx context.Context, cfg s3test.Config) (s3test.Store, error) {
			return s3store.Open(ctx, cfg)
		},
	})
}
