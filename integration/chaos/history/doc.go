// Package history is the pure part of the chaos suite: the history of
// operations a chaos run performed (one JSON record per line), a Recorder
// that writes it from several goroutines, Load to read it back, and Check,
// a pure function that verifies a history against the log's guarantees.
//
// The package does no I/O except reading and writing a history file. It does
// not import the engine: ids are the package's own ID, which has the order and
// the "segment/entry" text form of woodpecker.EntryID.
//
// # Records
//
// Every operation is one Record: the process, the log, the kind (append,
// read, open, truncate), its invocation and completion times (nanoseconds
// since the run started, from one clock shared by every process of the run,
// see Clock), and its outcome:
//
//   - ok: the operation succeeded (an append's ack, with the id returned);
//   - fail: a definite failure, nothing changed;
//   - fenced: the writer was fenced (ErrFenced); a definite failure too;
//   - unknown: the operation may or may not have taken effect
//     (ErrUnknownOutcome, a timeout, the process was killed). The checker
//     lets it take effect at any time after its invocation, or never.
//
// A read is a reader session (one OpenReader, named by Record.Reader, unique
// per log). Its deliveries can be reported in several read records of the
// same reader ("chunks", e.g. one per second), so that a reader killed with
// SIGKILL loses only its last chunk; the chunks are joined in invocation
// order. Every chunk carries the same start mode.
//
// # Definitions used by Check
//
// Everything below is per log. An entry is a pair (id, value) observed in the
// history: the id an ok append returned for its value, or an id and value a
// reader delivered. Values are unique per log: the workload never appends the
// same value twice, except to retry an append of unknown outcome (then all
// records of the value are attempts of one entry).
//
// Visible at: an entry is visible at the earliest of the completion of an ok
// append that returned it and the completion of a read chunk that delivered
// it.
//
// A reader's range: the ids a reader must deliver from, the first of
//   - its start: At(R) covers ids >= R, After(R) ids > R; Earliest covers
//     ids >= F, where F is the highest point of any truncation of the log
//     (outcome ok or unknown) invoked before the reader's last chunk
//     completed (every id when there is none); Latest has no fixed start;
//   - its first delivered id: a reader never skips, so once it delivered id
//     d it must deliver every entry above d;
//   - for an Earliest or Latest reader, an entry all of whose ok or unknown
//     append attempts were invoked after the reader's open completed
//     (Record.Opened) is in range: the reader was positioned before the
//     entry existed. (Not for At and After, whose remembered id could lie
//     beyond such an entry.)
//
// A reader passes an entry with id x when it delivered an id >= x, or when
// it reached the end of the log (Record.EndAt, the time from which the
// reader had delivered every entry that was durable: the runner sets it only
// for a read it stopped on purpose after an idle wait, to the time of its
// last delivery or of its open when it delivered nothing) after the entry was
// visible: visible at < EndAt.
//
// A reader must read an entry when the entry is in its range and it passes
// it. It reads it when it delivered the entry's value or its id (what it
// delivered instead is a disagreement, reported as such).
//
// A writer is fenced at the completion of the first ok open of another writer
// of the log that was invoked after this writer's own open completed. Epochs
// are recorded for diagnosis only: the order of opens in real time decides,
// which covers racing epochs and two writers of the same epoch alike. An
// append (or writer truncation) is a zombie attempt when its writer was
// fenced before the append was invoked.
//
// # Violations
//
//   - Lost: an entry acknowledged ok that a reader must read was not read.
//   - Vanished: an entry not acknowledged ok (unknown outcome, or with no
//     append record) that a reader delivered and another reader must read
//     but did not: a reader saw an entry that a later reader does not see.
//   - TruncatedAbove: a reader from Earliest, with a truncation in effect,
//     started above an entry it must read, i.e. the truncation (or
//     retention) removed an entry at or above its point.
//   - Duplicate: a reader delivered one value more than once (an
//     unknown-outcome append read twice, a retried append written twice).
//   - Order: a reader delivered ids that do not strictly increase.
//   - Disagree: the observations of the log (acks and deliveries) give one
//     id two values, or one value two ids.
//   - FailedVisible: a value whose every append attempt failed definitely
//     (fail or fenced) was delivered.
//   - Zombie: an append attempt of a fenced writer, invoked after the fence,
//     was acknowledged ok or its value was delivered with no other attempt
//     to explain it; or a fenced writer's truncation, invoked after the
//     fence, returned ok.
//   - RealTime: an ok append got an id at or below that of an entry visible
//     before the append was invoked (acks and reads out of real-time order).
//   - BeforeStart: a reader delivered an id before its start: below At(R),
//     at or below After(R), below the point of a truncation that completed ok
//     before an Earliest reader was invoked, or at or below the id of an ack
//     that completed before a Latest reader was invoked.
//   - Malformed: a record that breaks the format (it is then ignored).
//
// With ids unique per value and strictly increasing per reader, two readers
// cannot disagree on the relative order of two values they both read: the
// order is that of the values' ids. "One total order per log that all
// readers agree on" is therefore checked as Order plus Disagree.
//
// # Why not Porcupine
//
// Porcupine searches for a linearization of operations whose order the
// history does not give. Here the server assigns every entry an id, and ids
// are totally ordered in log order, so the history names the order itself:
// checking it is a set and order check (each id one value, each reader
// increasing and gapless over its range, acks and reads consistent with real
// time) that runs in O(n log n + entries x readers), with no search whose
// cost explodes with concurrency and unknown outcomes. A direct checker also
// names the records behind each violation, which a linearizability verdict
// does not.
package history
