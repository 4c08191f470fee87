// Package wire is northd's bytes on the wire, apart from the server: the
// strict login decoder, the bearer parser and the answers' bodies, byte for
// byte as the README's wire contract shows them. It holds pure functions
// over byte slices, with no server state and no fasthttp, so that each can
// be tested and fuzzed alone. The decoder and the parser allocate nothing;
// refusals are built once, at start-up, and the two answers built per
// request are appended to the caller's buffer.
package wire
