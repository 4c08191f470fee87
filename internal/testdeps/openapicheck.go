package testdeps

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// The check of every answer against docs/openapi.yaml. Tests run northd on
// random ports, so an answer is routed by its path and method alone, over
// the paths of both listeners. Besides its operation's answers, an answer
// may be one the document names by extension: x-unknown-path's (a path
// the listener does not serve, by status), the path's
// x-method-not-allowed or x-admin-method-not-allowed (a 405),
// x-options-asterisk (OPTIONS *), and x-answers-before-routing's (those
// fasthttp writes before a route is picked, by status).

// CheckAnswer fails the test (without stopping it, so that it may be
// called from any goroutine) unless the answer status, header and body to
// method and target (a path with its query, or a whole url) with
// reqHeader is one docs/openapi.yaml describes. Send calls it for every
// answer; a test that reads an answer another way calls it itself. A
// text/event-stream body is not read: CheckEvent checks each event.
func CheckAnswer(tb testing.TB, method, target string, reqHeader http.Header, status int, header http.Header, body []byte) {
	tb.Helper()
	reportMismatch(tb, func(doc *openapi3.T) error {
		return checkAnswer(doc, method, target, reqHeader, nil, status, header, body)
	})
}

// CheckRawAnswer is CheckAnswer for an answer read off a connection as
// bytes, answer, to the request whose bytes are rawRequest (the first
// request of them): what the tests that write requests by hand read.
func CheckRawAnswer(tb testing.TB, rawRequest string, answer []byte) {
	tb.Helper()
	req := &http.Request{Method: http.MethodGet}
	if r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(rawRequest))); err == nil {
		req = r
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(answer)), req)
	if err != nil {
		tb.Errorf("the answer to %q is not HTTP: %v\n%q", clip([]byte(rawRequest)), err, clip(answer))
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body) // the answer is all there: what is read is its body
	CheckAnswerTo(tb, rawRequest, resp.StatusCode, resp.Header, body)
}

// CheckAnswerTo is CheckAnswer for an answer to the request whose bytes
// are rawRequest (the first request of them). A request that is not HTTP,
// or none (""), is checked as to no route: against the answers written
// before routing.
func CheckAnswerTo(tb testing.TB, rawRequest string, status int, header http.Header, body []byte) {
	tb.Helper()
	method, target, reqHeader := "", "", http.Header{}
	if req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(rawRequest))); err == nil {
		method, target, reqHeader = req.Method, req.RequestURI, req.Header
	}
	CheckAnswer(tb, method, target, reqHeader, status, header, body)
}

// CheckEvent fails the test unless data, the data: line of a stream's
// event named event, is an Event of the document, or a ResetEvent for a
// reset.
func CheckEvent(tb testing.TB, event string, data []byte) {
	tb.Helper()
	reportMismatch(tb, func(doc *openapi3.T) error { return checkEvent(doc, event, data) })
}

func checkEvent(doc *openapi3.T, event string, data []byte) error {
	name := "Event"
	if event == "reset" {
		name = "ResetEvent"
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("stream event %q: data %q is not JSON, as %s's components/schemas/%s says: %v", event, data, OpenAPIFile, name, err)
	}
	if err := doc.Components.Schemas[name].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("stream event %q: data %s is not %s's components/schemas/%s: %v", event, data, OpenAPIFile, name, err)
	}
	if m, ok := v.(map[string]any); ok && m["type"] != event {
		return fmt.Errorf("stream event %q: its data's type is %v", event, m["type"])
	}
	return nil
}

// eventStream is the answer that is a stream, whose body CheckAnswer does
// not read.
const eventStream = "text/event-stream"

func init() {
	// The document's answers that are neither JSON nor text/plain are
	// checked as strings, as kin-openapi does text/plain.
	for _, ct := range []string{"text/html", "application/yaml", eventStream} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
}

