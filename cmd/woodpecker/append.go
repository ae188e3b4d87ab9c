package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/spf13/cobra"

	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// Input formats of append.
const (
	formatLines          = "lines"
	formatLengthPrefixed = "length-prefixed"
)

// entryReader reads entries from the input of append.
type entryReader interface {
	// next returns the next entry (a new slice) and where it was in the
	// input, io.EOF at the end, or an error naming the position.
	next() (payload []byte, where string, err error)
}

// lineReader reads one entry per line. Line endings (\n or \r\n) are not
// part of the entry. Empty lines are skipped and counted: entries must
// hold at least one byte.
type lineReader struct {
	r       *bufio.Reader
	line    int64
	skipped int64
	max     int64
}

func (l *lineReader) next() ([]byte, string, error) {
	for {
		var line []byte
		for {
			chunk, err := l.r.ReadSlice('\n')
			line = append(line, chunk...)
			if int64(len(line)) > l.max+2 { // the entry and a \r\n
				return nil, "", badInputf("line %d is longer than writer.maxEntryBytes (%s)", l.line+1, options.FormatSize(l.max))
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) {
				if len(line) == 0 {
					return nil, "", io.EOF
				}
				break // a last line without a line ending
			}
			if err != nil {
				return nil, "", errors.Wrapf(err, "read stdin at line %d", l.line+1)
			}
			break
		}
		l.line++
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			l.skipped++
			continue
		}
		return line, fmt.Sprintf("line %d", l.line), nil
	}
}

// prefixedReader reads entries framed by a 4-byte big-endian length.
type prefixedReader struct {
	r   *bufio.Reader
	n   int64
	max int64
}

func (p *prefixedReader) next() ([]byte, string, error) {
	var hdr [4]byte
	n, err := io.ReadFull(p.r, hdr[:])
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		return nil, "", io.EOF
	case err != nil:
		return nil, "", badInputf("input ends inside the length prefix of entry %d (%d of 4 bytes)", p.n+1, n)
	}
	p.n++
	where := fmt.Sprintf("entry %d", p.n)
	size := int64(binary.BigEndian.Uint32(hdr[:]))
	switch {
	case size == 0:
		return nil, "", badInputf("%s has length 0: entries must hold at least one byte", where)
	case size > p.max:
		return nil, "", badInputf("%s has length %d, more than writer.maxEntryBytes (%s)", where, size, options.FormatSize(p.max))
	}
	b := make([]byte, size)
	if got, err := io.ReadFull(p.r, b); err != nil {
		return nil, "", badInputf("input ends inside %s: its prefix says %d bytes, got %d", where, size, got)
	}
	return b, where, nil
}

