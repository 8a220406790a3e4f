package app

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
)

// In a chain push,scan of a local source (an OCI layout or archive), the
// scan does not wait for the upload: push hands it the verified image as
// soon as it is open (push.Options.Ready), and the scan analyses it from
// disk while the blobs upload. Its log is kept and replayed when its turn
// comes, and its report files are written only once push succeeded, so the
// chain reads exactly as if the stages had run one after the other; a push
// that fails discards the scan.

// errPushFailed stops a scan started early whose image was not pushed.
var errPushFailed = errors.New("scan: the push it started beside did not complete")

// earlyScan is a scan stage running beside push.
type earlyScan struct {
	log     *report.Deferred
	run     *Run
	ctx     context.Context
	cancel  context.CancelFunc
	started time.Time

	pushOnce sync.Once
	pushed   chan struct{} // closed when push's outcome is known
	pushErr  error

	done chan struct{} // closed when the scan returned
	res  report.Result
	err  error
	// restoreEngineLog sends Trivy's log back to the step's log.
	restoreEngineLog func()
}

// scanCanStartEarly reports whether the stage after push is a scan that
// may read push's local source while it uploads: one that scans here with
// Trivy. ECR's and Inspector's findings need the pushed image.
func (r *Run) scanCanStartEarly(chain []inputs.Stage, i int) bool {
	return chain[i] == inputs.Push && i+1 < len(chain) && chain[i+1] == inputs.Scan &&
		strings.EqualFold(strings.TrimSpace(r.Values.String("scanner")), "trivy")
}

// startEarlyScan runs the scan stage on its own goroutine, with its own
// view of the run: the image push is about to write, its log deferred.
func (r *Run) startEarlyScan(parent context.Context, timeout time.Duration, view *registry.Source, digest string, pushed []string) *earlyScan {
	e := &earlyScan{log: &report.Deferred{}, started: time.Now(), pushed: make(chan struct{}), done: make(chan struct{}), restoreEngineLog: func() {}}
	if r.EngineLog != nil {
		// Trivy's lines belong to the scan's section of the log.
		e.restoreEngineLog = r.EngineLog.To(e.log.Writer())
	}
	e.ctx, e.cancel = parent, func() {}
	if timeout > 0 {
		e.ctx, e.cancel = context.WithTimeout(parent, timeout)
	}
	e.ctx, e.cancel = withCancel(e.ctx, e.cancel)
	e.run = &Run{
		IO: r.IO, Values: r.Values.Clone(), Log: e.log, Mask: r.Mask, Redactor: r.Redactor, Registry: r.Registry,
		State:           State{Pushed: pushed, Digest: digest, Source: view},
		scanBeforeWrite: e.waitForPush,
	}
	go func() {
		defer close(e.done)
		e.res, e.err = runScan(e.ctx, e.run)
	}()
	return e
}

// withCancel adds a cancel to ctx that also runs the cancel it came with.
func withCancel(ctx context.Context, inner context.CancelFunc) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancel(ctx)
	return c, func() { cancel(); inner() }
}

// waitForPush holds the scan's report files until push's outcome is known.
func (e *earlyScan) waitForPush(ctx context.Context) error {
	select {
	case <-e.pushed:
		if e.pushErr != nil {
			return errPushFailed
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pushDone records push's outcome. After a failed push the scan is stopped
// and waited for, and its result dropped.
func (e *earlyScan) pushDone(err error) {
	e.pushOnce.Do(func() {
		e.pushErr = err
		close(e.pushed)
	})
	if err != nil {
		e.cancel()
		<-e.done
		e.restoreEngineLog()
	}
}

// finish waits for the scan, replays its log and returns its result, with
// the scans a later sign stage attests; deadline says the scan ran out of
// its stage's time.
func (e *earlyScan) finish(r *Run, log report.Logger) (res report.Result, err error, deadline bool) {
	<-e.done
	deadline = errors.Is(e.ctx.Err(), context.DeadlineExceeded)
	e.cancel()
	e.restoreEngineLog()
	e.log.Replay(log)
	r.State.Scans = append(r.State.Scans, e.run.State.Scans...)
	return e.res, e.err, deadline
}
