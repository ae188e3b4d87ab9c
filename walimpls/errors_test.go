package walimpls_test

import (
	stderrors "errors"
	"testing"

	"github.com/cockroachdb/errors"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"

	"github.com/woodpecker-wal/woodpecker/walimpls"
)

// TestSentinelsMatchUnderBothErrorsIs: every path of this package that
// returns one of its sentinels gives an error that the standard library's
// errors.Is and cockroachdb's both match. (The implementations' paths are
// checked the same way by the conformance suite.)
func TestSentinelsMatchUnderBothErrorsIs(t *testing.T) {
	for _, tc := range []struct {
		path string
		want error
		err  func() error
	}{
		{"UnmarshalMessageID: the unmarshaler's own error", walimpls.ErrInvalidMessageID, func() error {
			_, err := walimpls.UnmarshalMessageID(walimpls.WALNameTest, "x")
			return err
		}},
		{"UnmarshalMessageID: no id", walimpls.ErrInvalidMessageID, func() error {
			_, err := walimpls.UnmarshalMessageID(walimpls.WALNameTest, "42")
			return err
		}},
		{"UnmarshalMessageID: no unmarshaler", walimpls.ErrInvalidMessageID, func() error {
			_, err := walimpls.UnmarshalMessageID(commonpb.WALName_Kafka, "17")
			return err
		}},
		{"FromProto: nil", walimpls.ErrInvalidMessageID, func() error {
			_, err := walimpls.FromProto(nil)
			return err
		}},
		{"OpenOption.Validate", walimpls.ErrInvalidOption, func() error {
			return walimpls.OpenOption{Channel: walimpls.Channel{Name: "a", Term: -1}}.Validate()
		}},
		{"ReadOption.Validate", walimpls.ErrInvalidOption, func() error {
			return walimpls.ReadOption{DeliverPolicy: walimpls.DeliverStartFrom(nil)}.Validate()
		}},
	} {
		err := tc.err()
		if !stderrors.Is(err, tc.want) {
			t.Errorf("%s: standard errors.Is(%v, %v) = false", tc.path, err, tc.want)
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: cockroachdb errors.Is(%v, %v) = false", tc.path, err, tc.want)
		}
	}
}
