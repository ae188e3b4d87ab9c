package history

import (
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
)

// ID names an entry of a log as woodpecker.EntryID does: segment, then entry
// within it. Ids compare in log order. Convert with
// history.ID{Segment: id.Segment, Entry: id.Entry}.
type ID struct {
	Segment int64
	Entry   int64
}

// Compare returns -1, 0 or +1 as id sorts before, with or after other.
func (id ID) Compare(other ID) int {
	switch {
	case id.Segment < other.Segment:
		return -1
	case id.Segment > other.Segment:
		return 1
	case id.Entry < other.Entry:
		return -1
	case id.Entry > other.Entry:
		return 1
	}
	return 0
}

// Less reports whether id sorts before other.
func (id ID) Less(other ID) bool { return id.Compare(other) < 0 }

// String returns "segment/entry".
func (id ID) String() string {
	return strconv.FormatInt(id.Segment, 10) + "/" + strconv.FormatInt(id.Entry, 10)
}

// MarshalText writes the "segment/entry" form.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText reads the "segment/entry" form.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseID reads the "segment/entry" form of non-negative decimal numbers.
func ParseID(s string) (ID, error) {
	seg, ent, ok := strings.Cut(s, "/")
	if !ok {
		return ID{}, errors.Newf("entry id %q: want segment/entry", s)
	}
	a, err := parseDecimal(seg)
	if err != nil {
		return ID{}, errors.Wrapf(err, "entry id %q: segment", s)
	}
	b, err := parseDecimal(ent)
	if err != nil {
		return ID{}, errors.Wrapf(err, "entry id %q: entry", s)
	}
	return ID{Segment: a, Entry: b}, nil
}

func parseDecimal(s string) (int64, error) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, errors.Newf("%q is not a non-negative decimal number", s)
	}
	return strconv.ParseInt(s, 10, 64)
}

// Kind is the kind of an operation.
type Kind string

// Kinds of operations.
const (
	// Append: a writer appended Value; an ok append has the ID returned.
	Append Kind = "append"
	// Read: a chunk of a reader session's deliveries (see Record.Reader).
	Read Kind = "read"
	// Open: OpenWriter; an ok open fences every writer of the log whose
	// open completed before this one was invoked.
	Open Kind = "open"
	// Truncate: a truncation of the log at ID, by a writer or an admin.
	Truncate Kind = "truncate"
)

// Outcome is how an operation ended.
type Outcome string

// Outcomes.
const (
	// OK: the operation succeeded.
	OK Outcome = "ok"
	// Fail: a definite failure; the operation changed nothing.
	Fail Outcome = "fail"
	// Unknown: it may or may not have taken effect, at any time after its
	// invocation (ErrUnknownOutcome, a timeout, a killed process).
	Unknown Outcome = "unknown"
	// Fenced: the writer was fenced (ErrFenced); a definite failure.
	Fenced Outcome = "fenced"
)

// StartMode is where a reader session started.
type StartMode string

// Start modes, as woodpecker's StartPosition.
const (
	// Earliest: at the log's truncation point, or its first entry.
	Earliest StartMode = "earliest"
	// Latest: after the last entry durable when the reader opened.
	Latest StartMode = "latest"
	// At: at Record.FromID, inclusive (a remembered id).
	At StartMode = "at"
	// After: after Record.FromID, exclusive (a remembered id).
	After StartMode = "after"
)

// Truncator says who truncated.
type Truncator string

// Truncators.
const (
	// ByWriter: Writer.Truncate; a fenced writer's truncation changes
	// nothing.
	ByWriter Truncator = "writer"
	// ByAdmin: Log.Truncate, whoever owns the log.
	ByAdmin Truncator = "admin"
)

// Delivery is one entry a reader delivered.
type Delivery struct {
	ID    ID     `json:"id"`
	Value string `json:"value"`
}

