package events

// Idle reports whether no writer owns the stream: the hub then moves its
// cursor on past events that are not for it, itself.
func (s *Stream) Idle() bool { return !s.writing.Load() }
