package option

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	pkgerrors "github.com/pkg/errors"
)

func TestErrorfAndRename(t *testing.T) {
	sentinel := errors.New("too long")
	err := Errorf("%s %g must be in [0, 1) (with %s %d): %w", Name("prune.Options.Ratio"), 1.5, Name("prune.Options.RoundTo"), 3, sentinel)
	if got := err.Error(); got != "prune.Options.Ratio 1.5 must be in [0, 1) (with prune.Options.RoundTo 3): too long" {
		t.Errorf("message %q", got)
	}
	wrapped := pkgerrors.WithMessage(pkgerrors.Wrap(err, "step 1"), "model m")
	var oe *Error
	if !errors.As(wrapped, &oe) || len(oe.Names) != 2 || !errors.Is(wrapped, sentinel) {
		t.Fatalf("wrapped: As %v (names %v), Is(sentinel) %v", oe != nil, oe, errors.Is(wrapped, sentinel))
	}
	flags := map[Name]string{"prune.Options.Ratio": "--ratio"}
	got := Rename(wrapped, func(n Name) string { return flags[n] })
	if want := "model m: step 1: --ratio 1.5 must be in [0, 1) (with prune.Options.RoundTo 3): too long"; got != want {
		t.Errorf("renamed %q, want %q", got, want)
	}
	if got := Rename(errors.New("plain --x"), func(Name) string { return "y" }); got != "plain --x" {
		t.Errorf("a plain error renamed to %q", got)
	}
	r := pkgerrors.WithMessage(Renamed(wrapped, "prune.Options.RoundTo", "other.RoundTo"), "outer")
	if got := Rename(r, func(n Name) string {
		return map[Name]string{"other.RoundTo": "--other", "prune.Options.Ratio": "--ratio"}[n]
	}); got != "outer: model m: step 1: --ratio 1.5 must be in [0, 1) (with --other 3): too long" || !errors.Is(r, sentinel) {
		t.Errorf("renamed option: %q (Is sentinel %v)", got, errors.Is(r, sentinel))
	}
}

// TestLibraryErrorsNameNoFlags: no error message built in lib/ (errors.New/Errorf/Wrap…,
// fmt.Errorf, option.Errorf) names a command-line flag ("--ratio"): notebook users never typed one.
// Library messages name the option (option.Name); the command line says its flags.
func TestLibraryErrorsNameNoFlags(t *testing.T) {
	flagRe := regexp.MustCompile(`(^|[\s(/,"])--[a-z]`)
	builders := map[string]bool{"New": true, "Errorf": true, "Wrap": true, "Wrapf": true, "WithMessage": true, "WithMessagef": true}
	root := filepath.Join("..")
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		files++
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !builders[sel.Sel.Name] {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "errors" && pkg.Name != "fmt" && pkg.Name != "option" {
				return true
			}
			for _, a := range call.Args {
				lit, ok := a.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				s, _ := strconv.Unquote(lit.Value)
				if flagRe.MatchString(s) && !strings.Contains(s, "npm install") { // a shell command to run is not a flag of ours
					t.Errorf("%s: error message names a command-line flag: %s", fset.Position(lit.Pos()), lit.Value)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("checked only %d files under %s", files, root)
	}
}
