package keystore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// runScheduler calls RunDueTasks every interval until Close.
func (s *Store) runScheduler() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SchedulerInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.SchedulerTimeout)
		go func() { // Close interrupts a pass stuck on Raft or the HSM
			select {
			case <-s.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := s.RunDueTasks(ctx); err != nil {
			s.log.Warn("scheduler pass incomplete", "err", err)
		}
		cancel()
	}
}

// RunDueTasks is one scheduler pass. On the leader only, it proposes
// DELETE_KEY for every key whose deletion date has passed and a new
// (automatic) version for every key whose rotation is due, with the time of
// this pass in the commands. Followers do nothing: the leader's pass
// covers the cluster. Request ids are derived from the task, so two leaders
// in quick succession cannot delete or rotate twice.
func (s *Store) RunDueTasks(ctx context.Context) error {
	if !s.ap.IsLeader() {
		return nil
	}
	now := s.now()
	var errs []error
	for _, id := range s.state.DueDeletions(now) {
		k, ok := s.state.Key(id)
		if !ok {
			continue
		}
		rid := "scheduler/delete/" + id + "/" + strconv.FormatInt(k.GetDeletionUnixNano(), 10)
		res, err := s.propose(ctx, "delete key", fsmpb.CommandType_COMMAND_TYPE_DELETE_KEY, keyRef(id), rid)
		if err != nil {
			errs = append(errs, fmt.Errorf("delete key %s: %w", id, err))
			continue
		}
		s.log.Info("key deleted", "key", id, "index", res.GetIndex())
	}
	for _, id := range s.state.DueRotations(now) {
		k, ok := s.state.Key(id)
		if !ok {
			continue
		}
		cur := currentVersion(k)
		rid := "scheduler/rotate/" + id + "/" + strconv.FormatUint(uint64(cur.GetVersion())+1, 10)
		_, err := s.rotate(ctx, "rotate key", k, false, rid)
		if errors.Is(err, errConflict) {
			continue // an on-demand rotation got there first; next pass re-checks
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rotate key %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}
