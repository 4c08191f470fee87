// Command nethttp serves the northd contract the way a Go developer would
// first write it: net/http's ServeMux, encoding/json to decode the login
// and github.com/google/uuid for the token. Nothing is tuned; it is the
// baseline northd's fasthttp work is measured against.
//
//	nethttp -listen 127.0.0.1:8082
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/google/uuid"
)

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	IP       string `json:"ip"`
}

func home(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		notFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, `<meta http-equiv="Content-Type" content="text/html; charset=utf-8"><h1>Home Page</h1>`)
}

func notFound(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprint(w, `<h1>404 Not Found</h1>`)
}

// northServers records who logged in, by ip, as northd's registry does (but
// unbounded, as a first version would be).
var (
	mu           sync.Mutex
	northServers = map[string]loginRequest{}
)

func refuse(w http.ResponseWriter, description string) {
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `{"code": 1, "token": "", "description": %q}`, description)
}

func login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	var req loginRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		refuse(w, "request body is not valid JSON")
		return
	}
	switch {
	case req.Username == "":
		refuse(w, "username is required")
		return
	case req.Password == "":
		refuse(w, "password is required")
		return
	case req.IP != "" && net.ParseIP(req.IP) == nil:
		refuse(w, "ip is not a valid IP address")
		return
	}
	if req.IP == "" {
		req.IP, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	req.Password = ""
	mu.Lock()
	northServers[req.IP] = req
	mu.Unlock()
	token := strings.ReplaceAll(uuid.New().String(), "-", "")
	// json.dumps' spacing, as the contract wants it
	fmt.Fprintf(w, `{"code": 0, "token": %q, "description": "success"}`, token)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8082", "address to serve on")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", home)
	mux.HandleFunc("POST /", home)
	mux.HandleFunc("POST /north/login", login)
	mux.HandleFunc("GET /north/login", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Allow", "POST")
		http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
	})
	log.Printf("nethttp listening on %s", *listen)
	log.Fatal(http.ListenAndServe(*listen, mux))
}