// checkAnswer is CheckAnswer returning what is wrong; reqBody, when not
// nil, is the request's body, and the request (body, query and headers)
// is checked against the document too when the answer is a success.
func checkAnswer(doc *openapi3.T, method, target string, reqHeader http.Header, reqBody []byte, status int, header http.Header, body []byte) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("%s %s: %v", method, target, err)
	}
	if u.Path == "" {
		u.Path = target // OPTIONS *
	}
	where := fmt.Sprintf("%s %s answered %d", method, u.Path, status)
	candidates, route := answersFor(doc, method, u.Path, status)
	if len(candidates) == 0 {
		return fmt.Errorf("%s, which %s does not describe for this route (it does for %s)", where, OpenAPIFile, documentedStatuses(route))
	}
	var failures []string
	for _, c := range candidates {
		err := checkResponse(doc, method, u, reqHeader, c, status, header, body)
		if err == nil {
			if status < 300 && reqBody != nil {
				return checkRequest(method, u, reqHeader, reqBody, c, where)
			}
			return nil
		}
		failures = append(failures, c.what+": "+err.Error())
	}
	return fmt.Errorf("%s, not as %s describes it:\n\t%s\nheader: %v\nbody: %q", where, OpenAPIFile, strings.Join(failures, "\n\t"), header, clip(body))
}

// candidate is one answer of the document an answer may be: a status of
// an operation, or an extension's answer, as the operation of a route.
type candidate struct {
	what   string
	route  *routers.Route
	params map[string]string
}

// answersFor lists the document's answers that status to method on path
// may be; route is the operation's, for the message of none.
func answersFor(doc *openapi3.T, method, path string, status int) (out []candidate, route *routers.Route) {
	tmpl, item, params := findPath(doc, path)
	code := strconv.Itoa(status)
	if item != nil {
		if op := item.GetOperation(method); op != nil {
			route = &routers.Route{Spec: doc, Path: tmpl, PathItem: item, Method: method, Operation: op}
			if op.Responses.Status(status) != nil {
				out = append(out, candidate{fmt.Sprintf("paths.%s.%s.responses.%s", tmpl, strings.ToLower(method), code), route, params})
			}
		}
		if status == http.StatusMethodNotAllowed {
			for _, ext := range []string{"x-method-not-allowed", "x-admin-method-not-allowed"} {
				if r := extensionResponse(doc, item.Extensions[ext]); r != nil {
					out = append(out, candidate{"paths." + tmpl + "." + ext, onlyAnswer(doc, tmpl, item, method, status, r), params})
				}
			}
		}
	}
	if path == "*" && method == http.MethodOptions {
		if r := extensionResponse(doc, doc.Extensions["x-options-asterisk"]); r != nil {
			out = append(out, candidate{"x-options-asterisk", onlyAnswer(doc, path, &openapi3.PathItem{}, method, status, r), nil})
		}
	}
	// An unknown path's answers, and those written before routing, are
	// named by status. A path of one listener is unknown to the other.
	for _, ext := range []string{"x-answers-before-routing", "x-unknown-path"} {
		if byStatus, ok := doc.Extensions[ext].(map[string]any); ok {
			if r := extensionResponse(doc, byStatus[code]); r != nil {
				out = append(out, candidate{ext + "." + code, onlyAnswer(doc, path, &openapi3.PathItem{}, method, status, r), nil})
			}
		}
	}
	return out, route
}

// onlyAnswer is a route whose operation answers r alone, with status.
func onlyAnswer(doc *openapi3.T, tmpl string, item *openapi3.PathItem, method string, status int, r *openapi3.Response) *routers.Route {
	op := &openapi3.Operation{Responses: openapi3.NewResponses(openapi3.WithStatus(status, &openapi3.ResponseRef{Value: r}))}
	return &routers.Route{Spec: doc, Path: tmpl, PathItem: item, Method: method, Operation: op}
}

// extensionResponse is the answer an extension of the document refers to
// ({$ref: '#/components/responses/NAME'}), or nil.
func extensionResponse(doc *openapi3.T, ext any) *openapi3.Response {
	m, ok := ext.(map[string]any)
	if !ok {
		return nil
	}
	ref, _ := m["$ref"].(string)
	name, ok := strings.CutPrefix(ref, "#/components/responses/")
	if !ok || doc.Components.Responses[name] == nil {
		return nil
	}
	return doc.Components.Responses[name].Value
}

