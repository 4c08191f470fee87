// Package httpx is what northd's HTTP faces share: the bearer-token check
// against the store with its refusals, JSON answers, header values,
// strict JSON decoding, and the JSON failure the admin listener's
// net/http handlers write. It knows no route: the faces (the login's, the
// events', the subscriptions', the admin listener's) each send their own
// bodies through it, so that every one refuses a token, and answers JSON,
// the same way.
package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"northd/internal/wire"
)

// JSONType is the Content-Type of every JSON answer.
const JSONType = "application/json; charset=utf-8"

// Header names and values, pre-built so that setting them allocates
// nothing.
var (
	ContentTypeJSON       = []byte(JSONType)
	HeaderRetryAfter      = []byte("Retry-After")
	HeaderWWWAuthenticate = []byte("WWW-Authenticate")
	// RetryAfterOne is the Retry-After of a refusal that may be retried
	// at once, on this instance or another.
	RetryAfterOne = []byte("1")
)

// What every listener answers a path it does not know, and a known path
// asked with a method it does not take (beside an Allow header): the
// subsystems' ports and the admin listener alike.
const (
	HTMLType             = "text/html; charset=utf-8"
	TextType             = "text/plain; charset=utf-8"
	NotFoundBody         = `<h1>404 Not Found</h1>`
	MethodNotAllowedBody = "405 Method Not Allowed: see the Allow header for the methods this path takes\n"
)

// AnswerJSON answers status with body, which the response keeps without a
// copy: body must not change afterwards (a pre-built answer).
func AnswerJSON(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(ContentTypeJSON)
	ctx.Response.SetBodyRaw(body)
}

// AnswerProblem answers status with code 1 and description.
func AnswerProblem(ctx *fasthttp.RequestCtx, status int, description string) {
	AnswerJSON(ctx, status, wire.AppendFailureBody(nil, 1, false, description))
}

// AnswerValue answers status with v in JSON.
func AnswerValue(ctx *fasthttp.RequestCtx, status int, v any) {
	body, _ := json.Marshal(v)
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(ContentTypeJSON)
	ctx.Response.SetBody(body)
}

// StrictUnmarshal decodes body, one JSON value, into v; a field v does
// not have is an error, so that a misspelt field is told rather than
// ignored.
func StrictUnmarshal(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

// WriteFailure answers a net/http request status with the failure shape
// {"code": code, "description": description}: the sentence a caller can
// act on.
func WriteFailure(w http.ResponseWriter, status int, code int, description string) {
	w.Header().Set("Content-Type", JSONType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(wire.AppendFailureBody(nil, code, false, description))
}

// NoSuchSubsystem is the sentence for a ?subsystem= that names none of
// names, the subsystems this instance serves, for a person to choose from:
// the admin listener's routes say it alike.
func NoSuchSubsystem(name string, names []string) string {
	return fmt.Sprintf("no subsystem here is named %q (this instance serves %s)", name, strings.Join(names, ", "))
}

// AllowHeaders turns a router's paths by method into each path's Allow
// header: its methods and OPTIONS, sorted, as the router writes them. The
// path "*" (OPTIONS *) allows every method the server has.
func AllowHeaders(methodPaths map[string][]string) map[string][]byte {
	byPath := map[string][]string{"*": {fasthttp.MethodOptions}}
	for method, paths := range methodPaths {
		for _, p := range paths {
			if len(byPath[p]) == 0 {
				byPath[p] = []string{fasthttp.MethodOptions}
			}
			byPath[p] = append(byPath[p], method)
			if !slices.Contains(byPath["*"], method) {
				byPath["*"] = append(byPath["*"], method)
			}
		}
	}
	allow := make(map[string][]byte, len(byPath))
	for p, methods := range byPath {
		slices.Sort(methods)
		allow[p] = []byte(strings.Join(methods, ", "))
	}
	return allow
}
