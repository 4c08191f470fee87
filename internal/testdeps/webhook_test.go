package testdeps

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const (
	hookSecret  = "whsec_cxgUSbLQA8gWRPcOakJSEMVm9CQqcaB0eHk+IIC5D9g="
	otherSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="
	hookEvents  = `[{"id":"7eae50746197-1","seq":1,"type":"alarm.raised","time":"2026-12-04T02:04:48.776412125Z","subsystem":"8000","data":{"level":"major"}}]`
	hookVerify  = `[{"id":"verify-0","seq":0,"type":"subscription.verify","time":"2026-12-04T02:04:48.76171674Z","subsystem":"8000","data":{"subscription":"sub_0fae79348b225fd418b08647"}}]`
)

// hook is a POST as northd sends one, signed by secrets at ts, each header
// then changed by edit.
func hook(t *testing.T, id, body string, ts time.Time, edit map[string]string, secrets ...string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:8081/northd", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var sigs []string
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := wh.Sign(id, ts, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, sig)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "northd-webhooks")
	r.Header.Set("webhook-id", id)
	r.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	r.Header.Set("webhook-signature", strings.Join(sigs, " "))
	for k, v := range edit {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	return r
}

// TestCheckWebhook: what the reference library verifies and the document
// describes is taken; a wrong signature, a stale timestamp, a body or
// header the document does not describe, a verify naming another
// subscription, and events with no secret to check them by are each
// reported, saying what is wrong.
func TestCheckWebhook(t *testing.T) {
	const eventsID = "msg_sub_0fae79348b225fd418b08647_7eae50746197-1"
	const verifyID = "msg_sub_0fae79348b225fd418b08647_verify"
	now := time.Now()
	for _, tt := range []struct {
		name     string
		id, body string
		ts       time.Time
		edit     map[string]string
		signers  []string // who signed it
		trusted  []string // whom the receiver trusts
		want     string   // in the error; "" for none
	}{
		{"events", eventsID, hookEvents, now, nil, []string{hookSecret}, []string{hookSecret}, ""},
		{"a rotation's two signatures, the receiver knowing either", eventsID, hookEvents, now, nil, []string{otherSecret, hookSecret}, []string{hookSecret}, ""},
		{"events, the receiver knowing two secrets", eventsID, hookEvents, now, nil, []string{hookSecret}, []string{otherSecret, hookSecret}, ""},
		{"a verify, the secret not known yet", verifyID, hookVerify, now, nil, []string{hookSecret}, nil, ""},
		{"a verify, checked again with the secret", verifyID, hookVerify, now, nil, []string{hookSecret}, []string{hookSecret}, ""},

		{"a wrong signature", eventsID, hookEvents, now, nil, []string{otherSecret}, []string{hookSecret}, "no matching signature found"},
		{"a stale timestamp", eventsID, hookEvents, now.Add(-6 * time.Minute), nil, []string{hookSecret}, []string{hookSecret}, "message timestamp too old"},
		{"a stale verify", verifyID, hookVerify, now.Add(-6 * time.Minute), nil, []string{hookSecret}, nil, "over 5m0s"},
		{"a verify signed with another secret", verifyID, hookVerify, now, nil, []string{otherSecret}, []string{hookSecret}, "no matching signature found"},
		{"an object, not an array", eventsID, `{"id":"7eae50746197-1","seq":1,"type":"alarm.raised","time":"2026-12-04T02:04:48.776412125Z","subsystem":"8000","data":{"level":"major"}}`, now, nil, []string{hookSecret}, []string{hookSecret}, "not the document's eventDelivery"},
		{"no events", eventsID, `[]`, now, nil, []string{hookSecret}, []string{hookSecret}, "eventDelivery"},
		{"an event without its subsystem", eventsID, `[{"id":"7eae50746197-1","seq":1,"type":"alarm.raised","time":"2026-12-04T02:04:48.776412125Z","data":null}]`, now, nil, []string{hookSecret}, []string{hookSecret}, "subsystem"},
		{"a verify beside events", verifyID, "[" + hookVerify[1:len(hookVerify)-1] + "," + hookEvents[1:], now, nil, []string{hookSecret}, nil, "subscriptionVerify"},
		{"no webhook-id", eventsID, hookEvents, now, map[string]string{"webhook-id": ""}, []string{hookSecret}, []string{hookSecret}, "webhook-id"},
		{"a signature of another version", eventsID, hookEvents, now, map[string]string{"webhook-signature": "v1a,bkx/CWeKsQMzp6zTvES5poijOuRolmijMoSh3RTYft8="}, nil, []string{hookSecret}, "webhook-signature"},
		{"another User-Agent", eventsID, hookEvents, now, map[string]string{"User-Agent": "Go-http-client/1.1"}, []string{hookSecret}, []string{hookSecret}, "User-Agent"},
		{"text, not JSON", eventsID, hookEvents, now, map[string]string{"Content-Type": "text/plain"}, []string{hookSecret}, []string{hookSecret}, "text/plain"},
		{"a verify naming another subscription", "msg_sub_1_verify", hookVerify, now, nil, []string{hookSecret}, nil, "is not msg_sub_0fae79348b225fd418b08647_verify"},
		{"events, no secret given", eventsID, hookEvents, now, nil, []string{hookSecret}, nil, "no secret to verify them by"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckWebhook(hook(t, tt.id, tt.body, tt.ts, tt.edit, tt.signers...), []byte(tt.body), tt.trusted...)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("taken; want an error with %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
			if err != nil {
				t.Log(err)
			}
		})
	}
}
