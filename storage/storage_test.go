package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/storage"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestOpenLocal(t *testing.T) {
	cfg := options.Default()
	cfg.Storage.Type, cfg.Storage.RootPath = options.StorageLocal, filepath.Join(t.TempDir(), "logs")
	st, err := storage.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Backend.(*segment.FileBackend); !ok || st.Store != nil || st.Raw != nil {
		t.Fatalf("local storage opened %T, store %v, raw %v", st.Backend, st.Store, st.Raw)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// countingStore counts Puts, to see which store a backend writes through.
type countingStore struct {
	objstore.Store
	puts int
}

func (s *countingStore) Put(ctx context.Context, key string, data []byte, o objstore.PutOptions) error {
	s.puts++
	return s.Store.Put(ctx, key, data, o)
}

// A given store wins over storage.type, and the backend writes through
// the wrapped store while Raw stays the given one.
func TestOpenWithStoreAndWrap(t *testing.T) {
	ctx := context.Background()
	cfg := options.Default()
	cfg.Storage.Type, cfg.Storage.RootPath = options.StorageLocal, t.TempDir()
	given := memstore.New()
	var wrapped *countingStore
	st, err := storage.Open(ctx, cfg, storage.WithStore(given), storage.WithWrap(func(s objstore.Store) objstore.Store {
		wrapped = &countingStore{Store: s}
		return wrapped
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Raw != given || st.Store != objstore.Store(wrapped) {
		t.Fatalf("Raw %v, Store %v: want the given store and its wrapping", st.Raw, st.Store)
	}
	if st.Backend.Parallel() != cfg.Writer.MaxInflightUploads {
		t.Errorf("Parallel = %d, want writer.maxInflightUploads %d", st.Backend.Parallel(), cfg.Writer.MaxInflightUploads)
	}
	sink, err := st.Backend.CreateSink(ctx, segment.Ref{LogID: 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.WriteSeal(ctx, segment.SealInfo{LastEntry: -1}, []byte("seal")); err != nil {
		t.Fatal(err)
	}
	if wrapped.puts != 1 {
		t.Errorf("the backend made %d puts through the wrapped store, want 1", wrapped.puts)
	}
	if objs, _ := objstore.ListAll(ctx, given, "", ""); len(objs) != 1 {
		t.Errorf("the given store holds %v, want the seal record", objs)
	}
}

// TestOpenTLS opens both object store clients against a MinIO that
// serves https with a certificate of the test's own CA.
func TestOpenTLS(t *testing.T) {
	m := testenv.StartMinIOTLS(t)
	s3 := m.S3()
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tls     options.StorageTLS
		wantErr []string // nil: opens
	}{
		{"ca file", options.StorageTLS{CAFile: m.CAFile()}, nil},
		{"skip verify", options.StorageTLS{InsecureSkipVerify: true}, nil},
		{"system roots", options.StorageTLS{}, []string{"not trusted", "storage.tls.caFile"}},
		{"missing ca file", options.StorageTLS{CAFile: filepath.Join(t.TempDir(), "nope.pem")}, []string{"storage.tls: read CA file"}},
		{"not a ca file", options.StorageTLS{CAFile: garbage}, []string{"storage.tls: CA file", "holds no PEM certificate"}},
	}
	for _, typ := range []options.StorageType{options.StorageMinIO, options.StorageS3} {
		for _, tt := range tests {
			t.Run(string(typ)+"/"+tt.name, func(t *testing.T) {
				cfg := options.Default()
				cfg.Storage = options.StorageConfig{Type: typ, Endpoint: s3.Endpoint, Bucket: "storage-tls",
					Region: s3.Region, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, UseSSL: true, TLS: tt.tls,
					CreateBucket: true, RootPath: testenv.UniquePrefix(t), RequestTimeout: 30 * time.Second}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				st, err := storage.Open(ctx, cfg)
				if tt.wantErr != nil {
					if err == nil {
						st.Close()
						t.Fatal("opened")
					}
					for _, w := range tt.wantErr {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("error %q does not mention %q", err, w)
						}
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				if err := st.Store.Put(ctx, "k", []byte("v"), objstore.PutOptions{IfNotExists: true}); err != nil {
					t.Fatalf("put over https: %v", err)
				}
			})
		}
	}
}
