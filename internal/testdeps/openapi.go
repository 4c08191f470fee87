package testdeps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// OpenAPIFile is the API's one description, relative to the repository's
// root: every answer the tests see over HTTP is checked against it.
const OpenAPIFile = "docs/openapi.yaml"

var openAPI struct {
	once sync.Once
	doc  *openapi3.T
	err  error
}

// OpenAPI is docs/openapi.yaml, loaded and validated once per test binary,
// found from the test's directory upwards (the root, e2e/, lbtest/, an
// internal package, or the tools' modules). Callers must not change it.
func OpenAPI(tb testing.TB) *openapi3.T {
	tb.Helper()
	doc, err := openAPIDoc()
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

// openAPIDoc is OpenAPI's document for callers that must not stop the
// test: a webhook receiver's handler, and the checks of Send and Try,
// which tests call from goroutines of their own.
func openAPIDoc() (*openapi3.T, error) {
	openAPI.once.Do(func() { openAPI.doc, openAPI.err = loadOpenAPI() })
	return openAPI.doc, openAPI.err
}

// reportMismatch runs check against the document and reports what it
// finds with tb.Error, never tb.Fatal, so that it is safe off the test's
// goroutine: the one way Send and the Check functions fail a test.
func reportMismatch(tb testing.TB, check func(doc *openapi3.T) error) {
	tb.Helper()
	doc, err := openAPIDoc()
	if err == nil {
		err = check(doc)
	}
	if err != nil {
		tb.Error(err)
	}
}

func loadOpenAPI() (*openapi3.T, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for {
		path := filepath.Join(dir, OpenAPIFile)
		if _, err := os.Stat(path); err == nil {
			doc, err := openapi3.NewLoader().LoadFromFile(path)
			if err != nil {
				return nil, fmt.Errorf("load %s: %w", path, err)
			}
			if err := doc.Validate(context.Background()); err != nil {
				return nil, fmt.Errorf("%s is not valid OpenAPI: %w", path, err)
			}
			return doc, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, errors.New("no " + OpenAPIFile + " in this directory or any above it")
		}
		dir = parent
	}
}
