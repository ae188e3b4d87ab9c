package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// UniquePrefix returns a key prefix no other test (in this or another run)
// gets: "t-<test name>-<random>", where the test name keeps only letters,
// digits, '.', '_' and '-' and is cut to 40 bytes. It contains no '/' and
// suits etcd keys and object keys alike; callers add their own separator.
// Safe for concurrent use.
func UniquePrefix(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("t-%s-%012x", sanitize(t.Name(), false, 40), rand.Uint64()>>16)
}

// sanitize keeps letters, digits, '.', '_' and '-' of s (lowercased when
// lower, with '.' and '_' replaced too), replaces runs of anything else by
// one '-', and cuts the result to max bytes. Never empty.
func sanitize(s string, lower bool, max int) string {
	if lower {
		s = strings.ToLower(s)
	}
	var b strings.Builder
	dash := false
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-'
		if !lower {
			ok = ok || r >= 'A' && r <= 'Z' || r == '.' || r == '_'
		}
		switch {
		case ok && r != '-':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= max {
			break
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if len(out) > max {
		out = strings.TrimRight(out[:max], "-")
	}
	if out == "" {
		out = "x"
	}
	return out
}

// bucketName returns a valid, unique S3 bucket name for t: 3 to 63
// characters of [a-z0-9-], starting and ending with a letter or digit.
func bucketName(t testing.TB) string {
	return fmt.Sprintf("wp-%s-%012x", sanitize(t.Name(), true, 40), rand.Uint64()>>16)
}

// NewBucket creates a bucket with a unique valid name on s and returns its
// name. On an external server the bucket and its objects are removed at
// t.Cleanup; on the servers testenv starts, the data folder goes with the
// server. The test fails if the bucket cannot be created. Safe for
// concurrent use.
func NewBucket(t testing.TB, s S3) string {
	t.Helper()
	cli, tr, err := minioClient(s)
	if err != nil {
		t.Fatalf("testenv: S3 client for %s: %v", s.Endpoint, err)
	}
	defer tr.CloseIdleConnections()
	name := bucketName(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cli.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("testenv: creating bucket %s on %s (%s): %v", name, s.Name, s.Endpoint, err)
	}
	if s.Name == "external" {
		t.Cleanup(func() { removeBucket(t, s, name) })
	}
	return name
}

// minioClient returns a minio-go client of s with its own transport, so the
// caller can close its idle connections (and their goroutines).
func minioClient(s S3) (*minio.Client, *http.Transport, error) {
	tr, err := minio.DefaultTransport(s.Secure)
	if err != nil {
		return nil, nil, err
	}
	cli, err := minio.New(s.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:    s.Secure,
		Region:    s.Region,
		Transport: tr,
	})
	if err != nil {
		return nil, nil, err
	}
	return cli, tr, nil
}

// removeBucket empties and removes a bucket, logging (not failing) problems.
func removeBucket(t testing.TB, s S3, name string) {
	cli, tr, err := minioClient(s)
	if err != nil {
		t.Logf("testenv: removing bucket %s: %v", name, err)
		return
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	objs := cli.ListObjects(ctx, name, minio.ListObjectsOptions{Recursive: true})
	for e := range cli.RemoveObjects(ctx, name, objs, minio.RemoveObjectsOptions{}) {
		t.Logf("testenv: removing %s/%s: %v", name, e.ObjectName, e.Err)
	}
	if err := cli.RemoveBucket(ctx, name); err != nil {
		t.Logf("testenv: removing bucket %s: %v", name, err)
	}
}
