package history

import (
	"bytes"
	"encoding/json"
	"os"
	"sync"

	"github.com/cockroachdb/errors"
	"golang.org/x/sys/unix"
)

// Recorder appends records to a history file, one JSON line each. It is safe
// for concurrent use by several goroutines.
//
// Each record is written with one write call as it is recorded, so a process
// killed with SIGKILL loses no record it completed (the kernel keeps what was
// written); Sync makes them survive a machine crash too. One process writes
// one file; a process restarted by the runner creates a new file, and the
// files are read back together with LoadFiles.
type Recorder struct {
	mu     sync.Mutex
	f      *os.File
	path   string
	err    error // sticky: after a failed write the file's tail is unknown
	closed bool
}

// Create creates the history file at path, which must not exist, and
// returns a Recorder writing to it.
func Create(path string) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, errors.Wrap(err, "create history file")
	}
	return &Recorder{f: f, path: path}, nil
}

// Path returns the file's path.
func (rec *Recorder) Path() string { return rec.path }

// Record validates r and appends it to the file. An invalid record is an
// error and is not written. After a failed write every later call fails
// with the same error. Record after Close fails.
func (rec *Recorder) Record(r Record) error {
	if err := r.Validate(); err != nil {
		return errors.Wrapf(err, "record %s on log %q", r.Kind, r.Log)
	}
	line, err := json.Marshal(&r)
	if err != nil {
		return errors.Wrap(err, "encode history record")
	}
	line = append(line, '\n')
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err := rec.usable(); err != nil {
		return err
	}
	if _, err := rec.f.Write(line); err != nil {
		rec.err = errors.Wrapf(err, "write history file %s", rec.path)
		return rec.err
	}
	return nil
}

// Sync makes every record written so far durable (fsync).
func (rec *Recorder) Sync() error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err := rec.usable(); err != nil {
		return err
	}
	if err := rec.f.Sync(); err != nil {
		rec.err = errors.Wrapf(err, "sync history file %s", rec.path)
		return rec.err
	}
	return nil
}

// Close syncs and closes the file. It is idempotent: later calls return nil.
func (rec *Recorder) Close() error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.closed {
		return nil
	}
	rec.closed = true
	err := rec.err
	if err == nil {
		err = errors.Wrapf(rec.f.Sync(), "sync history file %s", rec.path)
	}
	if cerr := rec.f.Close(); err == nil && cerr != nil {
		err = errors.Wrapf(cerr, "close history file %s", rec.path)
	}
	return err
}

func (rec *Recorder) usable() error {
	if rec.closed {
		return errors.Newf("history file %s: recorder closed", rec.path)
	}
	return rec.err
}

// Load reads a history file that a Recorder wrote. A last line without its
// newline is the torn write of a killed process: Load keeps it if it parses
// and drops it otherwise. Any other line that is not a JSON record is an
// error. Load does not validate the records; Check reports malformed ones.
func Load(path string) (History, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.Wrap(err, "read history file")
	}
	var h History
	for n := 1; len(data) > 0; n++ {
		line, rest, complete := bytes.Cut(data, []byte{'\n'})
		data = rest
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			if !complete {
				break
			}
			return nil, errors.Wrapf(err, "history file %s: line %d", path, n)
		}
		h = append(h, r)
	}
	return h, nil
}

// LoadFiles loads several history files (e.g. one per process) and merges
// them (see Merge).
func LoadFiles(paths ...string) (History, error) {
	hs := make([]History, 0, len(paths))
	for _, p := range paths {
		h, err := Load(p)
		if err != nil {
			return nil, err
		}
		hs = append(hs, h)
	}
	return Merge(hs...), nil
}

// Clock gives a run's times: nanoseconds since the run's origin on the
// system's monotonic clock (CLOCK_MONOTONIC). Every process of the machine
// reads the same monotonic clock, so the runner passes Origin to the
// processes it starts (ClockAt) and their records' times compare. The zero
// Clock has origin 0. A Clock is a value, safe for concurrent use.
type Clock struct{ origin int64 }

// NewClock returns a clock whose origin is now.
func NewClock() Clock { return Clock{origin: monotonicNow()} }

// ClockAt returns a clock with the given origin, another clock's Origin.
func ClockAt(origin int64) Clock { return Clock{origin: origin} }

// Origin returns the clock's origin on the monotonic clock.
func (c Clock) Origin() int64 { return c.origin }

// Now returns the nanoseconds since the origin.
func (c Clock) Now() int64 { return monotonicNow() - c.origin }

func monotonicNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		// CLOCK_MONOTONIC exists on every system this suite runs on.
		panic(errors.AssertionFailedf("clock_gettime(CLOCK_MONOTONIC): %v", err))
	}
	return ts.Nano()
}
