package testdeps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The tests' receivers hand every request northd POSTs them to
// CheckWebhook, beside their own signature checks: a receiver written from
// the specification can agree with a sender that shares its mistake, the
// specification's reference library cannot, and the document is what
// north servers build their receivers from.

// The document's webhooks, by what the body carries.
const (
	webhookEvents = "eventDelivery"
	webhookVerify = "subscriptionVerify"
)

// webhookTolerance is how far webhook-timestamp may be from now: the
// reference library's own tolerance, checked by hand only where no secret
// lets the library check it.
const webhookTolerance = 5 * time.Minute

// CheckWebhook checks one request northd POSTed to a test's receiver, body
// its body as read: that it is the document's subscriptionVerify webhook
// (a body of one subscription.verify event) or its eventDelivery (any
// other), headers, content type and body; and that the Standard Webhooks
// reference library verifies its signature and timestamp under one of
// secrets. With no secrets, only a subscription.verify is taken: it comes
// before the subscribe's answer shows the secret, so its receiver can check
// then the signature's form, the timestamp's age and that webhook-id names
// the subscription the data names, and the signature once it has the
// secret. It returns what is wrong rather than failing the test, for the
// receiver's handler, which runs in a goroutine of its own.
func CheckWebhook(r *http.Request, body []byte, secrets ...string) error {
	doc, err := openAPIDoc()
	if err != nil {
		return err
	}
	name, subscription := webhookFor(body)
	if err := validateWebhook(doc, name, r, body); err != nil {
		return fmt.Errorf("%s %s is not the document's %s webhook: %w", r.Method, r.URL, name, err)
	}
	id := r.Header.Get(standardwebhooks.HeaderWebhookID)
	if name == webhookVerify && id != "msg_"+subscription+"_verify" {
		return fmt.Errorf("webhook-id %q of the subscription.verify of %q is not msg_%s_verify", id, subscription, subscription)
	}
	if len(secrets) == 0 {
		if name != webhookVerify {
			return fmt.Errorf("delivery %s: events came with no secret to verify them by; give CheckWebhook the subscription's secrets", id)
		}
		return checkTimestamp(r.Header.Get(standardwebhooks.HeaderWebhookTimestamp))
	}
	var refused []error
	for _, secret := range secrets {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			return fmt.Errorf("secret %q: %w", secret, err)
		}
		err = wh.Verify(body, r.Header)
		if err == nil {
			return nil
		}
		refused = append(refused, err)
	}
	return fmt.Errorf("delivery %s: the Standard Webhooks reference library refuses it under each of its %d secrets: %w", id, len(secrets), errors.Join(refused...))
}

// webhookFor is the webhook a body is, by its events: subscriptionVerify
// when one is a subscription.verify (with the subscription its data
// names), else eventDelivery, which a body that is no array of events
// fails.
func webhookFor(body []byte) (name, subscription string) {
	var evs []struct {
		Type string `json:"type"`
		Data struct {
			Subscription string `json:"subscription"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &evs) != nil {
		return webhookEvents, ""
	}
	for _, ev := range evs {
		if ev.Type == "subscription.verify" {
			return webhookVerify, ev.Data.Subscription
		}
	}
	return webhookEvents, ""
}

// validateWebhook validates the request against the document's webhook
// name with kin-openapi, routed by hand: a webhook has no path to route by.
func validateWebhook(doc *openapi3.T, name string, r *http.Request, body []byte) error {
	item := doc.Webhooks[name]
	if item == nil {
		return fmt.Errorf("the document has no webhook %s", name)
	}
	op := item.GetOperation(r.Method)
	if op == nil {
		return fmt.Errorf("the document's %s is not sent with %s", name, r.Method)
	}
	req := r.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(body))
	return openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req,
		Route:   &routers.Route{Spec: doc, Path: name, PathItem: item, Method: r.Method, Operation: op},
		Options: &openapi3filter.Options{MultiError: true},
	})
}

func checkTimestamp(header string) error {
	sec, err := strconv.ParseInt(header, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not unix seconds", header)
	}
	if off := time.Since(time.Unix(sec, 0)); off.Abs() > webhookTolerance {
		return fmt.Errorf("webhook-timestamp %q is %v from now, over %v", header, off.Round(time.Second), webhookTolerance)
	}
	return nil
}
