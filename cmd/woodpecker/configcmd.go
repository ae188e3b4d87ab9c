package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) configCommand() *cobra.Command {
	cmd := groupCommand("config", "Print or validate the configuration")
	cmd.AddCommand(a.configPrintCommand(), a.configValidateCommand())
	return cmd
}

func (a *app) configPrintCommand() *cobra.Command {
	var noSources bool
	cmd := &cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration, each key with where its value came from",
		Long: `print shows the configuration a command would run with: the defaults overlaid
with the --config file, the WOODPECKER_* environment and the flags. Each key
carries a comment naming its source: default, file:<path>, env:<VARIABLE>,
flag:--<name>, or the embedded default. Secrets are shown as <redacted>.`,
		Args: args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := a.loadConfig()
			if err != nil {
				return err
			}
			cfg := r.cfg.Redacted()
			if r.embedded {
				fmt.Fprintf(a.stdout, "# Embedded default: no etcd or storage is configured, so etcd runs inside the\n"+
					"# process with its data in %s, and log data is kept in %s.\n", r.etcdDir(), r.logsDir())
				cfg.Etcd.Endpoints = []string{"embedded"}
			}
			if noSources {
				_, err = a.stdout.Write(cfg.Render(false))
			} else {
				_, err = a.stdout.Write(cfg.Render(true))
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&noSources, "no-sources", false, "print plain YAML, without the source comments")
	return cmd
}

func (a *app) configValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check a configuration file (and the environment and flags over it)",
		Long: `validate loads FILE (or the --config file) the way every command does, over the
defaults and under the WOODPECKER_* environment and the flags, and checks it.
Each problem names its key and says what is allowed; the exit status is 2 when
there is one.`,
		Args: args(0, 1, "at most one file"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if len(argv) == 1 {
				if a.g.flags.Changed("config") && a.g.configPath != argv[0] {
					return usagef("give the file as an argument or with --config, not both")
				}
				a.g.configPath = argv[0]
			}
			r, err := a.loadConfig()
			if err != nil {
				return err
			}
			what := "the default configuration"
			if a.g.configPath != "" {
				what = "configuration " + a.g.configPath
			}
			mode := "etcd at " + fmt.Sprint(r.cfg.Etcd.Endpoints) + ", storage " + string(r.cfg.Storage.Type)
			if r.embedded {
				mode = "embedded default in " + r.dataDir
			}
			fmt.Fprintf(a.stdout, "%s is valid (%s)\n", what, mode)
			return nil
		},
	}
}
