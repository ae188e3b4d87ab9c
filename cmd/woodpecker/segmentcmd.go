package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/cockroachdb/errors"
	"github.com/spf13/cobra"

	"github.com/woodpecker-wal/woodpecker/cmd/woodpecker/internal/segcheck"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

func (a *app) segmentCommand() *cobra.Command {
	cmd := groupCommand("segment", "Inspect and verify the stored form of a log's segments")
	cmd.AddCommand(a.segmentInspectCommand(), a.segmentVerifyCommand())
	return cmd
}

// segmentsOf returns the segments of l that ids name (all when ids is
// empty).
func segmentsOf(st woodpecker.Stats, ids []string) ([]woodpecker.SegmentInfo, error) {
	if len(ids) == 0 {
		return st.Segments, nil
	}
	byID := map[int64]woodpecker.SegmentInfo{}
	for _, s := range st.Segments {
		byID[s.ID] = s
	}
	var out []woodpecker.SegmentInfo
	for _, arg := range ids {
		id, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || id < 0 {
			return nil, usagef("segment %q: want a segment number such as 0", arg)
		}
		s, ok := byID[id]
		if !ok {
			return nil, errors.Newf("log %q has no segment %d ('woodpecker log stat %s' lists them)", st.Name, id, st.Name)
		}
		out = append(out, s)
	}
	return out, nil
}

// checkSegment reads one segment's stored form and checks it.
func (e *env) checkSegment(ctx context.Context, st woodpecker.Stats, s woodpecker.SegmentInfo, o segcheck.Options) (*segcheck.Report, error) {
	ex := segcheck.Expect{LogID: st.ID, SegmentID: s.ID, Sealed: s.Sealed, Blocks: s.Blocks, LastEntry: s.LastEntry,
		Generation: s.Generation}
	if e.rawStore != nil && shared.IsShared(s.Placement) && s.Generation == 0 {
		return segcheck.CheckShared(ctx, e.rawStore, segment.SegmentPrefix("", st.ID, s.ID), ex, o)
	}
	if e.rawStore != nil {
		return segcheck.CheckObjects(ctx, e.rawStore, segment.SegmentPrefix("", st.ID, s.ID), ex, o)
	}
	// The local layout of segment.FileBackend:
	// <root>/<logID>/<segmentID, 19 digits>.seg, .seal and .fence.
	root, err := filepath.Abs(e.r.cfg.Storage.RootPath)
	if err != nil {
		return nil, errors.Wrap(err, "storage.rootPath")
	}
	base := filepath.Join(root, strconv.FormatInt(st.ID, 10), fmt.Sprintf("%019d", s.ID))
	f := segcheck.File{Path: base + ".seg", SealPath: base + ".seal", FencePath: base + ".fence"}
	if f.Seal, err = readOptional(f.SealPath); err != nil {
		return nil, err
	}
	if f.Fence, err = readOptional(f.FencePath); err != nil {
		return nil, err
	}
	file, err := os.Open(f.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, errors.Wrapf(err, "open segment file")
	default:
		defer file.Close()
		fi, err := file.Stat()
		if err != nil {
			return nil, errors.Wrapf(err, "stat segment file")
		}
		f.Seg, f.Size = file, fi.Size()
	}
	return segcheck.CheckFile(f, ex, o)
}

// readOptional reads a file that may not exist (nil, nil then).
func readOptional(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, errors.Wrapf(err, "read %s", path)
}

