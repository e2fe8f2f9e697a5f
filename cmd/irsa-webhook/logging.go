package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlzap "sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// logOptions configure the structured logger every long-running command uses.
type logOptions struct {
	format    string
	verbosity int
	// out is where log lines go; nil means standard error.
	out io.Writer
}

func (o *logOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.format, "log-format", "json", "Log format: json or console.")
	fs.IntVarP(&o.verbosity, "v", "v", 0, "Log verbosity: 0 logs decisions (sampled above 100 a second), 1 and up add detail, 2 and up turn sampling off.")
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

// setup builds the logger and makes it controller-runtime's too. Lines are
// buffered and written at least every second, so no request waits on a
// write to standard error: the webhook logs admission decisions, and a
// synchronous write in the request's path showed in its tail latency
// (docs/benchmarks.md). Flushing writes and never fsyncs: when standard
// error is a file, an fsync held the log's lock, and with it every
// admission, for as long as the disk took. close writes what is buffered;
// call it before the command returns.
//
// Below --v=2 lines are sampled as controller-runtime's production logger
// does: each second, the first 100 lines with one message, then every
// 100th. A Pod storm cannot flood the node's log pipeline; the metrics
// count every decision.
func (o *logOptions) setup() (log logr.Logger, close func()) {
	encoder := ctrlzap.JSONEncoder()
	if o.format == "console" {
		encoder = ctrlzap.ConsoleEncoder()
	}
	out := o.out
	if out == nil {
		out = os.Stderr
	}
	// Hiding out's own Sync (os.File's is fsync) makes AddSync's a no-op.
	writer := zapcore.AddSync(struct{ io.Writer }{out})
	buffered := &zapcore.BufferedWriteSyncer{WS: writer, Size: 256 << 10, FlushInterval: time.Second}
	log = ctrlzap.New(encoder, ctrlzap.UseDevMode(false), ctrlzap.Level(zapcore.Level(-o.verbosity)), ctrlzap.WriteTo(buffered))
	ctrl.SetLogger(log)
	return log, func() { _ = buffered.Stop() }
}

// run is the start of every long-running command: flag errors (flagErr
// and the log flags') are reported together, then run gets the command's
// context (ended by the first SIGTERM or SIGINT, see runMain) carrying the
// logger, named name when given. The logs are written before it returns.
func (o *logOptions) run(cmd *cobra.Command, flagErr error, name string, run func(context.Context) error) error {
	if err := errors.Join(flagErr, o.validate()); err != nil {
		return err
	}
	log, closeLogs := o.setup()
	defer closeLogs()
	if name != "" {
		log = log.WithName(name)
	}
	return run(logr.NewContext(cmd.Context(), log))
}
