package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var updateReference = flag.Bool("update", false, "rewrite the generated reference in README.md and the golden files in testdata/")

const (
	readmePath     = "../../README.md"
	referenceBegin = "<!-- BEGIN GENERATED FLAG REFERENCE: make reference -->"
	referenceEnd   = "<!-- END GENERATED FLAG REFERENCE -->"
)

// TestReadmeFlagReference keeps the README's flag reference equal to the
// commands' own flags, so the documentation cannot drift from the code.
// `make reference` rewrites it.
func TestReadmeFlagReference(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	begin := bytes.Index(readme, []byte(referenceBegin))
	end := bytes.Index(readme, []byte(referenceEnd))
	if begin < 0 || end < begin {
		t.Fatalf("README.md has no %q ... %q section", referenceBegin, referenceEnd)
	}
	want := flagReference(newRootCommand())
	got := string(readme[begin+len(referenceBegin) : end])
	if got == want {
		return
	}
	if !*updateReference {
		t.Fatalf("README.md's flag reference is out of date: run make reference")
	}
	out := append([]byte{}, readme[:begin+len(referenceBegin)]...)
	out = append(out, want...)
	out = append(out, readme[end:]...)
	if err := os.WriteFile(readmePath, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// flagReference renders one table per runnable command, in command order.
func flagReference(root *cobra.Command) string {
	var b strings.Builder
	b.WriteString("\n")
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c.Runnable() && c.HasParent() && c.LocalNonPersistentFlags().HasAvailableFlags() {
			fmt.Fprintf(&b, "#### `%s`\n\n%s\n\n| flag | default | meaning |\n|---|---|---|\n", c.CommandPath(), c.Short)
			c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
				if f.Hidden {
					return
				}
				name := "`--" + f.Name + "`"
				if f.Shorthand != "" && f.Shorthand != f.Name {
					name = "`-" + f.Shorthand + "`, " + name
				}
				def := f.DefValue
				if def == "" || def == "[]" {
					def = " "
				} else {
					def = "`" + def + "`"
				}
				fmt.Fprintf(&b, "| %s | %s | %s |\n", name, def, strings.ReplaceAll(f.Usage, "|", "\\|"))
			})
			b.WriteString("\n")
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return b.String()
}

// TestReadmeAnnotationReference checks that every annotation name the webhook
// reads (the constants in pkg/identity's annotation block) is documented in
// the README, with the default prefix.
func TestReadmeAnnotationReference(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	names := annotationNames(t, "../../pkg/identity/keys.go", "Annotation names")
	if len(names) < 6 {
		t.Fatalf("found only %d annotation names in pkg/identity/keys.go: %v", len(names), names)
	}
	for _, name := range names {
		if !bytes.Contains(readme, []byte("`eks.amazonaws.com/"+name+"`")) {
			t.Errorf("README.md does not document the annotation `eks.amazonaws.com/%s`", name)
		}
	}
	// The project's own keys are whole keys, under their fixed prefix.
	own := annotationNames(t, "../../pkg/identity/keys.go", "Project annotation names")
	if len(own) < 2 {
		t.Fatalf("found only %d project annotation names in pkg/identity/keys.go: %v", len(own), own)
	}
	for _, key := range own {
		if !strings.HasPrefix(key, "irsa-webhook.io/") || !bytes.Contains(readme, []byte("`"+key+"`")) {
			t.Errorf("README.md does not document the annotation `%s` (or it is not under irsa-webhook.io/)", key)
		}
	}
}

// annotationNames parses the string constants of the declaration block whose
// comment starts with heading.
func annotationNames(t *testing.T, path, heading string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST || gd.Doc == nil || !strings.HasPrefix(gd.Doc.Text(), heading) {
			continue
		}
		for _, spec := range gd.Specs {
			for _, v := range spec.(*ast.ValueSpec).Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					names = append(names, s)
				}
			}
		}
	}
	sort.Strings(names)
	return names
}
