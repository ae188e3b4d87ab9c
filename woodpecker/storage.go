package woodpecker

import (
	"context"
	"crypto/tls"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/awss3"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/options"
)

// closableStore is an object store the client opened and must close.
type closableStore interface {
	objstore.Store
	Close() error
}

// openObjectStore connects to the object store cfg describes: "minio" is
// any S3-compatible store through minio-go, "s3" is AWS S3 through the AWS
// SDK.
func openObjectStore(ctx context.Context, cfg options.StorageConfig) (closableStore, error) {
	var tc *tls.Config
	if cfg.UseSSL && (cfg.TLS.CAFile != "" || cfg.TLS.InsecureSkipVerify) {
		var err error
		if tc, err = buildTLS(cfg.TLS.CAFile, "", "", "", cfg.TLS.InsecureSkipVerify); err != nil {
			return nil, errors.Wrap(err, "storage.tls")
		}
	}
	switch cfg.Type {
	case options.StorageMinIO:
		return s3store.Open(ctx, s3store.Config{
			Endpoint: cfg.Endpoint, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey,
			Bucket: cfg.Bucket, Region: cfg.Region, Secure: cfg.UseSSL,
			RootPath: cfg.RootPath, CreateBucket: cfg.CreateBucket, TLS: tc,
		})
	case options.StorageS3:
		return awss3.Open(ctx, awss3.Config{
			Endpoint: cfg.Endpoint, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey,
			Bucket: cfg.Bucket, Region: cfg.Region, Secure: cfg.UseSSL,
			RootPath: cfg.RootPath, CreateBucket: cfg.CreateBucket, TLS: tc,
		})
	default:
		return nil, errors.Newf("storage.type %q has no object store backend (allowed: minio, s3, local)", cfg.Type)
	}
}
