package arch

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/config"
)

// familyBranchAllowed are the files that may branch on the family: this package and the
// per-family forward passes in lib/models (paths relative to the repository root).
func familyBranchAllowed(rel string) bool {
	switch rel {
	case "lib/models/llama.go", "lib/models/chatglm.go", "lib/models/chatglm_load.go":
		return true
	}
	return strings.HasPrefix(rel, "lib/arch/")
}

// TestNoFamilyBranches: no Go file (tests aside) outside lib/arch and the per-family model files
// compares a config's Arch with a family: no `x == arch.Llama` / `x != arch.ChatGLM`, no
// `switch cfg.Arch`, no `case arch.Qwen2:`, no `cfg.Arch == "llama"`. Such code asks the family's
// descriptor (arch.Of(cfg)) instead. The check parses every file (go/ast), so comments and strings
// do not count.
func TestNoFamilyBranches(t *testing.T) {
	root := filepath.Join("..", "..")
	consts := familyConsts(t)
	var found []string
	var files int
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") || familyBranchAllowed(rel) {
			return nil
		}
		files++
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, pos := range familyBranches(f, consts) {
			p := fset.Position(pos)
			found = append(found, rel+":"+strconv.Itoa(p.Line))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("checked only %d Go files under %s: the walk does not see the repository", files, root)
	}
	for _, f := range found {
		t.Errorf("%s: branches on the model family; ask arch.Of(cfg) (a Family method) instead", f)
	}
}

// familyBranches returns the positions in f where a value is compared with a family: an ==/!=
// or a switch case whose operand is a family constant of lib/arch (imported under any name) or
// whose one side is a .Arch field and the other a family's name as a string literal, and every `switch x.Arch`.
func familyBranches(f *ast.File, consts map[string]bool) []token.Pos {
	archName := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); strings.HasSuffix(p, "/lib/arch") {
			archName = "arch"
			if imp.Name != nil {
				archName = imp.Name.Name
			}
		}
	}
	isFamily := func(e ast.Expr) bool {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok || archName == "" {
			return false
		}
		x, ok := sel.X.(*ast.Ident)
		if !ok || x.Name != archName {
			return false
		}
		return consts[sel.Sel.Name]
	}
	isArchField := func(e ast.Expr) bool {
		sel, ok := e.(*ast.SelectorExpr)
		return ok && sel.Sel.Name == "Arch"
	}
	isString := func(e ast.Expr) bool { // a family's name as a string literal
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return false
		}
		v, _ := strconv.Unquote(lit.Value)
		_, err := ByName(config.Arch(v))
		return err == nil
	}
	var out []token.Pos
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BinaryExpr:
			if n.Op != token.EQL && n.Op != token.NEQ {
				return true
			}
			if isFamily(n.X) || isFamily(n.Y) || isArchField(n.X) && isString(n.Y) || isString(n.X) && isArchField(n.Y) {
				out = append(out, n.Pos())
			}
		case *ast.SwitchStmt:
			if n.Tag != nil && isArchField(n.Tag) {
				out = append(out, n.Pos())
			}
		case *ast.CaseClause:
			for _, e := range n.List {
				if isFamily(e) {
					out = append(out, e.Pos())
				}
			}
		}
		return true
	})
	return out
}

// familyConsts returns the names of this package's family constants (those of type
// config.Arch in arch.go), one per supported family.
func familyConsts(t *testing.T) map[string]bool {
	f, err := parser.ParseFile(token.NewFileSet(), "arch.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if sel, ok := vs.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Arch" {
				for _, n := range vs.Names {
					out[n.Name] = true
				}
			}
		}
	}
	if len(out) != len(families) {
		t.Fatalf("arch.go declares %d family constants %v for %d families", len(out), out, len(families))
	}
	return out
}
