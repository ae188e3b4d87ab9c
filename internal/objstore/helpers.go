package objstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/cockroachdb/errors"
)

// ListAll returns every object under prefix after startAfter, following
// pages. Use it only where the listing is known to be bounded.
func ListAll(ctx context.Context, s Store, prefix, startAfter string) ([]ObjectInfo, error) {
	var all []ObjectInfo
	for {
		page, err := s.List(ctx, prefix, startAfter, 0)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Objects...)
		if !page.More || len(page.Objects) == 0 {
			return all, nil
		}
		startAfter = page.Objects[len(page.Objects)-1].Key
	}
}

// ProbeKeyPrefix is where ProbeConditionalWrite leaves nothing behind: it
// writes one object there and deletes it again.
const ProbeKeyPrefix = "_probe/"

// ProbeConditionalWrite checks that s honours create-only puts: it creates a
// fresh key, then tries to create it again. It returns nil when the second
// create fails with ErrAlreadyExists, ErrConditionalWriteUnsupported when
// the store silently overwrote, and any other error as it came.
func ProbeConditionalWrite(ctx context.Context, s Store) error {
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return errors.Wrap(err, "probe conditional write: random key")
	}
	key := ProbeKeyPrefix + hex.EncodeToString(nonce[:])
	defer func() { _ = s.Delete(context.WithoutCancel(ctx), key) }()

	if err := s.Put(ctx, key, []byte("first"), PutOptions{IfNotExists: true}); err != nil {
		return errors.Wrapf(err, "probe conditional write: create %q", key)
	}
	err := s.Put(ctx, key, []byte("second"), PutOptions{IfNotExists: true})
	switch {
	case errors.Is(err, ErrAlreadyExists):
		return nil
	case err == nil:
		return errors.Wrapf(ErrConditionalWriteUnsupported,
			"probe: a second create-only put of %q succeeded", key)
	default:
		return errors.Wrapf(err, "probe conditional write: second create of %q", key)
	}
}