// documentedStatuses lists the statuses route's operation documents.
func documentedStatuses(route *routers.Route) string {
	if route == nil {
		return "no operation: no such path and method"
	}
	var codes []string
	for code := range route.Operation.Responses.Map() {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	return strings.Join(codes, ", ")
}

func checkResponse(doc *openapi3.T, method string, u *url.URL, reqHeader http.Header, c candidate, status int, header http.Header, body []byte) error {
	req := &http.Request{Method: method, URL: u, Header: reqHeader}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	opts.WithCustomSchemaErrorFunc(schemaError)
	mediaType, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	switch {
	case method == http.MethodHead:
		// kin-openapi checks nothing of an answer to HEAD; its status and
		// headers are checked here as GET's would be, without the body.
		req.Method = http.MethodGet
		opts.ExcludeResponseBody = true
	case mediaType == eventStream:
		opts.ExcludeResponseBody = true
	}
	if r := c.route.Operation.Responses.Status(status); r != nil && r.Value != nil && len(r.Value.Content) == 0 && len(body) > 0 {
		return fmt.Errorf("a body of %d bytes where the document describes none", len(body))
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: c.params, Route: c.route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	})
}

// checkRequest checks a request the server took against the operation
// that took it: a document stricter than the server would turn away
// clients the server serves.
func checkRequest(method string, u *url.URL, reqHeader http.Header, reqBody []byte, c candidate, where string) error {
	route := c.route
	req := &http.Request{Method: method, URL: u, Header: reqHeader.Clone(), Body: io.NopCloser(bytes.NewReader(reqBody))}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	// The server reads the body as the one type the document gives it
	// whatever the request's Content-Type says, as the document says:
	// the body is checked as that type.
	if rb := route.Operation.RequestBody; rb != nil && len(rb.Value.Content) == 1 {
		content := rb.Value.Content
		for mediaType := range content {
			if !strings.Contains(mediaType, "*") {
				req.Header.Set("Content-Type", mediaType)
			}
		}
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}
	opts.WithCustomSchemaErrorFunc(schemaError)
	err := openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req, PathParams: c.params, Route: route,
		Options: opts,
	})
	if err != nil {
		return fmt.Errorf("%s to a request %s's paths.%s.%s does not describe: %v\nbody: %q", where, OpenAPIFile, route.Path, strings.ToLower(method), err, clip(reqBody))
	}
	return nil
}

// schemaError is a schema's failure in one line, where in the value and
// why, without the schema and value kin-openapi would print in full.
func schemaError(err *openapi3.SchemaError) string {
	return "at /" + strings.Join(err.JSONPointer(), "/") + ": " + err.Reason
}

// clip is at most the first 500 bytes of b, for a message.
func clip(b []byte) []byte {
	if len(b) > 500 {
		return append(b[:500:500], "..."...)
	}
	return b
}

// docPaths is the document's paths, split into segments once: exact
// paths before templates, so that /debug/pprof/cmdline is not taken for
// /debug/pprof/{profile}.
var docPaths struct {
	once  sync.Once
	paths []docPath
}

type docPath struct {
	tmpl     string
	segments []string
	item     *openapi3.PathItem
}

func findPath(doc *openapi3.T, path string) (string, *openapi3.PathItem, map[string]string) {
	docPaths.once.Do(func() {
		for tmpl, item := range doc.Paths.Map() {
			docPaths.paths = append(docPaths.paths, docPath{tmpl, strings.Split(tmpl, "/"), item})
		}
		sort.Slice(docPaths.paths, func(i, j int) bool {
			ti, tj := strings.Contains(docPaths.paths[i].tmpl, "{"), strings.Contains(docPaths.paths[j].tmpl, "{")
			if ti != tj {
				return !ti
			}
			return docPaths.paths[i].tmpl < docPaths.paths[j].tmpl
		})
	})
	segments := strings.Split(path, "/")
	for _, p := range docPaths.paths {
		if params, ok := fills(segments, p.segments); ok {
			return p.tmpl, p.item, params
		}
	}
	return "", nil, nil
}

// fills reports whether segments fill in the template's, a {name}
// segment standing for any one non-empty segment, and with what.
func fills(segments, tmpl []string) (map[string]string, bool) {
	if len(segments) != len(tmpl) {
		return nil, false
	}
	params := map[string]string{}
	for i, t := range tmpl {
		if len(t) > 2 && t[0] == '{' && t[len(t)-1] == '}' {
			if segments[i] == "" {
				return nil, false
			}
			params[t[1:len(t)-1]] = segments[i]
		} else if segments[i] != t {
			return nil, false
		}
	}
	return params, true
}
