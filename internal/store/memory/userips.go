package memory

import (
	"hash/maphash"
	"net/netip"
	"sync"
)

// userIPs is the memory registry's index of the north servers each
// username holds, so that one username holds at most max of them
// (-max-ips-per-user): past it, that username's least recently seen is
// forgotten, never another username's. Without it, one valid user logging
// in with a new ip per request would push every other north server out at
// -registry-max.
//
// A registry shard's lock may be held while taking an index shard's lock,
// never the reverse. Each registry entry is on at most one username's
// list, so the index holds no more than the registry does. A nil index
// (no bound: open mode) tracks nothing.
type userIPs struct {
	max    int
	seed   maphash.Seed
	shards [userIPsShards]userIPsShard
}

const userIPsShards = 64

type userIPsShard struct {
	mu     sync.Mutex
	byName map[string]*userEntries
	_      [64]byte // keeps neighbouring shards' locks off one cache line
}

// userEntries is one username's north servers, through their userLinks,
// most recently seen first.
type userEntries struct {
	list entryList
	n    int
}

func newUserIPs(max int) *userIPs {
	u := &userIPs{max: max, seed: maphash.MakeSeed()}
	for i := range u.shards {
		u.shards[i].byName = make(map[string]*userEntries)
	}
	return u
}

func (u *userIPs) shardOf(username []byte) *userIPsShard {
	return &u.shards[maphash.Bytes(u.seed, username)&(userIPsShards-1)]
}

// add puts e, just logged in to under its username, first on that
// username's list. When the list goes over the bound, its last entry
// leaves it, and add returns that entry's ip for the caller to forget
// (under its own shard's lock; see forgettable).
func (u *userIPs) add(e *northServer) (over netip.Addr) {
	if u == nil {
		return netip.Addr{}
	}
	sh := u.shardOf(e.username)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ue := sh.byName[string(e.username)]
	if ue == nil {
		ue = &userEntries{list: entryList{which: userLinks}}
		sh.byName[string(e.username)] = ue
	}
	if e.userListed {
		ue.list.unlink(e)
	} else {
		e.userListed = true
		ue.n++
	}
	ue.list.pushFront(e)
	if ue.n <= u.max {
		return netip.Addr{}
	}
	oldest := ue.list.oldest
	ue.list.unlink(oldest)
	oldest.userListed = false
	ue.n--
	return oldest.ip
}

// remove takes e off its username's list, before e is forgotten or
// changes hands.
func (u *userIPs) remove(e *northServer) {
	if u == nil {
		return
	}
	sh := u.shardOf(e.username)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !e.userListed {
		return
	}
	ue := sh.byName[string(e.username)]
	ue.list.unlink(e)
	e.userListed = false
	if ue.n--; ue.n == 0 {
		delete(sh.byName, string(e.username))
	}
}

// forgettable reports whether e, found under the lock of its registry
// shard at an ip that add returned, is still off its username's list: it
// is not, when the same username logged in from it again meanwhile.
func (u *userIPs) forgettable(e *northServer) bool {
	sh := u.shardOf(e.username)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return !e.userListed
}

// ips returns the ips username holds.
func (u *userIPs) ips(username string) []netip.Addr {
	if u == nil {
		return nil
	}
	sh := u.shardOf([]byte(username))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ue := sh.byName[username]
	if ue == nil {
		return nil
	}
	ips := make([]netip.Addr, 0, ue.n)
	for e := ue.list.newest; e != nil; e = e.links[userLinks].older {
		ips = append(ips, e.ip)
	}
	return ips
}
