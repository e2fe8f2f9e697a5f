package main

import (
	"fmt"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlzap "sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// logOptions configure the structured logger every long-running command uses.
type logOptions struct {
	format    string
	verbosity int
}

func (o *logOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.format, "log-format", "json", "Log format: json or console.")
	fs.IntVarP(&o.verbosity, "v", "v", 0, "Log verbosity: 0 logs decisions, 1 and up add detail.")
}

func (o *logOptions) validate() error {
	if o.format != "json" && o.format != "console" {
		return fmt.Errorf("--log-format: %q is not json or console", o.format)
	}
	if o.verbosity < 0 {
		return fmt.Errorf("--v: %d is negative", o.verbosity)
	}
	return nil
}

// setup builds the logger and makes it controller-runtime's too.
func (o *logOptions) setup() logr.Logger {
	encoder := ctrlzap.JSONEncoder()
	if o.format == "console" {
		encoder = ctrlzap.ConsoleEncoder()
	}
	log := ctrlzap.New(encoder, ctrlzap.UseDevMode(false), ctrlzap.Level(zapcore.Level(-o.verbosity)))
	ctrl.SetLogger(log)
	return log
}