func (a *app) segmentInspectCommand() *cobra.Command {
	var entries bool
	cmd := &cobra.Command{
		Use:   "inspect LOG [SEGMENT...]",
		Short: "Decode a log's segments: their objects or files, blocks and entry ranges",
		Long: `inspect reads the stored form of a log's segments (all, or those named by
number) and shows, for each, what etcd says about it and what storage holds: its
file or objects, its seal record, and every block with its location, size,
entry range, epoch, compression and validity. --entries prints the entries too.`,
		Args: args(1, -1, "a log name and optionally segment numbers"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx := cmd.Context()
			e, l, err := a.connectLog(ctx, argv[0])
			if err != nil {
				return err
			}
			st, err := l.Stats(ctx)
			if err != nil {
				return err
			}
			segs, err := segmentsOf(st, argv[1:])
			if err != nil {
				return err
			}
			if len(segs) == 0 {
				fmt.Fprintf(a.stdout, "log %q (id %d) has no segments\n", st.Name, st.ID)
				return nil
			}
			for i, s := range segs {
				if i > 0 {
					fmt.Fprintln(a.stdout)
				}
				r, err := e.checkSegment(ctx, st, s, segcheck.Options{KeepEntries: entries})
				if err != nil {
					return err
				}
				if err := printInspect(a.stdout, st, s, r, entries); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&entries, "entries", false, "print every entry (id, size and the start of its payload)")
	return cmd
}

func printInspect(w io.Writer, st woodpecker.Stats, s woodpecker.SegmentInfo, r *segcheck.Report, entries bool) error {
	state := "open"
	if s.Sealed {
		state = fmt.Sprintf("sealed with %d blocks, last entry %d", s.Blocks, s.LastEntry)
	}
	if s.Generation > 0 {
		state += fmt.Sprintf(", compacted into %d objects (layout %d)", s.Objects, s.Generation)
	}
	if s.Deleting {
		state += ", being deleted by garbage collection"
	}
	fmt.Fprintf(w, "log %q (id %d) segment %d: epoch %d, %s (etcd)\n", st.Name, st.ID, s.ID, s.Epoch, state)
	fmt.Fprintf(w, "  stored: %s\n", r.Summary())
	if r.Seal != nil {
		fmt.Fprintf(w, "  seal record %s: last entry %d, %d entries, epoch %d\n", r.SealLoc, r.Seal.LastEntry, r.Seal.EntryCount, r.Seal.Epoch)
	}
	if len(r.Blocks) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  BLOCK\tLOCATION\tSIZE\tENTRIES\tCOUNT\tPAYLOAD\tEPOCH\tCOMPRESSION\tSTATUS")
		for _, b := range r.Blocks {
			loc := b.Loc.String() // an object, perhaps with the offset in it
			if b.Loc.Key == "" {
				loc = "offset " + strconv.FormatInt(b.Loc.Offset, 10) // the file is named below
			}
			status := "ok"
			switch {
			case b.Fence != nil:
				status = fmt.Sprintf("fence (epoch %d)", b.Fence.Epoch)
			case b.Err != nil:
				status = "CORRUPT"
			}
			ids, count, payload, ep, comp := "-", "-", "-", "-", "-"
			if b.HeaderOK {
				h := b.Header
				ids = fmt.Sprintf("%d..%d", h.FirstEntry, h.NextEntry()-1)
				count = strconv.FormatUint(uint64(h.Count), 10)
				ep = strconv.FormatInt(h.Epoch, 10)
				comp = h.Compression().String()
				if b.Err == nil {
					payload = human(b.EntrySize)
				}
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.No, loc, human(b.Size), ids, count, payload, ep, comp, status)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Blocks) > 0 && r.Blocks[0].Loc.File != "" {
		fmt.Fprintf(w, "  file: %s\n", r.Blocks[0].Loc.File)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  CORRUPT: %s (%s)\n", p.What, p.Loc)
	}
	if entries {
		for _, b := range r.Blocks {
			for i, p := range b.Entries {
				fmt.Fprintf(w, "    %d/%d\t%d B\t%s\n", s.ID, b.Header.FirstEntry+int64(i), len(p), preview(p, 64))
			}
		}
	}
	return nil
}

// preview shows the start of a payload: as text when it is printable
// UTF-8, else in hex.
func preview(p []byte, n int) string {
	cut := p
	if len(cut) > n {
		cut = cut[:n]
	}
	printable := utf8.Valid(cut)
	for _, r := range string(cut) {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			printable = false
			break
		}
	}
	var s string
	if printable {
		s = strconv.Quote(string(cut))
	} else {
		s = "0x" + hex.EncodeToString(cut)
	}
	if len(p) > n {
		s += "..."
	}
	return s
}

func (a *app) segmentVerifyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "verify [LOG [SEGMENT...]]",
		Short: "Verify every block's CRC and the segments' structure; report corruption precisely",
		Long: `verify reads every block of the segments named (all segments of LOG, or of
every log when none is named), checks every CRC, the entry structure, the chain
of blocks (numbers, entry ranges, epochs) and the seal records against etcd, and
reports each problem with its log, segment, block and location (file and offset,
or object key). Findings that are not corruption (a torn tail left by a crash,
a fence, a fenced writer's leftovers) are reported as notes.

The exit status is 5 when corruption was found, 0 otherwise.`,
		Args: args(0, -1, "an optional log name and segment numbers"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx := cmd.Context()
			e, err := a.connect(ctx, connectOptions{})
			if err != nil {
				return err
			}
			var names []string
			if len(argv) > 0 {
				names = argv[:1]
			} else if names, err = e.client.ListLogs(ctx); err != nil {
				return err
			}
			var segs, blocks, ents, problems int
			for _, name := range names {
				l, err := e.openLog(ctx, name)
				if err != nil {
					if len(argv) == 0 && errors.Is(err, woodpecker.ErrLogNotFound) {
						continue // deleted meanwhile
					}
					return err
				}
				st, err := l.Stats(ctx)
				if err != nil {
					return err
				}
				var ids []string
				if len(argv) > 1 {
					ids = argv[1:]
				}
				list, err := segmentsOf(st, ids)
				if err != nil {
					return err
				}
				for _, s := range list {
					if s.Deleting {
						fmt.Fprintf(a.stdout, "log %q segment %d: skipped (being deleted by garbage collection)\n", st.Name, s.ID)
						continue
					}
					r, err := e.checkSegment(ctx, st, s, segcheck.Options{})
					if err != nil {
						return err
					}
					segs++
					ents += int(r.Entries)
					for _, b := range r.Blocks {
						if b.Fence == nil {
							blocks++
						}
					}
					status := "ok"
					if !r.OK() {
						status = "CORRUPT"
					}
					fmt.Fprintf(a.stdout, "log %q segment %d: %s (%s)\n", st.Name, s.ID, status, r.Summary())
					for _, n := range r.Notes {
						fmt.Fprintf(a.stdout, "  note: %s\n", n)
					}
					for _, p := range r.Problems {
						problems++
						where := ""
						if p.Loc.File != "" || p.Loc.Key != "" {
							where = " at " + p.Loc.String()
						}
						fmt.Fprintf(a.stdout, "  CORRUPT log %q segment %d%s: %s\n", st.Name, s.ID, where, p.What)
					}
				}
			}
			fmt.Fprintf(a.stdout, "verified %s, %s, %s: %s\n", plural(segs, "segment"), plural(blocks, "block"),
				plural(ents, "entry"), plural(problems, "problem"))
			if problems > 0 {
				return walerr.Mark(errors.Newf("%s found: the data named above is corrupt", plural(problems, "problem")), errCorruptFound)
			}
			return nil
		},
	}
}

// plural returns "1 entry", "2 entries", "0 blocks".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(word, "y"))
	}
	return fmt.Sprintf("%d %ss", n, word)
}
