package segment

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

// A small reader and rewriter of data-driven test scripts, in the format of
// github.com/cockroachdb/datadriven (a subset of it):
//
//	# comments and blank lines between commands are kept
//	command arg key=value key=(v1,v2)
//	optional input lines
//	----
//	expected output, up to a blank line
//
// Output that holds blank lines goes between a doubled separator:
//
//	command
//	----
//	----
//	output
//
//	more output
//	----
//	----
//
// Run the tests with -rewrite to write the actual output into the scripts.
var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of segment/testdata data-driven scripts")

// ddCmd is one command of a script.
type ddCmd struct {
	pos      string // file:line, for messages
	pre      []string
	line     string // the command line as written
	cmd      string
	args     []ddArg
	input    string
	expected string
}

// ddArg is key, key=value or key=(v1,v2,...).
type ddArg struct {
	key  string
	vals []string
}

// arg returns the values of key, and whether the command has it.
func (d *ddCmd) arg(key string) ([]string, bool) {
	for _, a := range d.args {
		if a.key == key {
			return a.vals, true
		}
	}
	return nil, false
}

func parseDDArgs(fields []string) []ddArg {
	var args []ddArg
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			args = append(args, ddArg{key: f})
			continue
		}
		if strings.HasPrefix(v, "(") && strings.HasSuffix(v, ")") {
			args = append(args, ddArg{key: k, vals: strings.Split(v[1:len(v)-1], ",")})
			continue
		}
		args = append(args, ddArg{key: k, vals: []string{v}})
	}
	return args
}

func parseDDScript(t *testing.T, path string) (cmds []*ddCmd, tail []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	var pre []string
	for i := 0; i < len(lines); {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			pre = append(pre, l)
			i++
			continue
		}
		d := &ddCmd{pos: fmt.Sprintf("%s:%d", path, i+1), pre: pre, line: l}
		pre = nil
		fields := strings.Fields(l)
		d.cmd, d.args = fields[0], parseDDArgs(fields[1:])
		i++
		var input []string
		for i < len(lines) && lines[i] != "----" {
			input = append(input, lines[i])
			i++
		}
		if i == len(lines) {
			t.Fatalf("%s: command without ----", d.pos)
		}
		d.input = strings.Join(input, "\n")
		i++ // ----
		var out []string
		if i < len(lines) && lines[i] == "----" {
			// Output with blank lines: up to a doubled separator.
			i++
			for i+1 < len(lines) && !(lines[i] == "----" && lines[i+1] == "----") {
				out = append(out, lines[i])
				i++
			}
			if i+1 >= len(lines) {
				t.Fatalf("%s: output without its closing ----/----", d.pos)
			}
			i += 2
		} else {
			for i < len(lines) && strings.TrimSpace(lines[i]) != "" {
				out = append(out, lines[i])
				i++
			}
		}
		if len(out) > 0 {
			d.expected = strings.Join(out, "\n") + "\n"
		}
		cmds = append(cmds, d)
	}
	return cmds, pre
}

// runDataDriven runs the script at path, one command at a time, and
// compares what run returns with the expected output; with -rewrite it
// writes the actual output into the script instead.
func runDataDriven(t *testing.T, path string, run func(t *testing.T, d *ddCmd) string) {
	t.Helper()
	cmds, tail := parseDDScript(t, path)
	var b strings.Builder
	for _, d := range cmds {
		got := run(t, d)
		if got != "" && !strings.HasSuffix(got, "\n") {
			got += "\n"
		}
		if !*rewrite && got != d.expected {
			t.Fatalf("%s: %s\ngot:\n%s\nwant:\n%s", d.pos, d.line, got, d.expected)
		}
		for _, l := range d.pre {
			b.WriteString(l + "\n")
		}
		b.WriteString(d.line + "\n")
		if d.input != "" {
			b.WriteString(d.input + "\n")
		}
		b.WriteString("----\n")
		if strings.Contains(got, "\n\n") {
			b.WriteString("----\n" + got + "----\n----\n")
		} else {
			b.WriteString(got)
		}
	}
	for _, l := range tail {
		b.WriteString(l + "\n")
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
