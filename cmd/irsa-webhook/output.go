package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// Output formats of the admin commands.
const (
	outputJSON = "json"
	outputText = "text"
)

// addOutputFlag binds -o/--output to output, with its value as default.
func addOutputFlag(fs *pflag.FlagSet, output *string, usage string) {
	fs.StringVarP(output, "output", "o", *output, usage)
}

// validateOutput reports an --output that is not one of formats.
func validateOutput(output string, formats ...string) error {
	if slices.Contains(formats, output) {
		return nil
	}
	return fmt.Errorf("--output: %q is not %s", output, strings.Join(formats, " or "))
}
