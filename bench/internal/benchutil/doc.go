// Package benchutil holds what bench's drivers, cmd/compare and
// cmd/streampeers, both need: the numbers as their reports print them
// (medians, thousands separated, figures shortened), the host's name made
// safe for a report's file name, shell quoting for the commands a report
// lists, and the free ports and tool versions a run asks the machine for.
package benchutil
