package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/options"
)

// RawTarget is the storage under the engine, written without the engine, to
// measure what the hardware and server can do with the same I/O sizes and
// parallelism. Implementations are safe for concurrent use.
type RawTarget interface {
	// Describe names the target for reports.
	Describe() string
	// Streams is how many writes one engine writer configured with w keeps
	// in flight against this kind of storage: 1 for a local segment file,
	// w.MaxInflightUploads for an object store.
	Streams(w options.WriterConfig) int
	// OpenStream starts a sequence of durable writes named name (unique
	// within a run). The caller closes the stream, which removes what it
	// wrote.
	OpenStream(ctx context.Context, name string) (RawStream, error)
}

// RawStream is one sequence of durable writes. It is used by one goroutine
// at a time.
type RawStream interface {
	// Write stores data durably: one PUT of a new object, or one write of
	// data to the end of a file followed by fsync. The caller may reuse data
	// once Write returns.
	Write(ctx context.Context, data []byte) error
	// Close releases the stream and removes what it wrote.
	Close(ctx context.Context) error
}

// DirTarget measures a local directory the way the engine's local backend
// writes it: each stream is one file, written sequentially, each write
// followed by fsync (write + fsync, as the engine does per block).
type DirTarget struct {
	// Dir must exist and lie on the same filesystem as the engine's
	// storage.rootPath.
	Dir string
}

// Describe implements RawTarget.
func (d DirTarget) Describe() string { return "write+fsync to a file in " + d.Dir }

// Streams implements RawTarget: the local backend writes one segment file
// at a time per writer.
func (d DirTarget) Streams(options.WriterConfig) int { return 1 }

// OpenStream implements RawTarget: it creates (exclusively) the file
// Dir/name.raw.
func (d DirTarget) OpenStream(ctx context.Context, name string) (RawStream, error) {
	path := filepath.Join(d.Dir, name+".raw")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, errors.Wrapf(err, "raw measurement: create %s", path)
	}
	return &fileStream{f: f}, nil
}

type fileStream struct {
	f *os.File
}

func (s *fileStream) Write(ctx context.Context, data []byte) error {
	if _, err := s.f.Write(data); err != nil {
		return errors.Wrapf(err, "raw measurement: write %s", s.f.Name())
	}
	return errors.Wrapf(s.f.Sync(), "raw measurement: fsync %s", s.f.Name())
}

func (s *fileStream) Close(ctx context.Context) error {
	err := s.f.Close()
	if rerr := os.Remove(s.f.Name()); err == nil {
		err = rerr
	}
	return errors.Wrapf(err, "raw measurement: remove %s", s.f.Name())
}

// StoreTarget measures an object store the way the engine's object backend
// writes it: each write is one create-only PUT of a new object.
type StoreTarget struct {
	// Store is the store the engine writes to (not a counting wrapper, so
	// the raw PUTs stay out of the engine's counts).
	Store objstore.Store
	// Prefix is the key prefix of the raw objects ("" means "bench-raw/").
	Prefix string
	// Name describes the store in reports ("" means "object store").
	Name string
}

// Describe implements RawTarget.
func (s StoreTarget) Describe() string {
	if s.Name != "" {
		return "PUT to " + s.Name
	}
	return "PUT to object store"
}

// Streams implements RawTarget: the engine uploads up to
// writer.maxInflightUploads blocks of a writer at once.
func (s StoreTarget) Streams(w options.WriterConfig) int { return max(w.MaxInflightUploads, 1) }

// OpenStream implements RawTarget: the stream writes Prefix/name/00000000,
// Prefix/name/00000001, ... create-only.
func (s StoreTarget) OpenStream(ctx context.Context, name string) (RawStream, error) {
	prefix := s.Prefix
	if prefix == "" {
		prefix = "bench-raw/"
	}
	return &objectStream{store: s.Store, prefix: prefix + name + "/"}, nil
}

type objectStream struct {
	store  objstore.Store
	prefix string
	keys   []string
}

func (s *objectStream) Write(ctx context.Context, data []byte) error {
	key := fmt.Sprintf("%s%08d", s.prefix, len(s.keys))
	if err := s.store.Put(ctx, key, data, objstore.PutOptions{IfNotExists: true}); err != nil {
		return errors.Wrapf(err, "raw measurement: put %s", key)
	}
	s.keys = append(s.keys, key)
	return nil
}

// Close deletes the stream's objects, a few at a time.
func (s *objectStream) Close(ctx context.Context) error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 8)
	)
	for _, key := range s.keys {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := s.store.Delete(ctx, key); err != nil {
				mu.Lock()
				if first == nil {
					first = errors.Wrapf(err, "raw measurement: delete %s", key)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.keys = nil
	return first
}
