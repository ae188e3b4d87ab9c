package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/errors"
	"github.com/spf13/cobra"

	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// Output formats of tail.
const (
	outputText = "text"
	outputHex  = "hex"
	outputJSON = "json"
)

func (a *app) tailCommand() *cobra.Command {
	var (
		from     string
		after    string
		count    int64
		noFollow bool
		output   string
		showIDs  bool
	)
	cmd := &cobra.Command{
		Use:   "tail NAME",
		Short: "Print a log's entries and follow it, like tail -f",
		Long: `tail prints the entries of a log from a starting point and then waits for new
ones, like tail -f, until interrupted (Ctrl-C), until -n entries were printed,
or, with --no-follow, once it reaches the last entry durable when it started.

Starting points: --from earliest (the first entry kept, after any truncation),
--from latest (only entries appended from now on), --from SEG/ENTRY (that
entry, inclusive), or --after SEG/ENTRY (exclusive).

Output formats (--output):
  text  each payload as it is, then a newline (--ids prefixes "SEG/ENTRY<tab>")
  hex   "SEG/ENTRY<tab>" and the payload in hex
  json  one object per line: {"id","segment","entry","size","text"} where text
        is the payload when it is valid UTF-8, else "base64" holds it`,
		Example: `  woodpecker tail orders
  woodpecker tail orders --from latest --output json
  woodpecker tail orders --after 3/1041 -n 10 --no-follow`,
		Args: args(1, 1, "one log name"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			start, err := startPosition(from, after, cmd.Flags().Changed("from"))
			if err != nil {
				return err
			}
			if output != outputText && output != outputHex && output != outputJSON {
				return usagef("--output %q: want text, hex or json", output)
			}
			if count < 0 {
				return usagef("-n %d: want a positive count, or 0 for no limit", count)
			}
			ctx := cmd.Context()
			e, l, err := a.connectLog(ctx, argv[0])
			if err != nil {
				return err
			}
			// Where --no-follow stops: the last entry durable now.
			var last woodpecker.EntryID
			if noFollow {
				var ok bool
				if last, ok, err = e.lastEntry(ctx, l); err != nil {
					return err
				}
				if !ok {
					return nil // an empty log
				}
				past, err := start.pastEnd(ctx, l, last)
				if err != nil || past {
					return err
				}
			}
			r, err := l.OpenReader(ctx, start.pos)
			if err != nil {
				return err
			}
			defer r.Close()
			out := bufio.NewWriterSize(a.stdout, 64<<10)
			pr := entryPrinter{w: out, format: output, ids: showIDs}
			var pos atomic.Pointer[woodpecker.EntryID] // the last entry printed
			if e.metricsSrv != nil {
				stop := e.sampleLag(ctx, l, &pos)
				defer stop()
			}
			for n := int64(0); count == 0 || n < count; n++ {
				ent, err := r.Next(ctx)
				if err != nil {
					_ = out.Flush()
					return err
				}
				if err := pr.print(ent); err != nil {
					return err
				}
				pos.Store(&ent.ID)
				if noFollow && !ent.ID.Less(last) {
					break
				}
				if !noFollow {
					// Show each entry at once: a follower waits for
					// the next, and a pipe reader expects it now.
					if err := out.Flush(); err != nil {
						return errors.Wrap(err, "write to stdout")
					}
				}
			}
			return errors.Wrap(out.Flush(), "write to stdout")
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "earliest", "start: earliest, latest or SEG/ENTRY (inclusive)")
	f.StringVar(&after, "after", "", "start after SEG/ENTRY (exclusive)")
	f.Int64VarP(&count, "count", "n", 0, "stop after this many entries (0: no limit)")
	f.BoolVar(&noFollow, "no-follow", false, "stop at the last entry durable when tail started")
	f.StringVarP(&output, "output", "o", outputText, "output format: text, hex or json")
	f.BoolVar(&showIDs, "ids", false, "with text output, prefix each entry with its id and a tab")
	return cmd
}

// start is where tail starts reading.
type start struct {
	pos  woodpecker.StartPosition
	kind string // earliest, latest, at or after
	id   woodpecker.EntryID
}

// startPosition turns --from / --after into a reader start.
func startPosition(from, after string, fromSet bool) (start, error) {
	if after != "" {
		if fromSet {
			return start{}, usagef("give --from or --after, not both")
		}
		id, err := woodpecker.ParseEntryID(after)
		if err != nil {
			return start{}, usagef("--after %q: want SEG/ENTRY such as 0/12", after)
		}
		return start{pos: woodpecker.After(id), kind: "after", id: id}, nil
	}
	switch from {
	case "earliest":
		return start{pos: woodpecker.Earliest(), kind: from}, nil
	case "latest":
		return start{pos: woodpecker.Latest(), kind: from}, nil
	}
	id, err := woodpecker.ParseEntryID(from)
	if err != nil {
		return start{}, usagef("--from %q: want earliest, latest or SEG/ENTRY such as 0/12", from)
	}
	return start{pos: woodpecker.At(id), kind: "at", id: id}, nil
}

// pastEnd reports whether s starts after last, so that a reader would only
// wait.
func (s start) pastEnd(ctx context.Context, l *woodpecker.Log, last woodpecker.EntryID) (bool, error) {
	switch s.kind {
	case "latest":
		return true, nil
	case "at":
		return last.Less(s.id), nil
	case "after":
		return !s.id.Less(last), nil
	}
	trunc, ok, err := l.TruncationPoint(ctx)
	return ok && last.Less(trunc), err
}

// lastEntry returns the id of the log's last durable entry; ok is false
// when the log holds none.
func (e *env) lastEntry(ctx context.Context, l *woodpecker.Log) (id woodpecker.EntryID, ok bool, err error) {
	st, err := l.Stats(ctx)
	if err != nil {
		return id, false, err
	}
	return st.Last, st.NonEmpty, nil
}

// sampleLag sets the reader lag metric of l every second from a goroutine
// of its own, until the returned stop is called: the durable entries after
// the last one printed (pos; none printed yet counts from the log's first
// entry).
func (e *env) sampleLag(ctx context.Context, l *woodpecker.Log, pos *atomic.Pointer[woodpecker.EntryID]) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer e.metrics.ForgetReader(l.Name())
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if st, err := l.Stats(ctx); err == nil {
				e.metrics.SetReaderLag(l.Name(), lagEntries(st, pos.Load()))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// lagEntries counts the durable entries of st after pos (all of them when
// pos is nil).
func lagEntries(st woodpecker.Stats, pos *woodpecker.EntryID) int64 {
	if !st.NonEmpty {
		return 0
	}
	var lag int64
	for _, s := range st.Segments {
		last := s.LastEntry
		if st.Last.Segment == s.ID {
			last = st.Last.Entry // the open segment's end, or the same
		}
		first := int64(0)
		if st.First.Segment == s.ID {
			first = st.First.Entry
		}
		switch {
		case s.ID < st.First.Segment || (pos != nil && s.ID < pos.Segment):
			continue
		case pos != nil && s.ID == pos.Segment:
			first = max(first, pos.Entry+1)
		}
		if last >= first {
			lag += last - first + 1
		}
	}
	return lag
}

// entryPrinter writes entries in one of the output formats.
type entryPrinter struct {
	w      io.Writer
	format string
	ids    bool
}

type jsonEntry struct {
	ID      string `json:"id"`
	Segment int64  `json:"segment"`
	Entry   int64  `json:"entry"`
	Size    int    `json:"size"`
	Text    string `json:"text,omitempty"`
	Base64  string `json:"base64,omitempty"`
}

func (p *entryPrinter) print(ent woodpecker.Entry) error {
	var err error
	switch p.format {
	case outputHex:
		_, err = fmt.Fprintf(p.w, "%s\t%s\n", ent.ID, hex.EncodeToString(ent.Payload))
	case outputJSON:
		je := jsonEntry{ID: ent.ID.String(), Segment: ent.ID.Segment, Entry: ent.ID.Entry, Size: len(ent.Payload)}
		if utf8.Valid(ent.Payload) {
			je.Text = string(ent.Payload)
		} else {
			je.Base64 = base64.StdEncoding.EncodeToString(ent.Payload)
		}
		var b []byte
		if b, err = json.Marshal(je); err == nil {
			b = append(b, '\n')
			_, err = p.w.Write(b)
		}
	default:
		if p.ids {
			if _, err = fmt.Fprintf(p.w, "%s\t", ent.ID); err != nil {
				break
			}
		}
		if _, err = p.w.Write(ent.Payload); err == nil {
			_, err = p.w.Write([]byte{'\n'})
		}
	}
	return errors.Wrap(err, "write to stdout")
}
