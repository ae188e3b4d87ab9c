package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/spf13/cobra"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// admin returns a cobra RunE that connects and calls run with a context
// bounded by the etcd request timeout, for commands that make a few
// metadata calls.
func (a *app) admin(run func(ctx context.Context, e *env, argv []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, argv []string) error {
		e, err := a.connect(cmd.Context(), connectOptions{})
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), e.r.cfg.Etcd.RequestTimeout)
		defer cancel()
		return run(ctx, e, argv)
	}
}

// openLog opens the log name, with a message that says what to do when it
// does not exist.
func (e *env) openLog(ctx context.Context, name string) (*woodpecker.Log, error) {
	l, err := e.client.OpenLog(ctx, name)
	if errors.Is(err, woodpecker.ErrLogNotFound) {
		return nil, walerr.Mark(errors.Newf("log %q does not exist ('woodpecker log list' shows the logs)", name),
			woodpecker.ErrLogNotFound)
	}
	return l, err
}

// connectLog connects and opens the log name.
func (a *app) connectLog(ctx context.Context, name string) (*env, *woodpecker.Log, error) {
	e, err := a.connect(ctx, connectOptions{})
	if err != nil {
		return nil, nil, err
	}
	l, err := e.openLog(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	return e, l, nil
}

func (a *app) logCommand() *cobra.Command {
	cmd := groupCommand("log", "Create, list, describe, truncate and delete logs")
	cmd.AddCommand(a.logCreateCommand(), a.logListCommand(), a.logStatCommand(),
		a.logTruncateCommand(), a.logDeleteCommand())
	return cmd
}

func (a *app) logCreateCommand() *cobra.Command {
	var existOK bool
	cmd := &cobra.Command{
		Use:   "create NAME...",
		Short: "Create empty logs",
		Args:  args(1, -1, "at least one log name"),
		RunE: a.admin(func(ctx context.Context, e *env, names []string) error {
			for _, name := range names {
				err := e.client.CreateLog(ctx, name)
				switch {
				case err == nil:
					fmt.Fprintf(a.stdout, "created log %q\n", name)
				case errors.Is(err, woodpecker.ErrLogExists) && existOK:
					fmt.Fprintf(a.stdout, "log %q exists already\n", name)
				case errors.Is(err, woodpecker.ErrLogExists):
					return errors.Wrapf(err, "log %q exists already (--exist-ok accepts that)", name)
				case errors.Is(err, woodpecker.ErrInvalidName):
					return walerr.Mark(err, errUsage)
				default:
					return err
				}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&existOK, "exist-ok", false, "succeed when a log exists already")
	return cmd
}

func (a *app) logListCommand() *cobra.Command {
	var long bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the logs, one name per line (-l: with their size)",
		Args:  args(0, 0, "no arguments"),
		RunE: a.admin(func(ctx context.Context, e *env, _ []string) error {
			names, err := e.client.ListLogs(ctx)
			if err != nil {
				return err
			}
			if !long {
				for _, n := range names {
					fmt.Fprintln(a.stdout, n)
				}
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tID\tSEGMENTS\tSEALED ENTRIES\tSEALED BYTES\tTRUNCATED BEFORE")
			for _, n := range names {
				l, err := e.client.OpenLog(ctx, n)
				if errors.Is(err, woodpecker.ErrLogNotFound) {
					continue // deleted meanwhile
				}
				if err != nil {
					return err
				}
				st, err := l.Stats(ctx)
				if err != nil {
					return err
				}
				trunc := "-"
				if st.Truncated {
					trunc = st.Truncation.String()
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", n, st.ID, len(st.Segments), st.SealedEntries,
					human(st.SealedBytes), trunc)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "show id, segments, entries and bytes of each log")
	return cmd
}

// segmentView is one segment as `log stat` shows it.
type segmentView struct {
	ID    int64  `json:"id"`
	Epoch int64  `json:"epoch"`
	State string `json:"state"`
	// Entries are those durable now: for an open segment, found by
	// scanning its storage.
	Entries   int64      `json:"entries"`
	LastEntry int64      `json:"last_entry"`
	Blocks    int64      `json:"blocks"`
	Bytes     int64      `json:"bytes"`
	CreatedAt time.Time  `json:"created_at"`
	SealedAt  *time.Time `json:"sealed_at,omitempty"`
}

type logView struct {
	Name            string        `json:"name"`
	ID              int64         `json:"id"`
	TruncatedBefore string        `json:"truncated_before,omitempty"`
	Entries         int64         `json:"entries"`
	Bytes           int64         `json:"bytes"`
	Segments        []segmentView `json:"segments"`
	// Retention and garbage collection.
	FirstAvailable   string     `json:"first_available"`
	Retention        string     `json:"retention"`
	OwnRetention     bool       `json:"own_retention"`
	HeldBytes        int64      `json:"held_bytes"`
	HeldObjects      int64      `json:"held_objects"`
	ReclaimableBytes int64      `json:"reclaimable_bytes"`
	Readers          int        `json:"readers"`
	LastGC           *time.Time `json:"last_gc,omitempty"`
}

// describeLog gathers a log's metadata and, for an open segment, what its
// storage holds now.
func (e *env) describeLog(ctx context.Context, l *woodpecker.Log) (logView, error) {
	st, err := l.Stats(ctx)
	if err != nil {
		return logView{}, err
	}
	v := logView{Name: st.Name, ID: st.ID, Segments: []segmentView{},
		FirstAvailable: st.FirstAvailable.String(), Retention: options.FormatDuration(st.Retention), OwnRetention: st.OwnRetention,
		HeldBytes: st.HeldBytes, HeldObjects: st.HeldObjects, ReclaimableBytes: st.ReclaimableBytes, Readers: st.Readers}
	if !st.LastGC.IsZero() {
		t := st.LastGC
		v.LastGC = &t
	}
	if st.Truncated {
		v.TruncatedBefore = st.Truncation.String()
	}
	for _, s := range st.Segments {
		sv := segmentView{ID: s.ID, Epoch: s.Epoch, State: "sealed", LastEntry: s.LastEntry,
			Blocks: s.Blocks, Bytes: s.Bytes, CreatedAt: s.CreatedAt}
		if s.Sealed {
			t := s.SealedAt
			sv.SealedAt = &t
		} else {
			sv.State = "open"
			info, err := e.backend.Scan(ctx, segment.Ref{LogID: st.ID, SegmentID: s.ID, Placement: s.Placement})
			if err != nil {
				return logView{}, errors.Wrapf(err, "scan open segment %d of log %q", s.ID, st.Name)
			}
			sv.LastEntry, sv.Blocks, sv.Bytes = info.LastEntry, info.Blocks, info.Bytes
		}
		sv.Entries = sv.LastEntry + 1
		v.Entries += sv.Entries
		v.Bytes += sv.Bytes
		v.Segments = append(v.Segments, sv)
	}
	return v, nil
}

func (a *app) logStatCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stat NAME",
		Short: "Describe a log: its segments, entries, bytes and truncation point",
		Args:  args(1, 1, "one log name"),
		RunE: a.admin(func(ctx context.Context, e *env, argv []string) error {
			l, err := e.openLog(ctx, argv[0])
			if err != nil {
				return err
			}
			v, err := e.describeLog(ctx, l)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			return printLogView(a.stdout, v)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printLogView(w io.Writer, v logView) error {
	trunc := "never truncated"
	if v.TruncatedBefore != "" {
		trunc = "truncated before " + v.TruncatedBefore
	}
	fmt.Fprintf(w, "log %q (id %d): %d entries, %s stored in %d segments; %s\n",
		v.Name, v.ID, v.Entries, human(v.Bytes), len(v.Segments), trunc)
	own := "retention.ttl"
	if v.OwnRetention {
		own = "the log's own"
	}
	lastGC := "never"
	if v.LastGC != nil {
		lastGC = v.LastGC.Local().Format(time.DateTime)
	}
	fmt.Fprintf(w, "retention %s (%s); first available entry %s; storage holds %s in %d objects, %s reclaimable; "+
		"%d readers; last garbage collection %s\n", v.Retention, own, v.FirstAvailable, human(v.HeldBytes), v.HeldObjects,
		human(v.ReclaimableBytes), v.Readers, lastGC)
	if len(v.Segments) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEGMENT\tSTATE\tEPOCH\tENTRIES\tIDS\tBLOCKS\tBYTES\tCREATED\tSEALED")
	for _, s := range v.Segments {
		ids := "-"
		if s.Entries > 0 {
			ids = fmt.Sprintf("%d/0..%d/%d", s.ID, s.ID, s.LastEntry)
		}
		sealed := "-"
		if s.SealedAt != nil {
			sealed = s.SealedAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%d\t%s\t%s\t%s\n", s.ID, s.State, s.Epoch, s.Entries, ids,
			s.Blocks, human(s.Bytes), s.CreatedAt.Local().Format(time.DateTime), sealed)
	}
	return tw.Flush()
}

func (a *app) logTruncateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "truncate NAME ID",
		Short: "Mark the entries before ID (segment/entry) as no longer needed",
		Long: `truncate marks every entry of the log before ID as no longer needed: readers
opened at the earliest entry start at ID, and garbage collection may delete what
lies before it. The point only moves forward; a lower ID changes nothing. An ID
beyond the log's last durable entry is refused (exit code 2) and changes nothing.

This is an administrator's truncation: it applies whichever writer owns the log.
A writer's own truncation (the library's Writer.Truncate, the WAL adaptors) is
refused once a newer writer has taken the log over.`,
		Args: args(2, 2, "a log name and an entry id (segment/entry)"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			id, err := woodpecker.ParseEntryID(argv[1])
			if err != nil {
				return walerr.Mark(err, errUsage)
			}
			return a.admin(func(ctx context.Context, e *env, argv []string) error {
				l, err := e.openLog(ctx, argv[0])
				if err != nil {
					return err
				}
				if err := l.Truncate(ctx, id); err != nil {
					return err
				}
				point, _, err := l.TruncationPoint(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "log %q: administrator truncation: entries before %s are no longer needed\n", argv[0], point)
				return nil
			})(cmd, argv)
		},
	}
}

func (a *app) logDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete logs (their data is left to garbage collection)",
		Long: `delete removes logs: the name is free at once and the log's writer is fenced.
The data stays in storage until garbage collection removes it.`,
		Args: args(1, -1, "at least one log name"),
		RunE: a.admin(func(ctx context.Context, e *env, names []string) error {
			for _, name := range names {
				err := e.client.DeleteLog(ctx, name)
				if errors.Is(err, woodpecker.ErrLogNotFound) {
					return walerr.Mark(errors.Newf("log %q does not exist", name), woodpecker.ErrLogNotFound)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "deleted log %q\n", name)
			}
			return nil
		}),
	}
}

// human formats a byte count for people: "146 B", "4.0 KiB", "1.21 GiB".
func human(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit || v <= -unit {
		v /= unit
		i++
		if i == 4 {
			break
		}
	}
	suffix := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[i]
	if v >= 100 {
		return fmt.Sprintf("%.0f %s", v, suffix)
	}
	if v >= 10 {
		return fmt.Sprintf("%.1f %s", v, suffix)
	}
	return fmt.Sprintf("%.2f %s", v, suffix)
}
