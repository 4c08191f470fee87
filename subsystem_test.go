package northd

import (
	"testing"

	"github.com/valyala/fasthttp/fasthttputil"
)

func TestPushHookSeesEveryValidLogin(t *testing.T) {
	ln := fasthttputil.NewInmemoryListener()
	s := startSubsystem(t, testConfig(t), ln)
	const valid, invalid = 50, 7
	for i := 0; i < valid+invalid; i++ {
		body := `{"username":"n","password":"p"}`
		if i < invalid {
			body = `{"username":"n"}`
		}
		roundTrip(t, ln.Dial, post("/north/login", body))
	}
	s.stopPushHook()
	if got := s.Pushed(); got != valid {
		t.Fatalf("push hook called %d times, want %d (one per valid login)", got, valid)
	}
}
