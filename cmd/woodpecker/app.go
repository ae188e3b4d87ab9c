package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/cockroachdb/errors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// Exit codes, as documented in the package comment and --help.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitUnavailable = 4
	exitCorrupt     = 5
	exitInterrupted = 130
)

// Errors that choose an exit code; wrap or mark with them.
var (
	// errUsage: bad flags or arguments.
	errUsage = errors.New("usage")
	// errUnavailable: etcd or the object store cannot be reached.
	errUnavailable = errors.New("unavailable")
	// errCorruptFound: verification found corrupt data.
	errCorruptFound = errors.New("corrupt data found")
	// errBadInput: the data a command read (stdin) is malformed. It exits
	// like a usage error, but the command line was fine: no usage hint.
	errBadInput = errors.New("bad input")
)

// usagef returns a usage error with the message given.
func usagef(format string, args ...any) error {
	return walerr.Mark(errors.Newf(format, args...), errUsage)
}

// badInputf returns a bad-input error with the message given.
func badInputf(format string, args ...any) error {
	return walerr.Mark(errors.Newf(format, args...), errBadInput)
}

// app is one invocation of the command: its streams, flags and the
// connections opened for it.
type app struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	lookup func(string) (string, bool)

	g   globalFlags
	env *env // opened by connect, closed by run
}

// globalFlags are the flags every command accepts.
type globalFlags struct {
	configPath      string
	dataDir         string
	etcd            []string
	etcdRoot        string
	storage         string
	storageEndpoint string
	storageBucket   string
	storageRoot     string
	logLevel        string
	logFormat       string
	metricsAddr     string
	flags           *pflag.FlagSet
}

// run executes the command line args and returns the exit code. Errors are
// printed to stderr as one line (a configuration with several problems
// prints one line per problem), never with a stack trace.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	a := &app{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, lookup: lookup}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if a.env != nil {
		if cerr := a.env.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}
	if err == nil {
		return exitOK
	}
	code := exitCode(ctx, err)
	if code != exitInterrupted {
		fmt.Fprintf(stderr, "woodpecker: %s\n", message(err))
	} else {
		fmt.Fprintln(stderr, "woodpecker: interrupted")
	}
	if errors.Is(err, errUsage) && !strings.Contains(err.Error(), "--help") {
		fmt.Fprintln(stderr, "Run 'woodpecker --help' for usage.")
	}
	return code
}

// exitCode maps an error to the exit code documented in the package
// comment.
func exitCode(ctx context.Context, err error) int {
	switch {
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, errUsage), errors.Is(err, errBadInput), errors.Is(err, options.ErrInvalidConfig),
		errors.Is(err, woodpecker.ErrBeyondEnd):
		return exitUsage
	case errors.Is(err, woodpecker.ErrLogNotFound):
		return exitNotFound
	case errors.Is(err, errUnavailable), errors.Is(err, context.DeadlineExceeded):
		return exitUnavailable
	case errors.Is(err, errCorruptFound), errors.Is(err, woodpecker.ErrCorrupt):
		return exitCorrupt
	}
	return exitFailure
}

// message is what the user reads for err: its text, with what the
// woodpecker errors mean in plain words where the text alone is terse.
func message(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, woodpecker.ErrUnknownOutcome):
		msg += " (the entry may or may not be in the log: read it back to know)"
	case errors.Is(err, context.DeadlineExceeded):
		msg += " (no answer in time: check that etcd and the storage are reachable)"
	}
	return msg
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "woodpecker",
		Short: "Run, measure and administer Woodpecker write-ahead logs",
		Long: `woodpecker runs, measures and administers Woodpecker write-ahead logs.

Connection settings come from --config (a YAML file like configs/woodpecker.yaml),
then WOODPECKER_* environment variables, then flags. With no etcd and no storage
settings at all, woodpecker runs on an embedded default: an etcd server inside
the process (data in <data-dir>/etcd) and log data in <data-dir>/logs, so
nothing needs installing. While one woodpecker process runs on a data
directory, others started on it use its etcd.

Exit codes: 0 success, 1 failure, 2 bad usage, invalid configuration or input,
3 log not found, 4 etcd or object store unreachable, 5 corrupt data found,
130 interrupted.`,
		Example: `  woodpecker bench --raw
  woodpecker log create orders
  seq 5 | woodpecker append orders
  woodpecker tail orders --from earliest -n 5
  woodpecker segment verify orders
  woodpecker --config prod.yaml config print`,
		Version:           version(),
		SilenceUsage:      true,
		SilenceErrors:     true,
		DisableAutoGenTag: true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return walerr.Mark(err, errUsage)
	})
	f := root.PersistentFlags()
	a.g.flags = f
	f.StringVarP(&a.g.configPath, "config", "c", "", "YAML configuration file (see configs/woodpecker.yaml)")
	f.StringVar(&a.g.dataDir, "data-dir", "data", "directory of the embedded default (etcd and local log data)")
	f.StringSliceVar(&a.g.etcd, "etcd", nil, "etcd endpoints, host:port (sets etcd.endpoints)")
	f.StringVar(&a.g.etcdRoot, "etcd-root", "", "prefix of Woodpecker's keys in etcd (sets etcd.rootPath)")
	f.StringVar(&a.g.storage, "storage", "", "storage type: local, minio or s3 (sets storage.type)")
	f.StringVar(&a.g.storageEndpoint, "storage-endpoint", "", "object store host:port (sets storage.endpoint)")
	f.StringVar(&a.g.storageBucket, "storage-bucket", "", "bucket (sets storage.bucket)")
	f.StringVar(&a.g.storageRoot, "storage-root", "", "key prefix in the bucket, or the directory for local (sets storage.rootPath)")
	f.StringVar(&a.g.logLevel, "log-level", "", "diagnostic log level: debug, info, warn or error (sets log.level)")
	f.StringVar(&a.g.logFormat, "log-format", "", "diagnostic log format: console or json (sets log.format)")
	f.StringVar(&a.g.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at host:port/metrics (sets metrics.addr)")

	root.AddCommand(a.logCommand(), a.appendCommand(), a.tailCommand(), a.segmentCommand(),
		a.configCommand(), a.benchCommand(), a.logstoreCommand(), a.standaloneCommand())
	// Unknown commands and bad arguments are usage errors too.
	var mark func(c *cobra.Command)
	mark = func(c *cobra.Command) {
		if c.Args != nil {
			check := c.Args
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return walerr.Mark(err, errUsage)
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			mark(sub)
		}
	}
	mark(root)
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("unknown command %q", args[0])
		}
		return nil
	}
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	return root
}

// args returns a cobra.PositionalArgs that wants between min and max
// arguments (max < 0: no limit), described by names for the message.
func args(min, max int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < min:
			return usagef("%s needs %s (usage: %s)", cmd.CommandPath(), names, cmd.UseLine())
		case max >= 0 && len(args) > max:
			return usagef("%s takes %s, got %d arguments: %s", cmd.CommandPath(), names, len(args), strings.Join(args, " "))
		}
		return nil
	}
}

// groupCommand returns a command that only holds subcommands; run without
// one, or with an unknown one, it is a usage error.
func groupCommand(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("%s needs a subcommand (see '%s --help')", cmd.CommandPath(), cmd.CommandPath())
			}
			return usagef("unknown command %q for %s (see '%s --help')", args[0], cmd.CommandPath(), cmd.CommandPath())
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
}
