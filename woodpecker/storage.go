package woodpecker

import (
	"context"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/options"
)

// openObjectStore connects to the object store cfg describes.
func openObjectStore(ctx context.Context, cfg options.StorageConfig) (objstore.Store, error) {
	switch cfg.Type {
	case options.StorageMinIO:
		return s3store.Open(ctx, s3store.Config{
			Endpoint: cfg.Endpoint, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey,
			Bucket: cfg.Bucket, Region: cfg.Region, Secure: cfg.UseSSL,
			RootPath: cfg.RootPath, CreateBucket: cfg.CreateBucket,
		})
	default:
		return nil, errors.Newf("storage.type %q has no object store backend here (allowed: minio, s3, local)", cfg.Type)
	}
}
