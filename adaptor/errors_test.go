package adaptor

import (
	"context"
	stderrors "errors"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/walimpls"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// foreignID is a message id of another WAL.
type foreignID struct{}

func (foreignID) WALName() walimpls.WALName   { return walimpls.WALNameTest }
func (foreignID) LT(walimpls.MessageID) bool  { return false }
func (foreignID) LTE(walimpls.MessageID) bool { return false }
func (foreignID) EQ(walimpls.MessageID) bool  { return false }
func (foreignID) Marshal() string             { return "foreign" }
func (foreignID) String() string              { return "foreign" }

// TestAdaptorSentinelsMatchUnderBothErrorsIs: the walimpls sentinels the
// adaptor maps engine errors to (and options.ErrInvalidConfig for a bad
// configuration) match under the standard library's errors.Is as well as
// cockroachdb's.
func TestAdaptorSentinelsMatchUnderBothErrorsIs(t *testing.T) {
	ctx := context.Background()
	rw := func(name string, term int64) walimpls.OpenOption {
		return walimpls.OpenOption{Channel: walimpls.Channel{Name: name, Term: term, AccessMode: walimpls.AccessModeRW}}
	}
	msg := walimpls.Message{Payload: []byte("payload")}
	for _, tc := range []struct {
		path string
		want error
		err  func(t *testing.T) error
	}{
		{"Append of a WAL a newer term superseded", walimpls.ErrFenced, func(t *testing.T) error {
			o := build(t, backends[1])
			old := openWAL(t, o, "fenced", 1, walimpls.AccessModeRW)
			if _, err := old.Append(ctx, msg); err != nil {
				t.Fatal(err)
			}
			openWAL(t, o, "fenced", 2, walimpls.AccessModeRW)
			_, err := old.Append(ctx, msg)
			return err
		}},
		{"Open below the channel's term", walimpls.ErrFenced, func(t *testing.T) error {
			o := build(t, backends[1])
			openWAL(t, o, "lower", 2, walimpls.AccessModeRW)
			_, err := o.Open(ctx, rw("lower", 1))
			return err
		}},
		{"Open with a malformed channel name", walimpls.ErrInvalidOption, func(t *testing.T) error {
			_, err := build(t, backends[1]).Open(ctx, rw("a/b", 1))
			return err
		}},
		{"Open at a term above woodpecker.MaxEpoch", walimpls.ErrInvalidOption, func(t *testing.T) error {
			_, err := build(t, backends[1]).Open(ctx, rw("huge", woodpecker.MaxEpoch+1))
			return err
		}},
		{"Truncate at a foreign id", walimpls.ErrInvalidMessageID, func(t *testing.T) error {
			return openWAL(t, build(t, backends[1]), "foreign", 1, walimpls.AccessModeRW).Truncate(ctx, foreignID{})
		}},
		{"Append after Close", walimpls.ErrClosed, func(t *testing.T) error {
			w := openWAL(t, build(t, backends[1]), "closed", 1, walimpls.AccessModeRW)
			w.Close()
			_, err := w.Append(ctx, msg)
			return err
		}},
		{"FromYAML without mq.type", options.ErrInvalidConfig, func(t *testing.T) error {
			_, err := FromYAML([]byte("woodpecker: {}\n"))
			return err
		}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			err := tc.err(t)
			if !stderrors.Is(err, tc.want) {
				t.Errorf("the standard library's errors.Is(%v, %v) = false", err, tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("cockroachdb's errors.Is(%v, %v) = false", err, tc.want)
			}
		})
	}
}
