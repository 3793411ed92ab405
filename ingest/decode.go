package ingest

import (
	"bytes"
	"errors"
	"fmt"

	json "github.com/goccy/go-json"

	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// permanentError marks an event that can never be stored: retrying it cannot help.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// event is one decoded event: an assignment or a result.
type event struct {
	assignment *eventv1.Assignment
	result     *eventv1.Result
}

// key identifies the event among stored rows: its table, test and id.
func (e event) key() string {
	if e.assignment != nil {
		return "a\x00" + e.assignment.TestID + "\x00" + e.assignment.EventID
	}
	return "r\x00" + e.result.TestID + "\x00" + e.result.EventID
}

// poisonLine is an invalid line of a batch message.
type poisonLine struct {
	line int
	data []byte
	err  error
}

// decodeMessage parses one message: a single event, or a batch message's
// lines. A message that cannot be read at all (unknown subject, invalid
// single event, batch without events) returns a permanent error; a batch
// message returns its valid events and its invalid lines apart, so that
// one bad line never holds back the others.
func decodeMessage(subject string, data []byte) ([]event, []poisonLine, error) {
	var single string
	switch subject {
	case eventv1.SubjectAssignment, eventv1.SubjectResult:
		ev, err := decode(subject, data)
		if err != nil {
			return nil, nil, err
		}
		return []event{ev}, nil, nil
	case eventv1.SubjectAssignmentBatch:
		single = eventv1.SubjectAssignment
	case eventv1.SubjectResultBatch:
		single = eventv1.SubjectResult
	default:
		return nil, nil, &permanentError{fmt.Errorf("unknown subject %q", subject)}
	}
	evs := make([]event, 0, bytes.Count(data, []byte{'\n'})+1)
	var poison []poisonLine
	for i := 0; len(data) > 0; i++ {
		line := data
		if j := bytes.IndexByte(data, '\n'); j >= 0 {
			line, data = data[:j], data[j+1:]
		} else {
			data = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ev, err := decode(single, line)
		if err != nil {
			poison = append(poison, poisonLine{line: i, data: line, err: fmt.Errorf("line %d: %w", i, err)})
			continue
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 && len(poison) == 0 {
		return nil, nil, &permanentError{errors.New("batch message holds no events")}
	}
	return evs, poison, nil
}

// decode parses and validates one event. Its error is permanent.
//
// It parses with github.com/goccy/go-json, a drop-in for encoding/json that
// takes a quarter of its time on these events (BenchmarkDecode), the
// largest cost of ingest. A panic inside the parser on a malformed message
// becomes a permanent error, so a poison message can never stop ingest.
func decode(subject string, data []byte) (ev event, err error) {
	defer func() {
		if r := recover(); r != nil {
			ev, err = event{}, &permanentError{fmt.Errorf("decoding %s: parser panic: %v", subject, r)}
		}
	}()
	switch subject {
	case eventv1.SubjectAssignment:
		var a eventv1.Assignment
		if err := json.Unmarshal(data, &a); err != nil {
			return event{}, &permanentError{fmt.Errorf("decoding assignment: %w", err)}
		}
		if err := a.Validate(); err != nil {
			return event{}, &permanentError{fmt.Errorf("invalid assignment: %w", err)}
		}
		return event{assignment: &a}, nil
	case eventv1.SubjectResult:
		var r eventv1.Result
		if err := json.Unmarshal(data, &r); err != nil {
			return event{}, &permanentError{fmt.Errorf("decoding result: %w", err)}
		}
		if err := r.Validate(); err != nil {
			return event{}, &permanentError{fmt.Errorf("invalid result: %w", err)}
		}
		return event{result: &r}, nil
	}
	return event{}, &permanentError{fmt.Errorf("unknown subject %q", subject)}
}
