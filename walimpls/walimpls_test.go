package walimpls_test

import (
	"strconv"
	"testing"

	"github.com/cockroachdb/errors"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"go.uber.org/goleak"

	"github.com/woodpecker-wal/woodpecker/walimpls"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// intID is a test id: a decimal number.
type intID int64

func (i intID) WALName() walimpls.WALName { return walimpls.WALNameTest }
func (i intID) LT(o walimpls.MessageID) bool {
	j, ok := o.(intID)
	return ok && i < j
}
func (i intID) LTE(o walimpls.MessageID) bool {
	j, ok := o.(intID)
	return ok && i <= j
}
func (i intID) EQ(o walimpls.MessageID) bool {
	j, ok := o.(intID)
	return ok && i == j
}
func (i intID) Marshal() string { return strconv.FormatInt(int64(i), 10) }
func (i intID) String() string  { return "int:" + i.Marshal() }

func init() {
	walimpls.RegisterMessageIDUnmarshaler(walimpls.WALNameTest, func(s string) (walimpls.MessageID, error) {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, err // not marked: UnmarshalMessageID must mark it
		}
		if v == 42 {
			return nil, nil // a broken unmarshaler
		}
		return intID(v), nil
	})
}

func TestUnmarshalMessageID(t *testing.T) {
	id, err := walimpls.UnmarshalMessageID(walimpls.WALNameTest, "17")
	if err != nil || !id.EQ(intID(17)) {
		t.Fatalf("UnmarshalMessageID(17) = %v, %v", id, err)
	}
	for _, tc := range []struct {
		name walimpls.WALName
		data string
	}{
		{walimpls.WALNameTest, "x"},
		{walimpls.WALNameTest, "42"},
		{commonpb.WALName_Kafka, "17"},
		{walimpls.WALName(12345), "17"},
	} {
		id, err := walimpls.UnmarshalMessageID(tc.name, tc.data)
		if !errors.Is(err, walimpls.ErrInvalidMessageID) || id != nil {
			t.Errorf("UnmarshalMessageID(%v, %q) = %v, %v; want ErrInvalidMessageID", tc.name, tc.data, id, err)
		}
	}
}

func TestProtoRoundTrip(t *testing.T) {
	pb := walimpls.IntoProto(intID(5))
	if pb.GetWALName() != walimpls.WALNameTest || pb.GetId() != "5" {
		t.Fatalf("IntoProto = %v", pb)
	}
	id, err := walimpls.FromProto(pb)
	if err != nil || !id.EQ(intID(5)) {
		t.Fatalf("FromProto = %v, %v", id, err)
	}
	if walimpls.IntoProto(nil) != nil {
		t.Error("IntoProto(nil) != nil")
	}
	if _, err := walimpls.FromProto(nil); !errors.Is(err, walimpls.ErrInvalidMessageID) {
		t.Errorf("FromProto(nil) = %v", err)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	for name, fn := range map[string]func(){
		"twice": func() {
			walimpls.RegisterMessageIDUnmarshaler(walimpls.WALNameTest, func(string) (walimpls.MessageID, error) { return nil, nil })
		},
		"nil": func() { walimpls.RegisterMessageIDUnmarshaler(commonpb.WALName_Kafka, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			fn()
		})
	}
	names := walimpls.RegisteredWALNames()
	if len(names) != 1 || names[0] != walimpls.WALNameTest {
		t.Errorf("RegisteredWALNames = %v", names)
	}
}

func TestOpenOptionValidate(t *testing.T) {
	for _, tc := range []struct {
		ch walimpls.Channel
		ok bool
	}{
		{walimpls.Channel{Name: "a", Term: 0}, true},
		{walimpls.Channel{Name: "a", Term: 3, AccessMode: walimpls.AccessModeRO}, true},
		{walimpls.Channel{Name: "", Term: 1}, false},
		{walimpls.Channel{Name: "a", Term: -1}, false},
		{walimpls.Channel{Name: "a", AccessMode: 7}, false},
	} {
		err := walimpls.OpenOption{Channel: tc.ch}.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, walimpls.ErrInvalidOption)) {
			t.Errorf("Validate(%v) = %v, want ok=%t", tc.ch, err, tc.ok)
		}
	}
}

func TestReadOptionValidate(t *testing.T) {
	for _, tc := range []struct {
		opt walimpls.ReadOption
		ok  bool
	}{
		{walimpls.ReadOption{}, true},
		{walimpls.ReadOption{DeliverPolicy: walimpls.DeliverLatest()}, true},
		{walimpls.ReadOption{DeliverPolicy: walimpls.DeliverStartFrom(intID(1))}, true},
		{walimpls.ReadOption{DeliverPolicy: walimpls.DeliverStartAfter(intID(1)), ReadAheadBufferSize: 9}, true},
		{walimpls.ReadOption{DeliverPolicy: walimpls.DeliverStartFrom(nil)}, false},
		{walimpls.ReadOption{DeliverPolicy: walimpls.DeliverStartAfter(nil)}, false},
		{walimpls.ReadOption{ReadAheadBufferSize: -1}, false},
	} {
		err := tc.opt.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, walimpls.ErrInvalidOption)) {
			t.Errorf("Validate(%+v) = %v, want ok=%t", tc.opt, err, tc.ok)
		}
	}
}

func TestDeliverPolicy(t *testing.T) {
	for _, tc := range []struct {
		p    walimpls.DeliverPolicy
		kind walimpls.DeliverKind
		str  string
	}{
		{walimpls.DeliverPolicy{}, walimpls.DeliverKindAll, "all"},
		{walimpls.DeliverAll(), walimpls.DeliverKindAll, "all"},
		{walimpls.DeliverLatest(), walimpls.DeliverKindLatest, "latest"},
		{walimpls.DeliverStartFrom(intID(3)), walimpls.DeliverKindStartFrom, "start-from int:3"},
		{walimpls.DeliverStartAfter(intID(4)), walimpls.DeliverKindStartAfter, "start-after int:4"},
	} {
		if tc.p.Kind() != tc.kind || tc.p.String() != tc.str {
			t.Errorf("policy %v: kind %v, string %q; want %v, %q", tc.p, tc.p.Kind(), tc.p.String(), tc.kind, tc.str)
		}
	}
	if !walimpls.DeliverStartAfter(intID(4)).ID().EQ(intID(4)) || walimpls.DeliverAll().ID() != nil {
		t.Error("ID() wrong")
	}
}

func TestStrings(t *testing.T) {
	ch := walimpls.Channel{Name: "c", Term: 2, AccessMode: walimpls.AccessModeRO}
	if got := ch.String(); got != "c@2(ro)" {
		t.Errorf("Channel.String = %q", got)
	}
	if got := walimpls.AccessMode(9).String(); got != "AccessMode(9)" {
		t.Errorf("AccessMode(9).String = %q", got)
	}
	if got := walimpls.DeliverKind(9).String(); got != "DeliverKind(9)" {
		t.Errorf("DeliverKind(9).String = %q", got)
	}
}