// Record is one operation of a history, one JSON line in a history file.
// Fields that do not apply to the record's kind are left zero.
type Record struct {
	// Process identifies the workload process (or goroutine) that ran the
	// operation.
	Process int `json:"process"`
	// Log is the log's name.
	Log  string `json:"log"`
	Kind Kind   `json:"kind"`
	// Invoke and Complete are nanoseconds since the run started (see Clock).
	// For an unknown outcome Complete is when the process gave up waiting.
	Invoke   int64   `json:"invoke"`
	Complete int64   `json:"complete"`
	Outcome  Outcome `json:"outcome"`
	// Error is the error's text, for diagnosis only.
	Error string `json:"error,omitempty"`

	// Writer names the writer (one OpenWriter) of an append, an open or a
	// writer truncation; when empty, the writer is "p<Process>/e<Epoch>".
	Writer string `json:"writer,omitempty"`
	// Epoch is the writer's epoch (the database's term), for diagnosis.
	Epoch int64 `json:"epoch,omitempty"`

	// Value is the append's value, unique in the log.
	Value string `json:"value,omitempty"`
	// ID is the id an ok append returned, or a truncation's point (entries
	// before it are no longer needed).
	ID *ID `json:"id,omitempty"`

	// Reader names the reader session of a read record; chunks of one
	// session share it.
	Reader string    `json:"reader,omitempty"`
	From   StartMode `json:"from,omitempty"`
	// FromID is the remembered id of an At or After reader.
	FromID *ID `json:"from_id,omitempty"`
	// Opened is when the reader's open returned (0: not recorded).
	Opened int64 `json:"opened,omitempty"`
	// EndAt, when not 0, says the reader reached the end of the log: it
	// delivered every entry durable at EndAt (see the package doc). Set it
	// only on a session's last chunk.
	EndAt int64 `json:"end_at,omitempty"`
	// Entries are the entries delivered during this chunk, in order.
	Entries []Delivery `json:"entries,omitempty"`

	// By says who truncated.
	By Truncator `json:"by,omitempty"`
}

// writerKey names the writer of an append, open or writer truncation.
func (r *Record) writerKey() string {
	if r.Writer != "" {
		return r.Writer
	}
	return "p" + strconv.Itoa(r.Process) + "/e" + strconv.FormatInt(r.Epoch, 10)
}

// Validate reports what makes the record malformed, or nil.
func (r *Record) Validate() error {
	if r.Log == "" {
		return errors.New("no log")
	}
	if r.Invoke < 0 || r.Complete < r.Invoke {
		return errors.Newf("times: invoke %d, complete %d", r.Invoke, r.Complete)
	}
	switch r.Outcome {
	case OK, Fail, Unknown, Fenced:
	default:
		return errors.Newf("unknown outcome %q", r.Outcome)
	}
	switch r.Kind {
	case Append:
		if r.Value == "" {
			return errors.New("append without a value")
		}
		if r.Outcome == OK && r.ID == nil {
			return errors.New("ok append without an id")
		}
	case Read:
		if r.Reader == "" {
			return errors.New("read without a reader")
		}
		switch r.From {
		case Earliest, Latest:
			if r.FromID != nil {
				return errors.Newf("read from %s with an id", r.From)
			}
		case At, After:
			if r.FromID == nil {
				return errors.Newf("read from %s without an id", r.From)
			}
		default:
			return errors.Newf("read: unknown start mode %q", r.From)
		}
		if r.Opened != 0 && r.Opened < r.Invoke {
			return errors.Newf("read opened at %d before its invocation at %d", r.Opened, r.Invoke)
		}
		for i, d := range r.Entries {
			if d.Value == "" {
				return errors.Newf("read: delivery %d (%s) without a value", i, d.ID)
			}
		}
	case Open:
	case Truncate:
		if r.ID == nil {
			return errors.New("truncate without an id")
		}
		switch r.By {
		case ByWriter, ByAdmin:
		default:
			return errors.Newf("truncate by %q: want writer or admin", r.By)
		}
	default:
		return errors.Newf("unknown kind %q", r.Kind)
	}
	return nil
}

// History is a run's records. Check does not depend on their order except
// for the order of a reader session's chunks, which it takes from their
// invocation times.
type History []Record

// Merge returns the records of hs (e.g. one history file per process) in
// one history, sorted by invocation time (stable, so records of equal times
// keep their order).
func Merge(hs ...History) History {
	var n int
	for _, h := range hs {
		n += len(h)
	}
	out := make(History, 0, n)
	for _, h := range hs {
		out = append(out, h...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Invoke < out[j].Invoke })
	return out
}
