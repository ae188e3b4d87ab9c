package milvus

import (
	"context"
	stderrors "errors"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus/pkg/v2/proto/streamingpb"
	"github.com/milvus-io/milvus/pkg/v2/streaming/util/message"
	"github.com/milvus-io/milvus/pkg/v2/streaming/util/types"
	mwal "github.com/milvus-io/milvus/pkg/v2/streaming/walimpls"
	"github.com/milvus-io/milvus/pkg/v2/streaming/walimpls/registry"
	"github.com/milvus-io/milvus/pkg/v2/util/paramtable"

	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/walimpls"
)

// isBoth reports whether err matches target under the standard library's
// errors.Is and under cockroachdb's (which Milvus uses).
func isBoth(err, target error) bool { return stderrors.Is(err, target) && errors.Is(err, target) }

// milvusWAL opens channel name at term through the builder registered in
// Milvus's registry, on local storage and the test etcd.
func milvusWAL(t *testing.T, o mwal.OpenerImpls, name string, term int64) mwal.WALImpls {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := o.Open(ctx, &mwal.OpenOption{Channel: types.PChannelInfo{Name: name, Term: term, AccessMode: types.AccessModeRW}})
	if err != nil {
		t.Fatalf("Open(%s, term %d): %v", name, term, err)
	}
	t.Cleanup(w.Close)
	return w
}

func milvusOpener(t *testing.T) mwal.OpenerImpls {
	t.Helper()
	setParams(t, backends[1].params(t)) // localfs
	o, err := registry.MustGetBuilder(message.WALNameWoodpecker).Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	return o
}

// TestMilvusSentinelsMatchUnderBothErrorsIs: the sentinels this package
// maps errors to, Milvus's (walimpls.ErrFenced, message.ErrInvalidMessageID)
// and ours, match on every path under the standard library's errors.Is as
// well as under cockroachdb's, which Milvus's own checks use.
func TestMilvusSentinelsMatchUnderBothErrorsIs(t *testing.T) {
	ctx := context.Background()
	msg := func() message.MutableMessage {
		return message.NewMutableMessageBeforeAppend([]byte("payload"), map[string]string{"k": "v"})
	}
	for _, tc := range []struct {
		path string
		want []error
		err  func(t *testing.T) error
	}{
		{"Append of a WAL a newer term superseded", []error{mwal.ErrFenced, walimpls.ErrFenced}, func(t *testing.T) error {
			o := milvusOpener(t)
			old := milvusWAL(t, o, "fenced", 1)
			if _, err := old.Append(ctx, msg()); err != nil {
				t.Fatal(err)
			}
			milvusWAL(t, o, "fenced", 2)
			_, err := old.Append(ctx, msg())
			return err
		}},
		{"Open below the channel's term", []error{mwal.ErrFenced, walimpls.ErrFenced}, func(t *testing.T) error {
			o := milvusOpener(t)
			milvusWAL(t, o, "lower", 2)
			_, err := o.Open(ctx, &mwal.OpenOption{Channel: types.PChannelInfo{Name: "lower", Term: 1, AccessMode: types.AccessModeRW}})
			return err
		}},
		{"Truncate at a foreign id", []error{message.ErrInvalidMessageID, walimpls.ErrInvalidMessageID}, func(t *testing.T) error {
			return milvusWAL(t, milvusOpener(t), "foreign", 1).Truncate(ctx, foreignMilvusID{})
		}},
		{"Read from a malformed id", []error{message.ErrInvalidMessageID, walimpls.ErrInvalidMessageID}, func(t *testing.T) error {
			w := milvusWAL(t, milvusOpener(t), "malformed", 1)
			_, err := w.Read(ctx, mwal.ReadOption{Name: "bad", DeliverPolicy: &streamingpb.DeliverPolicy{
				Policy: &streamingpb.DeliverPolicy_StartFrom{StartFrom: &commonpb.MessageID{WALName: commonpb.WALName_WoodPecker, Id: "not base64"}},
			}})
			return err
		}},
		{"UnmarshalMessageID of a malformed id", []error{message.ErrInvalidMessageID, walimpls.ErrInvalidMessageID}, func(t *testing.T) error {
			_, err := UnmarshalMessageID("not base64")
			return err
		}},
		{"Open with an invalid option", []error{walimpls.ErrInvalidOption}, func(t *testing.T) error {
			_, err := milvusOpener(t).Open(ctx, &mwal.OpenOption{Channel: types.PChannelInfo{Name: "", Term: 1}})
			return err
		}},
		{"ConfigFromParams with minio.useIAM", []error{options.ErrInvalidConfig}, func(t *testing.T) error {
			setParams(t, map[string]string{"woodpecker.storage.type": "minio", "minio.useIAM": "true"})
			_, err := ConfigFromParams(paramtable.Get())
			return err
		}},
		{"ConfigFromParams with an unknown storage type", []error{options.ErrInvalidConfig}, func(t *testing.T) error {
			setParams(t, map[string]string{"woodpecker.storage.type": "tape"})
			_, err := ConfigFromParams(paramtable.Get())
			return err
		}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			err := tc.err(t)
			for _, want := range tc.want {
				if !stderrors.Is(err, want) {
					t.Errorf("the standard library's errors.Is(%v, %v) = false", err, want)
				}
				if !errors.Is(err, want) {
					t.Errorf("cockroachdb's errors.Is(%v, %v) = false", err, want)
				}
			}
		})
	}
}
