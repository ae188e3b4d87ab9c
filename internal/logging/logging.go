// Package logging builds Woodpecker's zap logger from the log section of the
// configuration (options.LogConfig): its level and its format, console for
// people or json for log collectors.
package logging

import (
	"io"
	"os"
	"time"

	"github.com/cockroachdb/errors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/woodpecker-wal/woodpecker/options"
)

// Level returns the zap level of l. An unknown level is an error naming the
// key log.level (options.Validate reports it first in practice).
func Level(l options.LogLevel) (zapcore.Level, error) {
	switch l {
	case options.LogDebug:
		return zapcore.DebugLevel, nil
	case options.LogInfo:
		return zapcore.InfoLevel, nil
	case options.LogWarn:
		return zapcore.WarnLevel, nil
	case options.LogError:
		return zapcore.ErrorLevel, nil
	}
	return 0, errors.Wrapf(options.ErrInvalidConfig, "log.level: unknown value %q (allowed: debug, info, warn, error)", l)
}

// New returns a logger that writes entries at cfg.Level and above to w
// (os.Stderr when nil), formatted as cfg.Format says:
//
//   - console: "2026-01-02T15:04:05.000Z07:00  INFO  name  message  key=value ..."
//     one line per entry, for people;
//   - json: one JSON object per line with the keys ts (RFC 3339 with
//     milliseconds), level, logger, msg and the fields, for log collectors.
//
// Errors logged with zap.Error carry no stack trace in either format. The
// logger is safe for concurrent use; w must be safe for concurrent writes
// if it is shared with other writers. Call Sync before the process exits.
func New(cfg options.LogConfig, w io.Writer) (*zap.Logger, error) {
	level, err := Level(cfg.Level)
	if err != nil {
		return nil, err
	}
	if w == nil {
		w = os.Stderr
	}
	enc := zapcore.EncoderConfig{
		TimeKey:        "ts",
		LevelKey:       "level",
		NameKey:        "logger",
		MessageKey:     "msg",
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeTime:     zapcore.TimeEncoderOfLayout("2006-01-02T15:04:05.000Z07:00"),
		EncodeDuration: zapcore.StringDurationEncoder,
		EncodeName:     zapcore.FullNameEncoder,
	}
	var encoder zapcore.Encoder
	switch cfg.Format {
	case options.LogJSON:
		enc.EncodeLevel = zapcore.LowercaseLevelEncoder
		encoder = zapcore.NewJSONEncoder(enc)
	case options.LogConsole:
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		enc.ConsoleSeparator = "  "
		encoder = zapcore.NewConsoleEncoder(enc)
	default:
		return nil, errors.Wrapf(options.ErrInvalidConfig, "log.format: unknown value %q (allowed: console, json)", cfg.Format)
	}
	var core zapcore.Core = plainErrors{zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(w)), zap.NewAtomicLevelAt(level))}
	// Sample repeated messages so that a storm (every append failing)
	// cannot flood the output: per second, the first 10 of each message,
	// then one in 100.
	core = zapcore.NewSamplerWithOptions(core, time.Second, 10, 100)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w)))), nil
}

// plainErrors writes error fields as their message only. zap would add an
// "<key>Verbose" field with %+v of any error that formats itself, which for
// cockroachdb/errors is a multi-line stack trace.
type plainErrors struct{ zapcore.Core }

func plainFields(fields []zapcore.Field) []zapcore.Field {
	out, copied := fields, false
	for i, f := range fields {
		if f.Type != zapcore.ErrorType {
			continue
		}
		if !copied { // the caller's slice is not ours to change
			out, copied = append([]zapcore.Field(nil), fields...), true
		}
		msg := "<nil>"
		if err, ok := f.Interface.(error); ok && err != nil {
			msg = err.Error()
		}
		out[i] = zap.String(f.Key, msg)
	}
	return out
}

func (c plainErrors) With(fields []zapcore.Field) zapcore.Core {
	return plainErrors{c.Core.With(plainFields(fields))}
}

func (c plainErrors) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c plainErrors) Write(e zapcore.Entry, fields []zapcore.Field) error {
	return c.Core.Write(e, plainFields(fields))
}