func (a *app) appendCommand() *cobra.Command {
	var (
		format string
		epoch  int64
		depth  int
		create bool
		ids    bool
	)
	cmd := &cobra.Command{
		Use:   "append NAME",
		Short: "Append entries read from stdin to a log",
		Long: `append reads entries from stdin and appends them to the log, in order.

Input formats (--format):
  lines            one entry per line; the line ending (\n or \r\n) is not part
                   of the entry; empty lines are skipped
  length-prefixed  each entry is a 4-byte big-endian length, then that many bytes

Every entry is durable when append exits with status 0. On a failure, the
entries before the one reported are in the log; the one reported is not, unless
the message says its outcome is unknown.

The writer takes the log's current epoch (the highest of its writers and
segments, at least 1), fencing any writer of that epoch still running; --epoch
sets it, from 0 to 4611686018427387903 (2^62-1; higher epochs are reserved). A
writer of the same epoch as the log's takes the log over, a lower one is refused.`,
		Example: `  seq 1000 | woodpecker append numbers --create
  woodpecker append events --format length-prefixed < events.bin`,
		Args: args(1, 1, "one log name"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if format != formatLines && format != formatLengthPrefixed {
				return usagef("--format %q: want lines or length-prefixed", format)
			}
			if depth < 1 {
				return usagef("--depth %d: want at least 1", depth)
			}
			if epoch < 0 || epoch > woodpecker.MaxEpoch {
				return usagef("--epoch %d: want 0 to %d", epoch, woodpecker.MaxEpoch)
			}
			ctx := cmd.Context()
			e, err := a.connect(ctx, connectOptions{})
			if err != nil {
				return err
			}
			name := argv[0]
			if create {
				if err := e.client.CreateLog(ctx, name); err != nil && !errors.Is(err, woodpecker.ErrLogExists) {
					return err
				}
			}
			l, err := e.openLog(ctx, name)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("epoch") {
				if epoch, err = currentEpoch(ctx, l); err != nil {
					return err
				}
			}
			w, err := l.OpenWriter(ctx, epoch)
			if errors.Is(err, woodpecker.ErrFenced) {
				// A writer of the same epoch takes the log over: say which
				// epoch does, rather than "a higher one" (there may be none).
				if owner, ok, oerr := l.WriterEpoch(ctx); oerr == nil && ok && owner > epoch {
					return errors.Wrapf(err, "a writer of epoch %d owns log %q: pass --epoch %d to take it over", owner, name, owner)
				}
				return errors.Wrapf(err, "a writer of a higher epoch owns log %q", name)
			}
			if err != nil {
				return err
			}
			maxEntry := e.r.cfg.Writer.MaxEntryBytes
			in := bufio.NewReaderSize(a.stdin, 1<<20)
			var src entryReader
			lines := &lineReader{r: in, max: maxEntry}
			if format == formatLines {
				src = lines
			} else {
				src = &prefixedReader{r: in, max: maxEntry}
			}
			res, appendErr := appendAll(ctx, w, src, depth, a.stdout, ids)
			cctx, cancel := closeContext(ctx, time.Minute)
			defer cancel()
			closeErr := w.Close(cctx)
			if appendErr != nil {
				if res.n == 0 {
					return appendErr
				}
				return errors.Wrapf(appendErr, "after appending %d entries (ids %s..%s)", res.n, res.first, res.last)
			}
			msg := fmt.Sprintf("appended %d entries (%s) to log %q", res.n, human(res.bytes), name)
			if res.n > 0 {
				msg += fmt.Sprintf(", ids %s..%s", res.first, res.last)
			}
			if lines.skipped > 0 {
				msg += fmt.Sprintf("; skipped %d empty lines", lines.skipped)
			}
			fmt.Fprintln(a.stderr, msg)
			return closeErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", formatLines, "input format: lines or length-prefixed")
	f.Int64Var(&epoch, "epoch", 0, "writer epoch, 0 to 2^62-1 (default: the log's current epoch)")
	f.IntVar(&depth, "depth", 256, "appends kept in flight")
	f.BoolVar(&create, "create", false, "create the log when it does not exist")
	f.BoolVar(&ids, "ids", false, "print the id of each entry appended, one per line")
	return cmd
}

// currentEpoch returns the epoch of the log's latest writer or newest
// segment, whichever is higher, at least 1. (A writer that opened the log
// but has not written a segment yet already holds its epoch.)
func currentEpoch(ctx context.Context, l *woodpecker.Log) (int64, error) {
	st, err := l.Stats(ctx)
	if err != nil {
		return 0, err
	}
	epoch := int64(1)
	for _, s := range st.Segments {
		epoch = max(epoch, s.Epoch)
	}
	owner, ok, err := l.WriterEpoch(ctx)
	if err != nil {
		return 0, err
	}
	if ok {
		epoch = max(epoch, owner)
	}
	return epoch, nil
}

type appendResult struct {
	n, bytes    int64
	first, last woodpecker.EntryID
}

// appendAll appends every entry of src through w, keeping up to depth in
// flight, and stops at the first failure. It returns what was acknowledged.
func appendAll(ctx context.Context, w *woodpecker.Writer, src entryReader, depth int,
	out io.Writer, printIDs bool) (appendResult, error) {
	// The client reports each append's outcome to the metrics itself.
	type pending struct {
		fut   *woodpecker.AppendFuture
		where string
		size  int
	}
	var res appendResult
	queue := make(chan pending, depth)
	waitErr := make(chan error, 1)
	bw := bufio.NewWriter(out)
	go func() {
		var failed error
		for p := range queue {
			if failed != nil {
				continue // drain: the writer fails every later entry too
			}
			id, err := p.fut.Wait(ctx)
			if err != nil {
				failed = errors.Wrapf(err, "%s", p.where)
				continue
			}
			if res.n == 0 {
				res.first = id
			}
			res.last = id
			res.n++
			res.bytes += int64(p.size)
			if printIDs {
				fmt.Fprintln(bw, id)
			}
		}
		waitErr <- failed
	}()
	var readErr error
	for {
		payload, where, err := src.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		fut, err := w.AppendAsync(ctx, payload)
		if err != nil {
			readErr = errors.Wrapf(err, "%s", where)
			break
		}
		queue <- pending{fut: fut, where: where, size: len(payload)}
	}
	close(queue)
	err := <-waitErr
	if ferr := bw.Flush(); err == nil && readErr == nil && ferr != nil {
		return res, errors.Wrap(ferr, "write ids to stdout")
	}
	if err != nil {
		return res, err
	}
	return res, readErr
}
